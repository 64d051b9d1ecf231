//! The diff's contract rules and laws.

use super::*;
use proptest::prelude::*;
use serde_json::{Map, json};

fn path(text: &str) -> ConfigPath {
    text.parse().unwrap()
}

fn lines(changes: &[Change]) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
}

#[test]
fn diff_follows_the_contract_rules() {
    let cases: Vec<(&str, Value, Value, Vec<&str>)> = vec![
        (
            "equal configs",
            json!({"a": 1, "b": [1, {"c": true}]}),
            json!({"a": 1, "b": [1, {"c": true}]}),
            vec![],
        ),
        (
            "nested key modified",
            json!({"limits": {"rpm": 60, "burst": 5}}),
            json!({"limits": {"rpm": 120, "burst": 5}}),
            vec!["~ limits.rpm: 60 -> 120"],
        ),
        (
            "deep key added",
            json!({"a": {"b": {}}}),
            json!({"a": {"b": {"c": null}}}),
            vec!["+ a.b.c: null"],
        ),
        (
            "key removed",
            json!({"labels": {"env": "prod", "team": "x"}}),
            json!({"labels": {"team": "x"}}),
            vec![r#"- labels.env: "prod""#],
        ),
        (
            "old keys in old order, then new keys in new order",
            json!({"z": 1, "gone": 2, "a": 3}),
            json!({"a": 4, "y": 5, "z": 6, "x": 7}),
            vec![
                "~ z: 1 -> 6",
                "- gone: 2",
                "~ a: 3 -> 4",
                "+ y: 5",
                "+ x: 7",
            ],
        ),
        (
            "array grows at the tail",
            json!({"routes": [{"path": "/a"}]}),
            json!({"routes": [{"path": "/a"}, {"path": "/b"}, {"path": "/x"}]}),
            vec![
                r#"+ routes[1]: {"path":"/b"}"#,
                r#"+ routes[2]: {"path":"/x"}"#,
            ],
        ),
        (
            "array shrinks at the tail",
            json!({"xs": [1, 2, 3, 4]}),
            json!({"xs": [1, 2]}),
            vec!["- xs[2]: 3", "- xs[3]: 4"],
        ),
        (
            "arrays compare by position, no alignment",
            json!({"xs": [1, 2, 3]}),
            json!({"xs": [0, 1, 2, 3]}),
            vec![
                "~ xs[0]: 1 -> 0",
                "~ xs[1]: 2 -> 1",
                "~ xs[2]: 3 -> 2",
                "+ xs[3]: 3",
            ],
        ),
        (
            "items compare recursively",
            json!({"routes": [{"path": "/a", "to": "x"}]}),
            json!({"routes": [{"path": "/a", "to": "y"}]}),
            vec![r#"~ routes[0].to: "x" -> "y""#],
        ),
        (
            "int to float is a change",
            json!({"n": 1}),
            json!({"n": 1.0}),
            vec!["~ n: 1 -> 1.0"],
        ),
        (
            "negative to positive int",
            json!({"n": -1}),
            json!({"n": 1}),
            vec!["~ n: -1 -> 1"],
        ),
        (
            "table to string is one modified",
            json!({"db": {"host": "h", "port": 5432}}),
            json!({"db": "postgres://h"}),
            vec![r#"~ db: {"host":"h","port":5432} -> "postgres://h""#],
        ),
        (
            "array to table",
            json!({"x": [1]}),
            json!({"x": {"0": 1}}),
            vec![r#"~ x: [1] -> {"0":1}"#],
        ),
        (
            "null to value",
            json!({"x": null}),
            json!({"x": false}),
            vec!["~ x: null -> false"],
        ),
        (
            "quoted keys print quoted",
            json!({"labels": {"app.kubernetes.io/name": "api"}}),
            json!({"labels": {"app.kubernetes.io/name": "web"}}),
            vec![r#"~ labels."app.kubernetes.io/name": "api" -> "web""#],
        ),
        (
            "empty key",
            json!({"": {"x": 1}}),
            json!({"": {"x": 2}}),
            vec![r#"~ "".x: 1 -> 2"#],
        ),
        (
            "root changes type",
            json!({"a": 1}),
            json!([1]),
            vec![r#"~ (root): {"a":1} -> [1]"#],
        ),
        ("root scalars", json!(1), json!(2), vec!["~ (root): 1 -> 2"]),
        (
            "nested arrays",
            json!([[1], [2, 3]]),
            json!([[1, 5], [2]]),
            vec!["+ [0][1]: 5", "- [1][1]: 3"],
        ),
        (
            "strings with newlines stay on one line",
            json!({"s": "a"}),
            json!({"s": "a\nb"}),
            vec![r#"~ s: "a" -> "a\nb""#],
        ),
    ];
    for (name, old, new, expected) in cases {
        let changes = diff(&old, &new);
        assert_eq!(lines(&changes), expected, "{name}");
        assert_eq!(apply(&old, &changes), new, "{name}: apply");
    }
}

#[test]
fn change_fields_hold_whole_values() {
    let changes = diff(
        &json!({"db": {"host": "h"}}),
        &json!({"db": "x", "new": {"a": [1]}}),
    );
    assert_eq!(
        changes,
        vec![
            Change {
                path: path("db"),
                kind: ChangeKind::Modified,
                old: Some(json!({"host": "h"})),
                new: Some(json!("x")),
            },
            Change {
                path: path("new"),
                kind: ChangeKind::Added,
                old: None,
                new: Some(json!({"a": [1]})),
            },
        ]
    );
    let root = diff(&json!(1), &json!("1"));
    assert_eq!(root.len(), 1);
    assert!(root[0].path.is_root());
}

#[test]
fn json_shape_leaves_out_the_missing_side() {
    let cases = [
        (
            Change::modified(path("limits.rpm"), json!(60), json!(120)),
            json!({"path": "limits.rpm", "kind": "modified", "old": 60, "new": 120}),
        ),
        (
            Change::added(path("routes[2]"), json!({"path": "/x"})),
            json!({"path": "routes[2]", "kind": "added", "new": {"path": "/x"}}),
        ),
        (
            Change::removed(path("labels.env"), json!("prod")),
            json!({"path": "labels.env", "kind": "removed", "old": "prod"}),
        ),
        (
            Change::modified(path(r#"labels."a.b""#), json!(null), json!(1)),
            json!({"path": r#"labels."a.b""#, "kind": "modified", "old": null, "new": 1}),
        ),
        (
            Change::modified(ConfigPath::root(), json!(1), json!(2)),
            json!({"path": "", "kind": "modified", "old": 1, "new": 2}),
        ),
    ];
    for (change, expected) in cases {
        assert_eq!(serde_json::to_value(&change).unwrap(), expected, "{change}");
    }
    // Field order is the documented one.
    assert_eq!(
        serde_json::to_string(&Change::modified(path("limits.rpm"), json!(60), json!(120)))
            .unwrap(),
        r#"{"path":"limits.rpm","kind":"modified","old":60,"new":120}"#
    );
    assert_eq!(
        serde_json::to_string(&Change::added(path("a"), json!(1))).unwrap(),
        r#"{"path":"a","kind":"added","new":1}"#
    );
}

#[test]
fn display_lines() {
    let cases = [
        (
            Change::modified(path("limits.rpm"), json!(60), json!(120)),
            "~ limits.rpm: 60 -> 120",
        ),
        (
            Change::added(path("routes[2]"), json!({"path": "/x"})),
            r#"+ routes[2]: {"path":"/x"}"#,
        ),
        (
            Change::removed(path("labels.env"), json!("prod")),
            r#"- labels.env: "prod""#,
        ),
        (
            Change::modified(path("xs"), json!([1, {"a": null}]), json!([])),
            r#"~ xs: [1,{"a":null}] -> []"#,
        ),
    ];
    for (change, line) in cases {
        assert_eq!(change.to_string(), line);
    }
}

#[test]
fn apply_removes_several_tail_items_and_keeps_key_order() {
    let old = json!({"a": 1, "xs": [1, 2, 3, 4, 5], "b": 2, "c": 3});
    let new = json!({"a": 1, "xs": [1], "c": 3});
    let applied = apply(&old, &diff(&old, &new));
    assert_eq!(applied, new);
    let keys: Vec<&String> = applied.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["a", "xs", "c"]);
}

#[test]
fn apply_skips_changes_that_do_not_fit() {
    let base = json!({"a": 1});
    let changes = [
        Change::modified(path("missing.x"), json!(1), json!(2)),
        Change::added(path("a.b"), json!(1)),
        Change::added(path("a[5]"), json!(1)),
        Change::removed(path("zz"), json!(1)),
    ];
    assert_eq!(apply(&base, &changes), base);
    // Array positions past the end do not fit either: nothing is inserted or removed.
    let base = json!({"list": [1, 2]});
    let changes = [
        Change::added(path("list[3]"), json!(9)),
        Change::removed(path("list[2]"), json!(9)),
        Change::removed(path("list[7]"), json!(9)),
    ];
    assert_eq!(apply(&base, &changes), base);
    // At the end exactly, an addition appends.
    let appended = apply(&base, &[Change::added(path("list[2]"), json!(3))]);
    assert_eq!(appended, json!({"list": [1, 2, 3]}));
}

// ---- property tests ----

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "", "x.y", "password"]).prop_map(String::from)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..4).prop_map(Value::from),
        // Small finite floats, whole ones included so that 1 vs 1.0 comes up.
        (-6i32..6).prop_map(|n| Value::from(f64::from(n) / 2.0)),
        prop::sample::select(vec!["", "a", "1", "tab\t"]).prop_map(Value::from),
    ]
}

fn object<S: Strategy<Value = Value>>(inner: S) -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), inner), 0..4)
        .prop_map(|entries| Value::Object(entries.into_iter().collect()))
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            object(inner),
        ]
    })
}

/// Two related values: the same skeleton with keys on one side or both, arrays cut to
/// different lengths, leaves equal or not. Independent values would mostly differ at the root.
fn related_pair() -> impl Strategy<Value = (Value, Value)> {
    let leaves = prop_oneof![leaf().prop_map(|v| (v.clone(), v)), (leaf(), leaf())];
    leaves.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec((key(), 0u8..3, inner.clone()), 0..4).prop_map(|entries| {
                let (mut old, mut new) = (Map::new(), Map::new());
                for (key, side, (a, b)) in entries {
                    if side != 1 {
                        old.insert(key.clone(), a);
                    }
                    if side != 0 {
                        new.insert(key, b);
                    }
                }
                (Value::Object(old), Value::Object(new))
            }),
            (prop::collection::vec(inner, 0..5), 0usize..5, 0usize..5).prop_map(
                |(items, old_len, new_len)| {
                    let old = items
                        .iter()
                        .take(old_len)
                        .map(|pair| pair.0.clone())
                        .collect();
                    let new = items
                        .iter()
                        .take(new_len)
                        .map(|pair| pair.1.clone())
                        .collect();
                    (Value::Array(old), Value::Array(new))
                }
            ),
        ]
    })
}

fn pair() -> impl Strategy<Value = (Value, Value)> {
    prop_oneof![3 => related_pair(), 1 => (value(), value())]
}

fn get<'a>(mut value: &'a Value, path: &ConfigPath) -> Option<&'a Value> {
    for segment in path.segments() {
        value = match (value, segment) {
            (Value::Object(map), Segment::Key(key)) => map.get(key)?,
            (Value::Array(items), Segment::Index(index)) => items.get(*index)?,
            _ => return None,
        };
    }
    Some(value)
}

proptest! {
    #[test]
    fn diff_of_a_value_with_itself_is_empty(a in value()) {
        prop_assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn apply_replays_a_diff((a, b) in pair()) {
        let changes = diff(&a, &b);
        prop_assert_eq!(apply(&a, &changes), b.clone());
        prop_assert_eq!(changes.is_empty(), a == b);
    }

    #[test]
    fn changes_have_the_contract_shape((a, b) in pair()) {
        for change in diff(&a, &b) {
            let at_old = get(&a, &change.path);
            let at_new = get(&b, &change.path);
            match change.kind {
                ChangeKind::Added => {
                    prop_assert!(change.old.is_none() && change.new.is_some(), "{change}");
                    prop_assert!(at_old.is_none(), "{change}");
                }
                ChangeKind::Removed => {
                    prop_assert!(change.old.is_some() && change.new.is_none(), "{change}");
                    prop_assert!(at_new.is_none(), "{change}");
                }
                ChangeKind::Modified => {
                    prop_assert!(change.old.is_some() && change.new.is_some(), "{change}");
                    prop_assert_ne!(&change.old, &change.new);
                }
            }
            // Each side holds the whole value found at the path in that config.
            prop_assert_eq!(change.old.as_ref(), at_old);
            prop_assert_eq!(change.new.as_ref(), at_new);
        }
    }
}
