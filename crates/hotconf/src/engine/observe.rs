//! The one exit: every event leaves through [`Exit::emit`], in order, numbered, after the
//! worker has released the reload lock.
//!
//! An event goes to the change callbacks (applied configs only), then to every
//! [`Observer`] (lossless and synchronous: the audit log, metrics and alerts belong here),
//! then, with the `tokio` feature, to the watch channel and the broadcast. Because nothing is locked while they run, a
//! callback or observer may call any method of the [`Reloader`](crate::Reloader).

use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::Serialize;

#[cfg(feature = "tokio")]
use tokio::sync::{broadcast, watch};

use crate::component::panic_message;
use crate::diff::Change;
use crate::error::{Problem, ProblemKind};
use crate::event::{Event, Outcome, Trigger};
use crate::path::Pattern;
use crate::snapshot::Snapshot;
use crate::trigger::WatcherState;

/// How many events a slow [`Reloader::events`](crate::Reloader::events) receiver may fall
/// behind before it misses some (it is then told how many it missed).
#[cfg(feature = "tokio")]
const EVENT_CAPACITY: usize = 64;

/// A lossless, synchronous receiver of every event, in `seq` order: what an audit log,
/// metrics or alerts are built on.
///
/// Observers run on the reload worker, after the reload lock is released: a slow observer
/// delays the next reload, never a reader, and it may call any method of the reloader
/// (methods that would wait for the worker queue their request and return at once). A
/// panic is caught, logged and reported to the other observers nowhere else: the worker
/// goes on.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use hotconf::{Event, Observer, Reloader, source::{Defaults, Format}};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = Arc::clone(&seen);
/// let reloader = Reloader::<serde_json::Value>::builder()
///     .defaults(Format::Toml, "rpm = 60")
///     .observer(move |event: &Event| log.lock().unwrap().push((event.seq, event.outcome)))
///     .build()
///     .unwrap();
/// reloader.reload().unwrap();
/// let seen = seen.lock().unwrap();
/// assert_eq!(seen.len(), 2, "the first load and the reload");
/// assert_eq!(seen[0].0 + 1, seen[1].0, "numbered without gaps");
/// ```
pub trait Observer: Send + Sync + 'static {
    /// Receives one event. Secret values in it are already redacted.
    fn observe(&self, event: &Event);

    /// The file watcher's state changed: it fell back to polling, failed, or recovered.
    /// Called on the reload worker, in order with the events.
    fn watcher(&self, state: &WatcherState) {
        let _ = state;
    }

    /// This observer's own health, listed in [`Status::observers`](crate::Status): an audit
    /// log that cannot write says so here. `None` (the default) lists nothing.
    fn health(&self) -> Option<ObserverHealth> {
        None
    }
}

/// How an observer is doing, as [`Status::observers`](crate::Status) lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ObserverHealth {
    /// What it is (`audit`, `alerts`).
    pub name: String,
    /// Whether it does its job.
    pub ok: bool,
    /// What is wrong, while something is.
    pub error: Option<String>,
    /// Anything else worth showing (a path, counts), as JSON.
    pub detail: serde_json::Value,
}

impl ObserverHealth {
    /// A health report with no detail.
    pub fn new(name: impl Into<String>, ok: bool, error: Option<String>) -> Self {
        Self {
            name: name.into(),
            ok,
            error,
            detail: serde_json::Value::Null,
        }
    }

    /// Adds detail.
    #[must_use]
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

impl<F: Fn(&Event) + Send + Sync + 'static> Observer for F {
    fn observe(&self, event: &Event) {
        self(event);
    }
}

/// What a change callback is told: the snapshots before and after, and what changed.
#[non_exhaustive]
pub struct Update<'a, T> {
    /// The snapshot that was active.
    pub old: &'a Arc<Snapshot<T>>,
    /// The snapshot now active.
    pub new: &'a Arc<Snapshot<T>>,
    /// What changed, with secret values redacted like everywhere else.
    pub changes: &'a [Change],
    /// What started the reload.
    pub trigger: Trigger,
}

impl<T> fmt::Debug for Update<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The configs may hold secrets: show versions and the redacted changes only.
        f.debug_struct("Update")
            .field("old", &self.old.version())
            .field("new", &self.new.version())
            .field("changes", &self.changes)
            .field("trigger", &self.trigger)
            .finish()
    }
}

type Callback<T> = Box<dyn Fn(&Update<'_, T>) + Send + Sync>;

/// A registered change callback.
pub(crate) struct Subscriber<T> {
    /// Run only when a change lies under one of these; for every change when empty.
    pub(crate) filter: Vec<Pattern>,
    pub(crate) callback: Callback<T>,
}

/// An applied config, for the callbacks.
pub(crate) struct Applied<T> {
    pub(crate) old: Arc<Snapshot<T>>,
    pub(crate) new: Arc<Snapshot<T>>,
    /// Redacted.
    pub(crate) changes: Vec<Change>,
}

/// The last attempts, oldest first: every event but `detected`.
struct Attempts {
    events: VecDeque<Event>,
    limit: usize,
}

/// Where every event leaves.
pub(crate) struct Exit<T> {
    seq: AtomicU64,
    attempts: Mutex<Attempts>,
    observers: RwLock<Vec<Arc<dyn Observer>>>,
    subscribers: RwLock<Vec<Arc<Subscriber<T>>>>,
    #[cfg(feature = "tokio")]
    snapshots: watch::Sender<Arc<Snapshot<T>>>,
    #[cfg(feature = "tokio")]
    events: broadcast::Sender<Event>,
}

impl<T> Exit<T> {
    pub(crate) fn new(
        first: Arc<Snapshot<T>>,
        observers: Vec<Arc<dyn Observer>>,
        attempts: usize,
    ) -> Self {
        // Without tokio there is no watch channel to start from the first snapshot.
        #[cfg(not(feature = "tokio"))]
        let _ = first;
        Self {
            seq: AtomicU64::new(0),
            attempts: Mutex::new(Attempts {
                events: VecDeque::with_capacity(attempts.min(64)),
                limit: attempts,
            }),
            observers: RwLock::new(observers),
            subscribers: RwLock::new(Vec::new()),
            #[cfg(feature = "tokio")]
            snapshots: watch::channel(first).0,
            #[cfg(feature = "tokio")]
            events: broadcast::channel(EVENT_CAPACITY).0,
        }
    }

    pub(crate) fn observe(&self, observer: Arc<dyn Observer>) {
        self.observers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(observer);
    }

    pub(crate) fn subscribe(&self, subscriber: Subscriber<T>) {
        self.subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(subscriber));
    }

    /// The kept attempts with a `seq` above `after`, oldest first.
    pub(crate) fn attempts_after(&self, after: u64) -> Vec<Event> {
        let attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let start = attempts.events.partition_point(|event| event.seq <= after);
        attempts.events.range(start..).cloned().collect()
    }

    /// The kept attempt numbered `seq`.
    pub(crate) fn attempt(&self, seq: u64) -> Option<Event> {
        let attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let index = attempts.events.binary_search_by_key(&seq, |e| e.seq).ok()?;
        attempts.events.get(index).cloned()
    }

    /// The last attempt.
    pub(crate) fn last(&self) -> Option<Event> {
        let attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        attempts.events.back().cloned()
    }

    /// The observers, cloned out so that one may register another without a deadlock.
    fn observers(&self) -> Vec<Arc<dyn Observer>> {
        self.observers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every observer's health report.
    pub(crate) fn health(&self) -> Vec<ObserverHealth> {
        let observers = self.observers();
        observers
            .iter()
            .filter_map(|observer| catch_unwind(AssertUnwindSafe(|| observer.health())).ok()?)
            .collect()
    }

    /// Tells every observer the watcher's new state.
    pub(crate) fn watcher(&self, state: &WatcherState) {
        let observers = self.observers();
        for (index, observer) in observers.iter().enumerate() {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| observer.watcher(state))) {
                let message = panic_message(panic.as_ref());
                tracing::error!(target: "hotconf", observer = index, %message, "observer panicked");
            }
        }
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn snapshots(&self) -> watch::Receiver<Arc<Snapshot<T>>> {
        self.snapshots.subscribe()
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Sends `event` out: numbers it, runs the callbacks for an applied config (their
    /// panics become warnings of the event), logs it, gives it to every observer, then to
    /// the channels. Returns the event as sent.
    ///
    /// Called only by the reload worker (and by `build` before the worker starts), with no
    /// lock held: events leave in the order they happened.
    pub(crate) fn emit(&self, mut event: Event, applied: Option<Applied<T>>) -> Event {
        event.seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(applied) = &applied {
            event
                .warnings
                .extend(self.run_callbacks(applied, event.trigger));
        }
        log(&event);
        if event.outcome != Outcome::Detected {
            let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
            if attempts.events.len() == attempts.limit {
                attempts.events.pop_front();
            }
            if attempts.limit > 0 {
                attempts.events.push_back(event.clone());
            }
        }
        let observers = self.observers();
        for (index, observer) in observers.iter().enumerate() {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| observer.observe(&event))) {
                let message = panic_message(panic.as_ref());
                tracing::error!(target: "hotconf", observer = index, seq = event.seq, %message, "observer panicked");
            }
        }
        #[cfg(feature = "tokio")]
        {
            if let Some(applied) = applied {
                self.snapshots.send_replace(applied.new);
            }
            // No receivers is fine: events are for whoever listens.
            let _ = self.events.send(event.clone());
        }
        event
    }

    /// Runs the callbacks interested in the changes, catching panics.
    fn run_callbacks(&self, applied: &Applied<T>, trigger: Trigger) -> Vec<Problem> {
        let update = Update {
            old: &applied.old,
            new: &applied.new,
            changes: &applied.changes,
            trigger,
        };
        let subscribers = self
            .subscribers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut problems = Vec::new();
        for (index, subscriber) in subscribers.iter().enumerate() {
            let interested = subscriber.filter.is_empty()
                || crate::diff::touches(&subscriber.filter, &applied.changes);
            if !interested {
                continue;
            }
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (subscriber.callback)(&update))) {
                let message = panic_message(panic.as_ref());
                tracing::error!(target: "hotconf", callback = index, %message, "change callback panicked");
                problems.push(Problem::warning(
                    ProblemKind::Callback,
                    format!("change callback #{index} panicked: {message}"),
                ));
            }
        }
        problems
    }
}

/// One log line per event; every value in it is redacted already.
fn log(event: &Event) {
    let (seq, version, trigger) = (event.seq, event.version, event.trigger.as_str());
    match event.outcome {
        Outcome::Detected => {
            for change in &event.changed {
                let kind = serde_json::to_value(change.kind).unwrap_or_default();
                tracing::info!(target: "hotconf", seq, trigger, file = %change.file, kind = %kind.as_str().unwrap_or_default(), "config file changed");
            }
        }
        Outcome::Loaded => {
            tracing::info!(target: "hotconf", seq, files = ?event.files, "config loaded, version 1");
        }
        Outcome::Applied => {
            tracing::info!(target: "hotconf", seq, version, trigger, changes = event.changes.len(), pending = event.pending.len(), elapsed_us = event.elapsed.as_micros() as u64, "config applied");
            for change in &event.changes {
                tracing::info!(target: "hotconf", seq, version, %change, "config changed");
            }
        }
        Outcome::Rejected => {
            for problem in &event.errors {
                tracing::warn!(target: "hotconf", seq, version, trigger, %problem, "config rejected, version {version} kept");
            }
        }
        Outcome::RestartRequired => {
            tracing::warn!(target: "hotconf", seq, version, trigger, pending = ?event.pending.iter().map(ToString::to_string).collect::<Vec<_>>(), "restart required to apply the change");
        }
        Outcome::Deferred if !event.warnings.is_empty() => {
            tracing::warn!(target: "hotconf", seq, version, trigger, "reload still deferred");
        }
        outcome => {
            tracing::debug!(target: "hotconf", seq, version, trigger, %outcome, "reload finished");
        }
    }
    for warning in &event.warnings {
        tracing::warn!(target: "hotconf", seq, %warning, "config warning");
    }
}
