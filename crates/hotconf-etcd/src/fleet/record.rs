//! One instance's status record, as it writes it under `P.status/<instance>` and as
//! `hotconf fleet status` reads it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hotconf::{Event, Outcome, Problem};
use serde::{Deserialize, Serialize};

/// What one instance runs and what it last tried, as JSON under
/// [`Prefix::status_key`](crate::Prefix::status_key). Fields may be added, never renamed
/// or removed. Nothing in it is a config value: errors are hotconf's located, redacted
/// problems.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Record {
    /// The instance's name (`host-pid` unless given).
    pub instance: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The config version active in it (hotconf's version, one per applied reload).
    pub version: u64,
    /// The content hash of the documents under the prefix it applied (last loaded,
    /// applied, unchanged or restart-required attempt); `None` before the first load.
    pub content_hash: Option<String>,
    /// The etcd revision those documents were read at, when its tracker still knows it.
    pub revision_applied: Option<i64>,
    /// The content hash of the documents of its last attempt, applied or not.
    pub hash_attempted: Option<String>,
    /// The etcd revision of those documents, when known.
    pub revision_attempted: Option<i64>,
    /// The last attempt's outcome (`loaded`, `applied`, `rejected`, …).
    pub outcome: String,
    /// Why the last attempt was rejected: located in the keys, redacted.
    #[serde(default)]
    pub errors: Vec<Located>,
    /// Restart-required paths whose new value waits for a restart.
    #[serde(default)]
    pub pending: Vec<String>,
    /// When the last attempt finished (RFC 3339, UTC).
    pub at: String,
    /// The same, in milliseconds since the Unix epoch, for computing ages.
    pub at_ms: u64,
}

/// A problem as a record carries it: the key (or file), line, column, config path and
/// message of a [`Problem`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Located {
    /// The document's origin: the etcd key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line in the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column in the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// The dotted config path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// What is wrong (redacted by hotconf).
    pub message: String,
}

impl From<&Problem> for Located {
    fn from(problem: &Problem) -> Self {
        Self {
            file: problem.file.clone(),
            line: problem.line,
            column: problem.column,
            path: problem
                .path
                .as_ref()
                .filter(|p| !p.is_root())
                .map(ToString::to_string),
            message: problem.message.clone(),
        }
    }
}

impl std::fmt::Display for Located {
    /// `key:line:column: path: message`, like a compiler.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(file) = &self.file {
            f.write_str(file)?;
            if let (Some(line), Some(column)) = (self.line, self.column) {
                write!(f, ":{line}:{column}")?;
            }
            f.write_str(": ")?;
        }
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Whether an outcome means the instance accepted the documents it read: they are what it
/// runs (restart-required values held back aside).
pub(crate) fn accepted(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Loaded | Outcome::Applied | Outcome::Unchanged | Outcome::RestartRequired
    )
}

/// Whether an outcome is an attempt on documents (not a `detected`, `deferred` or `queued`
/// notice).
pub(crate) fn attempt(outcome: Outcome) -> bool {
    accepted(outcome) || outcome == Outcome::Rejected
}

/// What a reporter keeps between events to write its record.
#[derive(Clone, Debug, Default)]
pub(crate) struct Progress {
    pub(crate) applied: Option<(String, Option<i64>)>,
    pub(crate) pending: Vec<String>,
}

/// Who the record is about.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub(crate) instance: String,
    pub(crate) host: String,
    pub(crate) pid: u32,
}

/// The event's part of a record: `hash` is the content hash of its documents under the
/// prefix, `revision` the etcd revision they were read at (when known). `None` for an
/// event that is not an attempt (nothing to record).
pub(crate) fn update(
    identity: &Identity,
    progress: &mut Progress,
    event: &Event,
    hash: String,
    revision: Option<i64>,
) -> Option<Record> {
    if !attempt(event.outcome) {
        return None;
    }
    if accepted(event.outcome) {
        progress.applied = Some((hash.clone(), revision));
        progress.pending = event.pending.iter().map(ToString::to_string).collect();
    }
    let (content_hash, revision_applied) = progress
        .applied
        .clone()
        .map_or((None, None), |(hash, revision)| (Some(hash), revision));
    let since = event.at.duration_since(UNIX_EPOCH).unwrap_or_default();
    Some(Record {
        instance: identity.instance.clone(),
        host: identity.host.clone(),
        pid: identity.pid,
        version: event.version,
        content_hash,
        revision_applied,
        hash_attempted: Some(hash),
        revision_attempted: revision,
        outcome: event.outcome.as_str().to_owned(),
        errors: event.errors.iter().map(Located::from).collect(),
        pending: progress.pending.clone(),
        at: hotconf::Timestamp(event.at).to_string(),
        at_ms: u64::try_from(since.as_millis()).unwrap_or(u64::MAX),
    })
}

impl Record {
    /// How long ago the record's attempt finished, by this machine's clock.
    pub fn age(&self, now: SystemTime) -> Duration {
        let at = UNIX_EPOCH + Duration::from_millis(self.at_ms);
        now.duration_since(at).unwrap_or_default()
    }
}

/// The host name: `/proc/sys/kernel/hostname`, else `$HOSTNAME`, else `localhost`.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_through_json() {
        let record = Record {
            instance: "web-1".into(),
            host: "h".into(),
            pid: 7,
            version: 3,
            content_hash: Some("00000000000000aa".into()),
            revision_applied: Some(12),
            hash_attempted: Some("00000000000000bb".into()),
            revision_attempted: None,
            outcome: "rejected".into(),
            errors: vec![Located {
                file: Some("/app/a.toml".into()),
                line: Some(3),
                column: Some(7),
                path: Some("limits.rpm".into()),
                message: "must be greater than 0".into(),
            }],
            pending: vec!["server.listen".into()],
            at: "2026-12-01T00:00:00.000Z".into(),
            at_ms: 1_000,
        };
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), record);
        assert_eq!(
            record.errors[0].to_string(),
            "/app/a.toml:3:7: limits.rpm: must be greater than 0"
        );
        assert_eq!(
            record.age(UNIX_EPOCH + Duration::from_millis(3_500)),
            Duration::from_millis(2_500)
        );
        assert_eq!(record.age(UNIX_EPOCH), Duration::ZERO);
    }

    #[test]
    fn only_attempts_count_and_only_accepted_ones_move_the_applied_hash() {
        let cases = [
            (Outcome::Loaded, true, true),
            (Outcome::Applied, true, true),
            (Outcome::Unchanged, true, true),
            (Outcome::RestartRequired, true, true),
            (Outcome::Rejected, false, true),
            (Outcome::Detected, false, false),
            (Outcome::Deferred, false, false),
            (Outcome::Queued, false, false),
        ];
        for (outcome, is_accepted, is_attempt) in cases {
            assert_eq!(accepted(outcome), is_accepted, "{outcome}");
            assert_eq!(attempt(outcome), is_attempt, "{outcome}");
        }
    }

    #[test]
    fn the_host_name_is_never_empty() {
        assert!(!host_name().is_empty());
    }
}
