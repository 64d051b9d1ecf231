//! Events: what subscribers, logs and `hotconf watch --json` receive for each reload attempt.

mod hash;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::ser::{SerializeMap, Serializer};

use crate::diff::Change;
use crate::error::{Problem, Stage};
use crate::path::ConfigPath;

pub(crate) use hash::{config_hash, hash_json, hash_str};

/// What a reload attempt did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The first load succeeded; the config is live.
    Loaded,
    /// A new config was validated and swapped in.
    Applied,
    /// The new config was refused; the old one stays active.
    Rejected,
    /// The sources changed but the effective config did not: no new version.
    Unchanged,
    /// Only restart-required paths changed: nothing was applied, the paths are pending
    /// until the process restarts.
    RestartRequired,
    /// A hold is in place: the reload waits and runs when the last hold is released.
    Deferred,
    /// The sources changed: sent before the attempt's own event, with
    /// [`changed`](Event::changed) saying which documents and how (seed-style
    /// "file changed"). `hotconf watch` prints it only with `--events all`.
    Detected,
    /// Returned, never sent as an event: a method that would wait for the reload worker was
    /// called on the worker itself (from a callback or an observer). Its request was queued
    /// and runs after the current event has gone out; its outcome is reported as an event.
    Queued,
}

impl Outcome {
    /// The name used in JSON (`"event": "applied"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loaded => "loaded",
            Self::Applied => "applied",
            Self::Rejected => "rejected",
            Self::Unchanged => "unchanged",
            Self::RestartRequired => "restart_required",
            Self::Deferred => "deferred",
            Self::Detected => "detected",
            Self::Queued => "queued",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What started a reload attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Trigger {
    /// The first load, when the reloader was built.
    Load,
    /// A call to [`Reloader::reload`](crate::Reloader::reload).
    Reload,
    /// The file watcher saw a change.
    Watch,
    /// A signal (SIGHUP).
    Signal,
    /// A programmatic change: [`Reloader::apply`](crate::Reloader::apply) or
    /// [`Reloader::update`](crate::Reloader::update).
    Apply,
    /// [`Reloader::rollback_to`](crate::Reloader::rollback_to).
    Rollback,
    /// A request over an admin API.
    Api,
    /// A source that pushes its changes (see [`Pusher`](crate::Pusher)).
    Source,
}

impl Trigger {
    /// The name used in JSON (`"trigger": "watch"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Load => "load",
            Self::Reload => "reload",
            Self::Watch => "watch",
            Self::Signal => "signal",
            Self::Apply => "apply",
            Self::Rollback => "rollback",
            Self::Api => "api",
            Self::Source => "source",
        }
    }
}

/// One reload attempt, as observers, subscribers and the JSON output see it. Secret values
/// are already redacted everywhere in it.
///
/// Its JSON shape (see [`to_json`](Self::to_json)) is shared by `hotconf watch --json`, the
/// admin API, the audit log and server-sent events: fields may be added, never renamed or
/// removed.
///
/// ```json
/// {"event":"applied","seq":2,"version":2,"at":"2026-11-22T10:00:00.000Z","trigger":"watch",
///  "files":["config/app.toml"],"changes":[{"path":"limits.rpm","kind":"modified","old":60,"new":120}],
///  "warnings":[],"elapsed_us":412}
/// {"event":"rejected","seq":3,"version":2,"at":"…","trigger":"watch","files":["config/app.toml"],
///  "errors":[{"file":"config/app.toml","line":3,"column":7,"path":"limits.rpm","message":"…"}]}
/// {"event":"restart_required","seq":4,"version":2,"at":"…","trigger":"watch","files":[…],
///  "changes":[…],"pending":["server.listen"]}
/// ```
///
/// `loaded` has no `trigger`; `unchanged` and `deferred` carry only the common fields
/// (`deferred` adds `warnings` when a hold has lasted past its period); an `applied` event
/// with held-back changes adds `pending`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Event {
    /// What happened.
    pub outcome: Outcome,
    /// The event's number: strictly increasing across every event of a reloader, also on
    /// events that keep the version (rejected, unchanged, deferred). 0 on a value that was
    /// never sent (a [`Outcome::Queued`] answer).
    pub seq: u64,
    /// The version active after the attempt.
    pub version: u64,
    /// When the attempt finished.
    pub at: SystemTime,
    /// What started it.
    pub trigger: Trigger,
    /// The documents read, lowest layer first.
    pub files: Vec<String>,
    /// The documents that changed since the last attempt, and how: the reason for a reload
    /// of the sources. Empty for programmatic changes and the first load.
    pub changed: Vec<FileChange>,
    /// What changed (applied), redacted.
    pub changes: Vec<Change>,
    /// Warnings (applied, loaded).
    pub warnings: Vec<Problem>,
    /// Why the config was refused (rejected).
    pub errors: Vec<Problem>,
    /// Restart-required paths whose new value waits for a restart: the sources differ from
    /// the effective config there.
    pub pending: Vec<ConfigPath>,
    /// How long the attempt took, from reading the sources to notifying subscribers.
    pub elapsed: Duration,
    /// Who asked, when known: the admin API's caller (`api 127.0.0.1:50312`).
    pub by: Option<String>,
    /// The stage that refused a rejected attempt.
    pub stage: Option<Stage>,
    /// A hash of the effective config active after the event (XXH3-64 of its JSON): equal
    /// hashes mean equal configs. With the version, it makes the admin API's `ETag`.
    pub hash: u64,
    /// The version active before the attempt.
    pub version_before: u64,
    /// The content hash of each of [`files`](Self::files), in the same order. Not in the
    /// event's JSON; the audit log records it.
    pub revisions: Vec<u64>,
    /// [`changes`](Self::changes) with each secret value written as its keyed HMAC
    /// (`hmac-sha256:…`) instead of `***`: filled only when the reloader has a
    /// [`Fingerprint`](crate::Fingerprint) (the audit log's key). Not in the event's JSON.
    pub hmac_changes: Vec<Change>,
}

impl Event {
    pub(crate) fn new(
        outcome: Outcome,
        version: u64,
        trigger: Trigger,
        files: Vec<String>,
    ) -> Self {
        Self {
            outcome,
            seq: 0,
            version,
            at: SystemTime::now(),
            trigger,
            files,
            changed: Vec::new(),
            changes: Vec::new(),
            warnings: Vec::new(),
            errors: Vec::new(),
            pending: Vec::new(),
            elapsed: Duration::ZERO,
            by: None,
            stage: None,
            hash: 0,
            version_before: version,
            revisions: Vec::new(),
            hmac_changes: Vec::new(),
        }
    }

    /// The event as one line of JSON, as `hotconf watch --json` prints it.
    pub fn to_json(&self) -> String {
        // Serializing these plain fields into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The changed paths.
    pub fn changed_paths(&self) -> impl Iterator<Item = &ConfigPath> {
        self.changes.iter().map(|change| &change.path)
    }
}

impl serde::Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("event", self.outcome.as_str())?;
        map.serialize_entry("seq", &self.seq)?;
        map.serialize_entry("version", &self.version)?;
        map.serialize_entry("at", &Timestamp(self.at).to_string())?;
        if self.outcome != Outcome::Loaded {
            map.serialize_entry("trigger", self.trigger.as_str())?;
        }
        if let Some(by) = &self.by {
            map.serialize_entry("by", by)?;
        }
        map.serialize_entry("hash", &format!("{:016x}", self.hash))?;
        map.serialize_entry("files", &self.files)?;
        map.serialize_entry("changed", &self.changed)?;
        match self.outcome {
            Outcome::Applied => {
                map.serialize_entry("changes", &self.changes)?;
                map.serialize_entry("warnings", &self.warnings)?;
                if !self.pending.is_empty() {
                    map.serialize_entry("pending", &self.pending)?;
                }
                map.serialize_entry("elapsed_us", &duration_us(self.elapsed))?;
            }
            Outcome::RestartRequired => {
                map.serialize_entry("changes", &self.changes)?;
                map.serialize_entry("pending", &self.pending)?;
            }
            Outcome::Loaded if !self.warnings.is_empty() => {
                map.serialize_entry("warnings", &self.warnings)?;
            }
            Outcome::Rejected => {
                if let Some(stage) = self.stage {
                    map.serialize_entry("stage", stage.as_str())?;
                }
                map.serialize_entry("errors", &self.errors)?;
            }
            Outcome::Deferred if !self.warnings.is_empty() => {
                map.serialize_entry("warnings", &self.warnings)?;
            }
            _ => {}
        }
        map.end()
    }
}

/// The entity tag of a config version, as the admin API sends it in `ETag` and expects it in
/// `If-Match`: `"v3-00ab…"`, quotes included.
///
/// ```
/// assert_eq!(hotconf::etag(3, 0xab), "\"v3-00000000000000ab\"");
/// ```
pub fn etag(version: u64, hash: u64) -> String {
    format!("\"v{version}-{hash:016x}\"")
}

/// Reads an entity tag made by [`etag`] back into its version and hash; `None` for any
/// other text. A weak tag (`W/"…"`) reads the same.
///
/// ```
/// assert_eq!(hotconf::parse_etag("\"v3-00000000000000ab\""), Some((3, 0xab)));
/// assert_eq!(hotconf::parse_etag("*"), None);
/// ```
pub fn parse_etag(tag: &str) -> Option<(u64, u64)> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let inner = tag
        .strip_prefix('"')?
        .strip_suffix('"')?
        .strip_prefix('v')?;
    let (version, hash) = inner.split_once('-')?;
    Some((version.parse().ok()?, u64::from_str_radix(hash, 16).ok()?))
}

fn duration_us(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// How a document changed between two attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FileChangeKind {
    /// It is new.
    Created,
    /// Its bytes changed.
    Modified,
    /// It is gone.
    Removed,
    /// It is gone under one name and back, with the same bytes, under another.
    Renamed,
}

/// One document that changed: `{"file":"conf.d/limits.yaml","kind":"modified"}`; a rename
/// adds `"from"`, the old name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct FileChange {
    /// The document's origin (its path, or its key).
    pub file: String,
    /// How it changed.
    pub kind: FileChangeKind,
    /// The name it had, for a rename.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl FileChange {
    /// How the documents of one attempt differ from those of the one before, in the order of
    /// the new documents, then the removed ones. Content hashes decide: a name gone and a
    /// name new with the same bytes is a rename.
    pub(crate) fn between(
        before: &[(crate::document::Origin, u64)],
        after: &[(crate::document::Origin, u64)],
    ) -> Vec<FileChange> {
        // The usual case, the same documents in the same order: compared pairwise, with no
        // path hashed (10,000 files cost 30M instructions through the maps below).
        if before.len() == after.len()
            && before
                .iter()
                .zip(after)
                .all(|((old, _), (new, _))| old == new)
        {
            return after
                .iter()
                .zip(before)
                .filter(|((_, new), (_, old))| new != old)
                .map(|((origin, _), _)| FileChange {
                    file: origin.to_string(),
                    kind: FileChangeKind::Modified,
                    from: None,
                })
                .collect();
        }
        // Indexed, not searched: a directory of 10,000 files made this quadratic.
        let old: std::collections::HashMap<&crate::document::Origin, u64> = before
            .iter()
            .map(|(origin, revision)| (origin, *revision))
            .collect();
        let new: std::collections::HashSet<&crate::document::Origin> =
            after.iter().map(|(origin, _)| origin).collect();
        let mut removed: Vec<&(crate::document::Origin, u64)> = before
            .iter()
            .filter(|(origin, _)| !new.contains(origin))
            .collect();
        let mut changes = Vec::new();
        for (origin, revision) in after {
            match old.get(origin) {
                Some(old) if old == revision => {}
                Some(_) => changes.push(FileChange {
                    file: origin.to_string(),
                    kind: FileChangeKind::Modified,
                    from: None,
                }),
                None => match removed.iter().position(|(_, r)| r == revision) {
                    Some(index) => {
                        let (old, _) = removed.remove(index);
                        changes.push(FileChange {
                            file: origin.to_string(),
                            kind: FileChangeKind::Renamed,
                            from: Some(old.to_string()),
                        });
                    }
                    None => changes.push(FileChange {
                        file: origin.to_string(),
                        kind: FileChangeKind::Created,
                        from: None,
                    }),
                },
            }
        }
        changes.extend(removed.into_iter().map(|(origin, _)| FileChange {
            file: origin.to_string(),
            kind: FileChangeKind::Removed,
            from: None,
        }));
        changes
    }
}

/// A UTC time printed as RFC 3339 with milliseconds: `2026-11-22T10:00:00.000Z`.
#[derive(Clone, Copy, Debug)]
pub struct Timestamp(pub SystemTime);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            since.subsec_millis()
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // day is in 1..=31 and month in 1..=12 by construction.
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::ChangeKind;

    #[test]
    fn file_changes_between_two_attempts() {
        use crate::document::Origin;
        let file = |name: &str, revision: u64| (Origin::File(name.into()), revision);
        let before = [file("a", 1), file("b", 2), file("c", 3), file("d", 4)];
        let after = [file("a", 1), file("b", 20), file("e", 3), file("f", 5)];
        let changes: Vec<(String, FileChangeKind, Option<String>)> =
            FileChange::between(&before, &after)
                .into_iter()
                .map(|c| (c.file, c.kind, c.from))
                .collect();
        assert_eq!(
            changes,
            [
                ("b".into(), FileChangeKind::Modified, None),
                ("e".into(), FileChangeKind::Renamed, Some("c".into())),
                ("f".into(), FileChangeKind::Created, None),
                ("d".into(), FileChangeKind::Removed, None),
            ]
        );
        assert!(FileChange::between(&after, &after).is_empty());
        // As many documents, none of the same name: not the same list.
        let renamed = [file("e", 1), file("f", 6)];
        let changes: Vec<(String, FileChangeKind, Option<String>)> =
            FileChange::between(&before[..2], &renamed)
                .into_iter()
                .map(|c| (c.file, c.kind, c.from))
                .collect();
        assert_eq!(
            changes,
            [
                ("e".into(), FileChangeKind::Renamed, Some("a".into())),
                ("f".into(), FileChangeKind::Created, None),
                ("b".into(), FileChangeKind::Removed, None),
            ]
        );
    }

    #[test]
    fn file_changes_between_the_same_documents_are_the_modified_ones_in_order() {
        use crate::document::Origin;
        let file = |name: &str, revision: u64| (Origin::File(name.into()), revision);
        let before = [file("a", 1), file("b", 2), file("c", 3)];
        let after = [file("a", 1), file("b", 20), file("c", 30)];
        let changes: Vec<(String, FileChangeKind)> = FileChange::between(&before, &after)
            .into_iter()
            .map(|c| (c.file, c.kind))
            .collect();
        assert_eq!(
            changes,
            [
                ("b".into(), FileChangeKind::Modified),
                ("c".into(), FileChangeKind::Modified),
            ]
        );
        // One more document: not the same list, so the new one is seen too.
        let longer = [file("a", 1), file("b", 2), file("c", 3), file("d", 4)];
        let changes: Vec<(String, FileChangeKind)> = FileChange::between(&before, &longer)
            .into_iter()
            .map(|c| (c.file, c.kind))
            .collect();
        assert_eq!(changes, [("d".into(), FileChangeKind::Created)]);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_795_860_000_123, "2026-11-28T10:00:00.123Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        ];
        for (millis, text) in cases {
            let at = UNIX_EPOCH + Duration::from_millis(millis);
            assert_eq!(Timestamp(at).to_string(), text);
        }
    }

    #[test]
    fn json_shape_follows_the_contract() {
        let mut event = Event::new(Outcome::Applied, 2, Trigger::Watch, vec!["app.toml".into()]);
        event.at = UNIX_EPOCH;
        event.elapsed = Duration::from_micros(412);
        event.changes.push(Change {
            path: "limits.rpm".parse().unwrap(),
            kind: ChangeKind::Modified,
            old: Some(60.into()),
            new: Some(120.into()),
        });
        assert_eq!(
            event.to_json(),
            r#"{"event":"applied","seq":0,"version":2,"at":"1970-01-01T00:00:00.000Z","trigger":"watch","hash":"0000000000000000","files":["app.toml"],"changed":[],"changes":[{"path":"limits.rpm","kind":"modified","old":60,"new":120}],"warnings":[],"elapsed_us":412}"#
        );
        let mut loaded = Event::new(Outcome::Loaded, 1, Trigger::Load, vec!["app.toml".into()]);
        loaded.at = UNIX_EPOCH;
        assert_eq!(
            loaded.to_json(),
            r#"{"event":"loaded","seq":0,"version":1,"at":"1970-01-01T00:00:00.000Z","hash":"0000000000000000","files":["app.toml"],"changed":[]}"#
        );
    }
}
