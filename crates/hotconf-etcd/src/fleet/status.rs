//! Fleet status: what each live instance runs compared with what is under the prefix now,
//! like `istioctl proxy-status`.

use std::time::SystemTime;

use etcd_client::GetOptions;
use serde::Serialize;

use super::record::Record;
use crate::publish::ranges;
use crate::{Connection, Error, Prefix, content_hash_of_values, format_of};

/// Where one instance stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum State {
    /// It applied exactly the documents under the prefix now, nothing pending.
    Synced,
    /// It applied them, but restart-required changes wait for a restart.
    Restart,
    /// It rejected them: the record carries the located errors.
    Nacked,
    /// It has not applied them (yet).
    Pending,
}

impl State {
    /// The name shown: `SYNCED`, `RESTART`, `NACKED`, `PENDING`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "SYNCED",
            Self::Restart => "RESTART",
            Self::Nacked => "NACKED",
            Self::Pending => "PENDING",
        }
    }

    /// The state of an instance with `record` when the prefix's content hash is `current`.
    /// Revisions are not compared: they repeat after a restore.
    pub fn of(record: &Record, current: &str) -> Self {
        let applied = record.content_hash.as_deref() == Some(current);
        if applied && record.pending.is_empty() {
            Self::Synced
        } else if applied {
            Self::Restart
        } else if record.outcome == hotconf::Outcome::Rejected.as_str()
            && record.hash_attempted.as_deref() == Some(current)
        {
            Self::Nacked
        } else {
            Self::Pending
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One live instance.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Instance {
    /// Where it stands.
    pub state: State,
    /// What it reported.
    #[serde(flatten)]
    pub record: Record,
    /// How old its report is, in milliseconds, by this machine's clock.
    pub age_ms: u64,
}

/// Every live instance of a prefix, read at one revision.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct FleetStatus {
    /// The prefix.
    pub prefix: String,
    /// The etcd revision read at.
    pub revision: i64,
    /// The content hash of the documents under the prefix (keys with a known format).
    pub content_hash: String,
    /// How many documents that is.
    pub documents: usize,
    /// The instances, by name.
    pub instances: Vec<Instance>,
    /// Status keys whose value is not a record.
    pub unreadable: Vec<String>,
}

impl FleetStatus {
    /// Whether at least one instance is live and every one is [`State::Synced`].
    pub fn synced(&self) -> bool {
        !self.instances.is_empty() && self.instances.iter().all(|i| i.state == State::Synced)
    }
}

/// Reads the prefix and its status prefix at one revision and classifies each instance.
///
/// # Errors
///
/// [`Error::Etcd`] when etcd cannot be reached or refuses a read; [`Error::Usage`] for a
/// connection that cannot work.
pub async fn fleet_status(connection: &Connection, prefix: &Prefix) -> Result<FleetStatus, Error> {
    let mut client = connection.connect().await?;
    let mut revision = 0;
    let mut values: Vec<(String, Vec<u8>)> = Vec::new();
    for (start, end) in ranges(prefix) {
        let options = GetOptions::new().with_range(end).with_revision(revision);
        let response = client
            .get(start, Some(options))
            .await
            .map_err(|e| Error::etcd(format!("cannot read the keys under {prefix}"), e))?;
        if revision == 0 {
            revision = response.header().map_or(0, |h| h.revision());
        }
        for kv in response.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            // The same documents an instance reads: keys with a known format.
            if format_of(&key).is_some() {
                values.push((key, kv.value().to_vec()));
            }
        }
    }
    let content_hash = content_hash_of_values(values.iter().map(|(k, v)| (k.as_str(), &v[..])));
    let status = prefix.status();
    let options = GetOptions::new().with_prefix().with_revision(revision);
    let response = client
        .get(status.as_str(), Some(options))
        .await
        .map_err(|e| Error::etcd(format!("cannot read the status under {status}"), e))?;
    let now = SystemTime::now();
    let mut instances = Vec::new();
    let mut unreadable = Vec::new();
    for kv in response.kvs() {
        match serde_json::from_slice::<Record>(kv.value()) {
            Ok(record) => instances.push(Instance {
                state: State::of(&record, &content_hash),
                age_ms: u64::try_from(record.age(now).as_millis()).unwrap_or(u64::MAX),
                record,
            }),
            Err(_) => unreadable.push(String::from_utf8_lossy(kv.key()).into_owned()),
        }
    }
    instances.sort_by(|a, b| a.record.instance.cmp(&b.record.instance));
    Ok(FleetStatus {
        prefix: prefix.to_string(),
        revision,
        content_hash,
        documents: values.len(),
        instances,
        unreadable,
    })
}

/// [`fleet_status`] on a runtime of its own, for code that is not async.
///
/// # Errors
///
/// As [`fleet_status`]; a runtime that cannot start is an [`Error::Io`].
pub fn fleet_status_blocking(
    connection: &Connection,
    prefix: &Prefix,
) -> Result<FleetStatus, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start a runtime for etcd", e))?
        .block_on(fleet_status(connection, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        content_hash: Option<&str>,
        attempted: &str,
        outcome: &str,
        pending: &[&str],
    ) -> Record {
        serde_json::from_value(serde_json::json!({
            "instance": "i", "host": "h", "pid": 1, "version": 1,
            "content_hash": content_hash, "revision_applied": 1,
            "hash_attempted": attempted, "revision_attempted": 2,
            "outcome": outcome, "errors": [], "pending": pending,
            "at": "", "at_ms": 0,
        }))
        .unwrap()
    }

    #[test]
    fn states_follow_the_applied_and_attempted_hashes() {
        let cases = [
            (record(Some("cur"), "cur", "applied", &[]), State::Synced),
            (record(Some("cur"), "cur", "unchanged", &[]), State::Synced),
            (
                record(Some("cur"), "cur", "restart_required", &["a"]),
                State::Restart,
            ),
            (record(Some("old"), "cur", "rejected", &[]), State::Nacked),
            // Rejected something older than what is there now: not yet tried.
            (
                record(Some("old"), "older", "rejected", &[]),
                State::Pending,
            ),
            (record(Some("old"), "old", "applied", &[]), State::Pending),
            (record(None, "cur", "rejected", &[]), State::Nacked),
            (record(None, "x", "loaded", &[]), State::Pending),
        ];
        for (record, state) in cases {
            assert_eq!(State::of(&record, "cur"), state, "{record:?}");
        }
    }

    #[test]
    fn synced_needs_an_instance_and_all_synced() {
        let instance = |state| Instance {
            state,
            record: record(None, "x", "loaded", &[]),
            age_ms: 0,
        };
        let mut status = FleetStatus {
            prefix: "/p/".into(),
            revision: 1,
            content_hash: "cur".into(),
            documents: 0,
            instances: vec![],
            unreadable: vec![],
        };
        assert!(!status.synced());
        status.instances = vec![instance(State::Synced)];
        assert!(status.synced());
        status.instances.push(instance(State::Restart));
        assert!(!status.synced());
        assert_eq!(State::Nacked.to_string(), "NACKED");
        assert_eq!(
            serde_json::to_value(State::Restart).unwrap(),
            serde_json::json!("RESTART")
        );
    }
}
