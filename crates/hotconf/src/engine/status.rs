//! What the engine knows at a glance: [`Status`], as `Reloader::status` returns it and the
//! admin API serves it.

use std::time::SystemTime;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::observe::ObserverHealth;
use crate::event::{Event, Timestamp, Trigger};
use crate::path::ConfigPath;
use crate::settings::Settings;
use crate::trigger::{SourceHealth, WatcherState};

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

/// A config applied over the sources by a programmatic change (a rollback, an admin
/// `PUT`): it stays live until the sources next change, which win.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct LocalOverride {
    /// The version it made.
    pub version: u64,
    /// What made it: `rollback`, `api`, `apply`.
    #[serde(serialize_with = "trigger")]
    pub trigger: Trigger,
    /// Who asked, when known.
    pub by: Option<String>,
    /// When it went live.
    #[serde(serialize_with = "timestamp")]
    pub at: SystemTime,
}

fn trigger<S: Serializer>(trigger: &Trigger, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(trigger.as_str())
}

fn timestamp<S: Serializer>(at: &SystemTime, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(&Timestamp(*at))
}

/// What the worker publishes for [`Reloader::status`] after each step.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) pending: Vec<ConfigPath>,
    pub(crate) deferred_since: Option<SystemTime>,
    pub(crate) sources: Vec<SourceStatus>,
    pub(crate) local_override: Option<LocalOverride>,
    /// The watcher's last state, as the observers were told it.
    pub(crate) watcher: Option<WatcherState>,
}

/// What the engine knows at a glance.
///
/// Serializes as `{"name":"config","version":3,"loaded_at":"…","hash":"…","pending":[…],
/// "holds":0,"deferred_since":null,"enabled":true,"watching":true,"polling":false,
/// "watch_error":null,"sources":[…],"local_override":null,"last_attempt":{…},
/// "observers":[…],"settings":{…}}`; fields may be added, never renamed or removed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Status {
    /// The config's name (see `ReloaderBuilder::name`): the `config` label of its metrics.
    pub name: String,
    /// The active version.
    pub version: u64,
    /// When it became active.
    pub loaded_at: SystemTime,
    /// The hash of the effective config (see [`Event::hash`](crate::Event::hash)).
    pub hash: u64,
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
    /// Whether reloads from the watcher run (see [`Reloader::disable`](crate::Reloader::disable)).
    pub enabled: bool,
    /// What is wrong with the watcher, while something is.
    pub watch_error: Option<String>,
    /// A rollback or admin change live over the sources, until they next change.
    pub local_override: Option<LocalOverride>,
    /// The last reload attempt, with its errors when it was rejected.
    pub last: Option<Event>,
    /// The observers' own health (the audit log, alerts).
    pub observers: Vec<ObserverHealth>,
    /// The reloader's effective settings (the config's `[hot_reload]` table over the
    /// builder's), each with where it came from. The watcher reloads only while both
    /// `enabled` here and [`enabled`](Self::enabled) say so.
    pub settings: Settings,
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &self.name)?;
        map.serialize_entry("version", &self.version)?;
        map.serialize_entry("loaded_at", &Timestamp(self.loaded_at).to_string())?;
        map.serialize_entry("hash", &format!("{:016x}", self.hash))?;
        map.serialize_entry("pending", &self.pending)?;
        map.serialize_entry("holds", &self.holds)?;
        map.serialize_entry(
            "deferred_since",
            &self.deferred_since.map(|t| Timestamp(t).to_string()),
        )?;
        map.serialize_entry("enabled", &self.enabled)?;
        map.serialize_entry("watching", &self.watching)?;
        map.serialize_entry("polling", &self.polling)?;
        map.serialize_entry("watch_error", &self.watch_error)?;
        map.serialize_entry("sources", &self.sources)?;
        map.serialize_entry("local_override", &self.local_override)?;
        map.serialize_entry("last_attempt", &self.last)?;
        map.serialize_entry("observers", &self.observers)?;
        map.serialize_entry("settings", &self.settings)?;
        map.end()
    }
}
