//! `diff_against` gives what building the tree and diffing it gives.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};

use super::*;
use crate::testing::trees::{key, pair, tree};
use crate::tree::Span;

/// What building the tree gives: the reference `diff_against` must equal.
fn built<T: Serialize + ?Sized>(base: &Node, config: &T) -> Result<(Vec<Change>, u64)> {
    let tree = to_node(config)?;
    Ok((diff_trees(base, &tree), config_hash(&tree)))
}

fn streamed<T: Serialize + ?Sized>(base: &Node, config: &T) -> Result<(Vec<Change>, u64)> {
    diff_against(base, config).map(|d| (d.changes, d.hash))
}

/// A tree serialized as a typed config would be: tables as structs when `structs` (their
/// keys are then static, as field names are), else as maps.
struct Typed<'a> {
    node: &'a Node,
    structs: bool,
}

fn field(key: &str) -> &'static str {
    match key {
        "a" => "a",
        "b" => "b",
        "c" => "c",
        "d" => "d",
        other => panic!("no field {other}"),
    }
}

impl Serialize for Typed<'_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let typed = |node| Typed {
            node,
            structs: self.structs,
        };
        match &self.node.value {
            Value::Null => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Integer(i) => s.serialize_i64(*i),
            Value::Unsigned(u) => s.serialize_u64(*u),
            Value::Float(f) => s.serialize_f64(*f),
            Value::String(text) => s.serialize_str(text),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&typed(item))?;
                }
                seq.end()
            }
            Value::Table(table) if self.structs => {
                let mut fields = s.serialize_struct("Table", table.len())?;
                for (key, item) in table.iter() {
                    fields.serialize_field(field(key), &typed(item))?;
                }
                fields.end()
            }
            Value::Table(table) => {
                let mut map = s.serialize_map(Some(table.len()))?;
                for (key, item) in table.iter() {
                    map.serialize_entry(key.as_str(), &typed(item))?;
                }
                map.end()
            }
        }
    }
}

/// A map written entry by entry as given, keys repeated or not.
struct Entries(Vec<(&'static str, Node)>);

impl Serialize for Entries {
    fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (key, value) in &self.0 {
            map.serialize_entry(
                key,
                &Typed {
                    node: value,
                    structs: false,
                },
            )?;
        }
        map.end()
    }
}

fn leaf(value: Value) -> Node {
    Node::new(value, Span::default())
}

fn table(entries: &[(&str, Node)]) -> Node {
    leaf(Value::Table(Box::new(
        entries
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect(),
    )))
}

fn int(i: i64) -> Node {
    leaf(Value::Integer(i))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_tree_as_maps_diffs_and_hashes_as_its_built_tree((base, new) in pair()) {
        let new = Typed { node: &new, structs: false };
        prop_assert_eq!(streamed(&base, &new).unwrap(), built(&base, &new).unwrap());
    }

    #[test]
    fn a_tree_as_structs_diffs_and_hashes_as_its_built_tree((base, new) in pair()) {
        let new = Typed { node: &new, structs: true };
        prop_assert_eq!(streamed(&base, &new).unwrap(), built(&base, &new).unwrap());
    }

    #[test]
    fn a_typed_config_diffs_and_hashes_as_its_built_tree(
        (old, new) in (config(), config()),
        against_a_tree in any::<bool>(),
        other in tree(),
    ) {
        let base = if against_a_tree { other } else { to_node(&old).unwrap() };
        prop_assert_eq!(streamed(&base, &new).unwrap(), built(&base, &new).unwrap());
    }

    #[test]
    fn a_map_with_a_key_twice_is_built_instead(
        entries in prop::collection::vec((key(), 0i64..3), 0..6),
        base in tree(),
    ) {
        let entries: Vec<(&'static str, Node)> =
            entries.iter().map(|(k, v)| (field(k), int(*v))).collect();
        let twice = (1..entries.len()).any(|i| entries[..i].iter().any(|e| e.0 == entries[i].0));
        let map = Entries(entries);
        let diffed = diff_against(&base, &map).unwrap();
        let walked = matches!(base.value, Value::Table(_));
        prop_assert_eq!(diffed.tree.is_some(), twice && walked);
        prop_assert_eq!((diffed.changes, diffed.hash), built(&base, &map).unwrap());
    }
}

/// Every kind serde has, in the shapes a config takes.
#[derive(Clone, Debug, Serialize)]
struct Config {
    name: String,
    port: Port,
    ratio: f64,
    big: u128,
    letter: char,
    on: Option<bool>,
    unit: (),
    marker: Marker,
    shape: Shape,
    shapes: Vec<Shape>,
    pair: (i8, String),
    limits: BTreeMap<String, i64>,
    ids: BTreeMap<u32, Shape>,
    #[serde(with = "bytes")]
    raw: Vec<u8>,
    #[serde(flatten)]
    extra: BTreeMap<String, u64>,
}

mod bytes {
    pub(super) fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
}

#[derive(Clone, Debug, Serialize)]
enum Shape {
    Unit,
    Newtype(i64),
    Tuple(i64, String),
    Struct { a: Option<f64>, b: Vec<u8> },
    Wrapped(Marker),
}

#[derive(Clone, Debug, Serialize)]
struct Marker;

#[derive(Clone, Debug, Serialize)]
struct Port(u16);

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("a".to_owned()),
        Just("inf".to_owned()),
        Just("a value longer than the twenty-three bytes kept inline".to_owned()),
    ]
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Unit),
        (0i64..2).prop_map(Shape::Newtype),
        ((0i64..2), text()).prop_map(|(i, s)| Shape::Tuple(i, s)),
        (
            prop::option::of(prop_oneof![Just(1.0), Just(f64::NAN), Just(f64::INFINITY)]),
            prop::collection::vec(0u8..2, 0..3)
        )
            .prop_map(|(a, b)| Shape::Struct { a, b }),
        Just(Shape::Wrapped(Marker)),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        (
            text(),
            (0u16..2).prop_map(Port),
            prop_oneof![Just(0.5), Just(-0.0), Just(f64::NAN)],
        ),
        (
            prop_oneof![Just(0u128), Just(u128::from(u64::MAX))],
            prop_oneof![Just('a'), Just('é')],
        ),
        (
            prop::option::of(any::<bool>()),
            shape(),
            prop::collection::vec(shape(), 0..3),
        ),
        (
            (0i8..2, text()),
            prop::collection::btree_map(key(), 0i64..3, 0..4),
        ),
        (
            prop::collection::btree_map(0u32..3, shape(), 0..3),
            prop::collection::vec(0u8..3, 0..3),
            prop::collection::btree_map(
                prop_oneof![Just("x".to_owned()), Just("y".to_owned())],
                0u64..2,
                0..3,
            ),
        ),
    )
        .prop_map(
            |(
                (name, port, ratio),
                (big, letter),
                (on, shape, shapes),
                (pair, limits),
                (ids, raw, extra),
            )| Config {
                name,
                port,
                ratio,
                big,
                letter,
                on,
                unit: (),
                marker: Marker,
                shape,
                shapes,
                pair,
                limits,
                ids,
                raw,
                extra,
            },
        )
}

#[test]
fn a_key_found_twice_in_the_base_builds_the_tree() {
    let base = table(&[("a", int(0)), ("b", int(1))]);
    // `a` comes back after `b`: found in the base twice, out of order.
    let map = Entries(vec![("a", int(1)), ("b", int(1)), ("a", int(2))]);
    let diffed = diff_against(&base, &map).unwrap();
    assert!(diffed.tree.is_some());
    assert_eq!((diffed.changes, diffed.hash), built(&base, &map).unwrap());
    assert_eq!(diffed.tree.unwrap(), to_node(&map).unwrap());
}

#[test]
fn a_removed_key_is_reported_where_the_base_had_it() {
    let base = table(&[("a", int(0)), ("b", int(1)), ("c", int(2))]);
    let new = table(&[("c", int(3)), ("a", int(1)), ("d", int(4))]);
    let new = Typed {
        node: &new,
        structs: true,
    };
    let (changes, _) = streamed(&base, &new).unwrap();
    let paths: Vec<String> = changes.iter().map(|c| c.path.to_string()).collect();
    assert_eq!(paths, ["a", "b", "c", "d"]);
    assert_eq!(changes, built(&base, &new).unwrap().0);
}

#[test]
fn a_config_that_does_not_serialize_fails_as_it_would_built() {
    let base = table(&[("big", int(0))]);
    #[derive(Serialize)]
    struct Big {
        big: u128,
    }
    let config = Big { big: u128::MAX };
    let streamed = diff_against(&base, &config).unwrap_err().to_string();
    assert_eq!(streamed, to_node(&config).unwrap_err().to_string());
}

#[test]
fn an_unchanged_config_has_no_changes_and_its_trees_hash() {
    let config = Config {
        name: "a value longer than the twenty-three bytes kept inline".into(),
        port: Port(1),
        ratio: f64::NAN,
        big: 7,
        letter: 'é',
        on: None,
        unit: (),
        marker: Marker,
        shape: Shape::Struct {
            a: Some(f64::INFINITY),
            b: vec![1],
        },
        shapes: vec![Shape::Unit, Shape::Tuple(1, "b".into())],
        pair: (1, "c".into()),
        limits: BTreeMap::from([("a".into(), 1)]),
        ids: BTreeMap::from([(2, Shape::Newtype(3))]),
        raw: vec![0, 1],
        extra: BTreeMap::from([("x".into(), 1)]),
    };
    let tree = to_node(&config).unwrap();
    let diffed = diff_against(&tree, &config).unwrap();
    assert!(diffed.changes.is_empty());
    assert_eq!(diffed.hash, config_hash(&tree));
    assert!(diffed.tree.is_none());
}
