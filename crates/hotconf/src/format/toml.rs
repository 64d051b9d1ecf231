//! TOML 1.1 (which accepts 1.0 documents) through the `toml` crate's spanned document tree.
//!
//! The crate rejects duplicate keys and bounds its own recursion (80 levels of arrays, inline
//! tables and dotted keys, unless its `unbounded` feature is on); the conversion below checks
//! `Limits::max_depth` before each level, so it is bounded either way.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use crate::document::Limits;
use crate::error::{Problem, ProblemKind};
use crate::path::Segment;
use crate::tree::{LineIndex, Node, Span, Table, Value};

pub(super) fn parse(text: &str, doc: u32, limits: &Limits) -> Result<Node, Problem> {
    let mut index = LineIndex::new(text);
    let root = DeTable::parse(text).map_err(|err| from_toml_error(&err, text, &mut index))?;
    let mut convert = Convert {
        text,
        index,
        doc,
        limits,
        trail: Vec::new(),
    };
    let span = root.span();
    convert
        .table(root.into_inner(), span, 1)
        .map_err(|mut problem| {
            if !convert.trail.is_empty() {
                // The trail is innermost first.
                problem.path = Some(convert.trail.drain(..).rev().collect());
            }
            problem
        })
}

/// Turns the crate's tree into ours: byte spans into lines and columns, raw numbers into
/// checked ones.
///
/// The crate's spans are byte ranges: a scalar's whole token (quotes and `"""` included), an
/// inline table's or array's brackets and all between, a `[table]`'s or `[[array]]` item's
/// header alone, a dotted key's table the key alone, and the root `0..0`. A table's or
/// array's range here is the smallest one that holds its own span, its keys and its values'
/// ranges: a `[table]` runs from its header to its last value, the root from its first key.
/// A table written in parts (`[a.b]` before `[a]`) gets the hull of the parts, which takes in
/// whatever was written between them.
struct Convert<'a> {
    text: &'a str,
    /// Tables and arrays are located before their contents, so that the index moves forward.
    index: LineIndex<'a>,
    doc: u32,
    limits: &'a Limits,
    /// Path segments from a failing value up to the root, collected while the error unwinds.
    trail: Vec<Segment>,
}

impl Convert<'_> {
    /// The table the crate located at `own`, which sits `depth` levels deep (the root is 1).
    fn table(
        &mut self,
        table: DeTable<'_>,
        own: Range<usize>,
        depth: usize,
    ) -> Result<Node, Problem> {
        self.check_depth(own.start, depth)?;
        let (line, column) = self.index.locate(own.start);
        let mut covered = own.clone();
        let mut entries: Vec<(Spanned<DeString<'_>>, Spanned<DeValue<'_>>)> =
            table.into_iter().collect();
        // The crate keeps keys sorted by name; the config keeps the order they were written.
        entries.sort_by_key(|(key, _)| key.span().start);
        let mut out = Table::with_capacity_and_hasher(entries.len(), Default::default());
        for (key, value) in entries {
            covered = hull(covered, key.span());
            let key = key.into_inner().into_owned();
            match self.value(value, depth + 1) {
                Ok(node) => {
                    covered = hull(covered, node.span.range());
                    out.insert(key, node);
                }
                Err(problem) => {
                    self.trail.push(Segment::Key(key));
                    return Err(problem);
                }
            }
        }
        Ok(self.node(Value::Table(Box::new(out)), (line, column), covered))
    }

    /// A table or an array located at its start, `(line, column)`, that spans `covered`:
    /// its own text and that of everything in it.
    fn node(&self, value: Value, (line, column): (u32, u32), covered: Range<usize>) -> Node {
        let span = Span {
            doc: self.doc,
            line,
            column,
            start: covered.start,
            end: covered.end,
        };
        Node::new(value, span)
    }

    /// A value; were it a table or an array, it would sit `depth` levels deep.
    fn value(&mut self, value: Spanned<DeValue<'_>>, depth: usize) -> Result<Node, Problem> {
        let span = value.span();
        let mut covered = span.clone();
        let value = match value.into_inner() {
            DeValue::Table(table) => return self.table(table, span, depth),
            DeValue::Array(array) => {
                self.check_depth(span.start, depth)?;
                let (line, column) = self.index.locate(span.start);
                let mut items = Vec::with_capacity(array.len());
                for item in array {
                    match self.value(item, depth + 1) {
                        Ok(node) => {
                            // The items of an array of tables sit below its first header.
                            covered = hull(covered, node.span.range());
                            items.push(node);
                        }
                        Err(problem) => {
                            self.trail.push(Segment::Index(items.len()));
                            return Err(problem);
                        }
                    }
                }
                return Ok(self.node(Value::Array(items), (line, column), covered));
            }
            DeValue::String(s) => Value::String(s.into_owned()),
            DeValue::Boolean(b) => Value::Bool(b),
            // The canonical text (`T` between date and time), as the crate's serde gives it.
            DeValue::Datetime(datetime) => Value::String(datetime.to_string()),
            DeValue::Integer(integer) => {
                match i64::from_str_radix(integer.as_str(), integer.radix()) {
                    Ok(i) => Value::Integer(i),
                    Err(_) => {
                        return Err(self.error(
                            format!(
                                "integer `{}` does not fit in 64 bits (TOML integers are signed \
                                 64-bit)",
                                self.source(&span)
                            ),
                            span.start,
                        ));
                    }
                }
            }
            DeValue::Float(float) => match float.as_str().parse::<f64>() {
                // TOML writes infinity and NaN as `inf` and `nan`, signed or not; a number
                // too large for f64 (`1e500`) would also read as infinity, but it is a
                // mistake rather than a wish.
                Ok(f) if f.is_finite() || is_non_finite_word(float.as_str()) => Value::Float(f),
                _ => {
                    return Err(self.error(
                        format!(
                            "float `{}` is out of range for a 64-bit float",
                            self.source(&span)
                        ),
                        span.start,
                    ));
                }
            },
        };
        Ok(Node::new(
            value,
            self.index.span(self.doc, span.start, covered),
        ))
    }

    fn check_depth(&mut self, start: usize, depth: usize) -> Result<(), Problem> {
        if depth > self.limits.max_depth {
            let (line, column) = self.index.locate(start);
            return Err(super::depth_problem(self.limits).at_location(String::new(), line, column));
        }
        Ok(())
    }

    fn source(&self, span: &std::ops::Range<usize>) -> &str {
        self.text.get(span.clone()).unwrap_or_default()
    }

    fn error(&mut self, message: String, offset: usize) -> Problem {
        let (line, column) = self.index.locate(offset);
        Problem::error(ProblemKind::Syntax, message).at_location(String::new(), line, column)
    }
}

/// The smallest range that holds both; an empty range (the root's `0..0`) holds nothing.
fn hull(a: Range<usize>, b: Range<usize>) -> Range<usize> {
    if a.is_empty() {
        b
    } else if b.is_empty() {
        a
    } else {
        a.start.min(b.start)..a.end.max(b.end)
    }
}

/// Whether a float's text is TOML's `inf` or `nan`, with or without a sign.
fn is_non_finite_word(text: &str) -> bool {
    matches!(text.trim_start_matches(['+', '-']), "inf" | "nan")
}

/// The crate's error as a problem: its short message (the long form repeats the location and
/// draws a snippet), a name for the duplicate key, and the depth guard as a limit.
fn from_toml_error(err: &toml::de::Error, text: &str, index: &mut LineIndex<'_>) -> Problem {
    let span = err.span();
    let written = span
        .clone()
        .and_then(|span| text.get(span))
        .unwrap_or_default();
    let message = err.message();
    let (kind, message) = match message {
        "duplicate key" if !written.is_empty() => {
            (ProblemKind::Syntax, format!("duplicate key `{written}`"))
        }
        // The crate's guard on nesting (80 levels), in keys and in values.
        "recursion limit" => (ProblemKind::Limit, TOO_DEEP.to_owned()),
        m if m.starts_with("cannot recurse further") => (ProblemKind::Limit, TOO_DEEP.to_owned()),
        _ => (ProblemKind::Syntax, message.to_owned()),
    };
    let (line, column) = span.map_or((1, 1), |span| index.locate(span.start));
    Problem::error(kind, message).at_location(String::new(), line, column)
}

const TOO_DEEP: &str = "nesting deeper than the TOML parser allows (80 levels)";

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A bad document: its text, the problem's kind, line and column, a fragment of its
    /// message, and its path.
    type Case<'a> = (String, ProblemKind, (u32, u32), &'a str, Option<&'a str>);

    fn ok(text: &str) -> Node {
        parse(text, 1, &Limits::default()).unwrap_or_else(|p| panic!("{text:?}: {p:?}"))
    }

    #[test]
    fn tables_arrays_and_values_keep_their_order_and_positions() {
        let text = "# service\ntitle = \"demo\"\n\n[server]\nhost = \"example.com\"\nports = [80, 443]\ntls = { enabled = true, cert = \"c.pem\" }\n\n[[routes]]\npath = \"/a\"\n\n[[routes]]\npath = \"/b\"\nwhen = 1979-05-27T07:32:00Z\n\n[a.b]\nc = 1\n";
        let node = ok(text);
        assert_eq!(
            node.to_json(),
            json!({
                "title": "demo",
                "server": {
                    "host": "example.com",
                    "ports": [80, 443],
                    "tls": {"enabled": true, "cert": "c.pem"},
                },
                "routes": [{"path": "/a"}, {"path": "/b", "when": "1979-05-27T07:32:00Z"}],
                "a": {"b": {"c": 1}},
            })
        );
        let keys: Vec<&String> = match &node.value {
            Value::Table(table) => table.keys().collect(),
            _ => panic!("not a table"),
        };
        assert_eq!(
            keys,
            ["title", "server", "routes", "a"],
            "written order, not sorted"
        );
        assert_eq!((node.span.doc, node.span.line, node.span.column), (1, 1, 1));
        for (path, position) in [
            ("title", (2, 9)),
            ("server", (4, 1)),
            ("server.host", (5, 8)),
            ("server.ports", (6, 9)),
            ("server.ports[1]", (6, 14)),
            ("server.tls", (7, 7)),
            ("server.tls.enabled", (7, 19)),
            ("routes", (9, 1)),
            ("routes[0]", (9, 1)),
            ("routes[1]", (12, 1)),
            ("routes[1].path", (13, 8)),
            ("routes[1].when", (14, 8)),
            ("a", (16, 2)),
            ("a.b", (16, 1)),
            ("a.b.c", (17, 5)),
        ] {
            let found = node.get(&path.parse().unwrap()).unwrap();
            assert_eq!(
                (found.span.doc, found.span.line, found.span.column),
                (1, position.0, position.1),
                "{path}"
            );
        }
    }

    #[test]
    fn ranges_cover_whole_values() {
        let text = "# head\nname = \"a \\\"b\\\" é\" # c\nport = -8_080\non = true\nwhen = 1979-05-27T07:32:00Z\nkey = \"\"\"\nline one\nline two\"\"\"\nraw = '''\nx\n'''\ntls = { cert = \"c\", deep = { x = [] } }\nlist = [\n  1,\n  { k = [2] },\n]\nd.e = 2\n\n[server]\nhost = 'h'\n\n[a.b]\nc = 1 # c\n\n[[routes]]\npath = \"/a\"\n[[routes]]\npath = \"/b\"\n";
        let node = ok(text);
        // The path, the bytes its range covers, and the lines those take.
        for (path, written, lines) in [
            ("name", "\"a \\\"b\\\" é\"", 2..=2),
            ("port", "-8_080", 3..=3),
            ("on", "true", 4..=4),
            ("when", "1979-05-27T07:32:00Z", 5..=5),
            ("key", "\"\"\"\nline one\nline two\"\"\"", 6..=8),
            ("raw", "'''\nx\n'''", 9..=11),
            ("tls", "{ cert = \"c\", deep = { x = [] } }", 12..=12),
            ("tls.cert", "\"c\"", 12..=12),
            ("tls.deep", "{ x = [] }", 12..=12),
            ("tls.deep.x", "[]", 12..=12),
            ("list", "[\n  1,\n  { k = [2] },\n]", 13..=16),
            ("list[1]", "{ k = [2] }", 15..=15),
            ("list[1].k[0]", "2", 15..=15),
            // A dotted key's table: from the key to the value.
            ("d", "d.e = 2", 17..=17),
            // A [table]: from its header to its last value.
            ("server", "[server]\nhost = 'h'", 19..=20),
            ("a", "[a.b]\nc = 1", 22..=23),
            ("a.b", "[a.b]\nc = 1", 22..=23),
            (
                "routes",
                "[[routes]]\npath = \"/a\"\n[[routes]]\npath = \"/b\"",
                25..=28,
            ),
            ("routes[1]", "[[routes]]\npath = \"/b\"", 27..=28),
            // The root: from its first key to its last value.
            ("", &text[7..text.len() - 1], 2..=28),
        ] {
            let span = node.get(&path.parse().unwrap()).unwrap().span;
            assert_eq!(&text[span.range()], written, "{path}");
            assert_eq!(span.lines(text.as_bytes()), lines, "{path}");
        }
    }

    #[test]
    fn a_table_written_in_parts_covers_them_all() {
        let text = "[a.b]\nc = 1\n[x]\ny = 2\n[a]\nz = 3\n";
        let node = ok(text);
        let a = node.get(&"a".parse().unwrap()).unwrap().span;
        // The hull takes in `[x]`, written between the parts.
        assert_eq!(&text[a.range()], "[a.b]\nc = 1\n[x]\ny = 2\n[a]\nz = 3");
        assert_eq!((a.line, a.column), (5, 1), "located at its own header");
    }

    #[test]
    fn numbers_and_dates_are_converted() {
        for (text, expected) in [
            ("0xff", json!(255)),
            ("0xDEAD_BEEF", json!(0xDEAD_BEEF_u32)),
            ("0o17", json!(15)),
            ("0b101", json!(5)),
            ("1_000", json!(1000)),
            ("-17", json!(-17)),
            ("+5", json!(5)),
            ("9223372036854775807", json!(i64::MAX)),
            ("-9223372036854775808", json!(i64::MIN)),
            ("1.5", json!(1.5)),
            ("1e3", json!(1000.0)),
            ("6.626e-34", json!(6.626e-34)),
            ("1_000.5", json!(1000.5)),
            ("1979-05-27T07:32:00Z", json!("1979-05-27T07:32:00Z")),
            (
                "1979-05-27 07:32:00-07:00",
                json!("1979-05-27T07:32:00-07:00"),
            ),
            ("1979-05-27", json!("1979-05-27")),
            ("07:32:00.5", json!("07:32:00.5")),
            // TOML 1.1: seconds may be left out, strings know \e and \x.
            ("07:32", json!("07:32")),
            ("\"\\x41\\e\"", json!("A\u{1b}")),
            ("{\n  a = 1,\n}", json!({"a": 1})),
        ] {
            let node = ok(&format!("v = {text}\n"));
            assert_eq!(node.to_json(), json!({ "v": expected }), "{text:?}");
        }
    }

    #[test]
    fn infinity_and_nan_are_floats() {
        let node = ok("a = inf\nb = +inf\nc = -inf\nd = nan\ne = [+nan, -nan]\n");
        let float = |path: &str| match node.get(&path.parse().unwrap()).map(|n| &n.value) {
            Some(Value::Float(f)) => *f,
            other => panic!("{path}: {other:?}"),
        };
        assert_eq!(float("a"), f64::INFINITY);
        assert_eq!(float("b"), f64::INFINITY);
        assert_eq!(float("c"), f64::NEG_INFINITY);
        for path in ["d", "e[0]", "e[1]"] {
            assert!(float(path).is_nan(), "{path}");
        }
        // JSON has neither: the JSON view shows null.
        assert_eq!(node.to_json()["a"], json!(null));
    }

    #[test]
    fn bad_documents_are_located() {
        let dotted = vec!["a"; 10_000].join(".");
        let cases: Vec<Case<'_>> = vec![
            (
                "a = 1\nb = = 2\n".into(),
                ProblemKind::Syntax,
                (2, 5),
                "extra `=`",
                None,
            ),
            (
                "a = \"abc\n".into(),
                ProblemKind::Syntax,
                (1, 9),
                "invalid basic string",
                None,
            ),
            (
                "a = 1\nb = 2\na = 3\n".into(),
                ProblemKind::Syntax,
                (3, 1),
                "duplicate key `a`",
                None,
            ),
            (
                "[t]\nx = 1\n[t]\n".into(),
                ProblemKind::Syntax,
                (3, 2),
                "duplicate key `t`",
                None,
            ),
            (
                "\"k\" = 1\nk = 2\n".into(),
                ProblemKind::Syntax,
                (2, 1),
                "duplicate key `k`",
                None,
            ),
            (
                "big = 9223372036854775808\n".into(),
                ProblemKind::Syntax,
                (1, 7),
                "integer `9223372036854775808` does not fit in 64 bits",
                Some("big"),
            ),
            (
                "[t]\nh = 0xffff_ffff_ffff_ffff\n".into(),
                ProblemKind::Syntax,
                (2, 5),
                "`0xffff_ffff_ffff_ffff`",
                Some("t.h"),
            ),
            (
                "x = { y = [1e500] }\n".into(),
                ProblemKind::Syntax,
                (1, 12),
                "float `1e500` is out of range",
                Some("x.y[0]"),
            ),
            (
                "x = -1e500\n".into(),
                ProblemKind::Syntax,
                (1, 5),
                "float `-1e500` is out of range",
                Some("x"),
            ),
            (
                format!("a = {}", "[".repeat(10_000)),
                ProblemKind::Limit,
                (1, 85),
                "nesting deeper than the TOML parser allows",
                None,
            ),
            (
                format!("a = {}", "{b=".repeat(10_000)),
                ProblemKind::Limit,
                (1, 245),
                "nesting deeper than the TOML parser allows",
                None,
            ),
            (
                format!("{dotted} = 1\n"),
                ProblemKind::Limit,
                (1, 1),
                "nesting deeper",
                None,
            ),
            (
                format!("[{dotted}]\n"),
                ProblemKind::Limit,
                (1, 1),
                "nesting deeper",
                None,
            ),
        ];
        for (text, kind, (line, column), fragment, path) in cases {
            let short = &text[..text.len().min(40)];
            let problem = parse(&text, 0, &Limits::default()).unwrap_err();
            assert_eq!(problem.kind, kind, "{short:?}: {problem:?}");
            assert_eq!(
                (problem.line, problem.column),
                (Some(line), Some(column)),
                "{short:?}: {problem:?}"
            );
            assert!(problem.message.contains(fragment), "{short:?}: {problem:?}");
            assert_eq!(
                problem.path.map(|p| p.to_string()).as_deref(),
                path,
                "{short:?}"
            );
        }
    }

    #[test]
    fn max_depth_is_checked_before_each_level() {
        let limits = Limits {
            max_depth: 3,
            ..Limits::default()
        };
        for (text, (line, column), path) in [
            ("a = [[[1]]]\n", (1, 7), "a[0][0]"),
            ("a = [[1]]\n[x.y.z]\nq = 1\n", (2, 1), "x.y.z"),
            ("t = { u = { v = {} } }\n", (1, 17), "t.u.v"),
        ] {
            let problem = parse(text, 0, &limits).unwrap_err();
            assert_eq!(problem.kind, ProblemKind::Limit, "{text:?}");
            assert_eq!(
                (problem.line, problem.column),
                (Some(line), Some(column)),
                "{text:?}"
            );
            assert_eq!(
                problem.path.as_ref().map(ToString::to_string).as_deref(),
                Some(path)
            );
            assert!(
                problem.message.contains("deeper than 3 levels"),
                "{problem:?}"
            );
        }
        assert_eq!(parse("a = [[1]]\n[x.y]\n", 0, &limits).unwrap().depth(), 3);
    }
}
