//! The config hash: XXH3-64 (a document's [revision](crate::document::revision) hash) over
//! the compact JSON of an effective config's tree, fed as the text would be written,
//! without building it.

use crate::document::Revision;
use crate::tree::{Node, Value};

/// The hash of an effective config, as events and the status report it: XXH3-64 of its
/// compact JSON. Secret values go into it, so it changes when only a secret does, but 64 bits
/// of a hash give no value back.
pub(crate) fn config_hash(tree: &Node) -> u64 {
    let mut hash = Revision::default();
    hash_json(tree, &mut hash);
    hash.finish()
}

/// Feeds the text of `node`'s diff JSON view ([`Node::to_diff_json`]) to `hash` byte for
/// byte as serde_json's compact writer writes it, without the text or serde's machinery.
pub(crate) fn hash_json(node: &Node, hash: &mut Revision) {
    match &node.value {
        Value::Null => hash.add(b"null"),
        Value::Bool(true) => hash.add(b"true"),
        Value::Bool(false) => hash.add(b"false"),
        Value::Integer(i) => hash.add(itoa::Buffer::new().format(*i).as_bytes()),
        Value::Unsigned(u) => hash.add(itoa::Buffer::new().format(*u).as_bytes()),
        Value::Float(f) if f.is_nan() => hash_str("nan", hash),
        Value::Float(f) if f.is_infinite() => {
            hash_str(if f.is_sign_positive() { "inf" } else { "-inf" }, hash);
        }
        // Rare in a config: serde_json's own float formatting, so the text is its text.
        Value::Float(f) => {
            let _ = serde_json::to_writer(&mut *hash, f);
        }
        Value::String(s) => hash_str(s, hash),
        Value::Array(items) => {
            hash.add(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    hash.add(b",");
                }
                hash_json(item, hash);
            }
            hash.add(b"]");
        }
        Value::Table(table) => {
            hash.add(b"{");
            for (i, (key, item)) in table.iter().enumerate() {
                if i > 0 {
                    hash.add(b",");
                }
                hash_str(key, hash);
                hash.add(b":");
                hash_json(item, hash);
            }
            hash.add(b"}");
        }
    }
}

/// A JSON string as serde_json writes it: quoted, with `"`, `\` and the control characters
/// escaped (the short forms where JSON has them, else `\u00xx` in lowercase hex). The runs
/// between escapes are hashed whole.
pub(crate) fn hash_str(text: &str, hash: &mut Revision) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    hash.add(b"\"");
    let bytes = text.as_bytes();
    // Bytes up to here are hashed; the run after it is hashed whole at the next escape.
    let mut done = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            _ => continue,
        };
        hash.add(&bytes[done..i]);
        hash.add(short);
        done = i + 1;
    }
    hash.add(&bytes[done..]);
    hash.add(b"\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_hash_is_the_revision_hash_of_the_compact_json_text() {
        use crate::tree::{Span, Table};
        let leaf = |value: Value| Node::new(value, Span::default());
        let table: Table = (0..2000)
            .map(|i| {
                (
                    format!("key{i}").into(),
                    leaf(Value::String(format!("\"v{i}\"").into())),
                )
            })
            .chain([("inf".into(), leaf(Value::Float(f64::INFINITY)))])
            .collect();
        let tree = leaf(Value::Table(Box::new(table)));
        let text = tree.to_diff_json().to_string();
        assert_eq!(
            config_hash(&tree),
            crate::document::revision(text.as_bytes())
        );
        let mut other = tree.clone();
        other.value = Value::Integer(1);
        assert_ne!(config_hash(&other), config_hash(&tree));
    }

    fn any_tree() -> impl proptest::strategy::Strategy<Value = Node> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Integer),
            any::<u64>().prop_map(Value::Unsigned),
            any::<f64>().prop_map(Value::Float),
            Just(Value::Float(f64::NAN)),
            Just(Value::Float(f64::NEG_INFINITY)),
            Just(Value::Float(-0.0)),
            // Every byte class of the escaping: quotes, backslashes, each control
            // character, DEL, and characters beyond ASCII.
            "[\\x00-\\x1f\"\\\\/a\\x7fé€😀]{0,12}".prop_map(|s| Value::String(s.into())),
            any::<String>().prop_map(|s| Value::String(s.into())),
        ]
        .prop_map(|value| Node::new(value, crate::tree::Span::default()));
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6)
                    .prop_map(|items| Node::new(Value::Array(items), crate::tree::Span::default())),
                prop::collection::vec(("[\\x00-\\x20\"\\\\a-cé]{0,4}", inner), 0..6).prop_map(
                    |entries| Node::new(
                        Value::Table(Box::new(
                            entries.into_iter().map(|(k, v)| (k.into(), v)).collect()
                        )),
                        crate::tree::Span::default()
                    )
                ),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn the_config_hash_is_the_revision_hash_of_serde_jsons_text(tree in any_tree()) {
            let text = tree.to_diff_json().to_string();
            proptest::prop_assert_eq!(config_hash(&tree), crate::document::revision(text.as_bytes()));
        }
    }
}
