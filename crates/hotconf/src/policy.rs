//! Policy: rules over config paths, decided after the diff and before anything is applied.
//!
//! A policy names paths with [`Pattern`]s and says what a change there means. Secrets are the
//! first rule: values at secret paths are redacted wherever a change is shown (text, JSON,
//! logs, audit). Restart-required and denied paths belong here too.

use serde_json::Value;

use crate::diff::Change;
use crate::error::{Problem, ProblemKind};
use crate::path::{ConfigPath, Pattern, Segment};

/// Turns a secret value into a string that tells whether it changed without telling what
/// it is: the audit log sets one that computes a keyed HMAC-SHA256
/// (`hmac-sha256:…`). The pipeline calls it on every secret value of a change, to fill
/// [`Event::hmac_changes`](crate::Event::hmac_changes) and nothing else.
pub type Fingerprint = std::sync::Arc<dyn Fn(&Value) -> String + Send + Sync>;

/// What a secret value is replaced with, everywhere it would be shown.
pub const REDACTED: &str = "***";

/// Words that make a key secret when its name contains one, ignoring ASCII case. Matching on
/// a part of the name catches `DB_PASSWORD`, `accessToken` and `credentials` without a list
/// of every spelling.
const SECRET_WORDS: [&str; 8] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "credential",
];

/// Which config paths hold secrets, so that their values never reach output.
///
/// A path is secret when one of its keys contains a secret word (`password`, `passwd`,
/// `secret`, `token`, `api_key`, `apikey`, `private_key`, `credential`, ignoring case), or when
/// a user pattern covers it; everything under a secret path is secret too. The rules err on
/// the side of redacting: hiding a harmless value (`max_tokens`) costs a line of debugging,
/// leaking a password costs a rotation, so there is no way to exempt a path.
///
/// ```
/// use hotconf::Secrets;
/// use serde_json::json;
///
/// let secrets = Secrets::new().pattern("providers.*.key".parse().unwrap());
/// let mut changes = hotconf::diff(
///     &json!({"db": {"host": "a", "password": "old"}}),
///     &json!({"db": {"host": "b", "password": "new"}}),
/// );
/// secrets.redact(&mut changes);
/// assert_eq!(changes[0].to_string(), r#"~ db.host: "a" -> "b""#);
/// assert_eq!(changes[1].to_string(), r#"~ db.password: "***" -> "***""#);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    pub(crate) patterns: Vec<Pattern>,
}

impl Secrets {
    /// The built-in rules only; add the paths they miss with [`Secrets::pattern`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Also treats as secret what `pattern` covers, for secrets whose key names say nothing
    /// (`providers.*.key`, `**.dsn`).
    #[must_use]
    pub fn pattern(mut self, pattern: Pattern) -> Self {
        self.patterns.push(pattern);
        self
    }

    /// Whether the value at `path` must not be shown.
    pub fn is_secret(&self, path: &ConfigPath) -> bool {
        path.segments().iter().any(|segment| match segment {
            Segment::Key(key) => is_secret_key(key),
            Segment::Index(_) => false,
        }) || self.patterns.iter().any(|pattern| pattern.covers(path))
    }

    /// Redacts `value`, found at `path`: replaced whole by [`REDACTED`] when the path is
    /// secret, else with its secret descendants replaced. A change at a table must not leak
    /// the secrets inside it.
    pub fn redact_value(&self, path: &ConfigPath, value: &mut Value) {
        self.replace_value(path, value, &|_| Value::String(REDACTED.to_owned()));
    }

    /// Replaces each secret part of `value` (found at `path`) by what `replace` makes of it.
    fn replace_value(
        &self,
        path: &ConfigPath,
        value: &mut Value,
        replace: &dyn Fn(&Value) -> Value,
    ) {
        if self.is_secret(path) {
            *value = replace(value);
            return;
        }
        let mut scratch = path.clone();
        self.replace_children(&mut scratch, value, replace);
    }

    /// Replaces the secret descendants of a value whose own `path` is not secret.
    fn replace_children(
        &self,
        path: &mut ConfigPath,
        value: &mut Value,
        replace: &dyn Fn(&Value) -> Value,
    ) {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    path.push(Segment::Key(key.clone()));
                    self.replace_child(path, child, replace);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter_mut().enumerate() {
                    path.push(Segment::Index(index));
                    self.replace_child(path, child, replace);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    fn replace_child(
        &self,
        path: &mut ConfigPath,
        child: &mut Value,
        replace: &dyn Fn(&Value) -> Value,
    ) {
        if self.is_secret(path) {
            *child = replace(child);
        } else {
            self.replace_children(path, child, replace);
        }
    }

    /// Writes each secret value of `changes` as its [`Fingerprint`] (a keyed HMAC) instead
    /// of in clear: what the audit log records.
    pub(crate) fn fingerprint(&self, changes: &mut [Change], fingerprint: &Fingerprint) {
        let replace = |value: &Value| Value::String(fingerprint(value));
        for change in changes {
            for value in [&mut change.old, &mut change.new].into_iter().flatten() {
                self.replace_value(&change.path, value, &replace);
            }
        }
    }

    /// Redacts the old and new values of every change, before they are printed, logged or
    /// sent to subscribers. The paths stay: that a secret changed is worth knowing.
    pub fn redact(&self, changes: &mut [Change]) {
        for change in changes {
            for value in [&mut change.old, &mut change.new].into_iter().flatten() {
                self.redact_value(&change.path, value);
            }
        }
    }
}

impl Secrets {
    /// Keeps a secret value out of a problem's message: a type or schema error at a secret
    /// path would otherwise quote the value (`invalid type: integer `1234``). The location
    /// and path stay.
    ///
    /// ```
    /// use hotconf::{Problem, ProblemKind, Secrets};
    ///
    /// let mut problem = Problem::error(ProblemKind::Type, "invalid type: integer `1234`, expected a string")
    ///     .at_path("db.password".parse().unwrap());
    /// Secrets::new().redact_problem(&mut problem);
    /// assert_eq!(problem.message, "invalid value (secret, not shown), expected a string");
    ///
    /// // A scalar where a table belongs may be a secret written one level too high.
    /// let mut problem = Problem::error(ProblemKind::Type, "invalid type: string \"hunter2\", expected struct Db")
    ///     .at_path("db".parse().unwrap());
    /// Secrets::new().redact_problem(&mut problem);
    /// assert_eq!(problem.message, "invalid value (secret, not shown), expected struct Db");
    /// ```
    pub fn redact_problem(&self, problem: &mut Problem) {
        // A scalar where a table was expected may be a secret written one level too high
        // (`db = "hunter2"` for `db.password`): over-redact, as everywhere.
        let table_expected = match problem.kind {
            ProblemKind::Type => {
                problem.message.contains(", expected struct ")
                    || problem.message.contains(", expected a map")
            }
            ProblemKind::Schema => problem.message.contains(r#"is not of type "object""#),
            _ => false,
        };
        let secret = table_expected
            || problem
                .path
                .as_ref()
                .is_some_and(|path| self.is_secret(path));
        if !secret || !matches!(problem.kind, ProblemKind::Type | ProblemKind::Schema) {
            return;
        }
        if problem.kind == ProblemKind::Schema && table_expected {
            problem.message = r#"invalid value (secret, not shown): not of type "object""#.into();
            return;
        }
        problem.message = match problem.message.split_once(", expected ") {
            Some((_, expected)) => {
                format!("invalid value (secret, not shown), expected {expected}")
            }
            None if problem.message.starts_with("missing field") => return,
            None => "invalid value (secret, not shown)".to_owned(),
        };
    }
}

/// Whether a key's name contains a secret word, ignoring ASCII case.
pub(crate) fn is_secret_key(key: &str) -> bool {
    // Case-insensitive, without a lowered copy: every key of a redacted value is asked.
    let key = key.as_bytes();
    SECRET_WORDS.iter().any(|word| {
        key.windows(word.len())
            .any(|window| window.eq_ignore_ascii_case(word.as_bytes()))
    })
}

/// What a change at a path means for a running service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// Applied while running (the default).
    Hot,
    /// Takes effect only after a restart: held back, and reported as pending.
    RestartRequired,
    /// Must not change while running: the whole reload is rejected.
    Denied,
}

impl Rule {
    /// The name used in JSON (`"restart_required"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hot => "hot",
            Self::RestartRequired => "restart_required",
            Self::Denied => "denied",
        }
    }
}

/// What a reload that changes restart-required paths does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestartMode {
    /// Apply the hot part and keep the old values at restart-required paths (re-validating
    /// the combination); the held-back paths are reported as pending.
    #[default]
    ApplyHot,
    /// Reject the whole reload.
    Reject,
}

/// Rules over config paths: which changes are hot, which need a restart, which are denied,
/// and which values are secret.
///
/// A change is classified by the strictest pattern that covers its path or lies under it:
/// denied, then restart required, then hot. A change that adds or removes a whole table
/// (`server`) touches every pattern inside it (`server.listen`).
///
/// ```
/// use hotconf::{ConfigPath, Policy, Rule};
///
/// let policy = Policy::new()
///     .restart_required("server.listen".parse().unwrap())
///     .deny("tenants.*.id".parse().unwrap());
/// let rule = |path: &str| policy.rule(&path.parse::<ConfigPath>().unwrap());
/// assert_eq!(rule("limits.rpm"), Rule::Hot);
/// assert_eq!(rule("server.listen"), Rule::RestartRequired);
/// assert_eq!(rule("server"), Rule::RestartRequired);
/// assert_eq!(rule("tenants.acme.id"), Rule::Denied);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Policy {
    secrets: Secrets,
    restart_required: Vec<Pattern>,
    denied: Vec<Pattern>,
    mode: RestartMode,
}

impl Policy {
    /// Everything hot; built-in secret names only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes under `pattern` take effect only after a restart.
    #[must_use]
    pub fn restart_required(mut self, pattern: Pattern) -> Self {
        self.restart_required.push(pattern);
        self
    }

    /// Changes under `pattern` reject the reload.
    #[must_use]
    pub fn deny(mut self, pattern: Pattern) -> Self {
        self.denied.push(pattern);
        self
    }

    /// Values under `pattern` are secret, on top of the built-in names.
    #[must_use]
    pub fn secret(mut self, pattern: Pattern) -> Self {
        self.secrets = std::mem::take(&mut self.secrets).pattern(pattern);
        self
    }

    /// What to do with a reload that changes restart-required paths.
    #[must_use]
    pub fn restart_mode(mut self, mode: RestartMode) -> Self {
        self.mode = mode;
        self
    }

    /// The rule for a change at `path`.
    pub fn rule(&self, path: &ConfigPath) -> Rule {
        let touches = |patterns: &[Pattern]| patterns.iter().any(|p| p.touches(path));
        if touches(&self.denied) {
            Rule::Denied
        } else if touches(&self.restart_required) {
            Rule::RestartRequired
        } else {
            Rule::Hot
        }
    }

    /// The secret rules.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// The restart mode.
    pub fn mode(&self) -> RestartMode {
        self.mode
    }
}

#[cfg(test)]
mod tests;
