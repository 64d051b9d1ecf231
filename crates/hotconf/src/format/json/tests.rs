//! Unit tests of the JSON parser, kept beside it so that the parser file stays short.

use serde_json::json;

use super::*;

/// A bad document: its text, the problem's kind, line and column, a fragment of its
/// message, and its path.
type Case<'a> = (&'a str, ProblemKind, (u32, u32), &'a str, Option<String>);

fn ok(text: &str) -> Node {
    parse(text, 4, &Limits::default()).unwrap_or_else(|p| panic!("{text:?}: {p:?}"))
}

fn positions(node: &Node, expected: &[(&str, (u32, u32))]) {
    for (path, (line, column)) in expected {
        let found = node
            .get(&path.parse().unwrap())
            .unwrap_or_else(|| panic!("no {path}"));
        assert_eq!(
            (found.span.doc, found.span.line, found.span.column),
            (4, *line, *column),
            "{path}"
        );
    }
}

#[test]
fn nested_objects_and_arrays_keep_their_positions() {
    let text = "{\n  \"server\": {\n    \"host\": \"example.com\",\n    \"ports\": [80, 443]\n  },\n  \"list\": [{\"name\": \"a\"}, 2.5, true, null],\n  \"empty\": {}\n}\n";
    let node = ok(text);
    assert_eq!(
        node.to_json(),
        json!({
            "server": {"host": "example.com", "ports": [80, 443]},
            "list": [{"name": "a"}, 2.5, true, null],
            "empty": {},
        })
    );
    assert_eq!((node.span.doc, node.span.line, node.span.column), (4, 1, 1));
    positions(
        &node,
        &[
            ("server", (2, 13)),
            ("server.host", (3, 13)),
            ("server.ports", (4, 14)),
            ("server.ports[1]", (4, 19)),
            ("list", (6, 11)),
            ("list[0]", (6, 12)),
            ("list[0].name", (6, 21)),
            ("list[1]", (6, 27)),
            ("list[3]", (6, 38)),
            ("empty", (7, 12)),
        ],
    );
}

#[test]
fn columns_count_characters_on_long_lines() {
    let node = ok("{\"é\": \"ü\", \"x\": [1, \"日本\", 2]}");
    positions(
        &node,
        &[("x", (1, 17)), ("x[1]", (1, 21)), ("x[2]", (1, 27))],
    );
    let node = ok("{\r\n  \"a\": 1\r\n}\r\n");
    positions(&node, &[("a", (2, 8))]);
}

#[test]
fn ranges_cover_whole_values() {
    let text = "{\n  \"name\": \"a \\\"b\\\" é\",\n  \"port\": -8.5e1, \"on\": true, \"off\": null,\n  \"tls\": {\"cert\": \"c\", \"deep\": {\"x\": []}},\n  \"list\": [\n    1,\n    {\"k\": [2]}\n  ] }\n";
    let node = ok(text);
    // The path, the bytes its range covers, and the lines those take.
    for (path, written, lines) in [
        ("name", "\"a \\\"b\\\" é\"", 2..=2),
        ("port", "-8.5e1", 3..=3),
        ("on", "true", 3..=3),
        ("off", "null", 3..=3),
        ("tls", "{\"cert\": \"c\", \"deep\": {\"x\": []}}", 4..=4),
        ("tls.deep", "{\"x\": []}", 4..=4),
        ("tls.deep.x", "[]", 4..=4),
        ("list", "[\n    1,\n    {\"k\": [2]}\n  ]", 5..=8),
        ("list[1]", "{\"k\": [2]}", 7..=7),
        ("list[1].k[0]", "2", 7..=7),
        ("", text.trim_end(), 1..=8),
    ] {
        let span = node.get(&path.parse().unwrap()).unwrap().span;
        assert_eq!(&text[span.range()], written, "{path}");
        assert_eq!(span.lines(text.as_bytes()), lines, "{path}");
    }
}

#[test]
fn strings_decode_every_escape() {
    for (written, expected) in [
        (r#""plain""#, "plain"),
        (r#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{8}\u{c}\n\r\t"),
        (r#""\u0041\u00e9\u20AC""#, "Aé€"),
        (r#""\uD83D\uDE00 ok""#, "😀 ok"),
        (r#""\u0000""#, "\0"),
        ("\"日本 ✓\"", "日本 ✓"),
        (r#""a\nb" "#, "a\nb"),
    ] {
        let node = ok(&format!("{{\"s\": {written}}}"));
        assert_eq!(node.to_json(), json!({ "s": expected }), "{written}");
    }
}

#[test]
fn numbers_keep_integers_exact() {
    for (written, expected) in [
        ("0", Value::Integer(0)),
        ("-0", Value::Integer(0)),
        ("42", Value::Integer(42)),
        ("-42", Value::Integer(-42)),
        ("9223372036854775807", Value::Integer(i64::MAX)),
        ("-9223372036854775808", Value::Integer(i64::MIN)),
        ("9223372036854775808", Value::Unsigned(1 << 63)),
        ("18446744073709551615", Value::Unsigned(u64::MAX)),
        (
            "18446744073709551616",
            Value::Float(18_446_744_073_709_551_616.0),
        ),
        (
            "-9223372036854775809",
            Value::Float(-9_223_372_036_854_775_809.0),
        ),
        ("1.5", Value::Float(1.5)),
        ("-1.5e3", Value::Float(-1500.0)),
        ("1E2", Value::Float(100.0)),
        ("1e+2", Value::Float(100.0)),
        ("0.1", Value::Float(0.1)),
        ("1e-400", Value::Float(0.0)),
    ] {
        let node = ok(&format!("{{\"n\": {written}}}"));
        assert_eq!(
            node.get(&"n".parse().unwrap()).unwrap().value,
            expected,
            "{written}"
        );
    }
}

#[test]
fn bad_documents_say_what_was_expected_and_where() {
    let deep_arrays = "[".repeat(10_000);
    let deep_objects = "{\"a\":".repeat(10_000);
    let cases: Vec<Case<'_>> = vec![
        (
            "",
            ProblemKind::Syntax,
            (1, 1),
            "expected a value, found end of input",
            None,
        ),
        (
            "{\"a\": 1,}",
            ProblemKind::Syntax,
            (1, 9),
            "expected a string key after ',', found '}' (JSON allows no trailing comma)",
            None,
        ),
        (
            "{\"a\": [1, 2,]}",
            ProblemKind::Syntax,
            (1, 13),
            "expected a value after ',', found ']' (JSON allows no trailing comma)",
            Some("a".into()),
        ),
        (
            "{\"a\": 1} x",
            ProblemKind::Syntax,
            (1, 10),
            "expected end of input after the top-level value, found 'x'",
            None,
        ),
        (
            "{\"a\": 1}\n{\"b\": 2}",
            ProblemKind::Syntax,
            (2, 1),
            "found '{'",
            None,
        ),
        (
            "{\"a\": 1 \"b\": 2}",
            ProblemKind::Syntax,
            (1, 9),
            "expected ',' or '}' after an object entry, found '\"'",
            None,
        ),
        (
            "{\"a\" 1}",
            ProblemKind::Syntax,
            (1, 6),
            "expected ':' after an object key, found '1'",
            None,
        ),
        (
            "{a: 1}",
            ProblemKind::Syntax,
            (1, 2),
            "expected a string key or '}', found 'a'",
            None,
        ),
        (
            "[1, 2",
            ProblemKind::Syntax,
            (1, 6),
            "expected ',' or ']' after an array item, found end of input",
            None,
        ),
        (
            "{\"a\": tru}",
            ProblemKind::Syntax,
            (1, 7),
            "expected a value, found 'tru'",
            Some("a".into()),
        ),
        (
            "{\"a\": True}",
            ProblemKind::Syntax,
            (1, 7),
            "found 'True'",
            Some("a".into()),
        ),
        (
            "{\"a\": NaN}",
            ProblemKind::Syntax,
            (1, 7),
            "found 'NaN'",
            Some("a".into()),
        ),
        (
            "{\"a\": -Infinity}",
            ProblemKind::Syntax,
            (1, 8),
            "expected a digit after '-', found 'Infinity'",
            Some("a".into()),
        ),
        (
            "{\"a\": +1}",
            ProblemKind::Syntax,
            (1, 7),
            "expected a value, found '+'",
            Some("a".into()),
        ),
        (
            "{\"a\": 01}",
            ProblemKind::Syntax,
            (1, 8),
            "leading zeros",
            Some("a".into()),
        ),
        (
            "{\"a\": 1.}",
            ProblemKind::Syntax,
            (1, 9),
            "expected a digit after '.', found '}'",
            Some("a".into()),
        ),
        (
            "{\"a\": 1e}",
            ProblemKind::Syntax,
            (1, 9),
            "expected a digit in the exponent",
            Some("a".into()),
        ),
        (
            "{\"a\": .5}",
            ProblemKind::Syntax,
            (1, 7),
            "expected a value, found '.'",
            Some("a".into()),
        ),
        (
            "{\"a\": [1e400]}",
            ProblemKind::Syntax,
            (1, 8),
            "number 1e400 is out of range",
            Some("a[0]".into()),
        ),
        (
            "{\"a\": \"x\ny\"}",
            ProblemKind::Syntax,
            (1, 9),
            "a line break inside a string",
            Some("a".into()),
        ),
        (
            "{\"a\": \"x\ty\"}",
            ProblemKind::Syntax,
            (1, 9),
            "control character U+0009",
            Some("a".into()),
        ),
        (
            r#"{"a": "\x"}"#,
            ProblemKind::Syntax,
            (1, 9),
            "found 'x'",
            Some("a".into()),
        ),
        (
            r#"{"a": "\uD800"}"#,
            ProblemKind::Syntax,
            (1, 8),
            "lone surrogate \\uD800",
            Some("a".into()),
        ),
        (
            r#"{"a": "\uD800\u0041"}"#,
            ProblemKind::Syntax,
            (1, 8),
            "followed by a low one",
            Some("a".into()),
        ),
        (
            r#"{"a": "ok \uDC00"}"#,
            ProblemKind::Syntax,
            (1, 11),
            "a low surrogate must follow",
            Some("a".into()),
        ),
        (
            r#"{"a": "\u12G4"}"#,
            ProblemKind::Syntax,
            (1, 12),
            "expected 4 hex digits after \\u, found 'G4'",
            Some("a".into()),
        ),
        (
            r#"{"a": "\u12"#,
            ProblemKind::Syntax,
            (1, 12),
            "found end of input",
            Some("a".into()),
        ),
        (
            "{\"a\": \"abc",
            ProblemKind::Syntax,
            (1, 11),
            "expected '\"' to close the string, found end of input",
            Some("a".into()),
        ),
        (
            "{\"a\": // note\n 1}",
            ProblemKind::Syntax,
            (1, 7),
            "found a comment (JSON has none)",
            Some("a".into()),
        ),
        (
            "{/* note */}",
            ProblemKind::Syntax,
            (1, 2),
            "found a comment",
            None,
        ),
        (
            "{\"a\": 1,\n \"b\": 2,\n \"a\": 3}",
            ProblemKind::Syntax,
            (3, 2),
            "duplicate key `a` (first set on line 1)",
            Some("a".into()),
        ),
        (
            // The first key is found again from its value, across line breaks and a colon
            // on a line of its own.
            "{\n\"x\": \"a:b\",\n \"a\"\n :\n\n 1,\n \"a\": 3}",
            ProblemKind::Syntax,
            (7, 2),
            "duplicate key `a` (first set on line 3)",
            Some("a".into()),
        ),
        (
            "{\"x\": [{\"k.1\": 1,\n\"k.1\": 2}]}",
            ProblemKind::Syntax,
            (2, 1),
            "duplicate key `\"k.1\"` (first set on line 1)",
            Some("x[0].\"k.1\"".into()),
        ),
        (
            &deep_arrays,
            ProblemKind::Limit,
            (1, 129),
            "nesting deeper than 128 levels",
            Some("[0]".repeat(128)),
        ),
        (
            &deep_objects,
            ProblemKind::Limit,
            (1, 641),
            "nesting deeper than 128 levels",
            Some(vec!["a"; 128].join(".")),
        ),
    ];
    for (text, kind, (line, column), fragment, path) in cases {
        let short = &text[..text.len().min(40)];
        let problem = parse(text, 0, &Limits::default()).unwrap_err();
        assert_eq!(problem.kind, kind, "{short:?}: {problem:?}");
        assert_eq!(
            (problem.line, problem.column),
            (Some(line), Some(column)),
            "{short:?}: {problem:?}"
        );
        assert!(problem.message.contains(fragment), "{short:?}: {problem:?}");
        assert_eq!(problem.path.map(|p| p.to_string()), path, "{short:?}");
    }
}

#[test]
fn depth_up_to_the_limit_is_accepted() {
    let limits = Limits::default();
    let text = format!(
        "{}{}",
        "[".repeat(limits.max_depth),
        "]".repeat(limits.max_depth)
    );
    assert_eq!(parse(&text, 0, &limits).unwrap().depth(), limits.max_depth);
}

/// A number of keys past which a table's storage has grown several times.
const WIDE: usize = 16;

/// An object of `n` keys `k0`, `k1`, …, one per line, then `tail` before the closing brace.
fn keys(n: usize, tail: &str) -> String {
    let entries: Vec<String> = (0..n).map(|i| format!("\"k{i}\": {i}")).collect();
    format!("{{\n{}{tail}\n}}", entries.join(",\n"))
}

#[test]
fn objects_large_and_small_keep_every_key_in_order() {
    for n in [0, 1, WIDE, WIDE + 1, 4 * WIDE + 3] {
        let tree = ok(&keys(n, ""));
        let expected: serde_json::Map<String, serde_json::Value> =
            (0..n).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(
            tree.to_json(),
            serde_json::Value::Object(expected),
            "{n} keys"
        );
        if n > 0 {
            let last = format!("k{}", n - 1);
            let column = u32::try_from(format!("\"{last}\": ").len()).unwrap() + 1;
            positions(
                &tree,
                &[(last.as_str(), (u32::try_from(n).unwrap() + 1, column))],
            );
        }
    }
}

#[test]
fn nested_values_do_not_mix_with_their_parents() {
    // The same key at two levels is no duplicate, and arrays and objects nested in each
    // other each keep exactly their own items and entries.
    let tree = ok(
        "{\"a\": {\"a\": [1, {\"a\": [], \"b\": [[2], 3]}, [4, 5]]}, \"b\": [{}, {\"a\": 6}], \"c\": 7}",
    );
    assert_eq!(
        tree.to_json(),
        json!({"a": {"a": [1, {"a": [], "b": [[2], 3]}, [4, 5]]}, "b": [{}, {"a": 6}], "c": 7})
    );
    let wide = format!("{{\"outer\": {}, \"k1\": 0}}", keys(2 * WIDE, ""));
    assert_eq!(ok(&wide).to_json()["k1"], json!(0));
}

#[test]
fn a_duplicate_is_found_in_objects_of_every_size() {
    let n = WIDE;
    let line = |i: usize| u32::try_from(i).unwrap() + 2;
    // A duplicate early, at the end of a mid-sized object, and far into a large one.
    for (count, again) in [(3, 1), (n, 0), (n + 1, 0), (n + 1, n), (4 * n, 2 * n + 1)] {
        let text = keys(count, &format!(",\n\"k{again}\": 9"));
        let problem = parse(&text, 0, &Limits::default()).unwrap_err();
        assert_eq!(
            problem.message,
            format!(
                "duplicate key `k{again}` (first set on line {})",
                line(again)
            ),
            "{count} keys"
        );
        assert_eq!(
            (problem.line, problem.column),
            (Some(line(count)), Some(1)),
            "{count} keys"
        );
        assert_eq!(
            problem.path.map(|p| p.to_string()),
            Some(format!("k{again}"))
        );
    }
}

#[test]
fn a_problem_deep_in_a_large_array_names_its_index() {
    let items: Vec<String> = (0..40).map(|i| format!("[{i}]")).collect();
    let text = format!("{{\"a\": [{}, [1, x]]}}", items.join(", "));
    let problem = parse(&text, 0, &Limits::default()).unwrap_err();
    assert_eq!(problem.path.map(|p| p.to_string()), Some("a[40][1]".into()));
}

/// A piece of a string's text as written: plain characters, every kind of escape, a bad
/// escape, and raw control characters (which JSON refuses inside a string).
fn piece() -> impl proptest::strategy::Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        "a",
        "é",
        " ",
        "\\\"",
        "\\\\",
        "\\/",
        "\\n",
        "\\u00e9",
        "\\uD83D\\uDE00",
        "\\x",
        "\t",
        "\u{1}",
        "\u{1f}",
        "\n",
        "\u{7f}",
    ])
}

proptest::proptest! {
    /// Keys and string values, with or without escapes, anywhere in them: read as
    /// serde_json reads them, or refused where it refuses them.
    #[test]
    fn strings_and_keys_read_as_serde_json_reads_them(
        members in proptest::collection::vec(
            (
                proptest::collection::vec(piece(), 0..4),
                proptest::collection::vec(piece(), 0..4),
            ),
            1..6,
        )
    ) {
        // A digit first keeps the keys apart: no piece is one.
        let members: Vec<String> = members
            .iter()
            .enumerate()
            .map(|(i, (key, value))| format!("\"{i}{}\": \"{}\"", key.concat(), value.concat()))
            .collect();
        let text = format!("{{{}}}", members.join(", "));
        let ours = parse(&text, 0, &Limits::default()).map(|node| node.to_json());
        match (ours, serde_json::from_str::<serde_json::Value>(&text)) {
            (Ok(ours), Ok(theirs)) => proptest::prop_assert_eq!(ours, theirs),
            (Err(_), Err(_)) => {}
            (ours, theirs) => proptest::prop_assert!(false, "{text:?}: {ours:?} / {theirs:?}"),
        }
    }
}

#[test]
fn an_escape_after_any_run_of_plain_characters_at_any_offset_reads_whole() {
    for pad in 0..8 {
        for run in 0..8 {
            let plain = "a".repeat(run);
            let text = format!("[{}\"{plain}\\\"x\\n\"]", " ".repeat(pad));
            assert_eq!(
                ok(&text).to_json(),
                json!([format!("{plain}\"x\n")]),
                "{text}"
            );
        }
    }
}

/// A config repeats its shapes: after the first object or array of a list, the next ones at
/// the same depth are allocated at their size at once, not grown by doubling.
#[test]
fn objects_and_arrays_after_the_first_start_at_its_size() {
    let item = r#"{"a": 1, "b": 2, "c": 3, "d": 4, "e": [1, 2, 3, 4, 5]}"#;
    let text = format!(r#"{{"list": [{item}, {item}, {item}]}}"#);
    let root = parse(&text, 0, &Limits::default()).unwrap();
    let Value::Table(root) = &root.value else {
        panic!("a table");
    };
    let Value::Array(list) = &root["list"].value else {
        panic!("an array");
    };
    let capacities: Vec<(usize, usize)> = list
        .iter()
        .map(|node| match &node.value {
            Value::Table(table) => match &table["e"].value {
                Value::Array(items) => (table.capacity(), items.capacity()),
                _ => panic!("an array"),
            },
            _ => panic!("a table"),
        })
        .collect();
    // The first of each grew from nothing, past its size; the others were sized.
    assert!(capacities[0].0 > 5 && capacities[0].1 > 5, "{capacities:?}");
    assert_eq!(capacities[1..], [(5, 5), (5, 5)]);
}
