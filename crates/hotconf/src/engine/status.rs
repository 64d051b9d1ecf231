//! What the engine knows at a glance: [`Status`], as `Reloader::status` returns it and the
//! admin API serves it.

use std::time::SystemTime;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::event::Timestamp;
use crate::path::ConfigPath;
use crate::trigger::SourceHealth;

/// One source as the status shows it.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct SourceStatus {
    /// The files it reads, or its description when it is not on disk.
    pub name: String,
    /// Its health, as a pushing source reports it; a source that does not push is
    /// `connected` while it can be read.
    pub health: SourceHealth,
    /// The revision of its last push, for a pushing source.
    pub revision: Option<u64>,
}

/// What the worker publishes for [`Reloader::status`] after each step.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) pending: Vec<ConfigPath>,
    pub(crate) deferred_since: Option<SystemTime>,
    pub(crate) sources: Vec<SourceStatus>,
}

/// What the engine knows at a glance.
///
/// Serializes as `{"version":3,"loaded_at":"…","pending":[…],"holds":0,
/// "deferred_since":null,"watching":true,"polling":false,"sources":[…]}`; fields may be
/// added, never renamed or removed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Status {
    /// The active version.
    pub version: u64,
    /// When it became active.
    pub loaded_at: SystemTime,
    /// Restart-required paths whose new value waits for a restart.
    pub pending: Vec<ConfigPath>,
    /// How many [`Hold`](crate::Hold)s are in place.
    pub holds: usize,
    /// Since when a reload has been waiting for the holds to be released.
    pub deferred_since: Option<SystemTime>,
    /// Whether the file watcher runs.
    pub watching: bool,
    /// Whether it polls the files instead of being told by the operating system: asked for
    /// with [`Reloader::watch_polling`](crate::Reloader::watch_polling), or fallen back to when native watching failed.
    pub polling: bool,
    /// Every source, in layer order, with its health.
    pub sources: Vec<SourceStatus>,
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("version", &self.version)?;
        map.serialize_entry("loaded_at", &Timestamp(self.loaded_at).to_string())?;
        map.serialize_entry("pending", &self.pending)?;
        map.serialize_entry("holds", &self.holds)?;
        map.serialize_entry(
            "deferred_since",
            &self.deferred_since.map(|t| Timestamp(t).to_string()),
        )?;
        map.serialize_entry("watching", &self.watching)?;
        map.serialize_entry("polling", &self.polling)?;
        map.serialize_entry("sources", &self.sources)?;
        map.end()
    }
}
