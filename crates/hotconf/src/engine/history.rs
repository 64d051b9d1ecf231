//! History: the applied versions still kept, for inspection and rollback.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::ser::{SerializeMap, Serializer};

use super::pipeline::Effective;
use crate::diff::Change;
use crate::event::{Outcome, Timestamp, Trigger};
use crate::path::ConfigPath;
use crate::snapshot::Snapshot;

/// One applied config in the history.
///
/// Serializes to the redacted diff and what surrounds it, never the whole config:
///
/// ```json
/// {"version":2,"at":"2026-11-22T10:00:00.000Z","event":"applied","trigger":"watch",
///  "changes":[{"path":"limits.rpm","kind":"modified","old":60,"new":120}],"pending":[]}
/// ```
///
/// Fields may be added to this shape; none is ever renamed or removed.
#[derive(Debug)]
#[non_exhaustive]
pub struct Record<T> {
    /// The snapshot that was applied.
    pub snapshot: Arc<Snapshot<T>>,
    /// What started the reload that applied it.
    pub trigger: Trigger,
    /// `Loaded` for the first version, `Applied` for the others.
    pub outcome: Outcome,
    /// What changed from the version before, secrets redacted.
    pub changes: Vec<Change>,
    /// Restart-required paths that were pending once it was applied.
    pub pending: Vec<ConfigPath>,
    /// The effective config, for rollback. Not redacted: never serialized.
    pub(crate) effective: Arc<Effective>,
}

impl<T> Clone for Record<T> {
    fn clone(&self) -> Self {
        Self {
            snapshot: Arc::clone(&self.snapshot),
            trigger: self.trigger,
            outcome: self.outcome,
            changes: self.changes.clone(),
            pending: self.pending.clone(),
            effective: Arc::clone(&self.effective),
        }
    }
}

impl<T> serde::Serialize for Record<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("version", &self.snapshot.version())?;
        map.serialize_entry("at", &Timestamp(self.snapshot.loaded_at()).to_string())?;
        map.serialize_entry("event", self.outcome.as_str())?;
        map.serialize_entry("trigger", self.trigger.as_str())?;
        map.serialize_entry("changes", &self.changes)?;
        map.serialize_entry("pending", &self.pending)?;
        map.end()
    }
}

/// The last `limit` records, oldest first.
#[derive(Debug)]
pub(crate) struct History<T> {
    records: VecDeque<Record<T>>,
    limit: usize,
}

impl<T> History<T> {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            records: VecDeque::with_capacity(limit.min(64)),
            limit,
        }
    }

    /// Adds `record`; returns the oldest one when it falls out, for the caller to drop
    /// when the time it takes is not in anyone's way (a whole config and its tree).
    #[must_use = "dropping the record that fell out frees a whole config"]
    pub(crate) fn push(&mut self, record: Record<T>) -> Option<Record<T>> {
        let fell_out = if self.records.len() == self.limit {
            self.records.pop_front()
        } else {
            None
        };
        self.records.push_back(record);
        fell_out
    }

    pub(crate) fn get(&self, version: u64) -> Option<&Record<T>> {
        self.records
            .iter()
            .find(|record| record.snapshot.version() == version)
    }

    pub(crate) fn records(&self) -> Vec<Record<T>> {
        self.records.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: u64) -> Record<()> {
        Record {
            snapshot: Arc::new(Snapshot::new((), version, Vec::new())),
            trigger: Trigger::Reload,
            outcome: Outcome::Applied,
            changes: Vec::new(),
            pending: Vec::new(),
            effective: Arc::new(Effective::new(crate::tree::Node::new(
                crate::tree::Value::Null,
                crate::tree::Span::default(),
            ))),
        }
    }

    #[test]
    fn keeps_the_last_records_oldest_first() {
        let mut history = History::new(2);
        let fell_out: Vec<Option<u64>> = (1..=3)
            .map(|version| history.push(record(version)).map(|r| r.snapshot.version()))
            .collect();
        assert_eq!(fell_out, [None, None, Some(1)]);
        let versions: Vec<u64> = history
            .records()
            .iter()
            .map(|r| r.snapshot.version())
            .collect();
        assert_eq!(versions, [2, 3]);
        assert!(history.get(1).is_none());
        assert_eq!(history.get(3).map(|r| r.snapshot.version()), Some(3));
    }

    #[test]
    fn serializes_the_diff_not_the_config() {
        let json = serde_json::to_value(record(2)).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["version", "at", "event", "trigger", "changes", "pending"]
        );
    }
}
