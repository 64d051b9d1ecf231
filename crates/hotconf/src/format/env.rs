//! Environment overrides: `PREFIX__A__B=value` lines into `{a: {b: value}}`.
//!
//! Byte ranges: a value covers the text after its `=` (all of it, for every item of a JSON
//! array or object written there: serde_json gives no positions); a table made by a variable
//! covers that variable's line, widened to every line that adds to it; the root covers the
//! text.

use crate::document::Limits;
use crate::error::{Problem, ProblemKind};
use crate::path::Segment;
use crate::tree::{Node, Span, Table, Value};

pub(super) fn parse(
    text: &str,
    doc: u32,
    prefix: &str,
    separator: &str,
    limits: &Limits,
) -> Result<Node, Problem> {
    let lead = format!("{prefix}{separator}");
    let mut root = Node::new(
        Value::Table(Box::default()),
        Span {
            doc,
            line: 1,
            column: 1,
            start: 0,
            end: Span::offset(text.trim_end().len()),
        },
    );
    let mut line_start = 0;
    // Lines as `str::lines` splits them, with where each starts.
    for (i, with_break) in text.split_inclusive('\n').enumerate() {
        let start = line_start;
        line_start += with_break.len();
        let line = match with_break.strip_suffix('\n') {
            Some(line) => line.strip_suffix('\r').unwrap_or(line),
            None => with_break,
        };
        let span = Span {
            doc,
            line: crate::tree::saturate(i + 1),
            column: 1,
            start: Span::offset(start),
            end: Span::offset(start + line.len()),
        };
        let Some((name, raw)) = line.split_once('=') else {
            continue;
        };
        let value_span = Span {
            start: Span::offset(start + name.len() + 1),
            ..span
        };
        let Some(rest) = name.strip_prefix(&lead) else {
            continue;
        };
        let keys: Vec<String> = rest.split(separator).map(str::to_lowercase).collect();
        if keys.iter().any(String::is_empty) {
            return Err(Problem::error(
                ProblemKind::Syntax,
                format!("environment variable {name} has an empty key segment"),
            )
            .at_location(String::new(), span.line, 1));
        }
        // A value that reads as JSON keeps its type; anything else is a string.
        let value = match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(json) => from_json(json, value_span),
            Err(_) => Node::new(Value::String(raw.into()), value_span),
        };
        // A variable nests by its name's segments and by the JSON of its value; merging
        // variables nests no deeper than the deepest of them.
        if keys.len() + value.depth() > limits.max_depth {
            let path: crate::path::ConfigPath =
                keys.iter().map(|k| Segment::Key(k.clone())).collect();
            return Err(super::depth_problem(limits)
                .at_location(String::new(), span.line, 1)
                .at_path(path));
        }
        let mut overlay = value;
        for key in keys.into_iter().rev() {
            let mut table = Table::default();
            table.insert(key.into(), overlay);
            overlay = Node::new(Value::Table(Box::new(table)), span);
        }
        root.merge(overlay);
    }
    widen(&mut root);
    Ok(root)
}

/// Widens each table made by variables to the lines of all the variables that add to it
/// (merging keeps the span of the first).
fn widen(node: &mut Node) {
    if let Value::Table(table) = &mut node.value {
        for child in table.values_mut() {
            widen(child);
            node.span.start = node.span.start.min(child.span.start);
            node.span.end = node.span.end.max(child.span.end);
        }
    }
}

fn from_json(json: serde_json::Value, span: Span) -> Node {
    use serde_json::Value as J;
    let value = match json {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(b),
        J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Integer(i),
            (None, Some(u), _) => Value::Unsigned(u),
            (None, None, Some(f)) => Value::Float(f),
            (None, None, None) => Value::String(n.to_string().into()),
        },
        J::String(s) => Value::String(s.into()),
        J::Array(items) => Value::Array(items.into_iter().map(|j| from_json(j, span)).collect()),
        J::Object(map) => Value::Table(Box::new(
            map.into_iter()
                .map(|(k, j)| (k.into(), from_json(j, span)))
                .collect(),
        )),
    };
    Node::new(value, span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_nest_and_keep_json_types() {
        let text = "APP__LIMITS__RPM=120\nAPP__NAME=edge-1\nAPP__TLS__ENABLED=true\nAPP__HOSTS=[\"a\",\"b\"]\n";
        let node = parse(text, 2, "APP", "__", &Limits::default()).unwrap();
        assert_eq!(
            node.to_json(),
            serde_json::json!({
                "limits": {"rpm": 120},
                "name": "edge-1",
                "tls": {"enabled": true},
                "hosts": ["a", "b"],
            })
        );
        let rpm = node.get(&"limits.rpm".parse().unwrap()).unwrap();
        assert_eq!((rpm.span.doc, rpm.span.line), (2, 1));
    }

    #[test]
    fn ranges_cover_values_and_the_lines_of_tables() {
        let text = "APP__LIMITS__RPM=120\r\nAPP__NAME=edge 1\nAPP__LIMITS__BURST=true\nAPP__HOSTS=[\"a\",\"b\"]\nOTHER=1\nAPP__Q=\n";
        let node = parse(text, 0, "APP", "__", &Limits::default()).unwrap();
        // The path, the bytes its range covers, and the lines those take.
        for (path, written, lines) in [
            ("limits.rpm", "120", 1..=1),
            ("name", "edge 1", 2..=2),
            ("limits.burst", "true", 3..=3),
            (
                "limits",
                "APP__LIMITS__RPM=120\r\nAPP__NAME=edge 1\nAPP__LIMITS__BURST=true",
                1..=3,
            ),
            ("hosts", "[\"a\",\"b\"]", 4..=4),
            // No positions inside a JSON value: its items cover all of it.
            ("hosts[1]", "[\"a\",\"b\"]", 4..=4),
            ("q", "", 6..=6),
            ("", text.trim_end(), 1..=6),
        ] {
            let span = node.get(&path.parse().unwrap()).unwrap().span;
            assert_eq!(&text[span.range()], written, "{path}");
            assert_eq!(span.lines(text.as_bytes()), lines, "{path}");
        }
    }

    #[test]
    fn empty_segment_is_an_error() {
        let problem = parse("APP__A____B=1\n", 0, "APP", "__", &Limits::default()).unwrap_err();
        assert!(problem.message.contains("empty key segment"), "{problem}");
    }
}
