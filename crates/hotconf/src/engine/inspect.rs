//! What operators ask a reloader: the applied history and every attempt, the status, and
//! whether the watcher's reloads run.

use std::sync::atomic::Ordering;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::worker::Request;
use super::{Record, Reloader, Status, lock};
use crate::event::{Event, Trigger};
use crate::trigger::{self, Mode};
use crate::validate::Validate;
#[cfg(feature = "watch")]
use crate::watch::Watching;

impl<T> Reloader<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    /// The applied snapshots still kept, oldest first (16 by default, see
    /// [`ReloaderBuilder::history`](crate::ReloaderBuilder::history)). Read from a callback, it already holds the version
    /// being applied.
    pub fn history(&self) -> Vec<Record<T>> {
        lock(&self.inner.shared.history).records()
    }

    /// The last reload attempts, oldest first, rejected ones included, each with its
    /// `seq`, outcome, trigger, diff and errors (256 by default, see
    /// [`ReloaderBuilder::attempts`](crate::ReloaderBuilder::attempts)). `detected` events are not attempts and are not kept.
    pub fn attempts(&self) -> Vec<Event> {
        self.inner.shared.exit.attempts_after(0)
    }

    /// The kept attempt numbered `seq`.
    pub fn attempt(&self, seq: u64) -> Option<Event> {
        self.inner.shared.exit.attempt(seq)
    }

    /// The kept attempts numbered after `seq`, oldest first: what a client that saw up to
    /// `seq` missed (server-sent events resume from here).
    pub fn events_since(&self, seq: u64) -> Vec<Event> {
        self.inner.shared.exit.attempts_after(seq)
    }

    /// Pauses reloads from the file watcher (seed-style `disable_hot_reload`): saves are
    /// still seen but not applied. [`reload`](Self::reload), the admin API and programmatic
    /// changes still work. Shown in [`Status::enabled`].
    pub fn disable(&self) {
        if self.inner.shared.enabled.swap(false, Ordering::SeqCst) {
            tracing::info!(target: "hotconf", "reloading from the watcher disabled");
        }
    }

    /// Resumes reloads from the file watcher; a save made while they were paused is
    /// applied now.
    pub fn enable(&self) {
        if !self.inner.shared.enabled.swap(true, Ordering::SeqCst) {
            tracing::info!(target: "hotconf", "reloading from the watcher enabled");
            // Whatever the watcher saw meanwhile is read now; nothing if the bytes are the same.
            let _ = self
                .inner
                .requests
                .send(Request::Sources(trigger::Request::reload(
                    Trigger::Watch,
                    Mode::IfChanged,
                    None,
                )));
        }
    }

    /// Whether the reload worker runs: `false` after [`shutdown`](Self::shutdown) (readers
    /// keep the last config, but nothing reloads any more). A health check's answer.
    pub fn is_running(&self) -> bool {
        lock(&self.inner.worker)
            .as_ref()
            .is_some_and(|thread| !thread.is_finished())
    }

    /// Whether reloads from the file watcher run.
    pub fn is_enabled(&self) -> bool {
        self.inner.shared.enabled.load(Ordering::SeqCst)
    }

    /// The version, pending restarts, holds, watcher and sources, the last attempt, a
    /// local override and the observers' health.
    pub fn status(&self) -> Status {
        let shared = &self.inner.shared;
        let snapshot = shared.current.load();
        let (pending, deferred_since, sources, local_override, watcher) = {
            let live = lock(&shared.live);
            (
                live.pending.clone(),
                live.deferred_since,
                live.sources.clone(),
                live.local_override.clone(),
                live.watcher.clone(),
            )
        };
        #[cfg(feature = "watch")]
        let (watching, polling) = {
            let watcher = lock(&self.inner.watching);
            (
                watcher.is_some(),
                watcher.as_ref().is_some_and(Watching::polling),
            )
        };
        #[cfg(not(feature = "watch"))]
        let (watching, polling) = (false, false);
        Status {
            name: shared.name.clone(),
            version: snapshot.version(),
            loaded_at: snapshot.loaded_at(),
            hash: shared.hash.load(Ordering::SeqCst),
            pending,
            holds: shared.holds.load(Ordering::SeqCst),
            deferred_since,
            watching,
            polling,
            sources,
            enabled: shared.enabled.load(Ordering::SeqCst),
            watch_error: watcher.and_then(|state| state.error).filter(|_| watching),
            local_override,
            last: shared.exit.last(),
            observers: shared.exit.health(),
            settings: lock(&shared.settings).1.clone(),
        }
    }
}
