//! Unit tests of the YAML parser, kept beside it so that the parser file stays short.

use serde_json::json;

use super::*;
use crate::tree::Value;

/// A bad document: its text, the problem's kind, line and column, a fragment of its
/// message, and its path.
type Case<'a> = (String, ProblemKind, (u32, u32), &'a str, Option<&'a str>);

fn ok(text: &str) -> Node {
    parse(text, 2, &Limits::default()).unwrap_or_else(|p| panic!("{text:?}: {p:?}"))
}

fn at(node: &Node, path: &str) -> (u32, u32) {
    let found = node
        .get(&path.parse().unwrap())
        .unwrap_or_else(|| panic!("no {path}"));
    assert_eq!(found.span.doc, 2, "{path}");
    (found.span.line, found.span.column)
}

#[test]
fn nested_mappings_and_sequences_keep_their_positions() {
    let text = "# service\nserver:\n  host: \"example.com\"\n  ports: [80, 443]\n  tls:\n    enabled: true\nlist:\n  - name: a\n  - 2.5\nempty: ~\n";
    let node = ok(text);
    assert_eq!(
        node.to_json(),
        json!({
            "server": {"host": "example.com", "ports": [80, 443], "tls": {"enabled": true}},
            "list": [{"name": "a"}, 2.5],
            "empty": null,
        })
    );
    for (path, position) in [
        ("server", (3, 3)),
        ("server.host", (3, 9)),
        ("server.ports", (4, 10)),
        ("server.ports[1]", (4, 15)),
        ("server.tls", (6, 5)),
        ("server.tls.enabled", (6, 14)),
        ("list", (8, 3)),
        ("list[0]", (8, 5)),
        ("list[0].name", (8, 11)),
        ("list[1]", (9, 5)),
        ("empty", (10, 8)),
    ] {
        assert_eq!(at(&node, path), position, "{path}");
    }
    assert_eq!((node.span.doc, node.span.line, node.span.column), (2, 2, 1));
}

#[test]
fn explicit_document_markers_make_one_document() {
    for text in ["---\na: 1\n...\n", "%YAML 1.2\n---\na: 1\n"] {
        assert_eq!(ok(text).to_json(), json!({"a": 1}), "{text:?}");
    }
}

#[test]
fn scalars_follow_the_core_schema() {
    for (text, expected) in [
        ("1", json!(1)),
        ("-3", json!(-3)),
        ("0x1F", json!(31)),
        ("0o17", json!(15)),
        ("1.5", json!(1.5)),
        ("1e3", json!(1000.0)),
        ("true", json!(true)),
        ("False", json!(false)),
        ("null", json!(null)),
        ("~", json!(null)),
        ("", json!(null)),
        ("yes", json!("yes")),
        ("off", json!("off")),
        ("'1'", json!("1")),
        ("\"true\"", json!("true")),
        ("!!str 5", json!("5")),
        ("0755", json!("0755")),
        ("1_000", json!("1_000")),
        ("2001-12-14", json!("2001-12-14")),
        ("9223372036854775807", json!(i64::MAX)),
        ("-9223372036854775808", json!(i64::MIN)),
        ("18446744073709551615", json!(u64::MAX)),
        ("18446744073709551616", json!(18_446_744_073_709_551_616.0)),
        ("|\n  two\n  lines\n", json!("two\nlines\n")),
    ] {
        let node = ok(&format!("v: {text}\n"));
        assert_eq!(node.to_json(), json!({ "v": expected }), "{text:?}");
    }
    let node = ok("big: 18446744073709551615\n");
    assert_eq!(
        node.get(&"big".parse().unwrap()).unwrap().value,
        Value::Unsigned(u64::MAX)
    );
}

#[test]
fn infinity_and_nan_are_floats() {
    let node = ok(
        "a: .inf\nb: +.Inf\nc: -.INF\nd: [.nan, .NaN]\ne: &x .inf\nf: *x\n\
                   g: !!float -.inf\nh: '.inf'\n",
    );
    let value = |path: &str| node.get(&path.parse().unwrap()).map(|n| n.value.clone());
    for (path, expected) in [
        ("a", f64::INFINITY),
        ("b", f64::INFINITY),
        ("c", f64::NEG_INFINITY),
        ("e", f64::INFINITY),
        ("f", f64::INFINITY),
        ("g", f64::NEG_INFINITY),
    ] {
        assert_eq!(value(path), Some(Value::Float(expected)), "{path}");
    }
    for path in ["d[0]", "d[1]"] {
        assert!(
            matches!(value(path), Some(Value::Float(f)) if f.is_nan()),
            "{path}"
        );
    }
    assert_eq!(value("h"), Some(Value::String(".inf".into())));
}

#[test]
fn small_anchors_aliases_and_merges_work() {
    let node = ok("base: &b {x: 1, list: [a]}\ncopy: *b\nmerged:\n  <<: *b\n  y: 2\n");
    assert_eq!(
        node.to_json(),
        json!({
            "base": {"x": 1, "list": ["a"]},
            "copy": {"x": 1, "list": ["a"]},
            "merged": {"y": 2, "x": 1, "list": ["a"]},
        })
    );
    // An alias's values point at the alias: that is where this part of the config says so.
    assert_eq!(at(&node, "copy"), (2, 7));
    assert_eq!(at(&node, "copy.x"), (2, 7));
    assert_eq!(at(&node, "base.x"), (1, 14));
}

#[test]
fn bad_documents_are_located() {
    let deep_block: String = (0..10_000)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    let deep_sequence: String = (0..10_000)
        .map(|i| format!("{}-\n", " ".repeat(i)))
        .collect();
    let mut deep_aliases = String::from("a0: &a0 [1]\n");
    for i in 1..200 {
        deep_aliases.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
    }
    let cases: Vec<Case<'_>> = vec![
        (
            "a: [1, 2\n".into(),
            ProblemKind::Syntax,
            (1, 4),
            "unclosed bracket",
            None,
        ),
        (
            "a: b: c\n".into(),
            ProblemKind::Syntax,
            (1, 5),
            "mapping values are not allowed",
            None,
        ),
        (
            "a: 1\nb:\n  c: 2\n  c: 3\n".into(),
            ProblemKind::Syntax,
            (4, 3),
            "duplicate key `c` (first set on line 3)",
            Some("b.c"),
        ),
        (
            "\"a.b\": 1\na.b: 2\n".into(),
            ProblemKind::Syntax,
            (2, 1),
            "duplicate key `\"a.b\"` (first set on line 1)",
            Some("\"a.b\""),
        ),
        (
            "a: 1\n---\n".into(),
            ProblemKind::Syntax,
            (2, 1),
            "a second YAML document",
            None,
        ),
        (
            "a: 1\n---\nb: 2\n".into(),
            ProblemKind::Syntax,
            (2, 1),
            "a second YAML document",
            None,
        ),
        (
            "1: a\n".into(),
            ProblemKind::Syntax,
            (1, 1),
            "found the integer 1; quote it",
            None,
        ),
        (
            "true: a\n".into(),
            ProblemKind::Syntax,
            (1, 1),
            "found the boolean true",
            None,
        ),
        (
            "~: a\n".into(),
            ProblemKind::Syntax,
            (1, 1),
            "found null",
            None,
        ),
        (
            "a:\n  2.5: x\n".into(),
            ProblemKind::Syntax,
            (2, 3),
            "found the float 2.5",
            Some("a"),
        ),
        (
            "[1]: a\n".into(),
            ProblemKind::Syntax,
            (1, 1),
            "found a sequence",
            None,
        ),
        (
            "? {a: 1}\n: b\n".into(),
            ProblemKind::Syntax,
            (1, 3),
            "found a mapping",
            None,
        ),
        (
            "a: !include other.yaml\n".into(),
            ProblemKind::Syntax,
            (1, 13),
            "unsupported YAML tag `!include`",
            Some("a"),
        ),
        (
            "a:\n  - !!python/object:os.system {}\n".into(),
            ProblemKind::Syntax,
            (2, 31),
            "unsupported YAML tag `!!python/object:os.system`",
            Some("a[0]"),
        ),
        (
            "a: !Ref [x]\n".into(),
            ProblemKind::Syntax,
            (1, 9),
            "unsupported YAML tag `!Ref`",
            Some("a"),
        ),
        (
            "a: 1e999\n".into(),
            ProblemKind::Syntax,
            (1, 4),
            "float `1e999` is out of range",
            Some("a"),
        ),
        (
            "a:\n  b: [.inf, -1e999]\n".into(),
            ProblemKind::Syntax,
            (2, 13),
            "float `-1e999` is out of range",
            Some("a.b[1]"),
        ),
        (
            "a: &x !!float 9e400\n".into(),
            ProblemKind::Syntax,
            (1, 15),
            "float `9e400` is out of range",
            Some("a"),
        ),
        (
            "a: *missing\n".into(),
            ProblemKind::Syntax,
            (1, 4),
            "unknown",
            Some("a"),
        ),
        (
            format!("a: {}", "[".repeat(10_000)),
            ProblemKind::Limit,
            (1, 132),
            "nesting deeper than 128 levels",
            None,
        ),
        (
            format!("a: {}", "{a: ".repeat(10_000)),
            ProblemKind::Limit,
            (1, 512),
            "nesting deeper than 128 levels",
            None,
        ),
        (
            deep_block,
            ProblemKind::Limit,
            (129, 129),
            "nesting deeper than 128 levels",
            None,
        ),
        (
            format!("a:\n{deep_sequence}"),
            ProblemKind::Limit,
            (129, 128),
            "nesting deeper than 128 levels",
            None,
        ),
        (
            deep_aliases,
            ProblemKind::Limit,
            (128, 14),
            "nesting deeper than 128 levels",
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
fn depth_up_to_the_limit_is_accepted() {
    let limits = Limits::default();
    let text: String = (0..limits.max_depth - 1)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .chain([format!("{}x: 1\n", " ".repeat(limits.max_depth - 1))])
        .collect();
    assert_eq!(ok(&text).depth(), limits.max_depth);
}

#[test]
fn values_are_counted_against_the_node_limit() {
    let limits = Limits {
        max_nodes: 10,
        ..Limits::default()
    };
    let items = (1..=20)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let problem = parse(&format!("a: [{items}]\n"), 0, &limits).unwrap_err();
    assert_eq!(problem.kind, ProblemKind::Limit, "{problem:?}");
    assert!(
        problem.message.starts_with("more than 10 values"),
        "{problem:?}"
    );
    // The root, the sequence and eight items fit: the ninth item is one too many, and is
    // where the problem is reported.
    assert_eq!(problem.path.map(|p| p.to_string()).as_deref(), Some("a[8]"));
    assert_eq!((problem.line, problem.column), (Some(1), Some(29)));
    assert!(parse("a: [1, 2, 3]\n", 0, &limits).is_ok());
}

#[test]
fn billion_laughs_fails_on_the_node_limit() {
    let mut text = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (name, prev) in ["b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        let refs = vec![format!("*{prev}"); 9].join(",");
        text.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let problem = parse(&text, 0, &Limits::default()).unwrap_err();
    assert_eq!(problem.kind, ProblemKind::Limit, "{problem:?}");
    assert!(
        problem.message.contains("(Limits::max_nodes)"),
        "{problem:?}"
    );
    assert!(problem.line.is_some_and(|line| line <= 9), "{problem:?}");

    // The bound follows the limit: a tighter one stops sooner, here at an alias of `c`.
    let limits = Limits {
        max_nodes: 5_000,
        ..Limits::default()
    };
    let problem = parse(&text, 0, &limits).unwrap_err();
    assert_eq!(problem.kind, ProblemKind::Limit, "{problem:?}");
    assert!(
        problem.message.starts_with("more than 5000 values"),
        "{problem:?}"
    );
    assert_eq!(
        (problem.line, problem.column),
        (Some(4), Some(20)),
        "{problem:?}"
    );
}

#[test]
fn ranges_cover_whole_values() {
    let text = "# head\nname: \"a \\\"b\\\" é\"  # c\nsingle: 'it''s'\nport: -8080\non: true\nnone: ~\nempty:\nplain: several\n  words here\nkey: |\n  line one\n  line two\n\nfolded: >-  # c\n\n  more\n  text\ntls: {cert: c, deep: {x: [ ]}, q: \"}\" }\nmulti: [\n  1,  # one\n  {k: [2]}\n ]\nserver:\n  host: h\n  tls:\n    on: true\nlist:\n- - a\n  - b\n- &x c\n- !!str d\n-\n  e\n- k: v\n  w: 1\n";
    let node = ok(text);
    // The path, the bytes its range covers, and the lines those take.
    for (path, written, lines) in [
        ("name", "\"a \\\"b\\\" é\"", 2..=2),
        ("single", "'it''s'", 3..=3),
        ("port", "-8080", 4..=4),
        ("on", "true", 5..=5),
        ("none", "~", 6..=6),
        // An empty value: an empty range at the `:`.
        ("empty", "", 7..=7),
        ("plain", "several\n  words here", 8..=9),
        // A block scalar: from its header to its last character.
        ("key", "|\n  line one\n  line two", 10..=12),
        ("folded", ">-  # c\n\n  more\n  text", 14..=17),
        ("tls", "{cert: c, deep: {x: [ ]}, q: \"}\" }", 18..=18),
        ("tls.cert", "c", 18..=18),
        ("tls.deep", "{x: [ ]}", 18..=18),
        ("tls.deep.x", "[ ]", 18..=18),
        ("multi", "[\n  1,  # one\n  {k: [2]}\n ]", 19..=22),
        ("multi[1]", "{k: [2]}", 21..=21),
        ("multi[1].k[0]", "2", 21..=21),
        // A block mapping: from its first key to its last value.
        ("server", "host: h\n  tls:\n    on: true", 24..=26),
        ("server.tls", "on: true", 26..=26),
        // A block sequence: from its first `-` to its last item's end.
        (
            "list",
            &text[text.find("- - a").unwrap()..text.len() - 1],
            28..=35,
        ),
        ("list[0]", "- a\n  - b", 28..=29),
        ("list[0][1]", "b", 29..=29),
        ("list[1]", "c", 30..=30),
        ("list[2]", "d", 31..=31),
        ("list[3]", "e", 33..=33),
        ("list[4]", "k: v\n  w: 1", 34..=35),
        // The root: from its first key to its last value.
        ("", &text[7..text.len() - 1], 2..=35),
    ] {
        let span = node.get(&path.parse().unwrap()).unwrap().span;
        assert_eq!(&text[span.range()], written, "{path}");
        assert_eq!(span.lines(text.as_bytes()), lines, "{path}");
    }
}

#[test]
fn aliases_and_merges_keep_their_own_ranges() {
    let text = "base: &b {x: 1,\n  y: [2]}\nother: *b\ns: &s str\nt: *s\nm:\n  <<: *b\n  z: 3\n";
    let node = ok(text);
    for (path, written) in [
        ("base", "{x: 1,\n  y: [2]}"),
        ("other", "*b"),
        // What an alias brings in is where the alias is.
        ("other.y", "*b"),
        ("t", "*s"),
        // A merge key's entries too.
        ("m", "<<: *b\n  z: 3"),
        ("m.x", "*b"),
    ] {
        let span = node.get(&path.parse().unwrap()).unwrap().span;
        assert_eq!(&text[span.range()], written, "{path}");
    }
}

#[test]
fn block_scalar_headers_are_found_on_any_line_ending() {
    for (text, written) in [
        ("k: |\r\n  a\r\n  b\r\n", "|\r\n  a\r\n  b"),
        ("k: &a !!str |+ # c\n\n  a\n\n", "|+ # c\n\n  a"),
        ("k:\n- >2\n   a\n", ">2\n   a"),
        // The header is after a comment mark in a key: the range starts with the content.
        ("\"k #\": |\n  a\n", "a"),
        // Not a block scalar: a `|` in a comment before a plain value on the next line.
        ("k: # a |\n  plain\n", "plain"),
    ] {
        let node = ok(text);
        let value = match &node.value {
            Value::Table(table) => table[0].clone(),
            _ => panic!("{text:?}"),
        };
        let value = match value.value {
            Value::Array(items) => items[0].clone(),
            _ => value,
        };
        assert_eq!(&text[value.span.range()], written, "{text:?}");
    }
}

#[test]
fn a_flow_collection_continues_indented_more_than_its_block() {
    // yaml-test-suite 9C9N: the continuation lines are not indented.
    let problem = parse("---\nflow: [a,\nb,\nc]\n", 2, &Limits::default()).unwrap_err();
    assert_eq!(problem.kind, ProblemKind::Syntax);
    assert_eq!((problem.line, problem.column), (Some(3), Some(1)));
    assert!(
        problem.message.contains("continues a flow collection"),
        "{problem}"
    );
    // Under a nested mapping, the bar is that mapping's indentation.
    let problem = parse("outer:\n  flow: {a: 1,\n  b: 2}\n", 2, &Limits::default()).unwrap_err();
    assert_eq!((problem.line, problem.column), (Some(3), Some(3)));
    // yaml-test-suite VJP3: the closing bracket is a continuation line too.
    assert!(parse("k: {\n k: v\n}\n", 2, &Limits::default()).is_err());
    // Indented more, on any number of lines, with blank lines between: fine.
    for text in [
        "flow: [a,\n b,\n\n  c]\n",
        "outer:\n  flow: {a: 1,\n     b: 2}\n",
        "- [a,\n  b]\n",
        "[a,\nb]\n",
        "flow: [a, b]\nnext: 1\n",
    ] {
        ok(text);
    }
}
