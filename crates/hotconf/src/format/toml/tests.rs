use serde_json::json;

use super::*;
use crate::tree::Value;

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
    let keys: Vec<&str> = match &node.value {
        Value::Table(table) => table.keys().map(|k| k.as_str()).collect(),
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
        // Through the last item of an array of tables and a table below it.
        (
            "[[s]]\nn = 1\n[[s]]\nn = 2\n[s.tls]\nport = 9223372036854775808\n".into(),
            ProblemKind::Syntax,
            (6, 8),
            "does not fit in 64 bits",
            Some("s[1].tls.port"),
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
        // Too deep on the way to the header's table, at the part that is.
        ("[x.y.z.w]\nq = 1\n", (1, 6), "x.y.z"),
        // An array of tables at the limit: its item would be one level deeper.
        ("[[a.b]]\nq = 1\n", (1, 1), "a.b[0]"),
        // An array of tables past the limit itself.
        ("[[a.b.c]]\nq = 1\n", (1, 1), "a.b.c"),
        // A table under an item of an array of tables sits below the item.
        ("[[a]]\n[a.b]\nq = 1\n", (2, 1), "a[0].b"),
        ("t = { u = { v = {} } }\n", (1, 17), "t.u.v"),
        // A dotted key inside an inline table: each part is a level.
        ("t = { u.v.w = 1 }\n", (1, 9), "t.u.v"),
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
    assert_eq!(parse("[[a]]\nq = 1\n", 0, &limits).unwrap().depth(), 3);
    assert_eq!(parse("t = { u.v = 1 }\n", 0, &limits).unwrap().depth(), 3);
}

#[test]
fn the_parser_is_given_slices_that_end_at_line_ends_outside_brackets() {
    let line = "[t]\nx = [1,\n  2] # ]\ny = { a = [3] }\ns = \"\"\"\n[\n\"\"\"\n";
    let text = line.repeat(200);
    let mut lexer = Source::new(&text).lex();
    let mut tokens = Vec::new();
    let mut brackets = 0;
    let mut slices = Vec::new();
    loop {
        tokens.clear();
        let more = next_slice(&mut lexer, &mut tokens, &mut brackets);
        let ends = tokens.last().map(Token::kind);
        slices.push((tokens.len(), ends, brackets));
        if !more {
            break;
        }
    }
    let (last, middle) = slices.split_last().unwrap();
    assert!(middle.len() > 2, "{slices:?}");
    // At least a slice's worth, then to the end of the repetition at most.
    let per_line = Source::new(line).lex().count() - 1;
    for &(len, ends, brackets) in middle {
        assert!((SLICE..SLICE + per_line).contains(&len), "{slices:?}");
        assert_eq!(
            (ends, brackets),
            (Some(TokenKind::Newline), 0),
            "{slices:?}"
        );
    }
    assert_eq!((last.1, last.2), (Some(TokenKind::Eof), 0), "{slices:?}");
    let total: usize = slices.iter().map(|slice| slice.0).sum();
    assert_eq!(total, Source::new(&text).lex().count());
}
