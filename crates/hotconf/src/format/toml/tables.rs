//! The tables that headers and dotted keys may still add to, with the `toml` crate's rules
//! for defining them.
//!
//! A table written with a `[header]`, an `[[array]]` item, the root, and the tables their keys
//! imply stay open to later headers and dotted keys until the end of the document. Their
//! entries go straight into the final [`Table`]; an entry that is itself such a table holds a
//! placeholder until [`Open::finish`] puts the finished child in its place, so that nothing
//! is rehashed. Arrays and inline tables are closed once written: they are final nodes from
//! the start.

use std::borrow::Cow;
use std::ops::Range;

use toml_parser::ParseError;

use crate::tree::{Key, Node, Span, Table, Value};

use super::hull;

/// A key as written: one part of a dotted key, decoded, and the bytes it was written in.
#[derive(Debug)]
pub(super) struct Part<'a> {
    pub(super) name: Cow<'a, str>,
    pub(super) span: Range<usize>,
}

/// Why an open table refused a key.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The `toml` crate's error for the same document.
    Parse(ParseError),
    /// A table or an array would sit deeper than `Limits::max_depth`: the one that the first
    /// `prefix` parts of the key name (then the `item`th item of that array of tables), written
    /// at byte `start`.
    TooDeep {
        start: usize,
        prefix: usize,
        item: Option<usize>,
    },
}

/// A table still open to headers and dotted keys.
#[derive(Debug)]
pub(super) struct Open {
    /// Its entries in the order written; a child's entry holds a placeholder.
    table: Table,
    /// The entries that are open tables or arrays of tables, by increasing `slot`.
    children: Vec<Child>,
    /// Implied by a header's or a dotted key's path, not defined by a header of its own.
    pub(super) implicit: bool,
    /// Implied (or extended) by a dotted key: no header may define it.
    pub(super) dotted: bool,
    /// The bytes the crate locates it at (its header, or the key that implies it), and its
    /// 1-based line and column.
    own: Range<usize>,
    at: (u32, u32),
    /// Its own bytes and those of its keys and closed values so far.
    covered: Range<usize>,
    /// How deep it sits: the root is 1.
    pub(super) depth: usize,
}

#[derive(Debug)]
struct Child {
    /// Its entry's index in the parent's table.
    slot: usize,
    shape: Shape,
}

#[derive(Debug)]
enum Shape {
    Table(Open),
    /// An array of tables, located at its first header; never empty.
    Tables {
        own: Range<usize>,
        at: (u32, u32),
        items: Vec<Open>,
    },
}

/// What a key names in an open table.
enum Entry {
    Vacant,
    /// A closed value, at this index of the table.
    Closed(usize),
    /// An open table or an array of tables, at this index of `children`.
    Child(usize),
}

impl Open {
    /// An empty table located at `own`, `at`, `depth` levels deep, with room for `capacity`
    /// entries.
    pub(super) fn new(own: Range<usize>, at: (u32, u32), depth: usize, capacity: usize) -> Self {
        Self {
            table: Table::with_capacity_and_hasher(capacity, Default::default()),
            children: Vec::new(),
            implicit: false,
            dotted: false,
            covered: own.clone(),
            own,
            at,
            depth,
        }
    }

    /// The number of entries.
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    fn entry(&self, name: &str) -> Entry {
        let Some(slot) = self.table.get_index_of(name) else {
            return Entry::Vacant;
        };
        match self
            .children
            .binary_search_by_key(&slot, |child| child.slot)
        {
            Ok(position) => Entry::Child(position),
            Err(_) => Entry::Closed(slot),
        }
    }

    /// Adds a child under a new key and gives its position in `children`.
    fn add_child(&mut self, part: &Part<'_>, shape: Shape) -> usize {
        self.covered = hull(self.covered.clone(), part.span.clone());
        let placeholder = Node::new(Value::Null, Span::default());
        let (slot, _) = self.table.insert_full(Key::new(&*part.name), placeholder);
        self.children.push(Child { slot, shape });
        self.children.len() - 1
    }

    /// The open table at `position` in `children`: a table, or an array's last item.
    pub(super) fn child_mut(&mut self, position: usize) -> Option<&mut Open> {
        match &mut self.children.get_mut(position)?.shape {
            Shape::Table(open) => Some(open),
            Shape::Tables { items, .. } => items.last_mut(),
        }
    }

    /// The open table at `position` in `children`: a table, or an array's last item.
    pub(super) fn child(&self, position: usize) -> Option<&Open> {
        match &self.children.get(position)?.shape {
            Shape::Table(open) => Some(open),
            Shape::Tables { items, .. } => items.last(),
        }
    }

    /// Adds a closed value under the last part of a key.
    pub(super) fn add_value(&mut self, part: Part<'_>, node: Node) -> Result<(), ParseError> {
        use indexmap::map::Entry as MapEntry;
        match self.table.entry(Key::new(&*part.name)) {
            MapEntry::Occupied(_) => Err(duplicate(&part.span)),
            MapEntry::Vacant(vacant) => {
                self.covered = hull(self.covered.clone(), part.span);
                self.covered = hull(self.covered.clone(), node.span.range());
                vacant.insert(node);
                Ok(())
            }
        }
    }

    /// The table that `parts` name below this one, made (implied) where missing: through
    /// headers' paths (`dotted` false) or through dotted keys. `positions` gets each step's
    /// position in its table's `children`; `text` tells a date from a string.
    pub(super) fn descend<'o>(
        &'o mut self,
        parts: &[Part<'_>],
        dotted: bool,
        positions: &mut Vec<usize>,
        locate: &mut dyn FnMut(usize) -> (u32, u32),
        max_depth: usize,
        text: &str,
    ) -> Result<&'o mut Open, Refusal> {
        let mut open = self;
        for (k, part) in parts.iter().enumerate() {
            let position = match open.entry(&part.name) {
                Entry::Vacant => {
                    let depth = open.depth + 1;
                    if depth > max_depth {
                        return Err(Refusal::TooDeep {
                            start: part.span.start,
                            prefix: k + 1,
                            item: None,
                        });
                    }
                    let mut table = Open::new(part.span.clone(), locate(part.span.start), depth, 0);
                    table.implicit = true;
                    table.dotted = dotted;
                    open.add_child(part, Shape::Table(table))
                }
                Entry::Closed(slot) => {
                    return Err(Refusal::Parse(cannot_extend(&open.table, slot, part, text)));
                }
                Entry::Child(position) => {
                    if let Some(Shape::Table(table)) =
                        open.children.get_mut(position).map(|c| &mut c.shape)
                    {
                        if dotted && table.implicit {
                            table.dotted = true;
                        }
                        // Dotted keys may not extend a table a header defined.
                        if dotted && !table.implicit {
                            return Err(Refusal::Parse(
                                ParseError::new("duplicate key").with_unexpected(span(&part.span)),
                            ));
                        }
                    }
                    position
                }
            };
            positions.push(position);
            open = match open.child_mut(position) {
                Some(child) => child,
                None => return Err(Refusal::Parse(duplicate(&part.span))),
            };
        }
        Ok(open)
    }

    /// Defines the table `[… last]` of a header written at `own` in this table; gives its
    /// position in `children`.
    pub(super) fn define(
        &mut self,
        last: &Part<'_>,
        own: Range<usize>,
        at: (u32, u32),
        capacity: usize,
        max_depth: usize,
    ) -> Result<usize, Refusal> {
        match self.entry(&last.name) {
            Entry::Vacant => {
                let depth = self.depth + 1;
                if depth > max_depth {
                    return Err(too_deep(own.start, None));
                }
                let table = Open::new(own, at, depth, capacity);
                Ok(self.add_child(last, Shape::Table(table)))
            }
            Entry::Child(position) => match &mut self.children[position].shape {
                // A table only implied by headers' paths may be defined once, later.
                Shape::Table(table) if table.implicit && !table.dotted => {
                    table.implicit = false;
                    table.covered = hull(table.covered.clone(), own.clone());
                    table.own = own;
                    table.at = at;
                    self.covered = hull(self.covered.clone(), last.span.clone());
                    // The crate keeps the key of the header that defines it: written last.
                    Ok(self.move_to_end(position))
                }
                _ => Err(Refusal::Parse(duplicate(&last.span))),
            },
            Entry::Closed(_) => Err(Refusal::Parse(duplicate(&last.span))),
        }
    }

    /// Adds an item to the array of tables `[[… last]]` of a header written at `own` in this
    /// table, making the array if new; gives the array's position in `children`.
    pub(super) fn append(
        &mut self,
        last: &Part<'_>,
        own: Range<usize>,
        at: (u32, u32),
        capacity: usize,
        max_depth: usize,
    ) -> Result<usize, Refusal> {
        let depth = self.depth + 1;
        let position = match self.entry(&last.name) {
            Entry::Vacant => {
                if depth > max_depth {
                    return Err(too_deep(own.start, None));
                }
                let items = Vec::new();
                let shape = Shape::Tables {
                    own: own.clone(),
                    at,
                    items,
                };
                self.add_child(last, shape)
            }
            Entry::Child(position) => position,
            Entry::Closed(_) => return Err(Refusal::Parse(duplicate(&last.span))),
        };
        // A table of that name, not an array of tables, is a key defined twice.
        let Shape::Tables { items, .. } = &mut self.children[position].shape else {
            return Err(Refusal::Parse(duplicate(&last.span)));
        };
        if depth + 1 > max_depth {
            return Err(too_deep(own.start, Some(items.len())));
        }
        items.push(Open::new(own, at, depth + 1, capacity));
        Ok(position)
    }

    /// Moves the child at `position` to the end of the table; gives its new position.
    fn move_to_end(&mut self, position: usize) -> usize {
        let last = self.table.len() - 1;
        let mut child = self.children.remove(position);
        self.table.move_index(child.slot, last);
        // The entries after it moved up by one.
        for later in &mut self.children[position..] {
            later.slot -= 1;
        }
        child.slot = last;
        self.children.push(child);
        self.children.len() - 1
    }

    /// The path segments below this table of the child at `position` (its key, then the index
    /// of an array's last item).
    pub(super) fn segments(&self, position: usize, out: &mut Vec<crate::path::Segment>) {
        use crate::path::Segment;
        let Some(child) = self.children.get(position) else {
            return;
        };
        if let Some((key, _)) = self.table.get_index(child.slot) {
            out.push(Segment::Key(key.as_str().to_owned()));
        }
        if let Shape::Tables { items, .. } = &child.shape {
            out.push(Segment::Index(items.len().saturating_sub(1)));
        }
    }

    /// The position in `children` of the child named `name`, if it is open.
    pub(super) fn position(&self, name: &str) -> Option<usize> {
        match self.entry(name) {
            Entry::Child(position) => Some(position),
            _ => None,
        }
    }

    /// The finished node of document `doc`: children in their places, the range the table
    /// covers (its own bytes, its keys', its values').
    pub(super) fn finish(self, doc: u32) -> Node {
        let Self {
            mut table,
            children,
            at,
            mut covered,
            ..
        } = self;
        for child in children {
            let node = match child.shape {
                Shape::Table(open) => open.finish(doc),
                Shape::Tables { own, at, items } => {
                    let mut covered = own;
                    let items: Vec<Node> = items
                        .into_iter()
                        .map(|item| {
                            let node = item.finish(doc);
                            covered = hull(covered.clone(), node.span.range());
                            node
                        })
                        .collect();
                    Node::new(Value::Array(items), located(doc, at, covered))
                }
            };
            covered = hull(covered, node.span.range());
            if let Some((_, slot)) = table.get_index_mut(child.slot) {
                *slot = node;
            }
        }
        Node::new(Value::Table(Box::new(table)), located(doc, at, covered))
    }
}

/// A span of document `doc` located at `(line, column)` that covers `range`.
pub(super) fn located(doc: u32, (line, column): (u32, u32), range: Range<usize>) -> Span {
    Span {
        doc,
        line,
        column,
        start: Span::offset(range.start),
        end: Span::offset(range.end),
    }
}

fn too_deep(start: usize, item: Option<usize>) -> Refusal {
    Refusal::TooDeep {
        start,
        prefix: usize::MAX,
        item,
    }
}

fn span(range: &Range<usize>) -> toml_parser::Span {
    toml_parser::Span::new_unchecked(range.start, range.end)
}

/// The crate's error for a key defined twice.
pub(super) fn duplicate(key: &Range<usize>) -> ParseError {
    ParseError::new("duplicate key").with_unexpected(span(key))
}

/// The crate's error for a dotted key or a header's path through the closed value at `slot`.
fn cannot_extend(table: &Table, slot: usize, part: &Part<'_>, text: &str) -> ParseError {
    let what = table
        .get_index(slot)
        .map_or("value", |(_, node)| match &node.value {
            // Only inline tables are closed tables in an open one.
            Value::Table(_) => "inline table",
            other => type_name(other, node.span.range().start, text),
        });
    ParseError::new(format!(
        "cannot extend value of type {what} with a dotted key"
    ))
    .with_unexpected(span(&part.span))
}

/// The crate's name for a value's type; a date is a string here, written without quotes.
pub(super) fn type_name(value: &Value, start: usize, text: &str) -> &'static str {
    match value {
        Value::String(_) => match text.as_bytes().get(start) {
            Some(b'"' | b'\'') => "string",
            _ => "datetime",
        },
        Value::Integer(_) | Value::Unsigned(_) => "integer",
        Value::Float(_) => "float",
        Value::Bool(_) => "boolean",
        Value::Array(_) => "array",
        Value::Table(_) => "table",
        Value::Null => "value",
    }
}
