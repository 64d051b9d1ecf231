//! The reloader's own settings, read from the watched config: the `[hot_reload]` table.
//!
//! ```toml
//! [hot_reload]
//! enabled = true      # false pauses reloads from the watcher (the table's own file stays watched)
//! debounce_ms = 500   # how long the files must be quiet before a batch becomes a reload
//! watch_paths = ["models/openai.toml"]  # more files, layered right after this one
//! ```
//!
//! The table is taken out of the merged tree before the typed config is deserialized, so a
//! `#[serde(deny_unknown_fields)]` config still loads, and it never appears in diffs,
//! events or the effective config.
//!
//! Precedence, lowest first: the built-in default, the builder
//! ([`ReloaderBuilder::debounce`](crate::ReloaderBuilder)), the file, an explicit override
//! ([`ReloaderBuilder::debounce_explicit`](crate::ReloaderBuilder), the command line's
//! `--debounce`). [`resolve`] is that rule.
//!
//! Everything here is pure: no threads, clocks or I/O.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Problem, ProblemKind};
use crate::format::describe;
use crate::path::{ConfigPath, Segment};
use crate::source::Origin;
use crate::tree::{Node, Value};

/// The settings table's name unless [`ReloaderBuilder::settings_table`](crate::ReloaderBuilder)
/// says otherwise.
pub const DEFAULT_TABLE: &str = "hot_reload";

/// The shortest and the longest debounce a file may set, in milliseconds.
pub(crate) const DEBOUNCE_MS: std::ops::RangeInclusive<u64> = 10..=60_000;

/// The debounce when nobody sets one, in milliseconds.
pub(crate) const DEFAULT_DEBOUNCE_MS: u64 = 100;

/// Where the value of a setting came from, lowest precedence first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SettingSource {
    /// Nobody set it.
    Default,
    /// The builder set it ([`ReloaderBuilder::debounce`](crate::ReloaderBuilder)).
    Builder,
    /// The settings table of the watched config.
    File,
    /// An explicit override that beats the file
    /// ([`ReloaderBuilder::debounce_explicit`](crate::ReloaderBuilder), `--debounce`).
    Explicit,
}

impl SettingSource {
    /// `default`, `builder`, `file` or `explicit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Builder => "builder",
            Self::File => "file",
            Self::Explicit => "explicit",
        }
    }
}

impl fmt::Display for SettingSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One effective setting and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Setting<V> {
    /// The value in effect.
    pub value: V,
    /// Who set it.
    pub from: SettingSource,
}

impl<V> Setting<V> {
    pub(crate) fn new(value: V, from: SettingSource) -> Self {
        Self { value, from }
    }
}

/// The reloader's effective settings, as [`Status::settings`](crate::Status::settings)
/// shows them.
///
/// Serializes as `{"enabled":{"value":true,"from":"default"},"debounce_ms":{"value":500,
/// "from":"file"},"file":"config/app.toml"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Settings {
    /// Whether the file lets the watcher reload (the runtime
    /// [`Reloader::disable`](crate::Reloader::disable) is shown apart, in
    /// [`Status::enabled`](crate::Status::enabled); both must say yes).
    pub enabled: Setting<bool>,
    /// How long the watched files must be quiet before a batch becomes one reload.
    pub debounce_ms: Setting<u64>,
    /// More config files, as the table lists them: relative to the directory of the file
    /// holding the table, layered right after it in this order, watched like it.
    pub watch_paths: Setting<Vec<String>>,
    /// The file holding the settings table, when there is one.
    pub file: Option<String>,
}

/// What a settings table says; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileSettings {
    pub(crate) enabled: Option<bool>,
    pub(crate) debounce_ms: Option<u64>,
    pub(crate) watch_paths: Option<Vec<String>>,
    /// The file holding the table: the layer that wrote `enabled`, else the highest layer
    /// that wrote any of it. While `enabled = false`, the watcher reads only this file.
    pub(crate) origin: Option<Origin>,
    /// The layer that wrote `watch_paths`: the listed files are relative to its directory
    /// and layered right after it.
    pub(crate) paths_origin: Option<Origin>,
}

/// Which layers wrote a settings table (see [`FileSettings::origin`]): the index of the
/// document holding it, and of the one that wrote `watch_paths`.
pub(crate) fn holders(table: &Node) -> (u32, Option<u32>) {
    let Value::Table(entries) = &table.value else {
        return (table.span.doc, None);
    };
    let holder = entries
        .get("enabled")
        .map(|node| node.span.doc)
        .or_else(|| entries.values().map(|node| node.span.doc).max())
        .unwrap_or(table.span.doc);
    (holder, entries.get("watch_paths").map(|node| node.span.doc))
}

/// What the reloader was built with: the defaults and overrides the file is weighed against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Base {
    /// The builder's debounce, or the default.
    pub(crate) debounce_ms: Setting<u64>,
    /// An explicit debounce that beats the file.
    pub(crate) explicit_debounce_ms: Option<u64>,
}

impl Default for Base {
    fn default() -> Self {
        Self {
            debounce_ms: Setting::new(DEFAULT_DEBOUNCE_MS, SettingSource::Default),
            explicit_debounce_ms: None,
        }
    }
}

/// The effective settings: explicit beats file beats builder beats default.
pub(crate) fn resolve(base: &Base, file: &FileSettings) -> Settings {
    let debounce_ms = match (base.explicit_debounce_ms, file.debounce_ms) {
        (Some(ms), _) => Setting::new(ms, SettingSource::Explicit),
        (None, Some(ms)) => Setting::new(ms, SettingSource::File),
        (None, None) => base.debounce_ms.clone(),
    };
    let enabled = match file.enabled {
        Some(enabled) => Setting::new(enabled, SettingSource::File),
        None => Setting::new(true, SettingSource::Default),
    };
    let watch_paths = match &file.watch_paths {
        Some(paths) => Setting::new(paths.clone(), SettingSource::File),
        None => Setting::new(Vec::new(), SettingSource::Default),
    };
    Settings {
        enabled,
        debounce_ms,
        watch_paths,
        file: file.origin.as_ref().map(ToString::to_string),
    }
}

/// The files `watch_paths` names, each relative to the directory of the file that wrote
/// it (an absolute path stays as it is). Empty when that is not a file.
pub(crate) fn extra_files(file: &FileSettings) -> Vec<PathBuf> {
    let (Some(paths), Some(holder)) = (
        &file.watch_paths,
        file.paths_origin.as_ref().and_then(Origin::path),
    ) else {
        return Vec::new();
    };
    let dir = holder.parent().unwrap_or_else(|| Path::new(""));
    paths.iter().map(|path| dir.join(path)).collect()
}

/// Removes the table `name` from the top of `root`.
pub(crate) fn take(root: &mut Node, name: &str) -> Option<Node> {
    match &mut root.value {
        Value::Table(table) => table.shift_remove(name),
        _ => None,
    }
}

/// Reads a settings table. Every problem found is returned, each at its config path
/// (`hot_reload.debounce_ms`), for the caller to locate in its file.
pub(crate) fn read(table: &Node, name: &str) -> Result<FileSettings, Vec<Problem>> {
    let mut path = ConfigPath::root();
    path.push(Segment::Key(name.to_owned()));
    let at = |key: &str| {
        let mut path = path.clone();
        path.push(Segment::Key(key.to_owned()));
        path
    };
    let Value::Table(entries) = &table.value else {
        return Err(vec![
            invalid(format!(
                "the reloader's settings must be a table (enabled, debounce_ms), not {}",
                describe(&table.value)
            ))
            .at_path(path.clone()),
        ]);
    };
    let mut settings = FileSettings::default();
    let mut problems = Vec::new();
    for (key, node) in entries.iter() {
        match (key.as_str(), &node.value) {
            ("enabled", Value::Bool(enabled)) => settings.enabled = Some(*enabled),
            ("enabled", other) => problems.push(
                Problem::error(
                    ProblemKind::Type,
                    format!("expected true or false, found {}", describe(other)),
                )
                .at_path(at(key)),
            ),
            ("debounce_ms", value) => match debounce(value) {
                Ok(ms) => settings.debounce_ms = Some(ms),
                Err(problem) => problems.push(problem.at_path(at(key))),
            },
            ("watch_paths", value) => match watch_paths(value, &at(key)) {
                Ok(paths) => settings.watch_paths = Some(paths),
                Err(found) => problems.extend(found),
            },
            (other, _) => problems.push(
                invalid(format!(
                    "unknown setting `{other}`: the reloader's settings are enabled, debounce_ms and watch_paths"
                ))
                .at_path(at(key)),
            ),
        }
    }
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(problems)
    }
}

fn watch_paths(value: &Value, path: &ConfigPath) -> Result<Vec<String>, Vec<Problem>> {
    let Value::Array(items) = value else {
        return Err(vec![
            Problem::error(
                ProblemKind::Type,
                format!("expected an array of file paths, found {}", describe(value)),
            )
            .at_path(path.clone()),
        ]);
    };
    let mut paths = Vec::new();
    let mut problems = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let mut at = path.clone();
        at.push(Segment::Index(index));
        match &item.value {
            Value::String(text) if !text.trim().is_empty() => paths.push(text.as_str().to_owned()),
            Value::String(_) => problems.push(invalid("an empty file path").at_path(at)),
            other => problems.push(
                Problem::error(
                    ProblemKind::Type,
                    format!("expected a file path, found {}", describe(other)),
                )
                .at_path(at),
            ),
        }
    }
    if problems.is_empty() {
        Ok(paths)
    } else {
        Err(problems)
    }
}

fn debounce(value: &Value) -> Result<u64, Problem> {
    let ms = match value {
        Value::Integer(ms) => u64::try_from(*ms).ok(),
        Value::Unsigned(ms) => Some(*ms),
        other => {
            return Err(Problem::error(
                ProblemKind::Type,
                format!(
                    "expected a whole number of milliseconds, found {}",
                    describe(other)
                ),
            ));
        }
    };
    match ms {
        Some(ms) if DEBOUNCE_MS.contains(&ms) => Ok(ms),
        _ => Err(invalid(format!(
            "must be from {} to {} milliseconds, not {}",
            DEBOUNCE_MS.start(),
            DEBOUNCE_MS.end(),
            number(value)
        ))),
    }
}

fn invalid(message: impl Into<String>) -> Problem {
    Problem::error(ProblemKind::Validation, message)
}

fn number(value: &Value) -> String {
    match value {
        Value::Integer(n) => n.to_string(),
        Value::Unsigned(n) => n.to_string(),
        _ => describe(value).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Span;
    use crate::tree::Table;

    fn node(value: Value) -> Node {
        Node::new(value, Span::default())
    }

    fn table(entries: &[(&str, Value)]) -> Node {
        let mut table = Table::default();
        for (key, value) in entries {
            table.insert((*key).into(), node(value.clone()));
        }
        node(Value::Table(Box::new(table)))
    }

    fn paths(problems: &[Problem]) -> Vec<String> {
        problems
            .iter()
            .map(|p| p.path.as_ref().map(ToString::to_string).unwrap_or_default())
            .collect()
    }

    #[test]
    fn reads_every_setting() {
        let settings = read(
            &table(&[
                ("enabled", Value::Bool(false)),
                ("debounce_ms", Value::Integer(250)),
                (
                    "watch_paths",
                    Value::Array(vec![
                        node(Value::String("models/a.toml".into())),
                        node(Value::String("/etc/b.yaml".into())),
                    ]),
                ),
            ]),
            "hot_reload",
        )
        .unwrap();
        assert_eq!(settings.enabled, Some(false));
        assert_eq!(settings.debounce_ms, Some(250));
        assert_eq!(
            settings.watch_paths.as_deref(),
            Some(&["models/a.toml".to_owned(), "/etc/b.yaml".to_owned()][..])
        );
        assert_eq!(read(&table(&[]), "x").unwrap(), FileSettings::default());
    }

    #[test]
    fn debounce_bounds_are_inclusive() {
        let cases: &[(Value, Option<u64>)] = &[
            (Value::Integer(9), None),
            (Value::Integer(10), Some(10)),
            (Value::Integer(60_000), Some(60_000)),
            (Value::Integer(60_001), None),
            (Value::Integer(-5), None),
            (Value::Unsigned(u64::MAX), None),
            (Value::Float(100.0), None),
            (Value::String("100".into()), None),
        ];
        for (value, expected) in cases {
            let got = read(&table(&[("debounce_ms", value.clone())]), "hot_reload");
            match expected {
                Some(ms) => assert_eq!(got.unwrap().debounce_ms, Some(*ms), "{value:?}"),
                None => {
                    let problems = got.unwrap_err();
                    assert_eq!(paths(&problems), ["hot_reload.debounce_ms"], "{value:?}");
                }
            }
        }
        let problems =
            read(&table(&[("debounce_ms", Value::Integer(5))]), "hot_reload").unwrap_err();
        assert_eq!(problems[0].kind, ProblemKind::Validation);
        assert!(
            problems[0].message.contains("10 to 60000") && problems[0].message.contains("not 5"),
            "{}",
            problems[0].message
        );
        let problems =
            read(&table(&[("debounce_ms", Value::Float(1.5))]), "hot_reload").unwrap_err();
        assert_eq!(problems[0].kind, ProblemKind::Type);
    }

    #[test]
    fn every_problem_is_reported_at_its_path() {
        let problems = read(
            &table(&[
                ("enabled", Value::String("yes".into())),
                ("debounce_ms", Value::Integer(1)),
                (
                    "watch_paths",
                    Value::Array(vec![
                        node(Value::String("ok.toml".into())),
                        node(Value::Integer(1)),
                        node(Value::String(" ".into())),
                    ]),
                ),
                ("colour", Value::Bool(true)),
            ]),
            "ops",
        )
        .unwrap_err();
        assert_eq!(
            paths(&problems),
            [
                "ops.enabled",
                "ops.debounce_ms",
                "ops.watch_paths[1]",
                "ops.watch_paths[2]",
                "ops.colour"
            ]
        );
        assert!(problems[2].message.contains("expected a file path"));
        assert!(problems[3].message.contains("empty file path"));
        assert!(problems[4].message.contains("unknown setting `colour`"));
        let problems = read(
            &table(&[("watch_paths", Value::String("a.toml".into()))]),
            "ops",
        )
        .unwrap_err();
        assert_eq!(paths(&problems), ["ops.watch_paths"]);
        let problems = read(&node(Value::Integer(3)), "hot_reload").unwrap_err();
        assert_eq!(paths(&problems), ["hot_reload"]);
        assert!(problems[0].message.contains("must be a table"));
    }

    #[test]
    fn the_holder_is_the_layer_that_wrote_enabled_else_the_highest() {
        let at = |doc: u32, value: Value| {
            Node::new(
                value,
                Span {
                    doc,
                    ..Span::default()
                },
            )
        };
        let mut entries = Table::default();
        entries.insert("debounce_ms".into(), at(2, Value::Integer(50)));
        entries.insert("watch_paths".into(), at(1, Value::Array(Vec::new())));
        let table = Node::new(Value::Table(Box::new(entries.clone())), Span::default());
        assert_eq!(holders(&table), (2, Some(1)));
        entries.insert("enabled".into(), at(1, Value::Bool(false)));
        let table = Node::new(Value::Table(Box::new(entries)), Span::default());
        assert_eq!(holders(&table), (1, Some(1)));
        let empty = Node::new(
            Value::Table(Box::default()),
            Span {
                doc: 3,
                ..Span::default()
            },
        );
        assert_eq!(holders(&empty), (3, None));
    }

    #[test]
    fn take_removes_only_the_top_level_table() {
        let mut root = table(&[("rpm", Value::Integer(1))]);
        if let Value::Table(entries) = &mut root.value {
            entries.insert(
                "hot_reload".into(),
                table(&[("enabled", Value::Bool(true))]),
            );
            entries.insert("inner".into(), table(&[("hot_reload", Value::Integer(1))]));
        }
        let taken = take(&mut root, "hot_reload").unwrap();
        assert_eq!(read(&taken, "hot_reload").unwrap().enabled, Some(true));
        assert!(take(&mut root, "hot_reload").is_none());
        assert_eq!(
            root.to_json(),
            serde_json::json!({"rpm": 1, "inner": {"hot_reload": 1}})
        );
        assert!(take(&mut node(Value::Integer(1)), "hot_reload").is_none());
    }

    #[test]
    fn explicit_beats_file_beats_builder_beats_default() {
        let file = |ms: Option<u64>| FileSettings {
            debounce_ms: ms,
            ..FileSettings::default()
        };
        let builder = Base {
            debounce_ms: Setting::new(300, SettingSource::Builder),
            explicit_debounce_ms: None,
        };
        let explicit = Base {
            explicit_debounce_ms: Some(40),
            ..builder.clone()
        };
        let cases = [
            (Base::default(), None, (100, SettingSource::Default)),
            (builder.clone(), None, (300, SettingSource::Builder)),
            (Base::default(), Some(500), (500, SettingSource::File)),
            (builder, Some(500), (500, SettingSource::File)),
            (explicit.clone(), Some(500), (40, SettingSource::Explicit)),
            (explicit, None, (40, SettingSource::Explicit)),
        ];
        for (base, ms, (value, from)) in cases {
            let settings = resolve(&base, &file(ms));
            assert_eq!(
                settings.debounce_ms,
                Setting::new(value, from),
                "{base:?} {ms:?}"
            );
        }
    }

    #[test]
    fn enabled_defaults_to_true_and_names_its_file() {
        let settings = resolve(&Base::default(), &FileSettings::default());
        assert_eq!(settings.enabled, Setting::new(true, SettingSource::Default));
        assert_eq!(settings.file, None);
        let settings = resolve(
            &Base::default(),
            &FileSettings {
                enabled: Some(false),
                origin: Some(Origin::File("conf/app.toml".into())),
                ..FileSettings::default()
            },
        );
        assert_eq!(settings.enabled, Setting::new(false, SettingSource::File));
        assert_eq!(settings.file.as_deref(), Some("conf/app.toml"));
        assert_eq!(
            serde_json::to_value(&settings).unwrap(),
            serde_json::json!({
                "enabled": {"value": false, "from": "file"},
                "debounce_ms": {"value": 100, "from": "default"},
                "watch_paths": {"value": [], "from": "default"},
                "file": "conf/app.toml"
            })
        );
    }

    #[test]
    fn watch_paths_are_relative_to_the_tables_file() {
        let file = FileSettings {
            watch_paths: Some(vec!["models/a.toml".into(), "/etc/b.toml".into()]),
            paths_origin: Some(Origin::File("conf/app.toml".into())),
            ..FileSettings::default()
        };
        assert_eq!(
            extra_files(&file),
            [
                PathBuf::from("conf/models/a.toml"),
                PathBuf::from("/etc/b.toml")
            ]
        );
        assert_eq!(
            resolve(&Base::default(), &file).watch_paths,
            Setting::new(
                vec!["models/a.toml".to_owned(), "/etc/b.toml".to_owned()],
                SettingSource::File
            )
        );
        let bare = FileSettings {
            paths_origin: Some(Origin::File("app.toml".into())),
            ..file.clone()
        };
        assert_eq!(extra_files(&bare)[0], PathBuf::from("models/a.toml"));
        let pushed = FileSettings {
            paths_origin: Some(Origin::Key("etcd/app".into())),
            ..file
        };
        assert!(extra_files(&pushed).is_empty());
    }
}
