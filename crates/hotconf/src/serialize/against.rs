//! The typed config diffed against the effective tree while it serializes.
//!
//! [`diff_against`] gives what [`diff_trees`] and [`config_hash`] give on [`to_node`]'s tree
//! of the config, without building that tree: only the values at a change are built. A
//! reload diffs every new config against the effective one before its callers have their
//! answer, and building the whole tree first cost about as much as parsing the config. The
//! engine builds the tree later, once the config is applied and the callers have their
//! answer: the next attempt is diffed against it.

use std::ops::Range;

use serde::ser::{self, Serialize};

use super::{Error, KeySerializer, Map, Result, Seq, Serializer, node, to_node};
use crate::diff::{Change, Step, diff_at, diff_trees, path_of, path_to};
use crate::document::Revision;
use crate::event::{config_hash, hash_json, hash_str};
use crate::path::Segment;
use crate::tree::{Key, Node, Table, Text, Value};

/// What [`diff_against`] found.
#[derive(Debug)]
pub(crate) struct Diffed {
    /// The changes from the base to the config: `diff_trees(base, &to_node(config))`.
    pub(crate) changes: Vec<Change>,
    /// `config_hash(&to_node(config))`.
    pub(crate) hash: u64,
    /// The config's tree, when it had to be built: a map that serializes one key twice
    /// keeps the last value at the first place, which a stream cannot know until the end.
    pub(crate) tree: Option<Node>,
}

/// The changes from `base` to `config` and `config`'s hash, as [`diff_trees`] and
/// [`config_hash`] give them on `to_node(config)`, and the same error when it does not
/// serialize.
pub(crate) fn diff_against<T: Serialize + ?Sized>(base: &Node, config: &T) -> Result<Diffed> {
    let mut walk = Walk {
        steps: Vec::new(),
        out: Vec::new(),
        hash: Revision::default(),
        marks: Vec::new(),
        twice: false,
    };
    let walked = config.serialize(Against {
        base,
        walk: &mut walk,
    });
    if walk.twice {
        let tree = to_node(config)?;
        return Ok(Diffed {
            changes: diff_trees(base, &tree),
            hash: config_hash(&tree),
            tree: Some(tree),
        });
    }
    walked.map(|()| Diffed {
        changes: walk.out,
        hash: walk.hash.finish(),
        tree: None,
    })
}

/// The state of one [`diff_against`], shared down the recursion.
struct Walk<'a> {
    /// The path to the values being compared, with the base's keys.
    steps: Vec<Step<'a>>,
    /// The changes so far, in [`diff_trees`]' order.
    out: Vec<Change>,
    /// The config hash of what serialized so far.
    hash: Revision,
    /// For each table being walked, a mark per key found in the base: the key's index
    /// there, and where its changes start in `out`.
    marks: Vec<(usize, usize)>,
    /// A map serialized one key twice: the walk stops, and the tree is built instead.
    twice: bool,
}

impl Walk<'_> {
    fn twice(&mut self) -> Error {
        self.twice = true;
        Error("a map has a key twice".into())
    }
}

/// Serializes a value against the node it replaces.
struct Against<'a, 'w> {
    base: &'a Node,
    walk: &'w mut Walk<'a>,
}

impl Against<'_, '_> {
    /// A value built whole: hashed, and diffed against the base.
    fn settle(self, value: Value) -> Result<()> {
        let new = node(value);
        hash_json(&new, &mut self.walk.hash);
        diff_at(&mut self.walk.steps, self.base, &new, &mut self.walk.out);
        Ok(())
    }
}

/// Scalars are built (without allocating, but for a long string) and settled.
macro_rules! settle_scalars {
    ($($method:ident($type:ty)),*) => {$(
        fn $method(self, v: $type) -> Result<()> {
            let value = Serializer.$method(v)?;
            self.settle(value)
        }
    )*};
}

impl<'a, 'w> ser::Serializer for Against<'a, 'w> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = SeqAgainst<'a, 'w>;
    type SerializeTuple = SeqAgainst<'a, 'w>;
    type SerializeTupleStruct = SeqAgainst<'a, 'w>;
    type SerializeTupleVariant = SeqAgainst<'a, 'w>;
    type SerializeMap = MapAgainst<'a, 'w>;
    type SerializeStruct = MapAgainst<'a, 'w>;
    type SerializeStructVariant = MapAgainst<'a, 'w>;

    settle_scalars!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_bytes(&[u8])
    );

    fn serialize_str(self, v: &str) -> Result<()> {
        // Most strings are as they were: compared where they are, not copied.
        if let Value::String(old) = &self.base.value
            && old == v
        {
            hash_str(v, &mut self.walk.hash);
            return Ok(());
        }
        self.settle(Value::String(Text::new(v)))
    }

    fn serialize_none(self) -> Result<()> {
        self.settle(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<()> {
        self.settle(Value::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.settle(Value::Null)
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<()> {
        let value = Serializer.serialize_unit_variant(name, index, variant)?;
        self.settle(value)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        let value = Serializer.serialize_newtype_variant(name, index, variant, value)?;
        self.settle(value)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SeqAgainst<'a, 'w>> {
        match &self.base.value {
            Value::Array(items) => {
                self.walk.hash.add(b"[");
                Ok(SeqAgainst::Walk {
                    items,
                    index: 0,
                    walk: self.walk,
                })
            }
            _ => Ok(SeqAgainst::Build {
                seq: Serializer.serialize_seq(len)?,
                against: self,
            }),
        }
    }

    fn serialize_tuple(self, len: usize) -> Result<SeqAgainst<'a, 'w>> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqAgainst<'a, 'w>> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqAgainst<'a, 'w>> {
        Ok(SeqAgainst::Build {
            seq: Serializer.serialize_tuple_variant(name, index, variant, len)?,
            against: self,
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<MapAgainst<'a, 'w>> {
        match &self.base.value {
            Value::Table(table) => Ok(MapAgainst::Walk(TableWalk::new(table, self.walk))),
            _ => Ok(MapAgainst::Build {
                map: Serializer.serialize_map(len)?,
                against: self,
            }),
        }
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapAgainst<'a, 'w>> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapAgainst<'a, 'w>> {
        Ok(MapAgainst::Build {
            map: Serializer.serialize_struct_variant(name, index, variant, len)?,
            against: self,
        })
    }
}

/// A sequence against an array of the base, item by item; against anything else, built
/// whole.
enum SeqAgainst<'a, 'w> {
    Walk {
        items: &'a [Node],
        /// Items serialized so far.
        index: usize,
        walk: &'w mut Walk<'a>,
    },
    Build {
        seq: Seq,
        against: Against<'a, 'w>,
    },
}

impl SeqAgainst<'_, '_> {
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let (items, index, walk) = match self {
            Self::Build { seq, .. } => return seq.push(value),
            Self::Walk { items, index, walk } => (*items, index, walk),
        };
        if *index > 0 {
            walk.hash.add(b",");
        }
        match items.get(*index) {
            Some(item) => {
                walk.steps.push(Step::Index(*index));
                value.serialize(Against { base: item, walk })?;
                walk.steps.pop();
            }
            None => {
                let new = to_node(value)?;
                hash_json(&new, &mut walk.hash);
                let path = path_to(&walk.steps, Step::Index(*index));
                walk.out.push(Change::added(path, new.to_diff_json()));
            }
        }
        *index += 1;
        Ok(())
    }

    fn done(self) -> Result<()> {
        match self {
            Self::Build { seq, against } => against.settle(seq.done()),
            Self::Walk { items, index, walk } => {
                walk.hash.add(b"]");
                for (index, old) in items.iter().enumerate().skip(index) {
                    let path = path_to(&walk.steps, Step::Index(index));
                    walk.out.push(Change::removed(path, old.to_diff_json()));
                }
                Ok(())
            }
        }
    }
}

/// The four sequence kinds walk the same way.
macro_rules! walk_items {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for SeqAgainst<'_, '_> {
            type Ok = ();
            type Error = Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
                self.item(value)
            }

            fn end(self) -> Result<()> {
                self.done()
            }
        }
    )*};
}

walk_items!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// A map or struct against a table of the base, entry by entry; against anything else,
/// built whole.
enum MapAgainst<'a, 'w> {
    Walk(TableWalk<'a, 'w>),
    Build { map: Map, against: Against<'a, 'w> },
}

impl MapAgainst<'_, '_> {
    fn done(self) -> Result<()> {
        match self {
            Self::Walk(walk) => walk.done(),
            Self::Build { map, against } => against.settle(map.done()),
        }
    }
}

/// A map or struct serializing against a table of the base.
struct TableWalk<'a, 'w> {
    table: &'a Table,
    walk: &'w mut Walk<'a>,
    /// Where this table's changes start in `walk.out`.
    out_start: usize,
    /// Where this table's marks start in `walk.marks`.
    marks_start: usize,
    /// Entries serialized so far.
    count: usize,
    /// Whether the keys found in the base came in the base's order so far.
    in_order: bool,
    /// The entries that are not in the base, built.
    added: Option<Table>,
    /// A map's key, waiting for its value.
    key: Option<Key>,
}

impl<'a, 'w> TableWalk<'a, 'w> {
    fn new(table: &'a Table, walk: &'w mut Walk<'a>) -> Self {
        walk.hash.add(b"{");
        Self {
            table,
            out_start: walk.out.len(),
            marks_start: walk.marks.len(),
            walk,
            count: 0,
            in_order: true,
            added: None,
            key: None,
        }
    }

    fn entry<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        let walk = &mut *self.walk;
        if self.count > 0 {
            walk.hash.add(b",");
        }
        hash_str(key, &mut walk.hash);
        walk.hash.add(b":");
        // Looked for at the same place first: two versions of a config mostly have their
        // keys in the same order.
        let table = self.table;
        let found = table
            .get_index(self.count)
            .filter(|(k, _)| k.as_str() == key)
            .map(|(k, n)| (self.count, k, n))
            .or_else(|| table.get_full(key));
        match found {
            Some((index, base_key, base)) => {
                if let Some(&(last, _)) = walk.marks[self.marks_start..].last()
                    && last >= index
                {
                    self.in_order = false;
                }
                walk.marks.push((index, walk.out.len()));
                walk.steps.push(Step::Key(base_key.as_str()));
                value.serialize(Against {
                    base,
                    walk: &mut *walk,
                })?;
                walk.steps.pop();
            }
            None => {
                let new = to_node(value)?;
                hash_json(&new, &mut walk.hash);
                if self
                    .added
                    .get_or_insert_default()
                    .insert(Key::new(key), new)
                    .is_some()
                {
                    return Err(walk.twice());
                }
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Puts this table's changes in [`diff_trees`]' order: the base's keys in its order,
    /// each with its changes or as removed, then the added keys in theirs.
    fn done(self) -> Result<()> {
        let Self {
            table,
            walk,
            out_start,
            marks_start,
            in_order,
            added,
            ..
        } = self;
        walk.hash.add(b"}");
        if in_order && walk.marks.len() - marks_start == table.len() && added.is_none() {
            // Every key found, in order, none added: the changes are in order already.
            walk.marks.truncate(marks_start);
            return Ok(());
        }
        let marks: Vec<(usize, usize)> = walk.marks.drain(marks_start..).collect();
        let mut changes: Vec<Option<Change>> = walk.out.drain(out_start..).map(Some).collect();
        // A found key's changes run from its mark to the next one's.
        let mut runs: Vec<(usize, Range<usize>)> = marks
            .iter()
            .enumerate()
            .map(|(i, &(index, at))| {
                let end = marks.get(i + 1).map_or(out_start + changes.len(), |m| m.1);
                (index, at - out_start..end - out_start)
            })
            .collect();
        runs.sort_unstable_by_key(|(index, _)| *index);
        if runs.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return Err(walk.twice());
        }
        let mut runs = runs.into_iter().peekable();
        for (index, (key, old)) in table.iter().enumerate() {
            match runs.next_if(|(found, _)| *found == index) {
                Some((_, run)) => walk
                    .out
                    .extend(changes[run].iter_mut().filter_map(Option::take)),
                None => {
                    let path = path_to(&walk.steps, Step::Key(key));
                    walk.out.push(Change::removed(path, old.to_diff_json()));
                }
            }
        }
        if let Some(added) = added {
            let at = path_of(&walk.steps);
            for (key, new) in added {
                let mut path = at.clone();
                path.push(Segment::Key(key.to_string()));
                walk.out.push(Change::added(path, new.to_diff_json()));
            }
        }
        Ok(())
    }
}

impl ser::SerializeMap for MapAgainst<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        match self {
            Self::Walk(walk) => {
                walk.key = Some(key.serialize(KeySerializer)?);
                Ok(())
            }
            Self::Build { map, .. } => ser::SerializeMap::serialize_key(map, key),
        }
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        match self {
            Self::Walk(walk) => {
                let key = walk
                    .key
                    .take()
                    .ok_or_else(|| Error("a map value came before its key".into()))?;
                walk.entry(&key, value)
            }
            Self::Build { map, .. } => ser::SerializeMap::serialize_value(map, value),
        }
    }

    fn end(self) -> Result<()> {
        self.done()
    }
}

/// Structs and struct variants walk their fields the same way.
macro_rules! walk_fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for MapAgainst<'_, '_> {
            type Ok = ();
            type Error = Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<()> {
                match self {
                    Self::Walk(walk) => walk.entry(key, value),
                    Self::Build { map, .. } => ser::$trait::serialize_field(map, key, value),
                }
            }

            fn end(self) -> Result<()> {
                self.done()
            }
        }
    )*};
}

walk_fields!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests;
