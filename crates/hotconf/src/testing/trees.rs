//! Trees for property tests: leaves whose views collide across kinds, and pairs of trees
//! that share most of their shape.

use proptest::prelude::*;

use crate::tree::{Node, Span, Table, Value};

fn node(value: Value) -> Node {
    Node::new(value, Span::default())
}

/// Leaves chosen so that equal views from different kinds come up: `1` as i64 and u64,
/// `inf` as a float and as a string, `0.0` and `-0.0`, `nan` and `nan`.
fn leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1i64..3).prop_map(Value::Integer),
        prop_oneof![Just(1u64), Just(u64::MAX)].prop_map(Value::Unsigned),
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(1.0),
            Just(2.5),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::NAN)
        ]
        .prop_map(Value::Float),
        prop_oneof![Just("a"), Just("inf"), Just("nan"), Just("")]
            .prop_map(|s| Value::String(s.into())),
    ]
    .prop_map(node)
}

pub(crate) fn key() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("c"), Just("d")].prop_map(str::to_owned)
}

pub(crate) fn tree() -> impl Strategy<Value = Node> {
    leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|items| node(Value::Array(items))),
            prop::collection::vec((key(), inner), 0..4).prop_map(|entries| node(Value::Table(
                Box::new(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
            ))),
        ]
    })
}

/// Two trees that share most of their shape: each key or item of one is kept, changed,
/// dropped or moved in the other.
fn related() -> impl Strategy<Value = (Node, Node)> {
    let leaves = (leaf(), leaf(), 0u8..4).prop_map(|(a, b, same)| {
        let b = if same == 0 { b } else { a.clone() };
        (a, b)
    });
    leaves.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            (
                prop::collection::vec((key(), inner.clone(), 0u8..4), 0..4),
                any::<bool>()
            )
                .prop_map(|(entries, reverse)| {
                    let (mut old, mut new) = (Table::default(), Table::default());
                    for (key, (a, b), side) in entries {
                        if side != 1 {
                            old.insert(key.as_str().into(), a);
                        }
                        if side != 2 {
                            new.insert(key.into(), b);
                        }
                    }
                    if reverse {
                        new.reverse();
                    }
                    (
                        node(Value::Table(Box::new(old))),
                        node(Value::Table(Box::new(new))),
                    )
                }),
            (prop::collection::vec(inner, 0..4), 0usize..4, 0usize..4).prop_map(
                |(items, old_len, new_len)| {
                    let side = |len: usize, pick: fn(&(Node, Node)) -> &Node| {
                        items.iter().take(len).map(|p| pick(p).clone()).collect()
                    };
                    (
                        node(Value::Array(side(old_len, |p| &p.0))),
                        node(Value::Array(side(new_len, |p| &p.1))),
                    )
                }
            ),
        ]
    })
}

pub(crate) fn pair() -> impl Strategy<Value = (Node, Node)> {
    prop_oneof![3 => related(), 1 => (tree(), tree())]
}
