//! The located tree of a YAML document, built from the parser's events.
//!
//! One loop reads granit-parser's events and keeps the collections still open on a stack, so
//! nesting costs heap, not call stack. Each event's span gives the node's position and byte
//! range (widened afterwards by [`super::range`]). An alias copies the value its anchor
//! holds, located at the alias; a merge key (`<<`) adds the entries of the mappings it names
//! that the mapping does not set itself. [`Budget`] bounds the document as it is read.

use std::borrow::Cow;

use serde_saphyr::granit_parser::{
    ErrorKind, Event, Options as ParserOptions, Parser, ScalarStyle, ScanError, Span as Marks,
    Tag as ParserTag,
};

use super::budget::{Breach, Budget, Cost};
use super::scalar::{self, Kind, Tag};
use crate::document::Limits;
use crate::error::{Problem, ProblemKind};
use crate::path::{ConfigPath, Segment};
use crate::tree::{Node, Span, Table, Value};

/// A document's tree, and the first number in it too large for a float, which is refused
/// only once the document is otherwise known to be well-formed.
pub(super) struct Built {
    pub(super) root: Node,
    pub(super) overflow: Option<Problem>,
}

/// Builds the tree of `text`, document `doc` of its layer, within `limits`.
pub(super) fn build(text: &str, doc: u32, limits: &Limits) -> Result<Built, Problem> {
    let mut builder = Builder {
        doc,
        limits,
        budget: Budget::new(limits),
        stack: Vec::new(),
        root: None,
        anchors: Vec::new(),
        recording: 0,
        overflow: None,
        last: Span::default(),
    };
    let mut parser = Parser::new_from_str_with_options(text, parser_options(limits));
    while let Some(next) = parser.next_event() {
        match next {
            Ok((event, marks)) => builder.event(event, &marks)?,
            Err(err) => return Err(builder.scan_error(&err)),
        }
    }
    builder.finish()
}

/// The parser's options: its nesting limits follow `limits.max_depth`; a flow collection's
/// is checked while scanning ahead, before the events that would exceed it.
fn parser_options(limits: &Limits) -> ParserOptions {
    let mut options = ParserOptions::default();
    options.flow_nesting_limit = limits.max_depth;
    options.block_nesting_limit = options
        .block_nesting_limit
        .max(limits.max_depth.saturating_add(1));
    options.emit_comments = false;
    options
}

struct Builder<'l> {
    doc: u32,
    limits: &'l Limits,
    budget: Budget,
    /// The collections still open, outermost first.
    stack: Vec<Frame>,
    root: Option<Node>,
    /// Anchored values by the parser's anchor id, once complete.
    anchors: Vec<Option<Anchored>>,
    /// How many anchored collections are open (each records what is read inside it).
    recording: usize,
    overflow: Option<Problem>,
    /// The span of the last event.
    last: Span,
}

struct Anchored {
    node: Node,
    cost: Cost,
}

/// An open collection.
struct Frame {
    span: Span,
    anchor: usize,
    cost: Cost,
    body: Body,
}

enum Body {
    Sequence(Vec<Node>),
    Mapping(Mapping),
}

struct Mapping {
    table: Table,
    /// The line of each key, by entry index, to point a duplicate at the first one.
    key_lines: Vec<u32>,
    next: Next,
    /// The values of its merge keys, in order: mappings, or sequences of mappings.
    merges: Vec<Node>,
}

/// What a mapping reads next.
enum Next {
    Key,
    Value(crate::tree::Text),
    /// The value of a merge key.
    Merged,
}

impl Builder<'_> {
    fn event(&mut self, event: Event<'_>, marks: &Marks) -> Result<(), Problem> {
        let span = self.span(marks);
        self.last = span;
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {
                self.budget.marker().map_err(|b| self.breach(&b, span))
            }
            Event::DocumentStart(..) => self.budget.document().map_err(|b| self.breach(&b, span)),
            Event::Scalar(text, style, anchor, tag) => {
                self.scalar(text, style, anchor, tag.as_deref(), span)
            }
            Event::SequenceStart(_, anchor, tag) => {
                self.start(Kind::Sequence, anchor, tag.as_deref(), span)
            }
            Event::MappingStart(_, anchor, tag) => {
                self.start(Kind::Mapping, anchor, tag.as_deref(), span)
            }
            Event::SequenceEnd | Event::MappingEnd => self.end(span),
            Event::Alias(id) => self.alias(id, span),
            // Comments and anchor names, which these options do not ask for.
            _ => Ok(()),
        }
    }

    fn scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&ParserTag>,
        span: Span,
    ) -> Result<(), Problem> {
        let bytes = text.len().saturating_add(tag_len(tag));
        let anchored = anchor != 0;
        self.budget
            .node(bytes, 0, anchored)
            .map_err(|b| self.breach(&b, span))?;
        let at_key = self.at_key();
        let meaning = Tag::of(tag, Kind::Scalar, at_key.then_some(text.as_ref()));
        let plain = matches!(style, ScalarStyle::Plain);
        let merge_key = at_key
            && text == "<<"
            && match meaning {
                Ok(Tag::Merge) => true,
                Ok(Tag::None) => plain,
                _ => false,
            };
        if merge_key {
            self.budget.merge_key().map_err(|b| self.breach(&b, span))?;
        }
        let tag = meaning.map_err(|tag| self.unsupported_tag(&tag, span))?;
        self.budget
            .record(self.recording + usize::from(anchored))
            .map_err(|b| self.breach(&b, span))?;
        // Kept (a borrow, mostly) for the message of a number too large for a float.
        let numeric = (plain && scalar::overflows(&text)).then(|| text.clone());
        let value = scalar::resolve(text, style, tag).map_err(|message| {
            Problem::error(ProblemKind::Syntax, message).at_location(
                String::new(),
                span.line,
                span.column,
            )
        })?;
        if !at_key {
            self.budget.values(1).map_err(|b| self.breach(&b, span))?;
            if let (Value::Float(f), Some(written)) = (&value, numeric)
                && f.is_infinite()
                && self.overflow.is_none()
            {
                self.overflow = Some(
                    super::out_of_range_problem(written.trim())
                        .at_location(String::new(), span.line, span.column)
                        .at_path_opt(self.path(None)),
                );
            }
        }
        let cost = Cost {
            events: 1,
            nodes: 1,
            bytes,
            values: usize::from(!at_key),
            height: 0,
        };
        self.deliver(Node::new(value, span), cost, anchor, merge_key)
    }

    fn start(
        &mut self,
        kind: Kind,
        anchor: usize,
        tag: Option<&ParserTag>,
        span: Span,
    ) -> Result<(), Problem> {
        let bytes = tag_len(tag);
        let anchored = anchor != 0;
        self.budget
            .node(bytes, self.stack.len() + 1, anchored)
            .map_err(|b| self.breach(&b, span))?;
        Tag::of(tag, kind, None).map_err(|tag| self.unsupported_tag(&tag, span))?;
        self.recording += usize::from(anchored);
        self.budget
            .record(self.recording)
            .map_err(|b| self.breach(&b, span))?;
        if self.at_key() {
            let found = match kind {
                Kind::Mapping => "a mapping",
                _ => "a sequence",
            };
            return Err(self.non_string_key(found, span));
        }
        self.budget.values(1).map_err(|b| self.breach(&b, span))?;
        let body = match kind {
            Kind::Mapping => Body::Mapping(Mapping {
                table: Table::default(),
                key_lines: Vec::new(),
                next: Next::Key,
                merges: Vec::new(),
            }),
            _ => Body::Sequence(Vec::new()),
        };
        self.stack.push(Frame {
            span,
            anchor,
            cost: Cost {
                events: 2,
                nodes: 1,
                bytes,
                values: 1,
                height: 1,
            },
            body,
        });
        Ok(())
    }

    fn end(&mut self, span: Span) -> Result<(), Problem> {
        self.budget.marker().map_err(|b| self.breach(&b, span))?;
        self.budget
            .record(self.recording)
            .map_err(|b| self.breach(&b, span))?;
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        if frame.anchor != 0 {
            self.recording -= 1;
        }
        let value = match frame.body {
            Body::Sequence(items) => Value::Array(items),
            Body::Mapping(mapping) => Value::Table(Box::new(merged(mapping))),
        };
        self.deliver(
            Node::new(value, frame.span),
            frame.cost,
            frame.anchor,
            false,
        )
    }

    fn alias(&mut self, id: usize, span: Span) -> Result<(), Problem> {
        let Some(anchored) = self.anchors.get(id).and_then(Option::as_ref) else {
            // The parser refuses an alias of an anchor not yet seen: this one is still open.
            return Err(Problem::error(
                ProblemKind::Syntax,
                "Recursive reference not allowed here",
            )
            .at_location(String::new(), span.line, span.column));
        };
        let cost = anchored.cost;
        self.budget
            .alias(&cost, self.stack.len())
            .map_err(|b| self.breach(&b, span))?;
        self.budget
            .record(self.recording.saturating_mul(cost.events))
            .map_err(|b| self.breach(&b, span))?;
        let at_key = self.at_key();
        if !at_key {
            self.budget
                .values(cost.values)
                .map_err(|b| self.breach(&b, span))?;
        }
        let mut node = self.anchors[id]
            .as_ref()
            .map(|a| a.node.clone())
            .unwrap_or_else(|| Node::new(Value::Null, span));
        relocate(&mut node, span);
        self.deliver(node, cost, 0, false)
    }

    /// Hands a complete node to the collection it is in, or makes it the root.
    fn deliver(
        &mut self,
        node: Node,
        cost: Cost,
        anchor: usize,
        merge_key: bool,
    ) -> Result<(), Problem> {
        if anchor != 0 {
            if self.anchors.len() <= anchor {
                self.anchors.resize_with(anchor + 1, || None);
            }
            self.anchors[anchor] = Some(Anchored {
                node: node.clone(),
                cost,
            });
        }
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        frame.cost.add(&cost);
        frame.cost.height = frame.cost.height.max(cost.height + 1);
        let mapping = match &mut frame.body {
            Body::Sequence(items) => {
                items.push(node);
                return Ok(());
            }
            Body::Mapping(mapping) => mapping,
        };
        match std::mem::replace(&mut mapping.next, Next::Key) {
            Next::Key if merge_key => mapping.next = Next::Merged,
            Next::Key => {
                let name = match node.value {
                    Value::String(name) => name,
                    other => return Err(self.non_string_key(&describe(&other), node.span)),
                };
                let Some(first) = mapping.table.get_index_of(name.as_str()) else {
                    mapping.key_lines.push(node.span.line);
                    mapping.next = Next::Value(name);
                    return Ok(());
                };
                let message = format!(
                    "duplicate key `{}` (first set on line {})",
                    super::quoted(&name),
                    mapping.key_lines.get(first).copied().unwrap_or(0)
                );
                let path = self.path(Some(Segment::Key(name.into())));
                return Err(Problem::error(ProblemKind::Syntax, message)
                    .at_location(String::new(), node.span.line, node.span.column)
                    .at_path_opt(path));
            }
            Next::Value(name) => {
                mapping.table.insert(name, node);
            }
            Next::Merged => {
                let bad = match &node.value {
                    Value::Null | Value::Table(_) => None,
                    Value::Array(items) => items
                        .iter()
                        .find(|item| !matches!(item.value, Value::Table(_)))
                        .map(|item| item.span),
                    _ => Some(node.span),
                };
                if let Some(at) = bad {
                    return Err(Problem::error(
                        ProblemKind::Syntax,
                        "YAML merge value must be mapping or sequence of mappings",
                    )
                    .at_location(String::new(), at.line, at.column));
                }
                if !matches!(node.value, Value::Null) {
                    mapping.merges.push(node);
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Built, Problem> {
        self.budget
            .finish()
            .map_err(|b| self.breach(&b, self.last))?;
        // A stream without a document is a null document.
        let root = self
            .root
            .unwrap_or_else(|| Node::new(Value::Null, self.last));
        Ok(Built {
            root,
            overflow: self.overflow,
        })
    }

    /// Whether the next node is a mapping key.
    fn at_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame {
                body: Body::Mapping(Mapping {
                    next: Next::Key,
                    ..
                }),
                ..
            })
        )
    }

    /// The path of the next node, then `last`; a mapping reading a key or a merge value
    /// ends it at that mapping. `None` for the root, which a message need not name.
    fn path(&self, last: Option<Segment>) -> Option<ConfigPath> {
        let mut segments = Vec::with_capacity(self.stack.len() + 1);
        for frame in &self.stack {
            match &frame.body {
                Body::Sequence(items) => segments.push(Segment::Index(items.len())),
                Body::Mapping(Mapping {
                    next: Next::Value(name),
                    ..
                }) => segments.push(Segment::Key(name.as_str().to_owned())),
                Body::Mapping(_) => break,
            }
        }
        segments.extend(last);
        (!segments.is_empty()).then(|| segments.into_iter().collect())
    }

    fn span(&self, marks: &Marks) -> Span {
        let (start, end) = match (marks.start.byte_offset(), marks.end.byte_offset()) {
            (Some(start), Some(end)) => (start, end.max(start)),
            _ => (0, 0),
        };
        Span {
            doc: self.doc,
            line: u32::try_from(marks.start.line()).unwrap_or(u32::MAX),
            column: u32::try_from(marks.start.col().saturating_add(1)).unwrap_or(u32::MAX),
            start: Span::offset(start),
            end: Span::offset(end),
        }
    }

    fn breach(&self, breach: &Breach, span: Span) -> Problem {
        let problem =
            breach
                .problem(self.limits)
                .at_location(String::new(), span.line, span.column);
        match breach {
            Breach::Nodes { at_value: true } => problem.at_path_opt(self.path(None)),
            _ => problem,
        }
    }

    fn unsupported_tag(&self, tag: &str, span: Span) -> Problem {
        Problem::error(
            ProblemKind::Syntax,
            format!(
                "unsupported YAML tag `{}`; custom tags are not allowed",
                super::printable(tag)
            ),
        )
        .at_location(String::new(), span.line, span.column)
        .at_path_opt(self.path(None))
    }

    fn non_string_key(&self, found: &str, span: Span) -> Problem {
        Problem::error(
            ProblemKind::Syntax,
            format!("keys must be strings, found {found}"),
        )
        .at_location(String::new(), span.line, span.column)
        .at_path_opt(self.path(None))
    }

    fn scan_error(&self, err: &ScanError) -> Problem {
        let marker = err.marker();
        let line = u32::try_from(marker.line()).unwrap_or(u32::MAX).max(1);
        let column = u32::try_from(marker.col().saturating_add(1)).unwrap_or(u32::MAX);
        let problem = match err.kind() {
            ErrorKind::RecursionLimitExceeded => crate::format::depth_problem(self.limits),
            ErrorKind::UnknownAnchor => {
                Problem::error(ProblemKind::Syntax, "reference to unknown value")
                    .at_path_opt(self.path(None))
            }
            _ => Problem::error(ProblemKind::Syntax, super::printable(&err.info())),
        };
        problem.at_location(String::new(), line, column)
    }
}

/// The bytes serde-saphyr counted for a tag.
fn tag_len(tag: Option<&ParserTag>) -> usize {
    tag.map_or(0, |tag| tag.handle().len() + tag.suffix().len())
}

/// A non-string key, for a message: keys may be quoted, numbers too; strings never reach
/// here, as they are keys.
fn describe(value: &Value) -> String {
    let scalar = match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Unsigned(u) => format!("the integer {u}"),
        Value::Float(f) => format!("the float {f}"),
        Value::Array(_) => return "a sequence".to_owned(),
        Value::Table(_) => return "a mapping".to_owned(),
        Value::String(_) => return "a string".to_owned(),
    };
    format!("{scalar}; quote it to use it as a string key")
}

/// Locates `node` and everything in it at `span`: an alias's value is where the alias is.
fn relocate(node: &mut Node, span: Span) {
    let mut pending = vec![node];
    while let Some(node) = pending.pop() {
        node.span = span;
        match &mut node.value {
            Value::Array(items) => pending.extend(items.iter_mut()),
            Value::Table(table) => pending.extend(table.values_mut()),
            _ => {}
        }
    }
}

/// A mapping's table with its merge keys' entries added, in order, where it does not set the
/// key itself (nor an earlier merge). Each entry is located where its mapping is named: the
/// alias, or the mapping written in place.
fn merged(mapping: Mapping) -> Table {
    let mut table = mapping.table;
    for source in mapping.merges {
        let tables = match source.value {
            Value::Table(entries) => vec![(entries, source.span)],
            Value::Array(items) => items
                .into_iter()
                .filter_map(|item| match item.value {
                    Value::Table(entries) => Some((entries, item.span)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for (entries, at) in tables {
            for (key, mut value) in *entries {
                if !table.contains_key(&key) {
                    relocate(&mut value, at);
                    table.insert(key, value);
                }
            }
        }
    }
    table
}

/// Sets a problem's path when there is one.
trait AtPath {
    fn at_path_opt(self, path: Option<ConfigPath>) -> Self;
}

impl AtPath for Problem {
    fn at_path_opt(self, path: Option<ConfigPath>) -> Self {
        match path {
            Some(path) => self.at_path(path),
            None => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_costs_its_resolved_handle_and_suffix() {
        // `!!str` resolves to `tag:yaml.org,2002:` and `str`, as serde-saphyr counted it.
        let core = ParserTag::new("tag:yaml.org,2002:", "str");
        assert_eq!(tag_len(Some(&core)), 21);
        assert_eq!(tag_len(Some(&ParserTag::new("!", "local"))), 6);
        assert_eq!(tag_len(None), 0);
    }
}
