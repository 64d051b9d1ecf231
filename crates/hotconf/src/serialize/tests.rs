//! Tests of turning a config back into a tree.

use super::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Mode {
    Off,
    Rate(u32),
    Pair(u8, u8),
    Window { secs: u32 },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Config {
    name: String,
    ceiling: f64,
    big: u64,
    small: i8,
    maybe: Option<u32>,
    none: Option<u32>,
    modes: Vec<Mode>,
    by_code: BTreeMap<u16, String>,
    flag: bool,
    letter: char,
    pair: (u8, String),
}

#[test]
fn a_config_serializes_to_the_tree_json_would_give_and_keeps_non_finite_floats() {
    let config = Config {
        name: "svc".into(),
        ceiling: f64::INFINITY,
        big: u64::MAX,
        small: -3,
        maybe: Some(4),
        none: None,
        modes: vec![
            Mode::Off,
            Mode::Rate(5),
            Mode::Pair(1, 2),
            Mode::Window { secs: 9 },
        ],
        by_code: BTreeMap::from([(404, "missing".into())]),
        flag: true,
        letter: 'x',
        pair: (7, "seven".into()),
    };
    let tree = to_node(&config).unwrap();
    assert!(
        matches!(tree.get(&"ceiling".parse().unwrap()).unwrap().value, Value::Float(f) if f.is_infinite())
    );
    // Everything else is what serde_json makes of it.
    let mut json = serde_json::to_value(&config).unwrap();
    json["ceiling"] = serde_json::Value::Null;
    assert_eq!(tree.to_json(), json);
    // And it reads back whole, infinity included.
    let layers_free: Config = crate::deserialize::from_node(&tree).unwrap();
    assert_eq!(layers_free, config);
}

#[test]
fn map_keys_are_written_out_as_serde_json_writes_them() {
    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    enum Side {
        Left,
    }
    #[derive(Serialize)]
    struct Keys {
        bools: BTreeMap<bool, u8>,
        i8s: BTreeMap<i8, u8>,
        i16s: BTreeMap<i16, u8>,
        i32s: BTreeMap<i32, u8>,
        i64s: BTreeMap<i64, u8>,
        i128s: BTreeMap<i128, u8>,
        u8s: BTreeMap<u8, u8>,
        u16s: BTreeMap<u16, u8>,
        u32s: BTreeMap<u32, u8>,
        u64s: BTreeMap<u64, u8>,
        u128s: BTreeMap<u128, u8>,
        chars: BTreeMap<char, u8>,
        sides: BTreeMap<Side, u8>,
    }
    let keys = Keys {
        bools: BTreeMap::from([(false, 0), (true, 1)]),
        i8s: BTreeMap::from([(i8::MIN, 0), (-1, 1)]),
        i16s: BTreeMap::from([(i16::MIN, 0)]),
        i32s: BTreeMap::from([(i32::MIN, 0)]),
        i64s: BTreeMap::from([(i64::MIN, 0)]),
        i128s: BTreeMap::from([(i128::MIN, 0)]),
        u8s: BTreeMap::from([(u8::MAX, 0)]),
        u16s: BTreeMap::from([(u16::MAX, 0)]),
        u32s: BTreeMap::from([(u32::MAX, 0)]),
        u64s: BTreeMap::from([(u64::MAX, 0)]),
        u128s: BTreeMap::from([(u128::MAX, 0)]),
        chars: BTreeMap::from([('é', 0)]),
        sides: BTreeMap::from([(Side::Left, 0)]),
    };
    let tree = to_node(&keys).unwrap();
    assert_eq!(tree.to_json(), serde_json::to_value(&keys).unwrap());
    assert_eq!(
        tree.to_json()["i128s"],
        serde_json::json!({"-170141183460469231731687303715884105728": 0})
    );
}

/// A map of one entry whose key is `K`: any key a `Serialize` type can give, ordered or
/// not.
struct OneKey<K>(K);

impl<K: Serialize> Serialize for OneKey<K> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(&self.0, &1)?;
        map.end()
    }
}

/// A key written as bytes.
struct Bytes;

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_bytes(b"k")
    }
}

#[derive(Serialize)]
struct Unit;

#[derive(Serialize)]
struct Newtype(u8);

#[derive(Serialize)]
enum WithContent {
    Variant(u8),
}

#[test]
fn keys_that_are_not_strings_or_numbers_are_refused() {
    let refused = |tree: Result<Node>| tree.unwrap_err().to_string();
    let must = |what: &str| format!("a map key must be a string, not {what}");
    assert_eq!(
        refused(to_node(&BTreeMap::from([(vec![1], 2)]))),
        must("a list")
    );
    assert_eq!(refused(to_node(&OneKey((1, 2)))), must("a tuple"));
    assert_eq!(refused(to_node(&OneKey(1.5_f32))), must("a float"));
    assert_eq!(refused(to_node(&OneKey(1.5_f64))), must("a float"));
    assert_eq!(refused(to_node(&OneKey(Bytes))), must("bytes"));
    assert_eq!(refused(to_node(&OneKey(None::<u8>))), must("null"));
    assert_eq!(refused(to_node(&OneKey(()))), must("null"));
    assert_eq!(refused(to_node(&OneKey(Unit))), must("null"));
    assert_eq!(
        refused(to_node(&OneKey(WithContent::Variant(1)))),
        must("an enum with content")
    );
}

#[test]
fn a_key_in_an_option_or_a_newtype_is_the_value_inside() {
    assert_eq!(
        to_node(&OneKey(Some(5_u8))).unwrap().to_json(),
        serde_json::json!({"5": 1})
    );
    assert_eq!(
        to_node(&OneKey(Newtype(6))).unwrap().to_json(),
        serde_json::json!({"6": 1})
    );
}
