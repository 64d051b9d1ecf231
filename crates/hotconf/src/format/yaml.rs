//! YAML 1.2 through serde-saphyr: one document, string keys, no custom tags, and aliases
//! bounded so that a small file cannot expand into a huge config.
//!
//! The tree is built by `Deserialize` impls that wrap every node in [`Spanned`], which is the
//! only way serde-saphyr hands out locations. Serde gives a `Deserialize` impl no way to
//! receive context, so the state of the build (document index, node and depth budgets, the
//! first problem found) lives in a thread-local of the thread that parses.

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

/// Stack reserved per level of nesting. serde-saphyr recurses through several large frames
/// per level: about 45 KiB in debug builds and 6 KiB in release builds, measured.
const STACK_PER_LEVEL: usize = 64 << 10;
/// Stack for everything but the nesting.
const STACK_BASE: usize = 1 << 20;
/// Reservation cap for absurd `max_depth` values; it is virtual memory, touched only as used.
const STACK_MAX: usize = 1 << 30;

/// Parses on a thread of its own whose stack fits `limits.max_depth` levels: at 45 KiB a
/// level, the default depth of 128 would overflow a 2 MiB thread stack in debug builds.
pub(super) fn parse(text: &str, doc: u32, limits: &Limits) -> Result<Node, Problem> {
    let stack = STACK_PER_LEVEL
        .saturating_mul(limits.max_depth)
        .saturating_add(STACK_BASE)
        .min(STACK_MAX);
    std::thread::scope(|scope| {
        let parser = std::thread::Builder::new()
            .name("hotconf-yaml".to_owned())
            .stack_size(stack)
            .spawn_scoped(scope, || parse_here(text, doc, limits))
            .map_err(|err| {
                Problem::error(
                    ProblemKind::Limit,
                    format!("cannot start a thread to parse YAML: {err}"),
                )
                .at_location(String::new(), 1, 1)
            })?;
        parser
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn parse_here(text: &str, doc: u32, limits: &Limits) -> Result<Node, Problem> {
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
            let root = Node::new(root.value.0, span(doc, root.referenced));
            return match overflowed(&root, text, &mut ConfigPath::root()) {
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
                return Some(super::depth_problem(&build.limits));
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
fn overflowed(node: &Node, text: &str, path: &mut ConfigPath) -> Option<Problem> {
    let found = match &node.value {
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
            path.push(Segment::Index(i));
            let found = overflowed(item, text, path);
            path.pop();
            found
        }),
        Value::Table(table) => table.iter().find_map(|(key, item)| {
            path.push(Segment::Key(key.clone()));
            let found = overflowed(item, text, path);
            path.pop();
            found
        }),
        _ => None,
    };
    found.map(|problem| match problem.path {
        Some(_) => problem,
        None => problem.at_path(path.clone()),
    })
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

fn span(doc: u32, at: Location) -> Span {
    Span {
        doc,
        line: line(at),
        column: column(at),
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
        let mut table = Table::new();
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
        | YamlError::AliasReplayStackDepthExceeded { .. } => return super::depth_problem(limits),
        YamlError::ExternalMessage { source, .. }
            if matches!(
                &**source,
                ExternalMessageSource::Parser(scan)
                    if matches!(scan.kind(), ErrorKind::RecursionLimitExceeded)
            ) =>
        {
            return super::depth_problem(limits);
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
mod tests {
    use serde_json::json;

    use super::*;

    /// A bad document: its text, the problem's kind, line and column, a fragment of its
    /// message, and its path.
    type Case<'a> = (String, ProblemKind, (u32, u32), &'a str, Option<&'a str>);

    fn ok(text: &str) -> Node {
        parse(text, 2, &Limits::default()).unwrap_or_else(|p| panic!("{text:?}: {p:?}"))
    }

    fn at(node: &Node, path: &str) -> (u32, u32) {
        let found = node
            .get(&path.parse().unwrap())
            .unwrap_or_else(|| panic!("no {path}"));
        assert_eq!(found.span.doc, 2, "{path}");
        (found.span.line, found.span.column)
    }

    #[test]
    fn nested_mappings_and_sequences_keep_their_positions() {
        let text = "# service\nserver:\n  host: \"example.com\"\n  ports: [80, 443]\n  tls:\n    enabled: true\nlist:\n  - name: a\n  - 2.5\nempty: ~\n";
        let node = ok(text);
        assert_eq!(
            node.to_json(),
            json!({
                "server": {"host": "example.com", "ports": [80, 443], "tls": {"enabled": true}},
                "list": [{"name": "a"}, 2.5],
                "empty": null,
            })
        );
        for (path, position) in [
            ("server", (3, 3)),
            ("server.host", (3, 9)),
            ("server.ports", (4, 10)),
            ("server.ports[1]", (4, 15)),
            ("server.tls", (6, 5)),
            ("server.tls.enabled", (6, 14)),
            ("list", (8, 3)),
            ("list[0]", (8, 5)),
            ("list[0].name", (8, 11)),
            ("list[1]", (9, 5)),
            ("empty", (10, 8)),
        ] {
            assert_eq!(at(&node, path), position, "{path}");
        }
        assert_eq!(
            node.span,
            Span {
                doc: 2,
                line: 2,
                column: 1
            }
        );
    }

    #[test]
    fn explicit_document_markers_make_one_document() {
        for text in ["---\na: 1\n...\n", "%YAML 1.2\n---\na: 1\n"] {
            assert_eq!(ok(text).to_json(), json!({"a": 1}), "{text:?}");
        }
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        for (text, expected) in [
            ("1", json!(1)),
            ("-3", json!(-3)),
            ("0x1F", json!(31)),
            ("0o17", json!(15)),
            ("1.5", json!(1.5)),
            ("1e3", json!(1000.0)),
            ("true", json!(true)),
            ("False", json!(false)),
            ("null", json!(null)),
            ("~", json!(null)),
            ("", json!(null)),
            ("yes", json!("yes")),
            ("off", json!("off")),
            ("'1'", json!("1")),
            ("\"true\"", json!("true")),
            ("!!str 5", json!("5")),
            ("0755", json!("0755")),
            ("1_000", json!("1_000")),
            ("2001-12-14", json!("2001-12-14")),
            ("9223372036854775807", json!(i64::MAX)),
            ("-9223372036854775808", json!(i64::MIN)),
            ("18446744073709551615", json!(u64::MAX)),
            ("18446744073709551616", json!(18_446_744_073_709_551_616.0)),
            ("|\n  two\n  lines\n", json!("two\nlines\n")),
        ] {
            let node = ok(&format!("v: {text}\n"));
            assert_eq!(node.to_json(), json!({ "v": expected }), "{text:?}");
        }
        let node = ok("big: 18446744073709551615\n");
        assert_eq!(
            node.get(&"big".parse().unwrap()).unwrap().value,
            Value::Unsigned(u64::MAX)
        );
    }

    #[test]
    fn infinity_and_nan_are_floats() {
        let node = ok(
            "a: .inf\nb: +.Inf\nc: -.INF\nd: [.nan, .NaN]\ne: &x .inf\nf: *x\n\
                       g: !!float -.inf\nh: '.inf'\n",
        );
        let value = |path: &str| node.get(&path.parse().unwrap()).map(|n| n.value.clone());
        for (path, expected) in [
            ("a", f64::INFINITY),
            ("b", f64::INFINITY),
            ("c", f64::NEG_INFINITY),
            ("e", f64::INFINITY),
            ("f", f64::INFINITY),
            ("g", f64::NEG_INFINITY),
        ] {
            assert_eq!(value(path), Some(Value::Float(expected)), "{path}");
        }
        for path in ["d[0]", "d[1]"] {
            assert!(
                matches!(value(path), Some(Value::Float(f)) if f.is_nan()),
                "{path}"
            );
        }
        assert_eq!(value("h"), Some(Value::String(".inf".into())));
    }

    #[test]
    fn small_anchors_aliases_and_merges_work() {
        let node = ok("base: &b {x: 1, list: [a]}\ncopy: *b\nmerged:\n  <<: *b\n  y: 2\n");
        assert_eq!(
            node.to_json(),
            json!({
                "base": {"x": 1, "list": ["a"]},
                "copy": {"x": 1, "list": ["a"]},
                "merged": {"y": 2, "x": 1, "list": ["a"]},
            })
        );
        // An alias's values point at the alias: that is where this part of the config says so.
        assert_eq!(at(&node, "copy"), (2, 7));
        assert_eq!(at(&node, "copy.x"), (2, 7));
        assert_eq!(at(&node, "base.x"), (1, 14));
    }

    #[test]
    fn bad_documents_are_located() {
        let deep_block: String = (0..10_000)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        let deep_sequence: String = (0..10_000)
            .map(|i| format!("{}-\n", " ".repeat(i)))
            .collect();
        let mut deep_aliases = String::from("a0: &a0 [1]\n");
        for i in 1..200 {
            deep_aliases.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
        }
        let cases: Vec<Case<'_>> = vec![
            (
                "a: [1, 2\n".into(),
                ProblemKind::Syntax,
                (1, 4),
                "unclosed bracket",
                None,
            ),
            (
                "a: b: c\n".into(),
                ProblemKind::Syntax,
                (1, 5),
                "mapping values are not allowed",
                None,
            ),
            (
                "a: 1\nb:\n  c: 2\n  c: 3\n".into(),
                ProblemKind::Syntax,
                (4, 3),
                "duplicate key `c` (first set on line 3)",
                Some("b.c"),
            ),
            (
                "\"a.b\": 1\na.b: 2\n".into(),
                ProblemKind::Syntax,
                (2, 1),
                "duplicate key `\"a.b\"` (first set on line 1)",
                Some("\"a.b\""),
            ),
            (
                "a: 1\n---\n".into(),
                ProblemKind::Syntax,
                (2, 1),
                "a second YAML document",
                None,
            ),
            (
                "a: 1\n---\nb: 2\n".into(),
                ProblemKind::Syntax,
                (2, 1),
                "a second YAML document",
                None,
            ),
            (
                "1: a\n".into(),
                ProblemKind::Syntax,
                (1, 1),
                "found the integer 1; quote it",
                None,
            ),
            (
                "true: a\n".into(),
                ProblemKind::Syntax,
                (1, 1),
                "found the boolean true",
                None,
            ),
            (
                "~: a\n".into(),
                ProblemKind::Syntax,
                (1, 1),
                "found null",
                None,
            ),
            (
                "a:\n  2.5: x\n".into(),
                ProblemKind::Syntax,
                (2, 3),
                "found the float 2.5",
                Some("a"),
            ),
            (
                "[1]: a\n".into(),
                ProblemKind::Syntax,
                (1, 1),
                "found a sequence",
                None,
            ),
            (
                "? {a: 1}\n: b\n".into(),
                ProblemKind::Syntax,
                (1, 3),
                "found a mapping",
                None,
            ),
            (
                "a: !include other.yaml\n".into(),
                ProblemKind::Syntax,
                (1, 13),
                "unsupported YAML tag `!include`",
                Some("a"),
            ),
            (
                "a:\n  - !!python/object:os.system {}\n".into(),
                ProblemKind::Syntax,
                (2, 31),
                "unsupported YAML tag `!!python/object:os.system`",
                Some("a[0]"),
            ),
            (
                "a: !Ref [x]\n".into(),
                ProblemKind::Syntax,
                (1, 9),
                "unsupported YAML tag `!Ref`",
                Some("a"),
            ),
            (
                "a: 1e999\n".into(),
                ProblemKind::Syntax,
                (1, 4),
                "float `1e999` is out of range",
                Some("a"),
            ),
            (
                "a:\n  b: [.inf, -1e999]\n".into(),
                ProblemKind::Syntax,
                (2, 13),
                "float `-1e999` is out of range",
                Some("a.b[1]"),
            ),
            (
                "a: &x !!float 9e400\n".into(),
                ProblemKind::Syntax,
                (1, 15),
                "float `9e400` is out of range",
                Some("a"),
            ),
            (
                "a: *missing\n".into(),
                ProblemKind::Syntax,
                (1, 4),
                "unknown",
                Some("a"),
            ),
            (
                format!("a: {}", "[".repeat(10_000)),
                ProblemKind::Limit,
                (1, 132),
                "nesting deeper than 128 levels",
                None,
            ),
            (
                format!("a: {}", "{a: ".repeat(10_000)),
                ProblemKind::Limit,
                (1, 512),
                "nesting deeper than 128 levels",
                None,
            ),
            (
                deep_block,
                ProblemKind::Limit,
                (129, 129),
                "nesting deeper than 128 levels",
                None,
            ),
            (
                format!("a:\n{deep_sequence}"),
                ProblemKind::Limit,
                (129, 128),
                "nesting deeper than 128 levels",
                None,
            ),
            (
                deep_aliases,
                ProblemKind::Limit,
                (128, 14),
                "nesting deeper than 128 levels",
                None,
            ),
        ];
        for (text, kind, (line, column), fragment, path) in cases {
            let short = &text[..text.len().min(40)];
            let problem = parse(&text, 0, &Limits::default()).unwrap_err();
            assert_eq!(problem.kind, kind, "{short:?}: {problem:?}");
            assert_eq!(
                (problem.line, problem.column),
                (Some(line), Some(column)),
                "{short:?}: {problem:?}"
            );
            assert!(problem.message.contains(fragment), "{short:?}: {problem:?}");
            assert_eq!(
                problem.path.map(|p| p.to_string()).as_deref(),
                path,
                "{short:?}"
            );
        }
    }

    #[test]
    fn depth_up_to_the_limit_is_accepted() {
        let limits = Limits::default();
        let text: String = (0..limits.max_depth - 1)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .chain([format!("{}x: 1\n", " ".repeat(limits.max_depth - 1))])
            .collect();
        assert_eq!(ok(&text).depth(), limits.max_depth);
    }

    #[test]
    fn values_are_counted_against_the_node_limit() {
        let limits = Limits {
            max_nodes: 10,
            ..Limits::default()
        };
        let items = (1..=20)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let problem = parse(&format!("a: [{items}]\n"), 0, &limits).unwrap_err();
        assert_eq!(problem.kind, ProblemKind::Limit, "{problem:?}");
        assert!(
            problem.message.starts_with("more than 10 values"),
            "{problem:?}"
        );
        // The root, the sequence and eight items fit: the ninth item is one too many. It is
        // reported at the nearest key, as positions of values are known only once built.
        assert_eq!(problem.path.map(|p| p.to_string()).as_deref(), Some("a[8]"));
        assert_eq!((problem.line, problem.column), (Some(1), Some(1)));
        assert!(parse("a: [1, 2, 3]\n", 0, &limits).is_ok());
    }

    #[test]
    fn billion_laughs_fails_on_the_node_limit() {
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for (name, prev) in ["b", "c", "d", "e", "f", "g", "h", "i"]
            .iter()
            .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
        {
            let refs = vec![format!("*{prev}"); 9].join(",");
            text.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        let problem = parse(&text, 0, &Limits::default()).unwrap_err();
        assert_eq!(problem.kind, ProblemKind::Limit, "{problem:?}");
        assert!(
            problem.message.contains("(Limits::max_nodes)"),
            "{problem:?}"
        );
        assert!(problem.line.is_some_and(|line| line <= 9), "{problem:?}");

        // The bound follows the limit: a tighter one stops sooner, here at an alias of `c`.
        let limits = Limits {
            max_nodes: 5_000,
            ..Limits::default()
        };
        let problem = parse(&text, 0, &limits).unwrap_err();
        assert_eq!(problem.kind, ProblemKind::Limit, "{problem:?}");
        assert!(
            problem.message.starts_with("more than 5000 values"),
            "{problem:?}"
        );
        assert_eq!(
            (problem.line, problem.column),
            (Some(4), Some(20)),
            "{problem:?}"
        );
    }
}
