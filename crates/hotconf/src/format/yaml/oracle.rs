#![allow(dead_code, missing_docs)]
//! TEMPORARY oracle for the differential check: the former serde-saphyr path.
//! YAML 1.2 through serde-saphyr: one document, string keys, no custom tags, and aliases
//! bounded so that a small file cannot expand into a huge config.
//!
//! The tree is built by `Deserialize` impls that wrap every node in [`Spanned`], which is the
//! only way serde-saphyr hands out locations. Serde gives a `Deserialize` impl no way to
//! receive context, so the state of the build (document index, node and depth budgets, the
//! first problem found) lives in a thread-local of the thread that parses.
//!
//! The byte range of a node's first event is all serde-saphyr gives; [`range`] widens it to
//! the whole value once the tree is built.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::granit_parser::ErrorKind;
use serde_saphyr::localizer::ExternalMessageSource;
use serde_saphyr::{
    Budget, DuplicateKeyPolicy, Error as YamlError, Location, MessageFormatter,
    NonFiniteFloatPolicy, Options, Spanned, UserMessageFormatter,
};

use crate::document::Limits;
use crate::error::{Problem, ProblemKind};
use crate::path::{ConfigPath, Segment};
use crate::tree::{Node, Span, Table, Value};

pub(super) fn parse_here(text: &str, doc: u32, limits: &Limits) -> Result<Node, Problem> {
    BUILD.with_borrow_mut(|build| {
        *build = Build {
            doc,
            limits: *limits,
            ..Build::default()
        }
    });
    let result = serde_saphyr::from_str_with_options::<Spanned<Yaml>>(text, options(limits));
    let build = BUILD.with_borrow_mut(std::mem::take);
    let err = match result {
        Ok(root) => {
            let mut root = Node::new(root.value.0, span(doc, root.referenced));
            super::range::cover(&mut root, text);
            let problem =
                super::indent::misindented_flow(&root, text).or_else(|| overflowed(&root, text));
            return match problem {
                Some(problem) => Err(problem),
                None => Ok(root),
            };
        }
        Err(err) => err,
    };
    let inner = unwrap_error(&err);
    // Problems about a value get its path; for a syntax error, where the parser noticed it
    // is a better guide than the path of the entry it was reading.
    let (mut problem, about_value) = match build.problem {
        Some(problem) => (problem, true),
        None => (
            from_yaml_error(inner, limits),
            matches!(
                inner,
                YamlError::UnsupportedTag { .. }
                    | YamlError::NonFiniteFloat { .. }
                    | YamlError::UnknownAnchor { .. }
            ),
        ),
    };
    if about_value && !build.trail.is_empty() {
        // The trail is innermost first.
        problem.path = Some(build.trail.into_iter().rev().collect());
    }
    if problem.line.is_none() {
        let (line, column) = err.location().map_or((1, 1), |at| (line(at), column(at)));
        problem = problem.at_location(String::new(), line.max(1), column.max(1));
    }
    Err(problem)
}

/// serde-saphyr's options for one config document.
///
/// Its budgets on parser events get headroom over `max_nodes` (keys are nodes too, and
/// containers have end events); alias replay and anchor recording, the work a "billion laughs"
/// document multiplies, are held to `max_nodes`. The exact bound on values is counted in
/// [`Build`], which also sees values that come out of aliases.
fn options(limits: &Limits) -> Options {
    let events = limits.max_nodes.saturating_mul(3);
    let mut budget = Budget::default();
    budget.max_depth = limits.max_depth;
    budget.max_nodes = limits.max_nodes.saturating_mul(2);
    budget.max_events = events;
    budget.max_recorded_anchor_events = limits.max_nodes;
    budget.max_documents = 1;
    // The parser's own limit on `[`/`{` nesting, which it checks while scanning ahead.
    budget.flow_nesting_limit = limits.max_depth;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = limits.max_nodes;
    options.alias_limits.max_replay_stack_depth = limits.max_depth;
    // Duplicates are detected in `visit_map`, which knows the path and the first occurrence.
    options.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    options.strict_booleans = true;
    // Core-schema integers have no `_` and no leading zero: `1_000` and `0755` stay text
    // rather than become numbers that YAML 1.1 readers would read differently.
    options.underscored_numbers_as_strings = true;
    options.leading_zero_numbers_as_strings = true;
    options.reject_unsupported_tags = true;
    // `.inf`, `-.inf` and `.nan` are YAML 1.2 floats. A number too large for f64 (`1e999`)
    // comes through as infinity too, and is refused afterwards by `overflowed`.
    options.non_finite_float_policy = NonFiniteFloatPolicy::PassThrough;
    options.with_snippet = false;
    options
}

thread_local! {
    static BUILD: RefCell<Build> = RefCell::default();
}

/// The state of the tree being built on this thread.
#[derive(Default)]
struct Build {
    doc: u32,
    limits: Limits,
    nodes: usize,
    depth: usize,
    /// The first problem found by this module; serde-saphyr only sees a placeholder error.
    problem: Option<Problem>,
    /// Path segments from the failing node up to the root, collected while the error unwinds.
    trail: Vec<Segment>,
}

/// Records `problem` as the outcome of the build and returns the error that unwinds serde.
fn fail<E: de::Error>(problem: Problem) -> E {
    let error = E::custom(&problem.message);
    BUILD.with_borrow_mut(|build| {
        build.problem.get_or_insert(problem);
    });
    error
}

/// Counts one more value and, for a container, one more level of nesting.
fn enter<E: de::Error>(container: bool) -> Result<(), E> {
    let problem = BUILD.with_borrow_mut(|build| {
        build.nodes += 1;
        if build.nodes > build.limits.max_nodes {
            return Some(nodes_problem(&build.limits));
        }
        if container {
            build.depth += 1;
            if build.depth > build.limits.max_depth {
                return Some(crate::format::depth_problem(&build.limits));
            }
        }
        None
    });
    problem.map_or(Ok(()), |problem| Err(fail(problem)))
}

fn nodes_problem(limits: &Limits) -> Problem {
    Problem::error(
        ProblemKind::Limit,
        format!(
            "more than {} values (Limits::max_nodes); YAML aliases can expand a small file \
             into a huge config",
            limits.max_nodes
        ),
    )
}

fn out_of_range_problem(text: &str) -> Problem {
    Problem::error(
        ProblemKind::Syntax,
        format!(
            "float `{}` is out of range for a 64-bit float",
            printable(text)
        ),
    )
}

/// The first infinite float that was written as a number (`1e999`) rather than as `.inf`:
/// serde-saphyr hands both over as infinity, so the text at the value's position decides.
fn overflowed(node: &Node, text: &str) -> Option<Problem> {
    let mut trail = Vec::new();
    let problem = overflowed_below(node, text, &mut trail)?;
    // The trail is innermost first.
    Some(problem.at_path(trail.into_iter().rev().collect()))
}

/// [`overflowed`] within `node`; on the way out of a find, the segments that lead to it are
/// pushed on `trail` (a path is built once, for the one problem, not per key walked).
fn overflowed_below(node: &Node, text: &str, trail: &mut Vec<Segment>) -> Option<Problem> {
    match &node.value {
        Value::Float(f) if f.is_infinite() => {
            let written = written_at(text, node.span);
            // Past an anchor or a tag, a number starts with a sign or a digit; `.inf` does
            // not, and neither does an alias (its anchored value is checked where it is).
            let value = written
                .split_whitespace()
                .find(|word| !word.starts_with(['&', '!']))
                .unwrap_or_default();
            let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
            unsigned.starts_with(|c: char| c.is_ascii_digit()).then(|| {
                out_of_range_problem(value).at_location(
                    String::new(),
                    node.span.line,
                    node.span.column,
                )
            })
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let found = overflowed_below(item, text, trail)?;
            trail.push(Segment::Index(i));
            Some(found)
        }),
        Value::Table(table) => table.iter().find_map(|(key, item)| {
            let found = overflowed_below(item, text, trail)?;
            trail.push(Segment::Key(key.clone()));
            Some(found)
        }),
        _ => None,
    }
}

/// The text of a line from a 1-based character column, up to a flow separator.
fn written_at(text: &str, span: Span) -> &str {
    let line = text
        .lines()
        .nth((span.line as usize).saturating_sub(1))
        .unwrap_or_default();
    let start = line
        .char_indices()
        .nth((span.column as usize).saturating_sub(1))
        .map_or(line.len(), |(i, _)| i);
    let rest = &line[start..];
    rest.split([',', ']', '}', '#']).next().unwrap_or_default()
}

fn leave() {
    BUILD.with_borrow_mut(|build| build.depth -= 1);
}

/// Notes, while an error unwinds through a container, the segment it came through; a problem
/// found without a location (a limit hit inside an alias expansion) takes the position of the
/// nearest key on the way up.
fn unwind(segment: Segment, at: Option<Location>) {
    BUILD.with_borrow_mut(|build| {
        build.trail.push(segment);
        if let (Some(problem), Some(at)) = (&mut build.problem, at)
            && problem.line.is_none()
        {
            problem.line = Some(line(at));
            problem.column = Some(column(at));
        }
    });
}

/// The span of a node at `at`, with the byte range of its first event (see [`range`]).
fn span(doc: u32, at: Location) -> Span {
    let bytes = at.span();
    let offset = bytes.byte_offset().and_then(|o| usize::try_from(o).ok());
    let len = bytes.byte_len().and_then(|l| usize::try_from(l).ok());
    let (start, end) = match (offset, len) {
        (Some(offset), Some(len)) => (offset, offset.saturating_add(len)),
        _ => (0, 0),
    };
    Span {
        doc,
        line: line(at),
        column: column(at),
        start,
        end,
    }
}

fn line(at: Location) -> u32 {
    u32::try_from(at.line()).unwrap_or(u32::MAX)
}

fn column(at: Location) -> u32 {
    u32::try_from(at.column()).unwrap_or(u32::MAX)
}

fn node(spanned: Spanned<Yaml>) -> Node {
    let doc = BUILD.with_borrow(|build| build.doc);
    Node::new(spanned.value.0, span(doc, spanned.referenced))
}

/// The value of one YAML node; its position comes from the [`Spanned`] around it.
struct Yaml(Value);

impl<'de> Deserialize<'de> for Yaml {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(YamlVisitor)
    }
}

struct YamlVisitor;

impl YamlVisitor {
    fn scalar<E: de::Error>(value: Value) -> Result<Yaml, E> {
        enter(false)?;
        Ok(Yaml(value))
    }
}

impl<'de> Visitor<'de> for YamlVisitor {
    type Value = Yaml;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Yaml, E> {
        Self::scalar(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Yaml, E> {
        Self::scalar(Value::Integer(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Yaml, E> {
        Self::scalar(i64::try_from(v).map_or(Value::Unsigned(v), Value::Integer))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Yaml, E> {
        Self::scalar(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Yaml, E> {
        Self::scalar(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Yaml, E> {
        Self::scalar(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Yaml, E> {
        Self::scalar(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Yaml, E> {
        Self::scalar(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Yaml, A::Error> {
        enter(true)?;
        let mut items = Vec::new();
        loop {
            match seq.next_element::<Spanned<Yaml>>() {
                Ok(Some(item)) => items.push(node(item)),
                Ok(None) => break,
                Err(err) => {
                    unwind(Segment::Index(items.len()), None);
                    return Err(err);
                }
            }
        }
        leave();
        Ok(Yaml(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Yaml, A::Error> {
        enter(true)?;
        let mut table = Table::default();
        // The line of each key, by entry index, to point a duplicate at the first one.
        let mut key_lines = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            let at = key.referenced;
            let name = match key.value {
                Key::String(name) => name,
                Key::Scalar(found) => {
                    return Err(fail(non_string_key(
                        &format!("{found}; quote it to use it as a string key"),
                        at,
                    )));
                }
                Key::Collection(found) => return Err(fail(non_string_key(found, at))),
            };
            if let Some(first) = table.get_index_of(&name) {
                let message = format!(
                    "duplicate key `{}` (first set on line {})",
                    quoted(&name),
                    key_lines.get(first).copied().unwrap_or(0)
                );
                BUILD.with_borrow_mut(|build| build.trail.push(Segment::Key(name)));
                return Err(fail(
                    Problem::error(ProblemKind::Syntax, message).at_location(
                        String::new(),
                        line(at),
                        column(at),
                    ),
                ));
            }
            match map.next_value::<Spanned<Yaml>>() {
                Ok(value) => {
                    key_lines.push(line(at));
                    table.insert(name, node(value));
                }
                Err(err) => {
                    unwind(Segment::Key(name), Some(at));
                    return Err(err);
                }
            }
        }
        leave();
        Ok(Yaml(Value::Table(table)))
    }
}

fn non_string_key(found: &str, at: Location) -> Problem {
    Problem::error(
        ProblemKind::Syntax,
        format!("keys must be strings, found {found}"),
    )
    .at_location(String::new(), line(at), column(at))
}

/// A mapping key: a string, or a description of the non-string key that was found.
enum Key {
    String(String),
    Scalar(String),
    Collection(&'static str),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
        Ok(Key::Scalar(format!("the boolean {v}")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
        Ok(Key::Scalar(format!("the integer {v}")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
        Ok(Key::Scalar(format!("the integer {v}")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
        Ok(Key::Scalar(format!("the float {v}")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
        Ok(Key::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
        Ok(Key::Scalar("null".to_owned()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Key, E> {
        Ok(Key::Scalar("null".to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Key, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Key::Collection("a sequence"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Key::Collection("a mapping"))
    }
}

/// A key for a message: as a JSON string when it needs quoting, like paths print it.
fn quoted(key: &str) -> String {
    ConfigPath::root().key(key).to_string()
}

/// The error itself, without the snippet and alias wrappers serde-saphyr may add.
fn unwrap_error(err: &YamlError) -> &YamlError {
    match err.without_snippet() {
        YamlError::AliasError { error, .. } => unwrap_error(error),
        other => other,
    }
}

/// The problem for an error of serde-saphyr, without its location.
fn from_yaml_error(inner: &YamlError, limits: &Limits) -> Problem {
    let (kind, message) = match inner {
        YamlError::Budget {
            breach: BudgetBreach::Depth { .. },
            ..
        }
        | YamlError::AliasReplayStackDepthExceeded { .. } => {
            return crate::format::depth_problem(limits);
        }
        YamlError::ExternalMessage { source, .. }
            if matches!(
                &**source,
                ExternalMessageSource::Parser(scan)
                    if matches!(scan.kind(), ErrorKind::RecursionLimitExceeded)
            ) =>
        {
            return crate::format::depth_problem(limits);
        }
        YamlError::Budget {
            breach:
                BudgetBreach::Nodes { .. }
                | BudgetBreach::Events { .. }
                | BudgetBreach::RecordedAnchorEvents { .. },
            ..
        }
        | YamlError::AliasReplayLimitExceeded { .. }
        | YamlError::AliasExpansionLimitExceeded { .. }
        | YamlError::AliasReplayCounterOverflow { .. } => return nodes_problem(limits),
        YamlError::Budget {
            breach: BudgetBreach::Documents { .. },
            ..
        }
        | YamlError::MultipleDocuments { .. } => (
            ProblemKind::Syntax,
            "a second YAML document ('---'); a config file holds exactly one document".to_owned(),
        ),
        YamlError::Budget { breach, .. } => (
            ProblemKind::Limit,
            format!("the YAML document is too large or too complex ({breach:?})"),
        ),
        YamlError::UnsupportedTag { tag, .. } => (
            ProblemKind::Syntax,
            format!(
                "unsupported YAML tag `{}`; custom tags are not allowed",
                printable(tag)
            ),
        ),
        // Not raised with NonFiniteFloatPolicy::PassThrough; worded like `overflowed`.
        YamlError::NonFiniteFloat { value, .. } => return out_of_range_problem(value),
        _ => (
            ProblemKind::Syntax,
            printable(&UserMessageFormatter.format_message(inner)),
        ),
    };
    Problem::error(kind, message)
}

/// Text from the document or the parser, with control characters escaped for terminals.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod differential {
    use super::*;

    fn run(text: &str) -> Result<String, String> {
        let limits = Limits::default();
        match super::super::parse(text, 1, &limits) {
            Ok(node) => Ok(format!("{node:?}")),
            Err(p) => Err(format!(
                "{:?} {:?}:{:?} {} path={:?}",
                p.kind,
                p.line,
                p.column,
                p.message,
                p.path.map(|p| p.to_string())
            )),
        }
    }

    fn old(text: &str) -> Result<String, String> {
        let limits = Limits::default();
        let owned = text.to_owned();
        super::super::stack::run(
            super::super::stack::stack_for(&limits),
            move || match parse_here(&owned, 1, &limits) {
                Ok(node) => Ok(format!("{node:?}")),
                Err(p) => Err(format!(
                    "{:?} {:?}:{:?} {} path={:?}",
                    p.kind,
                    p.line,
                    p.column,
                    p.message,
                    p.path.map(|p| p.to_string())
                )),
            },
        )
        .unwrap()
    }

    #[test]
    #[ignore = "differential check against the old path; YAML_DIFF_DIR lists files"]
    fn compare() {
        let mut texts: Vec<(String, String)> = Vec::new();
        if let Ok(dir) = std::env::var("YAML_DIFF_DIR") {
            for entry in std::fs::read_to_string(dir).unwrap().lines() {
                let text = std::fs::read(entry).unwrap();
                let Ok(text) = String::from_utf8(text) else {
                    continue;
                };
                texts.push((entry.to_owned(), text));
            }
        }
        if let Ok(list) = std::env::var("YAML_DIFF_SCALARS") {
            for scalar in std::fs::read_to_string(list).unwrap().lines() {
                texts.push((format!("scalar {scalar:?}"), format!("v: {scalar}\n")));
                texts.push((format!("key {scalar:?}"), format!("{scalar}: 1\n")));
                texts.push((format!("flow {scalar:?}"), format!("[{scalar}]\n")));
            }
        }
        let (mut agree, mut disagree, mut oks) = (0, 0, 0);
        for (name, text) in &texts {
            let (a, b) = (old(text), run(text));
            if a == b {
                agree += 1;
                oks += usize::from(a.is_ok());
            } else {
                disagree += 1;
                println!("=== {name}\n--- old: {a:?}\n+++ new: {b:?}");
            }
        }
        println!("agree {agree} (ok {oks}) disagree {disagree}");
    }
}
