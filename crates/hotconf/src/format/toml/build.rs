//! The receiver of `toml_parser`'s events: builds the tree as keys and values arrive.
//!
//! The parser checks the grammar and reports what it cannot read; the builder decodes keys
//! and scalars (reporting bad escapes, numbers and dates as the `toml` crate does), applies
//! the crate's rules for tables, and checks numbers' ranges and `Limits::max_depth`. After the
//! first error, from either, it ignores the rest: events after an error need not make sense.

use std::borrow::Cow;
use std::cell::Cell;
use std::ops::Range;

use toml_parser::decoder::Encoding;
use toml_parser::{ErrorSink, ParseError, Raw};

mod events;

use super::problem;
use super::tables::{Open, Part, Refusal, located};
use crate::document::Limits;
use crate::error::Problem;
use crate::path::Segment;
use crate::tree::{Key, LineIndex, Node, Table, Value};

/// Builds one document's tree from its events.
pub(super) struct Builder<'a> {
    text: &'a str,
    index: LineIndex<'a>,
    doc: u32,
    max_depth: usize,
    limits: &'a Limits,
    /// Set at the first error, the parser's or ours.
    failed: &'a Cell<bool>,
    /// Our first error, if it came before any of the parser's.
    problem: Option<Problem>,
    root: Open,
    /// The table the last header defined: its position in each open table's children, from
    /// the root, and its depth.
    current: Vec<usize>,
    current_depth: usize,
    at: At,
    /// The key being read outside any value: a header's or a key-value's, and where it starts.
    key: Vec<Part<'a>>,
    key_start: usize,
    /// The arrays and inline tables being read, innermost last.
    frames: Vec<Frame<'a>>,
    /// Room for the next header's table: as many entries as the last one had.
    capacity: usize,
    /// Positions walked while following a dotted key (kept for its allocation).
    scratch: Vec<usize>,
    /// An `[[array]]` header's error, and the table its key-values go to meanwhile: the
    /// crate places such an item when the next header starts, so errors in its key-values
    /// come first.
    deferred: Option<ParseError>,
    detached: Option<Open>,
}

/// Where the reading stands outside any value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum At {
    /// Between expressions.
    Line,
    /// In a header opened at this byte: `[[` if `array`.
    Header { array: bool, open: usize },
    /// In a key-value's key.
    Key,
    /// Past a key-value's `=`.
    Value,
}

/// An array or an inline table being read.
enum Frame<'a> {
    Array {
        open: usize,
        at: (u32, u32),
        depth: usize,
        items: Vec<Node>,
    },
    Inline {
        open: usize,
        at: (u32, u32),
        depth: usize,
        table: Table,
        /// The key of the entry being read.
        key: Vec<Part<'a>>,
    },
}

/// Most entries a header's table is made room for before it is read.
const MAX_CAPACITY: usize = 1024;

impl<'a> Builder<'a> {
    pub(super) fn new(text: &'a str, doc: u32, limits: &'a Limits, failed: &'a Cell<bool>) -> Self {
        Self {
            text,
            index: LineIndex::new(text),
            doc,
            max_depth: limits.max_depth,
            limits,
            failed,
            problem: None,
            root: Open::new(0..0, (1, 1), 1, 0),
            current: Vec::new(),
            current_depth: 1,
            at: At::Line,
            key: Vec::new(),
            key_start: 0,
            frames: Vec::new(),
            capacity: 0,
            scratch: Vec::new(),
            deferred: None,
            detached: None,
        }
    }

    /// Our first error, if it came before any of the parser's.
    pub(super) fn take_problem(&mut self) -> Option<Problem> {
        self.end_table();
        self.problem.take()
    }

    /// The end of a header's key-values: its deferred error, if any, is due.
    fn end_table(&mut self) {
        if let Some(error) = self.deferred.take() {
            self.fail_parse(&error);
        }
        self.detached = None;
    }

    /// The tree.
    pub(super) fn finish(self) -> Node {
        self.root.finish(self.doc)
    }

    /// The located problem for an error of the crate's kind.
    pub(super) fn problem(&mut self, error: &ParseError) -> Problem {
        problem(error, self.text, &mut self.index)
    }

    fn live(&self) -> bool {
        !self.failed.get()
    }

    /// Records our error unless another came first.
    fn fail(&mut self, problem: Problem) {
        if self.live() {
            self.failed.set(true);
            self.problem = Some(problem);
        }
    }

    fn fail_parse(&mut self, error: &ParseError) {
        let problem = self.problem(error);
        self.fail(problem);
    }

    /// An error of a value's own (a number out of range, too deep), at byte `start`, with the
    /// path of the value being read.
    fn fail_here(&mut self, problem: Problem, start: usize, path: Vec<Segment>) {
        let (line, column) = self.index.locate(start);
        let mut problem = problem.at_location(String::new(), line, column);
        problem.path = Some(path.into_iter().collect());
        self.fail(problem);
    }

    fn fail_too_deep(&mut self, start: usize, path: Vec<Segment>) {
        self.fail_here(crate::format::depth_problem(self.limits), start, path);
    }

    /// The path from the root through the open tables at `positions`, then by the names of
    /// `parts` (with the last item of any array of tables on the way).
    fn path_of(&self, positions: &[usize], parts: &[Part<'_>]) -> Vec<Segment> {
        let mut path = Vec::new();
        let mut open = Some(&self.root);
        for &position in positions {
            let Some(table) = open else { break };
            table.segments(position, &mut path);
            open = table.child(position);
        }
        for part in parts {
            let position = open.and_then(|table| table.position(&part.name));
            match (open, position) {
                (Some(table), Some(position)) => {
                    table.segments(position, &mut path);
                    open = table.child(position);
                }
                _ => {
                    path.push(Segment::Key(part.name.clone().into_owned()));
                    open = None;
                }
            }
        }
        path
    }

    /// The path of the value being read.
    fn trail(&self) -> Vec<Segment> {
        let key: &[Part<'_>] = if self.at == At::Value { &self.key } else { &[] };
        let mut path = self.path_of(&self.current, key);
        for frame in &self.frames {
            match frame {
                Frame::Array { items, .. } => path.push(Segment::Index(items.len())),
                Frame::Inline { key, .. } => path.extend(
                    key.iter()
                        .map(|part| Segment::Key(part.name.clone().into_owned())),
                ),
            }
        }
        path
    }

    /// How deep a table or an array written as the value being read sits.
    fn value_depth(&self) -> usize {
        match self.frames.last() {
            Some(Frame::Array { depth, .. }) => depth + 1,
            Some(Frame::Inline { depth, key, .. }) => depth + key.len(),
            None => self.current_depth + self.key.len(),
        }
    }

    /// The key read into the innermost place that reads keys.
    fn key_mut(&mut self) -> Option<&mut Vec<Part<'a>>> {
        match self.frames.last_mut() {
            Some(Frame::Inline { key, .. }) => Some(key),
            Some(Frame::Array { .. }) => None,
            None => Some(&mut self.key),
        }
    }

    fn decode_key(
        &mut self,
        span: toml_parser::Span,
        encoding: Option<Encoding>,
        error: &mut dyn ErrorSink,
    ) -> Part<'a> {
        let range = span.start()..span.end();
        let raw = Raw::new_unchecked(
            self.text.get(range.clone()).unwrap_or_default(),
            encoding,
            span,
        );
        let mut name = Cow::Borrowed("");
        raw.decode_key(&mut name, error);
        Part { name, span: range }
    }

    /// Puts a finished value where it was written.
    fn deliver(&mut self, node: Node) {
        match self.frames.last_mut() {
            Some(Frame::Array { items, .. }) => items.push(node),
            Some(Frame::Inline { .. }) => self.insert_inline(node),
            None if self.at == At::Value => {
                self.at = At::Line;
                self.insert_keyval(node);
            }
            None => {}
        }
    }

    /// A key-value of a header's table (or the root).
    fn insert_keyval(&mut self, node: Node) {
        let mut parts = std::mem::take(&mut self.key);
        let mut positions = std::mem::take(&mut self.scratch);
        positions.clear();
        if let Some(last) = parts.pop() {
            let result = self.add_keyval(&parts, last, node, &mut positions);
            if let Err(refusal) = result {
                self.refused(refusal, &self.current.clone(), &parts);
            }
        }
        parts.clear();
        self.key = parts;
        self.scratch = positions;
    }

    fn add_keyval(
        &mut self,
        path: &[Part<'a>],
        last: Part<'a>,
        node: Node,
        positions: &mut Vec<usize>,
    ) -> Result<(), Refusal> {
        let Self {
            root,
            current,
            index,
            text,
            max_depth,
            detached,
            ..
        } = self;
        let mut table = &mut *root;
        if let Some(detached) = detached {
            table = detached;
        } else {
            for &position in current.iter() {
                table = match table.child_mut(position) {
                    Some(child) => child,
                    None => return Err(Refusal::Parse(super::tables::duplicate(&last.span))),
                };
            }
        }
        let mut locate = |offset| index.locate(offset);
        let parent = table.descend(path, true, positions, &mut locate, *max_depth, text)?;
        // Dotted keys may not extend a table a header defined.
        if !path.is_empty() && !parent.implicit {
            return Err(Refusal::Parse(super::tables::duplicate(&last.span)));
        }
        parent.add_value(last, node).map_err(Refusal::Parse)
    }

    /// Reports a refusal for a key whose parts are `parts`, followed from `positions`.
    fn refused(&mut self, refusal: Refusal, positions: &[usize], parts: &[Part<'_>]) {
        match refusal {
            Refusal::Parse(error) => self.fail_parse(&error),
            Refusal::TooDeep {
                start,
                prefix,
                item,
            } => {
                let mut path = self.path_of(positions, &parts[..prefix.min(parts.len())]);
                if let Some(item) = item {
                    // The path names an array of tables by its last item so far; the item
                    // refused is the one being added.
                    match path.last_mut() {
                        Some(Segment::Index(last)) => *last = item,
                        _ => path.push(Segment::Index(item)),
                    }
                }
                self.fail_too_deep(start, path);
            }
        }
    }

    /// An entry of the innermost inline table, under the key read for it.
    fn insert_inline(&mut self, node: Node) {
        let Some(Frame::Inline {
            depth, table, key, ..
        }) = self.frames.last_mut()
        else {
            return;
        };
        let mut parts = std::mem::take(key);
        let Some(last) = parts.pop() else { return };
        let mut depth = *depth;
        let mut table = table;
        for part in &parts {
            depth += 1;
            let slot = match table.get_index_of(part.name.as_ref()) {
                Some(slot) => slot,
                None => {
                    if depth > self.max_depth {
                        let start = part.span.start;
                        return self.inline_too_deep(start, &parts, part);
                    }
                    let at = self.index.locate(part.span.start);
                    let range = part.span.start..node.span.range().end;
                    let made =
                        Node::new(Value::Table(Box::default()), located(self.doc, at, range));
                    table.insert_full(Key::new(&*part.name), made).0
                }
            };
            let Some((_, child)) = table.get_index_mut(slot) else {
                return;
            };
            // Only tables made by dotted keys take more of them: the others are written
            // `{…}`.
            let dotted = self.text.as_bytes().get(child.span.range().start) != Some(&b'{');
            if !matches!(child.value, Value::Table(_)) {
                let what =
                    super::tables::type_name(&child.value, child.span.range().start, self.text);
                let error = ParseError::new(format!(
                    "cannot extend value of type {what} with a dotted key"
                ))
                .with_unexpected(toml_parser::Span::new_unchecked(
                    part.span.start,
                    part.span.end,
                ));
                return self.fail_parse(&error);
            }
            if !dotted {
                return self.fail_parse(&super::tables::duplicate(&part.span));
            }
            child.span.end = child.span.end.max(node.span.end);
            let Value::Table(inner) = &mut child.value else {
                return;
            };
            table = inner;
        }
        use indexmap::map::Entry;
        match table.entry(Key::new(&*last.name)) {
            Entry::Vacant(vacant) => {
                vacant.insert(node);
            }
            Entry::Occupied(_) => return self.fail_parse(&super::tables::duplicate(&last.span)),
        }
        // The next key reuses the allocation.
        parts.clear();
        if let Some(Frame::Inline { key, .. }) = self.frames.last_mut() {
            *key = parts;
        }
    }

    fn inline_too_deep(&mut self, start: usize, parts: &[Part<'_>], part: &Part<'_>) {
        // The innermost frame's key was taken: put the path together from the others.
        let mut path = self.trail();
        // `trail` ends with the taken key's (now empty) parts: add those up to `part`.
        for p in parts {
            path.push(Segment::Key(p.name.clone().into_owned()));
            if std::ptr::eq(p, part) {
                break;
            }
        }
        self.fail_too_deep(start, path);
    }

    /// A header's key is complete: define its table or add an array item.
    fn header(&mut self, array: bool, own: Range<usize>) {
        self.capacity = self.current_table_len().min(MAX_CAPACITY);
        let mut parts = std::mem::take(&mut self.key);
        let mut positions = std::mem::take(&mut self.current);
        positions.clear();
        if let Some(last) = parts.pop() {
            let at = self.index.locate(own.start);
            let result = self.place_header(array, &parts, &last, own, at, &mut positions);
            match result {
                Ok(depth) => self.current_depth = depth,
                Err(Refusal::Parse(error)) if array => {
                    self.deferred = Some(error);
                    self.detached = Some(Open::new(0..0, (1, 1), self.current_depth, 0));
                }
                Err(refusal) => {
                    parts.push(last);
                    self.refused(refusal, &[], &parts);
                }
            }
        }
        parts.clear();
        self.key = parts;
        self.current = positions;
    }

    fn place_header(
        &mut self,
        array: bool,
        path: &[Part<'a>],
        last: &Part<'a>,
        own: Range<usize>,
        at: (u32, u32),
        positions: &mut Vec<usize>,
    ) -> Result<usize, Refusal> {
        let Self {
            root,
            index,
            text,
            max_depth,
            capacity,
            ..
        } = self;
        let mut locate = |offset| index.locate(offset);
        let parent = root.descend(path, false, positions, &mut locate, *max_depth, text)?;
        let position = if array {
            parent.append(last, own, at, *capacity, *max_depth)?
        } else {
            parent.define(last, own, at, *capacity, *max_depth)?
        };
        positions.push(position);
        let depth = parent.child_mut(position).map_or(0, |table| table.depth);
        Ok(depth)
    }

    fn current_table_len(&mut self) -> usize {
        let mut table = &mut self.root;
        for &position in &self.current {
            table = match table.child_mut(position) {
                Some(child) => child,
                None => return 0,
            };
        }
        table.len()
    }

    fn open_value(&mut self, span: toml_parser::Span, array: bool) -> bool {
        if !self.live() {
            return false;
        }
        let depth = self.value_depth();
        let open = span.start();
        if depth > self.max_depth {
            self.fail_too_deep(open, self.trail());
            return false;
        }
        let at = self.index.locate(open);
        self.frames.push(if array {
            Frame::Array {
                open,
                at,
                depth,
                items: Vec::new(),
            }
        } else {
            Frame::Inline {
                open,
                at,
                depth,
                table: Table::default(),
                key: Vec::new(),
            }
        });
        true
    }

    fn close_value(&mut self, span: toml_parser::Span) {
        if !self.live() {
            return;
        }
        let node = match self.frames.pop() {
            Some(Frame::Array {
                open, at, items, ..
            }) => Node::new(Value::Array(items), located(self.doc, at, open..span.end())),
            Some(Frame::Inline {
                open, at, table, ..
            }) => Node::new(
                Value::Table(Box::new(table)),
                located(self.doc, at, open..span.end()),
            ),
            None => return,
        };
        self.deliver(node);
    }
}
