//! The parsed form of a document: a tree of values that remember where they were written.
//!
//! Every format parses into this tree so that merging, typed loading and validation can
//! point any problem back at the file, line and column that set the value.

use indexmap::IndexMap;

pub(crate) use crate::document::Span;
use crate::path::{ConfigPath, Segment};

/// A table of a [`Node`] tree, in the order the keys were written. Keys are hashed with
/// foldhash (seeded per process), not SipHash: every stage looks keys up, and config keys
/// are short.
pub type Table = IndexMap<Key, Node, foldhash::fast::RandomState>;

/// A key of a [`Table`]: a [`Text`].
pub type Key = Text;

/// The text of a key or a string value. Config keys and most values are short: up to 23
/// bytes are kept inline, so building, copying and freeing a tree allocates nothing for
/// them (a longer one is shared, and copied by a count).
pub type Text = smol_str::SmolStr;

/// A value of the tree: the JSON data model, with TOML dates kept as their text.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null` (JSON, YAML); TOML has none.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number that fits `i64`.
    Integer(i64),
    /// A whole number above `i64::MAX` (JSON and YAML).
    Unsigned(u64),
    /// A floating-point number; TOML's `inf`/`nan` and YAML's `.inf`/`.nan` make it
    /// infinite or NaN (JSON has neither).
    Float(f64),
    /// A string, or a TOML date and time written as text.
    String(Text),
    /// An array; items keep their own spans.
    Array(Vec<Node>),
    /// A table (mapping, object), boxed: a table is larger than any other value, and a
    /// node of every kind would otherwise pay for it (100,000 small values hold 5 MB less).
    Table(Box<Table>),
}

/// A value with its [`Span`].
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it was written.
    pub span: Span,
}

impl Node {
    /// A node at `span`.
    pub fn new(value: Value, span: Span) -> Self {
        Self { value, span }
    }

    /// The node at `path`, if the tree has one.
    pub fn get(&self, path: &ConfigPath) -> Option<&Node> {
        path.segments()
            .iter()
            .try_fold(self, |node, segment| match (&node.value, segment) {
                (Value::Table(table), Segment::Key(key)) => table.get(key.as_str()),
                (Value::Array(items), Segment::Index(i)) => items.get(*i),
                _ => None,
            })
    }

    /// The deepest node on the way to `path`: where to point when `path` itself is missing
    /// (a missing field is reported at the table that lacks it).
    pub fn nearest(&self, path: &ConfigPath) -> &Node {
        let mut node = self;
        for segment in path.segments() {
            let next = match (&node.value, segment) {
                (Value::Table(table), Segment::Key(key)) => table.get(key.as_str()),
                (Value::Array(items), Segment::Index(i)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => break,
            }
        }
        node
    }

    /// The plain JSON value of this tree, spans dropped.
    ///
    /// JSON has no infinity or NaN: a non-finite [`Value::Float`] becomes `null`. Typed
    /// loading does not go through this view, so an `f64` field still reads `inf` and `nan`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Integer(i) => J::from(*i),
            Value::Unsigned(u) => J::from(*u),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::String(s) => J::String(s.as_str().to_owned()),
            Value::Array(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Table(table) => J::Object(
                table
                    .iter()
                    .map(|(key, node)| (key.as_str().to_owned(), node.to_json()))
                    .collect(),
            ),
        }
    }

    /// The JSON a diff compares: like [`to_json`](Self::to_json), but a non-finite float
    /// is written as the string `"inf"`, `"-inf"` or `"nan"`, so that a change to or
    /// between them is seen and shown.
    pub(crate) fn to_diff_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Float(f) if f.is_nan() => J::String("nan".into()),
            Value::Float(f) if f.is_infinite() => {
                J::String(if *f > 0.0 { "inf" } else { "-inf" }.into())
            }
            Value::Array(items) => J::Array(items.iter().map(Node::to_diff_json).collect()),
            Value::Table(table) => J::Object(
                table
                    .iter()
                    .map(|(key, node)| (key.as_str().to_owned(), node.to_diff_json()))
                    .collect(),
            ),
            _ => self.to_json(),
        }
    }

    /// The depth of the deepest value: a scalar is 0, `{a: {b: 1}}` is 2.
    pub fn depth(&self) -> usize {
        match &self.value {
            Value::Array(items) => 1 + items.iter().map(Node::depth).max().unwrap_or(0),
            Value::Table(table) => 1 + table.values().map(Node::depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// Merges `upper` over `self`: tables merge key by key, recursively; anything else in
    /// `upper` replaces what `self` had, and keeps `upper`'s span.
    pub fn merge(&mut self, upper: Node) {
        match (&mut self.value, upper.value) {
            (Value::Table(lower), Value::Table(upper_table)) => {
                for (key, node) in *upper_table {
                    match lower.get_mut(&key) {
                        Some(existing) => existing.merge(node),
                        None => {
                            lower.insert(key, node);
                        }
                    }
                }
            }
            (_, value) => {
                *self = Node::new(value, upper.span);
            }
        }
    }
}

/// Maps byte offsets of a text to 1-based lines and character columns.
///
/// Parsers locate values in about the order they were written, so the index remembers where
/// it last stood and counts on from there: locating every value of a document costs one pass
/// over it, not a search per value. A jump back to an earlier line (a TOML table written in
/// parts) finds that line by binary search over line starts, which are collected once, on the
/// first such jump.
#[derive(Debug)]
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    /// The byte last located, its 0-based line, the byte that line starts at, and the
    /// 0-based character column of the byte.
    at: usize,
    line: usize,
    line_start: usize,
    column: usize,
    /// Byte offset where each line starts, once a jump back needed them.
    starts: Option<Vec<usize>>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            at: 0,
            line: 0,
            line_start: 0,
            column: 0,
            starts: None,
        }
    }

    /// The 1-based (line, column) of a byte offset; the column counts characters.
    pub(crate) fn locate(&mut self, offset: usize) -> (u32, u32) {
        let bytes = self.text.as_bytes();
        let offset = offset.min(bytes.len());
        if offset < self.line_start {
            let text = self.text;
            let starts = self.starts.get_or_insert_with(|| {
                std::iter::once(0)
                    .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                    .collect()
            });
            self.line = starts.partition_point(|&start| start <= offset) - 1;
            self.line_start = starts[self.line];
            self.at = self.line_start;
            self.column = 0;
        } else if offset < self.at {
            self.at = self.line_start;
            self.column = 0;
        }
        // One pass over the bytes between: values are a few bytes apart, so a plain loop
        // beats searching for line feeds and counting characters separately.
        for (i, &b) in bytes[self.at..offset].iter().enumerate() {
            if b == b'\n' {
                self.line += 1;
                self.line_start = self.at + i + 1;
                self.column = 0;
            } else if b & 0xC0 != 0x80 {
                // Any byte but a UTF-8 continuation byte starts a character.
                self.column += 1;
            }
        }
        self.at = offset;
        (saturate(self.line + 1), saturate(self.column + 1))
    }

    /// A span in document `doc` located at byte `offset` and covering `range` (the TOML
    /// parser locates by offset).
    #[cfg(feature = "toml")]
    pub(crate) fn span(&mut self, doc: u32, offset: usize, range: std::ops::Range<usize>) -> Span {
        let (line, column) = self.locate(offset);
        Span {
            doc,
            line,
            column,
            start: Span::offset(range.start),
            end: Span::offset(range.end),
        }
    }
}

pub(crate) fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_small_whatever_its_kind() {
        // A config of 100,000 values is 100,000 nodes: a table inline in `Value` (its map,
        // index and hasher) would make every scalar pay for it.
        assert_eq!(std::mem::size_of::<Value>(), 32);
        assert_eq!(std::mem::size_of::<Node>(), 56);
    }

    fn table(entries: Vec<(&str, Node)>) -> Node {
        Node::new(
            Value::Table(Box::new(
                entries.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            )),
            Span::default(),
        )
    }

    fn int(i: i64, doc: u32) -> Node {
        Node::new(
            Value::Integer(i),
            Span {
                doc,
                line: 1,
                column: 1,
                ..Span::default()
            },
        )
    }

    #[test]
    fn merge_is_deep_for_tables_and_replaces_the_rest() {
        let mut lower = table(vec![
            ("a", table(vec![("x", int(1, 0)), ("y", int(2, 0))])),
            (
                "list",
                Node::new(Value::Array(vec![int(1, 0), int(2, 0)]), Span::default()),
            ),
        ]);
        let upper = table(vec![
            ("a", table(vec![("y", int(20, 1)), ("z", int(30, 1))])),
            (
                "list",
                Node::new(Value::Array(vec![int(9, 1)]), Span::default()),
            ),
        ]);
        lower.merge(upper);
        assert_eq!(
            lower.to_json(),
            serde_json::json!({"a": {"x": 1, "y": 20, "z": 30}, "list": [9]})
        );
        let y = lower.get(&"a.y".parse().unwrap()).unwrap();
        assert_eq!(y.span.doc, 1, "the overriding layer owns the value");
        let x = lower.get(&"a.x".parse().unwrap()).unwrap();
        assert_eq!(x.span.doc, 0);
    }

    #[test]
    fn nearest_stops_at_the_deepest_existing_node() {
        let tree = table(vec![("a", table(vec![("x", int(1, 3))]))]);
        let node = tree.nearest(&"a.x.missing".parse().unwrap());
        assert_eq!(node.span.doc, 3);
    }

    #[test]
    fn line_index_counts_characters() {
        let mut index = LineIndex::new("a = 1\nbé = 2\n");
        assert_eq!(index.locate(0), (1, 1));
        assert_eq!(index.locate(6), (2, 1));
        // 'é' is two bytes: byte 10 is the character at column 4 ("bé " then '=').
        assert_eq!(index.locate(10), (2, 4));
        assert_eq!(index.locate(100), (3, 1));
    }

    #[test]
    fn line_index_locates_in_any_order() {
        let text = "ab\ncdé\n\nxyz\nq";
        // What a scan from the start finds, by byte.
        let expected = |offset: usize| {
            let before = &text.as_bytes()[..offset.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let column = before[start..]
                .iter()
                .filter(|&&b| b & 0xC0 != 0x80)
                .count()
                + 1;
            (saturate(line), saturate(column))
        };
        let mut index = LineIndex::new(text);
        let offsets = [0, 1, 4, 3, 9, 2, 14, 13, 10, 0, 16, 20, 5, 6, 7, 11];
        for offset in offsets {
            assert_eq!(index.locate(offset), expected(offset), "byte {offset}");
        }
    }
}
