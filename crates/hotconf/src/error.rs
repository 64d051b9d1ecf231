//! Errors and located problems.
//!
//! A [`Problem`] is one thing wrong with a config, located like a compiler diagnostic: file,
//! line, column, config path. A failed load or reload carries every problem found
//! ([`Error::Invalid`]); the old config stays active.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How bad a [`Problem`] is: errors reject a config, warnings are reported and let it apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Reported; the config still applies.
    Warning,
    /// The config is rejected.
    Error,
}

/// Which stage found a [`Problem`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// A source could not be read: missing, unreadable, a directory where a file was expected.
    Io,
    /// The bytes are not valid for the format: bad syntax, invalid UTF-8, duplicate keys.
    Syntax,
    /// A document is empty or holds only whitespace or comments.
    Empty,
    /// A size, depth or alias-expansion limit was exceeded.
    Limit,
    /// The merged config does not fit the target type: wrong type, missing or unknown field.
    Type,
    /// A [`Validate`](crate::Validate) rule failed.
    Validation,
    /// The merged config does not satisfy the JSON Schema.
    Schema,
    /// A policy forbids the change.
    Policy,
    /// A subscriber callback panicked.
    Callback,
    /// A component refused the config, failed, panicked or timed out while preparing, or
    /// panicked while committing.
    Component,
    /// Validation overran its timeout, or an earlier validation still runs.
    Timeout,
    /// The audit log could not record the attempt before the swap (fail-closed mode).
    Audit,
    /// A source reported that it cannot deliver its documents (a lost store, a bad push).
    Source,
}

impl ProblemKind {
    /// The pipeline stage that finds problems of this kind: the `stage` of a rejected
    /// event and of the `hotconf_config_reload_failures_total` metric.
    pub fn stage(self) -> Stage {
        match self {
            Self::Io => Stage::Read,
            Self::Syntax | Self::Empty | Self::Limit => Stage::Parse,
            Self::Type => Stage::Deserialize,
            Self::Validation => Stage::Validate,
            Self::Schema => Stage::Schema,
            Self::Policy => Stage::Policy,
            Self::Timeout => Stage::Timeout,
            Self::Component => Stage::Prepare,
            Self::Callback => Stage::Commit,
            Self::Audit => Stage::Audit,
            Self::Source => Stage::Source,
        }
    }
}

/// A stage of the pipeline or the transaction: where a reload attempt was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stage {
    /// Reading the sources.
    Read,
    /// Parsing a document.
    Parse,
    /// Deserializing the merged config into the target type.
    Deserialize,
    /// [`Validate`](crate::Validate) rules.
    Validate,
    /// The JSON Schema.
    Schema,
    /// The policy (denied or restart-required paths).
    Policy,
    /// Validation overran its timeout.
    Timeout,
    /// A component or resource preparing.
    Prepare,
    /// Components committing (never refuses an attempt: a commit failure is a warning).
    Commit,
    /// The audit log's intent record (fail-closed mode).
    Audit,
    /// A source that cannot deliver its documents.
    Source,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 11] = [
        Self::Read,
        Self::Parse,
        Self::Deserialize,
        Self::Validate,
        Self::Schema,
        Self::Policy,
        Self::Timeout,
        Self::Prepare,
        Self::Commit,
        Self::Audit,
        Self::Source,
    ];

    /// The name used in JSON and metric labels (`"parse"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Parse => "parse",
            Self::Deserialize => "deserialize",
            Self::Validate => "validate",
            Self::Schema => "schema",
            Self::Policy => "policy",
            Self::Timeout => "timeout",
            Self::Prepare => "prepare",
            Self::Commit => "commit",
            Self::Audit => "audit",
            Self::Source => "source",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One located problem with a config.
///
/// `file`, `line` and `column` (1-based) say where the offending value was written; `path` is
/// its dotted config path. Any of them may be missing when it does not apply (an unreadable
/// file has no line; a syntax error may have no config path yet).
///
/// ```
/// use hotconf::{Problem, ProblemKind};
///
/// let problem = Problem::error(ProblemKind::Validation, "must be greater than 0")
///     .at_path("limits.rpm".parse().unwrap())
///     .at_location("config/app.toml", 3, 7);
/// assert_eq!(
///     problem.to_string(),
///     "config/app.toml:3:7: limits.rpm: must be greater than 0"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Problem {
    /// Error or warning.
    #[serde(skip_serializing_if = "is_error")]
    pub severity: Severity,
    /// The stage that found it.
    #[serde(skip)]
    pub kind: ProblemKind,
    /// The document's origin (a path, a key, `env`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column in characters, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// The dotted config path, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<crate::ConfigPath>,
    /// What is wrong.
    pub message: String,
    /// The component or resource that reported it, for [`ProblemKind::Component`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
}

fn is_error(severity: &Severity) -> bool {
    *severity == Severity::Error
}

impl Problem {
    /// A new error with no location yet.
    pub fn error(kind: ProblemKind, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            kind,
            file: None,
            line: None,
            column: None,
            path: None,
            message: message.into(),
            component: None,
        }
    }

    /// A new warning with no location yet.
    pub fn warning(kind: ProblemKind, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(kind, message)
        }
    }

    /// Sets the config path.
    #[must_use]
    pub fn at_path(mut self, path: crate::ConfigPath) -> Self {
        self.path = Some(path);
        self
    }

    /// Sets the file and position.
    #[must_use]
    pub fn at_location(mut self, file: impl Into<String>, line: u32, column: u32) -> Self {
        self.file = Some(file.into());
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    /// Sets only the file.
    #[must_use]
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// Whether this problem rejects the config.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            f.write_str(file)?;
            if let (Some(line), Some(column)) = (self.line, self.column) {
                write!(f, ":{line}:{column}")?;
            }
            f.write_str(": ")?;
        }
        if let Some(path) = self.path.as_ref().filter(|path| !path.is_root()) {
            write!(f, "{path}: ")?;
        }
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one attempt to load a config, errors and warnings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// The errors, in the order found.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter().filter(|p| p.is_error())
    }

    /// The warnings, in the order found.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter().filter(|p| !p.is_error())
    }

    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// Whether any error is about reading a source rather than its content.
    pub fn has_io_errors(&self) -> bool {
        self.errors().any(|p| p.kind == ProblemKind::Io)
    }
}

impl std::error::Error for Problem {}

impl std::error::Error for Problems {}

impl From<Problem> for Problems {
    fn from(problem: Problem) -> Self {
        Self(vec![problem])
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config was rejected: it could not be read, parsed, typed or validated, or a
    /// policy forbade it. Nothing was applied; the previous config (if any) stays active.
    #[error("config rejected:\n{0}")]
    Invalid(Problems),
    /// A path or pattern given to the API does not parse.
    #[error("invalid config path '{path}': {reason}")]
    InvalidPath {
        /// The text given.
        path: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A builder or source option is out of range or contradictory.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing the config back to its file failed; the file is unchanged.
    #[error("cannot save config to {}: {source}", path.display())]
    Save {
        /// The file written.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The config was rejected and the old one kept, but aborting the components that had
    /// already prepared failed: they may hold state for a config that never went live.
    #[error("config rejected, but rolling back failed: {}\n{problems}", failures.join("; "))]
    RollbackFailed {
        /// Why the config was rejected.
        problems: Problems,
        /// Which aborts failed, and how.
        failures: Vec<String>,
    },
    /// No snapshot with this version is in the history.
    #[error("version {0} is not in the history")]
    UnknownVersion(u64),
    /// The config cannot be converted for saving, or has no file to be saved to.
    #[error("cannot save config: {0}")]
    Unsaveable(String),
    /// The file watcher could not be started: the working directory (for relative paths)
    /// is unreadable, or its thread could not be spawned. Failures of the native watch
    /// itself are not errors: the watcher falls back to polling and says so in the log.
    #[error("cannot watch the config files: {0}")]
    Watch(#[source] std::io::Error),
    /// A thread the reloader needs (the reload worker, the validator) could not be started.
    #[error("cannot start a reloader thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The reloader was shut down: nothing more is reloaded. Readers keep the last config.
    #[error("the reloader is shut down")]
    Stopped,
    /// A change was made against a config that is no longer live (an admin `PUT` whose
    /// `If-Match` names another version): nothing was applied.
    #[error("the live config is {actual}, not {expected}")]
    Conflict {
        /// The tag the change was made against.
        expected: String,
        /// The tag of the live config.
        actual: String,
    },
}

impl From<Problems> for Error {
    fn from(problems: Problems) -> Self {
        Self::Invalid(problems)
    }
}

impl Error {
    /// The problems of a rejected config; empty for other errors.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid(problems) | Self::RollbackFailed { problems, .. } => &problems.0,
            _ => &[],
        }
    }
}
