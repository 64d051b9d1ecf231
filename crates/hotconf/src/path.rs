//! Config paths (`a.b[2].c`, `labels."app.kubernetes.io/name"`) and the patterns over them
//! (`limits.*`, `server.**`) that policies, secrets and subscriber filters use.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// One step of a [`ConfigPath`]: a table key or an array index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A key of a table.
    Key(String),
    /// A position in an array.
    Index(usize),
}

/// A dotted path to one value of a config, as printed in errors and diffs.
///
/// A plain key segment is `[A-Za-z0-9_-]+`; any other key is written as a JSON string.
/// Array items are `[i]`.
///
/// ```
/// use hotconf::ConfigPath;
///
/// let path: ConfigPath = r#"labels."app.kubernetes.io/name""#.parse().unwrap();
/// assert_eq!(path.to_string(), r#"labels."app.kubernetes.io/name""#);
/// let path = ConfigPath::root().key("routes").index(2).key("upstream");
/// assert_eq!(path.to_string(), "routes[2].upstream");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigPath {
    segments: Vec<Segment>,
}

impl ConfigPath {
    /// The empty path: the whole config.
    pub fn root() -> Self {
        Self::default()
    }

    /// This path extended by a table key.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.segments.push(Segment::Key(key.into()));
        self
    }

    /// This path extended by an array index.
    #[must_use]
    pub fn index(mut self, index: usize) -> Self {
        self.segments.push(Segment::Index(index));
        self
    }

    /// Appends a segment in place.
    pub fn push(&mut self, segment: Segment) {
        self.segments.push(segment);
    }

    /// Removes the last segment in place.
    pub fn pop(&mut self) -> Option<Segment> {
        self.segments.pop()
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether this is the root path.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// Whether `self` equals `other` or lies under it.
    pub fn starts_with(&self, other: &ConfigPath) -> bool {
        self.segments.starts_with(&other.segments)
    }
}

impl FromIterator<Segment> for ConfigPath {
    fn from_iter<I: IntoIterator<Item = Segment>>(segments: I) -> Self {
        Self {
            segments: segments.into_iter().collect(),
        }
    }
}

/// Whether a key can be printed without quotes.
fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn write_key(f: &mut fmt::Formatter<'_>, key: &str) -> fmt::Result {
    if is_plain_key(key) {
        f.write_str(key)
    } else {
        // serde_json quoting is the contract: a JSON string.
        let quoted = serde_json::to_string(key).map_err(|_| fmt::Error)?;
        f.write_str(&quoted)
    }
}

impl fmt::Display for ConfigPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    write_key(f, key)?;
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

impl serde::Serialize for ConfigPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A parsed step of a path or a pattern; patterns add wildcards.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    /// `*`: exactly one segment, key or index.
    Any,
    /// `**`: any number of segments, zero included.
    AnyDepth,
}

/// Splits `a.b[2]."c.d".*` into steps. `wildcards` allows `*` and `**`.
fn parse_steps(text: &str, wildcards: bool) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut expect_key = true; // at the start or right after a '.'
    if text.is_empty() {
        return Ok(steps);
    }
    while i < bytes.len() {
        match bytes[i] {
            b'[' => {
                let end = text[i..]
                    .find(']')
                    .map(|e| i + e)
                    .ok_or_else(|| format!("unclosed '[' at byte {i}"))?;
                let inner = &text[i + 1..end];
                let step = if wildcards && inner == "*" {
                    Step::Any
                } else {
                    Step::Index(
                        inner
                            .parse()
                            .map_err(|_| format!("invalid array index '[{inner}]'"))?,
                    )
                };
                steps.push(step);
                i = end + 1;
                expect_key = false;
            }
            b'.' if !expect_key => {
                i += 1;
                expect_key = true;
                if i == bytes.len() {
                    return Err("path ends with '.'".into());
                }
            }
            b'"' if expect_key => {
                // A JSON string: find its end by letting serde_json read one value.
                let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter();
                let key: String = match stream.next() {
                    Some(Ok(serde_json::Value::String(key))) => key,
                    _ => return Err(format!("invalid quoted key at byte {i}")),
                };
                i += stream.byte_offset();
                steps.push(Step::Key(key));
                expect_key = false;
            }
            _ if expect_key => {
                let len = text[i..].find(['.', '[']).unwrap_or(text.len() - i);
                let word = &text[i..i + len];
                let step = match word {
                    "*" if wildcards => Step::Any,
                    "**" if wildcards => Step::AnyDepth,
                    _ if is_plain_key(word) => Step::Key(word.to_owned()),
                    _ => {
                        return Err(format!(
                            "invalid key '{word}': quote keys that are not [A-Za-z0-9_-]+"
                        ));
                    }
                };
                steps.push(step);
                i += len;
                expect_key = false;
            }
            other => {
                return Err(format!(
                    "unexpected '{}' at byte {i}",
                    char::from(other).escape_default()
                ));
            }
        }
    }
    Ok(steps)
}

impl FromStr for ConfigPath {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let steps = parse_steps(text, false).map_err(|reason| Error::InvalidPath {
            path: text.to_owned(),
            reason,
        })?;
        let segments = steps
            .into_iter()
            .map(|step| match step {
                Step::Key(key) => Segment::Key(key),
                Step::Index(index) => Segment::Index(index),
                // parse_steps only yields wildcards when asked to.
                Step::Any | Step::AnyDepth => Segment::Key(String::new()),
            })
            .collect();
        Ok(Self { segments })
    }
}

/// A pattern over config paths: the path syntax plus `*` (exactly one segment, a key or an
/// index) and `**` (any number of segments). A pattern matches a path and, with
/// [`Pattern::covers`], everything under it.
///
/// ```
/// use hotconf::{ConfigPath, Pattern};
///
/// let pattern: Pattern = "providers.*.api_key".parse().unwrap();
/// assert!(pattern.matches(&"providers.openai.api_key".parse::<ConfigPath>().unwrap()));
/// assert!(!pattern.matches(&"providers.openai.model".parse::<ConfigPath>().unwrap()));
/// let deep: Pattern = "server.**".parse().unwrap();
/// assert!(deep.matches(&"server.tls.cert".parse::<ConfigPath>().unwrap()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    steps: Vec<Step>,
}

impl Pattern {
    /// The last key the pattern names literally (`api_key` in `providers.*.api_key`): what a
    /// line of an unparseable document is searched for.
    pub(crate) fn last_key(&self) -> Option<&str> {
        self.steps.iter().rev().find_map(|step| match step {
            Step::Key(key) => Some(key.as_str()),
            _ => None,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the whole `path` matches the pattern.
    pub fn matches(&self, path: &ConfigPath) -> bool {
        match_steps(&self.steps, path.segments())
    }

    /// Whether `path` or one of its ancestors matches: the pattern names a subtree and
    /// `path` lies in it.
    pub fn covers(&self, path: &ConfigPath) -> bool {
        (0..=path.segments().len()).any(|len| match_steps(&self.steps, &path.segments()[..len]))
    }

    /// Whether the pattern could match `path` or something under it: used to decide whether a
    /// change at a table (an added or removed subtree) touches what the pattern names.
    pub fn overlaps(&self, path: &ConfigPath) -> bool {
        prefix_may_match(&self.steps, path.segments())
    }

    /// Whether a change at `path` touches what the pattern names: `path` lies under it
    /// ([`covers`](Self::covers)) or holds some of it ([`overlaps`](Self::overlaps)).
    pub fn touches(&self, path: &ConfigPath) -> bool {
        self.covers(path) || self.overlaps(path)
    }
}

fn step_matches(step: &Step, segment: &Segment) -> bool {
    match (step, segment) {
        (Step::Any, _) => true,
        (Step::Key(a), Segment::Key(b)) => a == b,
        (Step::Index(a), Segment::Index(b)) => a == b,
        _ => false,
    }
}

fn match_steps(steps: &[Step], segments: &[Segment]) -> bool {
    match steps.split_first() {
        None => segments.is_empty(),
        Some((Step::AnyDepth, rest)) => {
            (0..=segments.len()).any(|skip| match_steps(rest, &segments[skip..]))
        }
        Some((step, rest)) => match segments.split_first() {
            Some((segment, tail)) => step_matches(step, segment) && match_steps(rest, tail),
            None => false,
        },
    }
}

/// Whether `segments` is a prefix of some path the pattern matches.
fn prefix_may_match(steps: &[Step], segments: &[Segment]) -> bool {
    match (steps.split_first(), segments.split_first()) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some((Step::AnyDepth, _)), Some(_)) => true,
        (Some((step, rest)), Some((segment, tail))) => {
            step_matches(step, segment) && prefix_may_match(rest, tail)
        }
    }
}

impl FromStr for Pattern {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let steps = parse_steps(text, true).map_err(|reason| Error::InvalidPath {
            path: text.to_owned(),
            reason,
        })?;
        if steps.is_empty() {
            return Err(Error::InvalidPath {
                path: text.to_owned(),
                reason: "empty pattern".into(),
            });
        }
        Ok(Self {
            text: text.to_owned(),
            steps,
        })
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> ConfigPath {
        text.parse().unwrap()
    }

    #[test]
    fn display_quotes_keys_that_are_not_plain() {
        let cases = [
            (
                ConfigPath::root().key("a").key("b").index(2).key("c"),
                "a.b[2].c",
            ),
            (
                ConfigPath::root()
                    .key("labels")
                    .key("app.kubernetes.io/name"),
                r#"labels."app.kubernetes.io/name""#,
            ),
            (ConfigPath::root().key("").key("x"), r#""".x"#),
            (ConfigPath::root().key("tab\tkey"), r#""tab\tkey""#),
            (ConfigPath::root().index(0).index(1), "[0][1]"),
            (ConfigPath::root(), ""),
        ];
        for (path, text) in cases {
            assert_eq!(path.to_string(), text);
            assert_eq!(text.parse::<ConfigPath>().unwrap(), path, "{text}");
        }
    }

    #[test]
    fn invalid_paths_are_errors() {
        for text in ["a..b", "a.", "a[x]", "a[1", "a b", "\"open", "*"] {
            assert!(text.parse::<ConfigPath>().is_err(), "{text}");
        }
    }

    #[test]
    fn patterns_match_one_or_any_segments() {
        let cases = [
            ("a.*.c", "a.b.c", true),
            ("a.*.c", "a[3].c", true),
            ("a.*.c", "a.b.d.c", false),
            ("a.**.c", "a.c", true),
            ("a.**.c", "a.b.d.c", true),
            ("**.password", "db.primary.password", true),
            ("**", "anything[1].at.all", true),
            ("a.b", "a.b.c", false),
            ("routes[*].upstream", "routes[4].upstream", true),
            (r#"labels."x.y""#, r#"labels."x.y""#, true),
        ];
        for (pattern, p, expected) in cases {
            let pattern: Pattern = pattern.parse().unwrap();
            assert_eq!(pattern.matches(&path(p)), expected, "{pattern} vs {p}");
        }
    }

    #[test]
    fn covers_and_overlaps() {
        let pattern: Pattern = "server.listen".parse().unwrap();
        assert!(pattern.covers(&path("server.listen.port")));
        assert!(!pattern.covers(&path("server")));
        assert!(pattern.overlaps(&path("server")));
        assert!(!pattern.overlaps(&path("limits")));
    }
}
