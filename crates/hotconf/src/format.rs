//! Parsing: one [`Document`]'s bytes into a [`Node`] tree that remembers where each value
//! was written.
//!
//! The checks every format shares live here: size and depth limits, UTF-8 (a byte-order mark
//! is accepted), empty documents, and a top level that must be a table.

mod env;
#[cfg(feature = "json")]
mod json;
#[cfg(feature = "toml")]
mod toml;
#[cfg(feature = "yaml")]
mod yaml;

use crate::document::{Document, Format, Limits, Origin};
use crate::error::{Problem, ProblemKind};
use crate::tree::{LineIndex, Node, Span, Value};

/// The stack a thread needs to parse every format within `limits` itself, without moving to
/// a thread of its own (YAML's recursion needs a large stack); `None`: any thread will do.
/// A thread spawned with it says so with [`spawned_with`].
pub(crate) fn parser_stack(limits: &Limits) -> Option<usize> {
    #[cfg(feature = "yaml")]
    return Some(yaml::stack::stack_for(limits));
    #[cfg(not(feature = "yaml"))]
    {
        let _ = limits;
        None
    }
}

/// Tells the parsers that the current thread was spawned with `stack` bytes of stack, as
/// [`parser_stack`] asked for.
pub(crate) fn spawned_with(stack: usize) {
    #[cfg(feature = "yaml")]
    yaml::stack::spawned_with(stack);
    #[cfg(not(feature = "yaml"))]
    let _ = stack;
}

/// Parses document number `index` of a load into a tree whose top level is a table.
///
/// # Errors
///
/// One located [`Problem`]: invalid UTF-8, a syntax error, an empty document, a top level
/// that is not a table, or an exceeded limit.
pub(crate) fn parse(document: &Document, index: u32, limits: &Limits) -> Result<Node, Problem> {
    let file = document.origin.to_string();
    // First: the format, not the bytes, is what is wrong with such a document.
    #[cfg(not(all(feature = "toml", feature = "yaml", feature = "json")))]
    if !document.format.is_compiled_in() {
        return Err(not_compiled_in(document.format).at_location(&file, 1, 1));
    }
    let text = decode(&document.bytes).map_err(|p| p.in_file(&file))?;
    let root = Span {
        doc: index,
        line: 1,
        column: 1,
        ..Span::default()
    };
    if is_blank(text, document.format) {
        if document.allow_empty {
            return Ok(Node::new(Value::Table(Box::default()), root));
        }
        return Err(Problem::error(
            ProblemKind::Empty,
            "empty document: the file holds no keys (a save in progress or a truncation?); \
             it was not applied",
        )
        .at_location(&file, 1, 1));
    }
    let mut node = match document.format {
        #[cfg(feature = "toml")]
        Format::Toml => toml::parse(text, index, limits),
        #[cfg(feature = "yaml")]
        Format::Yaml => yaml::parse(text, index, limits),
        #[cfg(feature = "json")]
        Format::Json => json::parse(text, index, limits),
        Format::Env => match &document.origin {
            Origin::Env { prefix, separator } => env::parse(text, index, prefix, separator, limits),
            _ => env::parse(text, index, "", "__", limits),
        },
        #[cfg(not(all(feature = "toml", feature = "yaml", feature = "json")))]
        // Answered before decoding; kept so that the match needs no panic.
        format => Err(not_compiled_in(format).at_location(String::new(), 1, 1)),
    }
    .map_err(|mut problem| {
        problem.file = Some(file.clone());
        problem
    })?;
    if !matches!(node.value, Value::Table(_)) {
        return Err(Problem::error(
            ProblemKind::Syntax,
            format!(
                "the top level must be a table of keys, found {}",
                describe(&node.value)
            ),
        )
        .at_location(&file, node.span.line.max(1), node.span.column.max(1)));
    }
    // Parsers count bytes of the text; spans count bytes of the document.
    shift(&mut node, document.bytes.len() - text.len());
    Ok(node)
}

/// Moves every known byte range of a tree `by` bytes on (past a byte-order mark).
fn shift(node: &mut Node, by: usize) {
    if by == 0 {
        return;
    }
    if node.span.has_range() {
        let by = Span::offset(by);
        node.span.start = node.span.start.saturating_add(by);
        node.span.end = node.span.end.saturating_add(by);
    }
    match &mut node.value {
        Value::Table(table) => table.values_mut().for_each(|child| shift(child, by)),
        Value::Array(items) => items.iter_mut().for_each(|child| shift(child, by)),
        _ => {}
    }
}

/// The problem for a document whose format's cargo feature is off.
#[cfg(not(all(feature = "toml", feature = "yaml", feature = "json")))]
fn not_compiled_in(format: Format) -> Problem {
    Problem::error(ProblemKind::Syntax, format.not_compiled_in())
}

pub(crate) fn depth_problem(limits: &Limits) -> Problem {
    Problem::error(
        ProblemKind::Limit,
        format!(
            "nesting deeper than {} levels (Limits::max_depth)",
            limits.max_depth
        ),
    )
}

/// The text of a document: UTF-8, with a leading byte-order mark dropped.
fn decode(bytes: &[u8]) -> Result<&str, Problem> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Parsers skip a mark at the start of what they are given: a second one would pass.
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(Problem::error(
            ProblemKind::Syntax,
            "a second byte-order mark: one is allowed, at the very start of the document",
        )
        .at_location(String::new(), 1, 1));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = e.valid_up_to();
        // The prefix up to `valid` is UTF-8 by definition of `valid_up_to`.
        let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
        let (line, column) = LineIndex::new(prefix).locate(valid);
        let what = if bytes.iter().take(512).filter(|&&b| b == 0).count() > 0 {
            "binary content, not a text config"
        } else {
            "content is not valid UTF-8"
        };
        Problem::error(
            ProblemKind::Syntax,
            format!(
                "{what} (invalid byte 0x{:02X} at byte {valid})",
                bytes[valid]
            ),
        )
        .at_location(String::new(), line, column)
    })
}

/// Whether a text holds nothing but whitespace and (for TOML, YAML and env) `#` comments.
fn is_blank(text: &str, format: Format) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || (format != Format::Json && line.starts_with('#'))
    })
}

/// A short name for a value's type, for messages.
pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Integer(_) | Value::Unsigned(_) => "an integer",
        Value::Float(_) => "a float",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(format: Format, text: &[u8]) -> Document {
        Document::new(Origin::File("cfg".into()), format, text.to_vec())
    }

    #[test]
    fn environment_variables_nesting_past_the_limit_are_refused() {
        let limits = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        let env = |text: &[u8]| {
            let origin = Origin::Env {
                prefix: "APP".into(),
                separator: "__".into(),
            };
            parse(
                &Document::new(origin, Format::Env, text.to_vec()),
                0,
                &limits,
            )
        };
        assert_eq!(
            env(b"APP__A__B=1\nAPP__A__C=\"x\"\nAPP__D=[1]\n")
                .unwrap()
                .depth(),
            2
        );
        // By its name, and by the JSON of its value: located at the variable.
        for (text, line, path) in [
            (&b"APP__X=1\nAPP__A__B__C=1\n"[..], 2, "a.b.c"),
            (b"APP__A__B=[1]\n", 1, "a.b"),
        ] {
            let problem = env(text).unwrap_err();
            assert_eq!(problem.kind, ProblemKind::Limit, "{problem}");
            assert!(
                problem.message.contains("deeper than 2 levels"),
                "{problem}"
            );
            assert_eq!((problem.line, problem.column), (Some(line), Some(1)));
            assert_eq!(problem.path.map(|p| p.to_string()).as_deref(), Some(path));
        }
    }

    #[cfg(all(feature = "yaml", feature = "json"))]
    #[test]
    fn empty_documents_are_rejected_unless_allowed() {
        for (format, text) in [
            (Format::Toml, &b""[..]),
            (Format::Toml, b"  \n# only a comment\n"),
            (Format::Yaml, b"# nothing\n\n"),
            (Format::Json, b" \n\t"),
        ] {
            let problem = parse(&doc(format, text), 0, &Limits::default()).unwrap_err();
            assert_eq!(problem.kind, ProblemKind::Empty, "{format}");
            assert!(problem.message.starts_with("empty document"), "{problem}");
            let mut allowed = doc(format, text);
            allowed.allow_empty = true;
            let node = parse(&allowed, 0, &Limits::default()).unwrap();
            assert_eq!(node.to_json(), serde_json::json!({}));
        }
    }

    #[cfg(feature = "toml")]
    #[test]
    fn a_byte_order_mark_is_allowed_once_at_the_start_only() {
        // toml-test invalid/encoding/bom-not-at-start-{01,02,03}.
        let bom = "\u{feff}";
        for text in [
            format!("# a mark between = and 1\na={bom}1\n"),
            format!("{bom}{bom}# two marks at the start\na=1\n"),
            format!("{bom}{bom}a=1\n# two marks at the start\n"),
        ] {
            let problem =
                parse(&doc(Format::Toml, text.as_bytes()), 0, &Limits::default()).expect_err(&text);
            assert_eq!(problem.kind, ProblemKind::Syntax, "{text:?}");
        }
        assert!(
            parse(
                &doc(Format::Toml, format!("{bom}a=1\n").as_bytes()),
                0,
                &Limits::default()
            )
            .is_ok()
        );
    }

    #[cfg(all(feature = "toml", feature = "yaml"))]
    #[test]
    fn invalid_utf8_and_binary_are_located_syntax_errors() {
        let problem = parse(
            &doc(Format::Toml, b"a = 1\nb = \"\xff\"\n"),
            0,
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(problem.kind, ProblemKind::Syntax);
        assert_eq!((problem.line, problem.column), (Some(2), Some(6)));
        assert!(problem.message.contains("not valid UTF-8"), "{problem}");

        let problem = parse(
            &doc(Format::Yaml, b"\x00\x01\x02\xfe\xff"),
            0,
            &Limits::default(),
        )
        .unwrap_err();
        assert!(problem.message.contains("binary content"), "{problem}");
    }

    #[cfg(not(all(feature = "toml", feature = "yaml", feature = "json")))]
    #[test]
    fn a_format_not_compiled_in_is_a_located_problem() {
        for (format, text, feature) in [
            (Format::Toml, &b"a = 1\n"[..], "toml"),
            (Format::Yaml, b"a: 1\n", "yaml"),
            (Format::Json, b"", "json"),
        ] {
            if format.is_compiled_in() {
                continue;
            }
            let problem = parse(&doc(format, text), 0, &Limits::default()).unwrap_err();
            assert_eq!(problem.kind, ProblemKind::Syntax, "{format}");
            assert_eq!(
                problem.message,
                format!(
                    "{format} support is not compiled in: enable the `{feature}` feature of hotconf"
                )
            );
            assert_eq!(problem.file.as_deref(), Some("cfg"));
            assert_eq!((problem.line, problem.column), (Some(1), Some(1)));
        }
    }

    #[cfg(feature = "json")]
    #[test]
    fn byte_order_mark_is_accepted() {
        let node = parse(
            &doc(Format::Json, b"\xEF\xBB\xBF{\"a\": 1}"),
            0,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(node.to_json(), serde_json::json!({"a": 1}));
    }

    #[cfg(all(feature = "yaml", feature = "json"))]
    #[test]
    fn ranges_are_in_the_document_bytes_past_a_byte_order_mark() {
        for (format, text) in [
            (Format::Toml, "a = 1\nt = { s = \"x\" }\n"),
            (Format::Yaml, "a: 1\nt: {s: \"x\"}\n"),
            (Format::Json, "{\"a\": 1,\n\"t\": {\"s\": \"x\"}}"),
            (Format::Env, "__A=1\n__T__S=\"x\"\n"),
        ] {
            for bom in [&b""[..], b"\xEF\xBB\xBF"] {
                let document = doc(format, &[bom, text.as_bytes()].concat());
                let node = parse(&document, 0, &Limits::default()).unwrap();
                for (path, written, line) in [("a", "1", 1), ("t.s", "\"x\"", 2)] {
                    let span = node.get(&path.parse().unwrap()).unwrap().span;
                    assert_eq!(
                        &document.bytes[span.range()],
                        written.as_bytes(),
                        "{format} {bom:?} {path}"
                    );
                    assert_eq!(span.lines(&document.bytes), line..=line, "{format} {path}");
                }
            }
        }
    }

    #[cfg(all(feature = "yaml", feature = "json"))]
    #[test]
    fn every_format_gives_the_same_tree_and_located_problems() {
        let expected = serde_json::json!({"server": {"port": 8080, "hosts": ["a", "b"]}});
        for (format, text, bad) in [
            (
                Format::Toml,
                "[server]\nport = 8080\nhosts = [\"a\", \"b\"]\n",
                "[server]\nport = \n",
            ),
            (
                Format::Yaml,
                "server:\n  port: 8080\n  hosts: [a, b]\n",
                "server:\n  port: [8080\n",
            ),
            (
                Format::Json,
                "{\"server\": {\n  \"port\": 8080, \"hosts\": [\"a\", \"b\"]}}",
                "{\"server\": {\n  \"port\": }}",
            ),
        ] {
            let node = parse(&doc(format, text.as_bytes()), 3, &Limits::default()).unwrap();
            assert_eq!(node.to_json(), expected, "{format}");
            let port = node.get(&"server.port".parse().unwrap()).unwrap();
            assert_eq!((port.span.doc, port.span.line), (3, 2), "{format}");
            let problem = parse(&doc(format, bad.as_bytes()), 0, &Limits::default()).unwrap_err();
            assert_eq!(problem.kind, ProblemKind::Syntax, "{format}: {problem}");
            assert_eq!(problem.file.as_deref(), Some("cfg"), "{format}");
            assert_eq!(problem.line, Some(2), "{format}: {problem}");
        }
    }

    #[cfg(all(feature = "yaml", feature = "json"))]
    #[test]
    fn top_level_must_be_a_table() {
        for (format, text) in [
            (Format::Json, &b"[1, 2]"[..]),
            (Format::Yaml, b"- a\n- b\n"),
            (Format::Yaml, b"just a string\n"),
            (Format::Json, b"42"),
        ] {
            let problem = parse(&doc(format, text), 0, &Limits::default()).unwrap_err();
            assert!(
                problem.message.contains("top level must be a table"),
                "{format}: {problem}"
            );
            assert_eq!(problem.file.as_deref(), Some("cfg"));
        }
    }
}
