//! The source's metrics through the `metrics` facade (the table is in the `source` module's
//! docs). Every series has a `prefix` label: one per source, so bounded.

use metrics::{counter, gauge};

/// 1 while the watch runs against etcd, 0 while reconnecting.
pub(crate) const CONNECTED: &str = "hotconf_etcd_connected";
/// The etcd revision the source's documents are current to.
pub(crate) const REVISION: &str = "hotconf_etcd_revision";
/// Full re-reads of the prefix by reason.
pub(crate) const RESYNCS_TOTAL: &str = "hotconf_etcd_resyncs_total";
/// Lost connections (a failed connect, a broken watch).
pub(crate) const DISCONNECTS_TOTAL: &str = "hotconf_etcd_disconnects_total";

/// Why the source re-read the whole prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resync {
    /// The watch was cancelled because its revision was compacted away.
    Compacted,
    /// etcd came back with another cluster id or an older revision (a snapshot restore).
    Restored,
    /// The timer of `resync_every`.
    Periodic,
    /// A connection with no revision to resume from (the source started from its cache).
    Reconnect,
}

impl Resync {
    pub(crate) const ALL: [Resync; 4] = [
        Self::Compacted,
        Self::Restored,
        Self::Periodic,
        Self::Reconnect,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Compacted => "compacted",
            Self::Restored => "restored",
            Self::Periodic => "periodic",
            Self::Reconnect => "reconnect",
        }
    }
}

/// Every series at zero, so that rules over rates work from the first scrape.
pub(crate) fn register(prefix: &str) {
    gauge!(CONNECTED, "prefix" => prefix.to_owned()).set(0.0);
    counter!(DISCONNECTS_TOTAL, "prefix" => prefix.to_owned()).absolute(0);
    for reason in Resync::ALL {
        counter!(RESYNCS_TOTAL, "prefix" => prefix.to_owned(), "reason" => reason.as_str())
            .absolute(0);
    }
}

pub(crate) fn connected(prefix: &str, connected: bool) {
    gauge!(CONNECTED, "prefix" => prefix.to_owned()).set(if connected { 1.0 } else { 0.0 });
}

pub(crate) fn disconnected(prefix: &str) {
    connected(prefix, false);
    counter!(DISCONNECTS_TOTAL, "prefix" => prefix.to_owned()).increment(1);
}

pub(crate) fn revision(prefix: &str, revision: i64) {
    // A revision fits a float exactly up to 2^53.
    #[allow(clippy::cast_precision_loss)]
    gauge!(REVISION, "prefix" => prefix.to_owned()).set(revision as f64);
}

pub(crate) fn resync(prefix: &str, reason: Resync) {
    counter!(RESYNCS_TOTAL, "prefix" => prefix.to_owned(), "reason" => reason.as_str())
        .increment(1);
}
