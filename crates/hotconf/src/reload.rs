//! The engine: reads the sources, plans the change, and applies it as one transaction, one
//! reload at a time.
//!
//! A reload is: read sources → parse → merge → deserialize → validate → diff → classify by
//! policy → components prepare → swap → components commit → history, callbacks, events.
//! Any failure before the swap leaves the old snapshot active and reports every problem
//! found. Reloads are serialized by one lock that readers never touch: readers only do a
//! pointer load on the [`Handle`].

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};

use crate::component::{self, Component, Registered, Staged};
use crate::diff::{Change, diff};
use crate::error::{Error, Problem, ProblemKind, Problems, Result};
use crate::event::{Event, Outcome, Trigger};
use crate::layer::{self, Layers};
use crate::parse::Limits;
use crate::path::{ConfigPath, Pattern};
use crate::plan::{self, Draft, Plan};
use crate::policy::{Policy, RestartMode};
use crate::snapshot::{Handle, Snapshot};
use crate::source::{self, Document, Format, Origin, Source};
use crate::validate::Validate;
use crate::watch::{WatchOptions, Watching};

/// How many events a slow [`Reloader::events`] receiver may fall behind before it misses
/// some (it is then told how many it missed).
const EVENT_CAPACITY: usize = 64;

/// What a change callback is told: the snapshots before and after, and what changed.
#[derive(Debug)]
#[non_exhaustive]
pub struct Update<'a, T> {
    /// The snapshot that was active.
    pub old: &'a Arc<Snapshot<T>>,
    /// The snapshot now active.
    pub new: &'a Arc<Snapshot<T>>,
    /// What changed, not redacted: the callback runs inside the service.
    pub changes: &'a [Change],
    /// What started the reload.
    pub trigger: Trigger,
}

type Callback<T> = Box<dyn Fn(&Update<'_, T>) + Send + Sync>;

struct Subscriber<T> {
    /// Run only when a change lies under one of these; all changes when empty.
    filter: Vec<Pattern>,
    callback: Callback<T>,
}

/// One applied config in the history.
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
    /// The effective config as plain JSON, for rollback.
    effective: Arc<serde_json::Value>,
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

/// What the engine knows at a glance.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Status {
    /// The active version.
    pub version: u64,
    /// When it became active.
    pub loaded_at: SystemTime,
    /// Restart-required paths whose new value waits for a restart.
    pub pending: Vec<ConfigPath>,
    /// How many [`Hold`]s are in place.
    pub holds: usize,
    /// Since when a reload has been waiting for the holds to be released.
    pub deferred_since: Option<SystemTime>,
    /// Whether the file watcher runs.
    pub watching: bool,
    /// Whether it polls the files instead of being told by the operating system: asked for
    /// with [`Reloader::watch_polling`], or fallen back to when native watching failed.
    pub polling: bool,
}

/// What the reload lock guards.
struct State {
    /// The effective config as plain JSON: what the next config is diffed against.
    effective: Arc<serde_json::Value>,
    /// The documents the effective config came from.
    origins: Vec<(Origin, u64)>,
    /// The documents of the last attempt, applied or not: a watcher skips bytes it has seen.
    seen: Vec<(Origin, u64)>,
    version: u64,
    pending: Vec<ConfigPath>,
    /// The last ticket a finished reload of the sources covered, and its result: a request
    /// that waited while a newer reload read the sources is answered by that reload.
    served: u64,
    last: Option<std::result::Result<Event, Problems>>,
}

/// A reload waiting for the holds to be released. Only the latest is kept.
enum Work<T> {
    Sources { trigger: Trigger, skip_seen: bool },
    Config { config: T, trigger: Trigger },
}

impl<T> Work<T> {
    fn trigger(&self) -> Trigger {
        match self {
            Self::Sources { trigger, .. } | Self::Config { trigger, .. } => *trigger,
        }
    }
}

#[derive(Default)]
struct Gate<T> {
    holds: usize,
    deferred: Option<(Work<T>, SystemTime)>,
    /// Counts deferral periods, so a timer from an earlier one stays quiet.
    generation: u64,
}

struct Inner<T> {
    sources: Vec<Box<dyn Source>>,
    limits: Limits,
    policy: Policy,
    #[cfg(feature = "json-schema")]
    schema: Option<crate::schema::Schema>,
    components: Vec<Registered<T>>,
    component_timeout: Duration,
    max_hold: Duration,
    history_limit: usize,
    save_to: Option<(PathBuf, Format)>,
    watch_options: WatchOptions,
    loaded: Event,
    current: Arc<ArcSwap<Snapshot<T>>>,
    state: Mutex<State>,
    /// Tickets of requests to reload the sources, in arrival order.
    requests: AtomicU64,
    gate: Mutex<Gate<T>>,
    history: Mutex<VecDeque<Record<T>>>,
    snapshots: watch::Sender<Arc<Snapshot<T>>>,
    events: broadcast::Sender<Event>,
    subscribers: RwLock<Vec<Subscriber<T>>>,
    watching: Mutex<Option<Watching>>,
}

fn lock<S>(mutex: &Mutex<S>) -> MutexGuard<'_, S> {
    // Every lock here guards data that is assigned whole, after the last fallible step: a
    // panic while holding it cannot leave it half-written, so a poisoned lock is consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Owns a config's sources and its live snapshot, and runs reloads.
///
/// Cheap to clone: clones share the same config. See the [crate docs](crate) for a tour.
pub struct Reloader<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Reloader<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> fmt::Debug for Reloader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloader")
            .field("sources", &self.inner.sources)
            .field("version", &self.inner.current.load().version())
            .finish_non_exhaustive()
    }
}

/// A reloader that does not keep it alive, for threads it owns.
pub(crate) struct WeakReloader<T>(Weak<Inner<T>>);

impl<T> WeakReloader<T> {
    pub(crate) fn upgrade(&self) -> Option<Reloader<T>> {
        self.0.upgrade().map(|inner| Reloader { inner })
    }
}

impl<T> Reloader<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    /// Starts configuring a reloader.
    pub fn builder() -> ReloaderBuilder<T> {
        ReloaderBuilder::default()
    }

    /// The reader side: cheap to clone, lock-free to read.
    pub fn handle(&self) -> Handle<T> {
        Handle::new(Arc::clone(&self.inner.current))
    }

    /// The current snapshot (shorthand for `handle().load_full()`).
    pub fn current(&self) -> Arc<Snapshot<T>> {
        self.inner.current.load_full()
    }

    /// A receiver that always holds the latest snapshot, tokio `watch` style: await
    /// `changed()` in async code, or poll `has_changed()`. No runtime is needed to create or
    /// poll it.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot<T>>> {
        self.inner.snapshots.subscribe()
    }

    /// A receiver of every reload [`Event`] from now on: applied, rejected, unchanged,
    /// restart required, deferred.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// The event of the first load (`loaded`, version 1), as `hotconf watch` prints it.
    pub fn loaded_event(&self) -> Event {
        self.inner.loaded.clone()
    }

    /// Registers a callback run after every applied reload, in registration order.
    ///
    /// A panic in a callback is caught and reported as a warning of the event; the other
    /// callbacks still run and the new config stays applied. Callbacks run on the thread
    /// that reloads, while reloads are held: keep them short, and do not call
    /// [`reload`](Self::reload) or [`apply`](Self::apply) from one (it would deadlock).
    pub fn on_change<F>(&self, callback: F)
    where
        F: Fn(&Update<'_, T>) + Send + Sync + 'static,
    {
        self.add_subscriber(Vec::new(), Box::new(callback));
    }

    /// Like [`on_change`](Self::on_change), but runs only when a change lies under one of
    /// `patterns` (`limits.**`, `server.listen`, `providers.*.api_key`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] when a pattern does not parse.
    pub fn on_change_at<F>(&self, patterns: &[&str], callback: F) -> Result<()>
    where
        F: Fn(&Update<'_, T>) + Send + Sync + 'static,
    {
        let filter = patterns
            .iter()
            .map(|p| p.parse::<Pattern>())
            .collect::<Result<Vec<_>>>()?;
        self.add_subscriber(filter, Box::new(callback));
        Ok(())
    }

    fn add_subscriber(&self, filter: Vec<Pattern>, callback: Callback<T>) {
        self.inner
            .subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Subscriber { filter, callback });
    }

    /// Re-reads every source and applies the result if it is valid and differs.
    ///
    /// Reloads are serialized. A call made while another reload runs waits for it, and calls
    /// that waited together coalesce: the first to run reads the sources for all of them,
    /// and the others return its result.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] with every problem found when the new config is rejected; the old
    /// snapshot stays active. The rejection is also sent to [`events`](Self::events).
    pub fn reload(&self) -> Result<Event> {
        self.reload_with(Trigger::Reload)
    }

    /// [`reload`](Self::reload), recording what triggered it (the watcher, a signal).
    ///
    /// # Errors
    ///
    /// As [`reload`](Self::reload).
    pub fn reload_with(&self, trigger: Trigger) -> Result<Event> {
        let work = Work::Sources {
            trigger,
            skip_seen: false,
        };
        self.settle(self.run(work), trigger)
    }

    /// The result of work that cannot be skipped; `None` (skipped as seen) only comes from
    /// watcher work, and is reported as unchanged.
    fn settle(&self, result: Option<Result<Event>>, trigger: Trigger) -> Result<Event> {
        result.unwrap_or_else(|| {
            let version = self.inner.current.load().version();
            Ok(Event::new(
                Outcome::Unchanged,
                version,
                trigger,
                self.source_files(),
            ))
        })
    }

    /// A reload that does nothing when every document has the bytes of the last attempt:
    /// the watcher's way to ignore a touch or a rewrite of the same content.
    pub(crate) fn reload_if_changed(&self, trigger: Trigger) -> Option<Result<Event>> {
        self.run(Work::Sources {
            trigger,
            skip_seen: true,
        })
    }

    /// Replaces the effective config with `config`, through the same validation, policy and
    /// components as a reload. It stays in effect until the next reload from the sources,
    /// which wins; use [`save`](Self::save) to make it last.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] when `config` is rejected; nothing changes.
    pub fn apply(&self, config: T) -> Result<Event> {
        let work = Work::Config {
            config,
            trigger: Trigger::Apply,
        };
        self.settle(self.run(work), Trigger::Apply)
    }

    /// Applies a change made by `edit` to a copy of the current config (seed-style
    /// `update_config(|c| c.port = 9090)`).
    ///
    /// # Errors
    ///
    /// As [`apply`](Self::apply).
    pub fn update(&self, edit: impl FnOnce(&mut T)) -> Result<Event>
    where
        T: Clone,
    {
        let mut config = self.current().config().clone();
        edit(&mut config);
        self.apply(config)
    }

    /// Applies the config of an earlier version again, through the same transaction (policy,
    /// validation, components). It becomes a new version: versions never go back.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownVersion`] when `version` is not in the [`history`](Self::history);
    /// otherwise as [`apply`](Self::apply).
    pub fn rollback_to(&self, version: u64) -> Result<Event> {
        let effective = lock(&self.inner.history)
            .iter()
            .find(|record| record.snapshot.version() == version)
            .map(|record| Arc::clone(&record.effective))
            .ok_or(Error::UnknownVersion(version))?;
        let config: T = serde_json::from_value((*effective).clone()).map_err(|e| {
            Error::Invalid(
                Problem::error(
                    ProblemKind::Type,
                    format!("version {version} no longer loads: {e}"),
                )
                .into(),
            )
        })?;
        let work = Work::Config {
            config,
            trigger: Trigger::Rollback,
        };
        self.settle(self.run(work), Trigger::Rollback)
    }

    /// The applied snapshots still kept, oldest first (16 by default, see
    /// [`ReloaderBuilder::history`]).
    pub fn history(&self) -> Vec<Record<T>> {
        lock(&self.inner.history).iter().cloned().collect()
    }

    /// The version, pending restarts, holds and watcher state.
    pub fn status(&self) -> Status {
        let (version, pending) = {
            let state = lock(&self.inner.state);
            (state.version, state.pending.clone())
        };
        let (holds, deferred_since) = {
            let gate = lock(&self.inner.gate);
            (gate.holds, gate.deferred.as_ref().map(|(_, since)| *since))
        };
        let watcher = lock(&self.inner.watching);
        Status {
            version,
            loaded_at: self.inner.current.load().loaded_at(),
            pending,
            holds,
            deferred_since,
            watching: watcher.is_some(),
            polling: watcher.as_ref().is_some_and(Watching::polling),
        }
    }

    /// Defers reloads until the returned guard, and every other hold, is dropped: for
    /// critical work that must not see the config change under it (a migration, a batch).
    ///
    /// While held, reloads are not lost: they coalesce to the latest trigger, are reported
    /// as `deferred`, and run when the last hold is released (on the thread that releases
    /// it). A hold kept longer than [`ReloaderBuilder::max_hold`] is reported again as still
    /// deferred, each time that period passes.
    pub fn hold(&self) -> Hold<T> {
        lock(&self.inner.gate).holds += 1;
        Hold {
            reloader: self.clone(),
        }
    }

    /// What a reload of the sources as they are now would do, without doing it: the
    /// changes and their rules, the pending restarts, the components that would prepare
    /// (they are not called), and the errors that would reject it.
    pub fn plan(&self) -> Plan {
        let state = lock(&self.inner.state);
        let mut plan = Plan {
            outcome: Outcome::Rejected,
            changes: Vec::new(),
            pending: Vec::new(),
            components: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let loaded = layer::read(&self.inner.sources, &self.inner.limits)
            .and_then(|documents| Layers::from_documents(documents, &self.inner.limits))
            .and_then(|layers| {
                let config = layers.deserialize::<T>()?;
                let schema = self.schema_problems(Some(&layers), &config);
                Ok((layers, config, schema))
            });
        let (layers, config, schema) = match loaded {
            Ok(loaded) => loaded,
            Err(problems) => {
                plan.errors = problems.errors().cloned().collect();
                return plan;
            }
        };
        if let Ok(json) = serde_json::to_value(&config) {
            let mut changes = plan::classify(&self.inner.policy, diff(&state.effective, &json));
            for planned in &mut changes {
                self.redact(std::slice::from_mut(&mut planned.change));
            }
            plan.changes = changes;
        }
        match plan::draft(
            &state.effective,
            config,
            Some(&layers),
            &self.inner.policy,
            schema,
        ) {
            Ok(draft) => {
                plan.pending = draft.pending();
                plan.warnings = draft.warnings.clone();
                plan.components = self
                    .inner
                    .components
                    .iter()
                    .filter(|c| c.interested(&draft.changes))
                    .map(|c| c.component.name().to_owned())
                    .collect();
                plan.outcome = match (draft.changes.is_empty(), draft.held.is_empty()) {
                    (false, _) => Outcome::Applied,
                    (true, false) => Outcome::RestartRequired,
                    (true, true) => Outcome::Unchanged,
                };
            }
            Err(problems) => plan.errors = problems.errors().cloned().collect(),
        }
        plan
    }

    /// Writes the effective config to the save file (the last file source, or the one set
    /// with [`ReloaderBuilder::save_to`]) atomically: a temp file in the same directory,
    /// fsync, rename over, with the old file's permissions. TOML keeps the file's comments
    /// and layout; JSON and YAML are rewritten whole (comments in YAML are lost).
    ///
    /// The whole effective config is written, overrides from other layers included, so the
    /// file alone reproduces it. A watcher then sees an unchanged effective config.
    ///
    /// # Errors
    ///
    /// [`Error::Unsaveable`] when there is no file to save to or the config does not
    /// serialize to the format; [`Error::Save`] when writing fails (the file is unchanged).
    pub fn save(&self) -> Result<PathBuf> {
        let (path, format) = self
            .inner
            .save_to
            .clone()
            .ok_or_else(|| Error::Unsaveable("no file source to save to".into()))?;
        // Hold the reload lock so the file gets the config that is active when it lands.
        let _state = lock(&self.inner.state);
        let snapshot = self.current();
        crate::save::save(&path, format, snapshot.config())?;
        tracing::info!(target: "hotconf", path = %path.display(), version = snapshot.version(), "config saved");
        Ok(path)
    }

    pub(crate) fn sources(&self) -> &[Box<dyn Source>] {
        &self.inner.sources
    }

    pub(crate) fn watch_options(&self) -> &WatchOptions {
        &self.inner.watch_options
    }

    pub(crate) fn watching(&self) -> &Mutex<Option<Watching>> {
        &self.inner.watching
    }

    pub(crate) fn downgrade(&self) -> WeakReloader<T> {
        WeakReloader(Arc::downgrade(&self.inner))
    }

    /// Runs `work` now, or defers it while a hold is in place. `None` when the sources had
    /// the bytes of the last attempt and `skip_seen` asked to skip them.
    fn run(&self, work: Work<T>) -> Option<Result<Event>> {
        let ticket = self.inner.requests.fetch_add(1, Ordering::SeqCst) + 1;
        self.run_ticket(work, ticket)
    }

    /// [`run`](Self::run) for a request that took its ticket already.
    fn run_ticket(&self, work: Work<T>, ticket: u64) -> Option<Result<Event>> {
        {
            let mut gate = lock(&self.inner.gate);
            if gate.holds > 0 {
                return Some(Ok(self.defer(&mut gate, work)));
            }
        }
        let started = Instant::now();
        let mut state = lock(&self.inner.state);
        tracing::debug!(target: "hotconf", trigger = work.trigger().as_str(), "reload started");
        match work {
            Work::Sources { trigger, skip_seen } => {
                // Coalesce: a reload that started after this request already read the
                // sources as they were when it was made.
                if state.served >= ticket {
                    tracing::debug!(target: "hotconf", "answered by a reload that ran while waiting");
                    return match (&state.last, skip_seen) {
                        (_, true) | (None, _) => None,
                        (Some(Ok(event)), false) => Some(Ok(event.clone())),
                        (Some(Err(problems)), false) => Some(Err(Error::Invalid(problems.clone()))),
                    };
                }
                // Every request made until now is covered by what this reload reads.
                let covers = self.inner.requests.load(Ordering::SeqCst);
                let result = self.reload_sources(&mut state, trigger, skip_seen, started);
                state.served = covers;
                state.last = match &result {
                    Some(Ok(event)) => Some(Ok(event.clone())),
                    Some(Err(error)) => Some(Err(Problems(error.problems().to_vec()))),
                    // Nothing new was read: a waiting caller is told `unchanged`.
                    None => None,
                };
                result
            }
            Work::Config { config, trigger } => {
                let origins = state.origins.clone();
                let files = origins.iter().map(|(o, _)| o.to_string()).collect();
                let schema = self.schema_problems(None, &config);
                Some(self.transact(
                    &mut state, config, None, schema, origins, trigger, files, started,
                ))
            }
        }
    }

    fn reload_sources(
        &self,
        state: &mut State,
        trigger: Trigger,
        skip_seen: bool,
        started: Instant,
    ) -> Option<Result<Event>> {
        let documents = match layer::read(&self.inner.sources, &self.inner.limits) {
            Ok(documents) => documents,
            Err(problems) => {
                let files = self.source_files();
                return Some(Err(self.reject(state, trigger, files, problems, started)));
            }
        };
        let seen = revisions(&documents);
        if skip_seen && seen == state.seen {
            tracing::debug!(target: "hotconf", "sources have the bytes of the last attempt");
            return None;
        }
        state.seen = seen.clone();
        let layers = match Layers::from_documents(documents, &self.inner.limits) {
            Ok(layers) => layers,
            Err(problems) => {
                let files = seen.iter().map(|(o, _)| o.to_string()).collect();
                return Some(Err(self.reject(state, trigger, files, problems, started)));
            }
        };
        let files = layers.files();
        let config = match layers.deserialize::<T>() {
            Ok(config) => config,
            Err(problems) => {
                return Some(Err(self.reject(state, trigger, files, problems, started)));
            }
        };
        let schema = self.schema_problems(Some(&layers), &config);
        Some(self.transact(
            state,
            config,
            Some(&layers),
            schema,
            seen,
            trigger,
            files,
            started,
        ))
    }

    /// Plans `config`, then applies it as a transaction: components prepare, the snapshot
    /// swaps, components commit. Any failure before the swap keeps the old snapshot.
    #[allow(clippy::too_many_arguments)]
    fn transact(
        &self,
        state: &mut State,
        config: T,
        layers: Option<&Layers>,
        extra: Problems,
        origins: Vec<(Origin, u64)>,
        trigger: Trigger,
        files: Vec<String>,
        started: Instant,
    ) -> Result<Event> {
        let draft = match plan::draft(&state.effective, config, layers, &self.inner.policy, extra) {
            Ok(draft) => draft,
            Err(problems) => return Err(self.reject(state, trigger, files, problems, started)),
        };
        if draft.changes.is_empty() {
            state.origins = origins;
            state.pending = draft.pending();
            let outcome = if draft.held.is_empty() {
                Outcome::Unchanged
            } else {
                Outcome::RestartRequired
            };
            let mut event = Event::new(outcome, state.version, trigger, files);
            event.changes = draft.held;
            self.redact(&mut event.changes);
            event.pending = state.pending.clone();
            event.warnings = draft.warnings;
            return Ok(self.finish(event, started));
        }

        let pending = draft.pending();
        let Draft {
            config,
            effective,
            changes,
            warnings,
            ..
        } = draft;
        let old = self.inner.current.load_full();
        let new = Arc::new(Snapshot::new(config, state.version + 1, origins.clone()));
        let changes: Arc<[Change]> = changes.into();
        let staged = match self.prepare_components(&old, &new, &changes) {
            Ok(staged) => staged,
            Err(error) => {
                let problems = Problems::from(error.0);
                if error.1.is_empty() {
                    return Err(self.reject(state, trigger, files, problems, started));
                }
                let _ = self.reject(state, trigger, files, problems.clone(), started);
                return Err(Error::RollbackFailed {
                    problems,
                    failures: error.1,
                });
            }
        };

        // Nothing has failed and nothing can from here: the state moves to the new config.
        state.version += 1;
        state.effective = Arc::new(effective);
        state.origins = origins;
        state.pending = pending;
        self.inner.current.store(Arc::clone(&new));
        self.inner.snapshots.send_replace(Arc::clone(&new));

        let mut event = Event::new(Outcome::Applied, state.version, trigger, files);
        event.warnings = warnings;
        for (name, staged) in staged {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| staged.commit())) {
                let message = component::panic_message(panic.as_ref());
                tracing::error!(target: "hotconf", component = %name, %message, "component commit panicked");
                event.warnings.push(Problem::warning(
                    ProblemKind::Component,
                    format!("component '{name}' panicked while committing: {message}"),
                ));
            }
        }
        event
            .warnings
            .extend(self.notify(&old, &new, &changes, trigger));
        event.changes = changes.to_vec();
        self.redact(&mut event.changes);
        event.pending = state.pending.clone();
        self.record(Record {
            snapshot: new,
            trigger,
            outcome: Outcome::Applied,
            changes: event.changes.clone(),
            pending: event.pending.clone(),
            effective: Arc::clone(&state.effective),
        });
        Ok(self.finish(event, started))
    }

    /// Prepares every interested component in registration order. On the first failure the
    /// prepared ones are aborted, last first; the error carries the reason and any abort
    /// that panicked.
    #[allow(clippy::type_complexity)]
    fn prepare_components(
        &self,
        old: &Arc<Snapshot<T>>,
        new: &Arc<Snapshot<T>>,
        changes: &Arc<[Change]>,
    ) -> std::result::Result<Vec<(String, Box<dyn Staged>)>, (Problem, Vec<String>)> {
        let mut staged: Vec<(String, Box<dyn Staged>)> = Vec::new();
        for registered in &self.inner.components {
            if !registered.interested(changes) {
                continue;
            }
            let name = registered.component.name().to_owned();
            let started = Instant::now();
            match component::prepare(
                &registered.component,
                old,
                new,
                changes,
                self.inner.component_timeout,
            ) {
                Ok(prepared) => {
                    tracing::debug!(target: "hotconf", component = %name, elapsed_us = started.elapsed().as_micros() as u64, "component prepared");
                    staged.push((name, prepared));
                }
                Err(reason) => {
                    let problem = Problem::error(
                        ProblemKind::Component,
                        format!("component '{name}' refused the config: {reason}"),
                    );
                    let mut failures = Vec::new();
                    for (other, prepared) in staged.into_iter().rev() {
                        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| prepared.abort())) {
                            let message = component::panic_message(panic.as_ref());
                            failures.push(format!(
                                "component '{other}' panicked while aborting: {message}"
                            ));
                        }
                    }
                    return Err((problem, failures));
                }
            }
        }
        Ok(staged)
    }

    fn record(&self, record: Record<T>) {
        let mut history = lock(&self.inner.history);
        if history.len() == self.inner.history_limit {
            history.pop_front();
        }
        history.push_back(record);
    }

    #[cfg(feature = "json-schema")]
    fn schema_problems(&self, layers: Option<&Layers>, config: &T) -> Problems {
        let Some(schema) = &self.inner.schema else {
            return Problems::default();
        };
        match layers {
            Some(layers) => schema.check(layers),
            None => Problems(
                serde_json::to_value(config)
                    .map(|json| schema.violations(&json))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(path, message)| {
                        Problem::error(ProblemKind::Schema, message).at_path(path)
                    })
                    .collect(),
            ),
        }
    }

    #[cfg(not(feature = "json-schema"))]
    fn schema_problems(&self, _layers: Option<&Layers>, _config: &T) -> Problems {
        Problems::default()
    }

    fn redact(&self, changes: &mut [Change]) {
        self.inner.policy.secrets().redact(changes);
    }

    /// Records `work` as the reload to run when the holds are released, replacing any
    /// earlier one, and reports it.
    fn defer(&self, gate: &mut Gate<T>, work: Work<T>) -> Event {
        let trigger = work.trigger();
        let first = gate.deferred.is_none();
        let since = gate
            .deferred
            .as_ref()
            .map_or_else(SystemTime::now, |(_, since)| *since);
        gate.deferred = Some((work, since));
        if first {
            gate.generation += 1;
            self.start_hold_timer(gate.generation);
        }
        let version = self.inner.current.load().version();
        let event = Event::new(Outcome::Deferred, version, trigger, self.source_files());
        tracing::info!(target: "hotconf", trigger = trigger.as_str(), holds = gate.holds, "reload deferred while held");
        let _ = self.inner.events.send(event.clone());
        event
    }

    /// Reports a deferral again each time `max_hold` passes while it lasts, so a reload that
    /// waits on a forgotten hold is visible.
    fn start_hold_timer(&self, generation: u64) {
        let weak = self.downgrade();
        let period = self.inner.max_hold;
        let spawned = std::thread::Builder::new()
            .name("hotconf-hold-timer".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(period);
                    let Some(reloader) = weak.upgrade() else { return };
                    let gate = lock(&reloader.inner.gate);
                    let Some((work, since)) = gate.deferred.as_ref().filter(|_| gate.generation == generation) else {
                        return;
                    };
                    let waited = since.elapsed().unwrap_or_default();
                    let version = reloader.inner.current.load().version();
                    let mut event = Event::new(Outcome::Deferred, version, work.trigger(), reloader.source_files());
                    event.warnings.push(Problem::warning(
                        ProblemKind::Policy,
                        format!(
                            "reload still deferred after {} ms: {} hold(s) in place",
                            waited.as_millis(),
                            gate.holds
                        ),
                    ));
                    tracing::warn!(target: "hotconf", waited_ms = waited.as_millis() as u64, "reload still deferred");
                    let _ = reloader.inner.events.send(event);
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(target: "hotconf", %error, "cannot start the hold timer");
        }
    }

    /// Releases one hold; the last one runs the deferred reload, if any.
    fn release(&self) {
        let deferred = {
            let mut gate = lock(&self.inner.gate);
            gate.holds = gate.holds.saturating_sub(1);
            if gate.holds == 0 {
                gate.deferred.take()
            } else {
                None
            }
        };
        if let Some((work, _)) = deferred {
            tracing::debug!(target: "hotconf", "last hold released, running the deferred reload");
            // The outcome is reported as an event; a rejection is not the releaser's error.
            let _ = self.run(work);
        }
    }

    /// Runs the callbacks interested in `changes`, catching panics.
    fn notify(
        &self,
        old: &Arc<Snapshot<T>>,
        new: &Arc<Snapshot<T>>,
        changes: &[Change],
        trigger: Trigger,
    ) -> Vec<Problem> {
        let update = Update {
            old,
            new,
            changes,
            trigger,
        };
        let subscribers = self
            .inner
            .subscribers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut problems = Vec::new();
        for (index, subscriber) in subscribers.iter().enumerate() {
            let interested =
                subscriber.filter.is_empty() || crate::diff::touches(&subscriber.filter, changes);
            if !interested {
                continue;
            }
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (subscriber.callback)(&update))) {
                let message = component::panic_message(panic.as_ref());
                tracing::error!(target: "hotconf", callback = index, %message, "change callback panicked");
                problems.push(Problem::warning(
                    ProblemKind::Callback,
                    format!("change callback #{index} panicked: {message}"),
                ));
            }
        }
        problems
    }

    fn reject(
        &self,
        state: &State,
        trigger: Trigger,
        files: Vec<String>,
        problems: Problems,
        started: Instant,
    ) -> Error {
        let mut problems = problems;
        for problem in &mut problems.0 {
            self.inner.policy.secrets().redact_problem(problem);
        }
        let mut event = Event::new(Outcome::Rejected, state.version, trigger, files);
        event.errors = problems.errors().cloned().collect();
        let event = self.finish(event, started);
        for problem in &event.errors {
            tracing::warn!(target: "hotconf", %problem, "config rejected, previous config kept");
        }
        Error::Invalid(problems)
    }

    fn finish(&self, mut event: Event, started: Instant) -> Event {
        event.elapsed = started.elapsed();
        match event.outcome {
            Outcome::Applied => tracing::info!(
                target: "hotconf",
                version = event.version,
                changes = event.changes.len(),
                pending = event.pending.len(),
                elapsed_us = event.elapsed.as_micros() as u64,
                "config applied"
            ),
            outcome => {
                tracing::debug!(target: "hotconf", version = event.version, %outcome, "reload finished")
            }
        }
        // No receivers is fine: events are for whoever listens.
        let _ = self.inner.events.send(event.clone());
        event
    }

    pub(crate) fn source_files(&self) -> Vec<String> {
        self.inner
            .sources
            .iter()
            .flat_map(|s| s.files())
            .map(|p| p.display().to_string())
            .collect()
    }
}

fn revisions(documents: &[Document]) -> Vec<(Origin, u64)> {
    documents
        .iter()
        .map(|d| (d.origin.clone(), d.revision))
        .collect()
}

/// A guard from [`Reloader::hold`]: reloads wait while any is alive.
#[must_use = "reloads are deferred only while the hold is kept"]
pub struct Hold<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    reloader: Reloader<T>,
}

impl<T> Drop for Hold<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    fn drop(&mut self) {
        self.reloader.release();
    }
}

impl<T> fmt::Debug for Hold<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hold").finish_non_exhaustive()
    }
}

/// Configures and builds a [`Reloader`]. Sources layer in the order they are added.
pub struct ReloaderBuilder<T> {
    sources: Vec<Box<dyn Source>>,
    limits: Limits,
    policy: Policy,
    #[cfg(feature = "json-schema")]
    schema: Option<crate::schema::Schema>,
    components: Vec<Registered<T>>,
    component_timeout: Duration,
    max_hold: Duration,
    history_limit: usize,
    save_to: Option<(PathBuf, Format)>,
    watch_options: WatchOptions,
    errors: Vec<Error>,
    config: PhantomData<fn() -> T>,
}

impl<T> Default for ReloaderBuilder<T> {
    fn default() -> Self {
        Self {
            sources: Vec::new(),
            limits: Limits::default(),
            policy: Policy::new(),
            #[cfg(feature = "json-schema")]
            schema: None,
            components: Vec::new(),
            component_timeout: Duration::from_secs(10),
            max_hold: Duration::from_secs(30),
            history_limit: 16,
            save_to: None,
            watch_options: WatchOptions::default(),
            errors: Vec::new(),
            config: PhantomData,
        }
    }
}

impl<T: 'static> fmt::Debug for ReloaderBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloaderBuilder")
            .field("sources", &self.sources)
            .field("limits", &self.limits)
            .field("policy", &self.policy)
            .field("components", &self.components)
            .finish_non_exhaustive()
    }
}

impl<T> ReloaderBuilder<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    /// Adds a config file; its extension names the format. The last file added is where
    /// [`Reloader::save`] writes, unless [`save_to`](Self::save_to) says otherwise.
    #[must_use]
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        if let Some(format) = Format::from_path(&path) {
            self.save_to = Some((path.clone(), format));
        }
        self.source(source::File::new(path))
    }

    /// Adds the files of a directory that match `glob` (`*.yaml`, `*.{toml,json}`), in name
    /// order.
    #[must_use]
    pub fn dir(self, path: impl Into<PathBuf>, glob: &str) -> Self {
        self.source(source::Dir::new(path).glob(glob))
    }

    /// Adds defaults written in a config format, usually the first layer.
    #[must_use]
    pub fn defaults(self, format: Format, text: impl Into<String>) -> Self {
        self.source(source::Defaults::text(format, text))
    }

    /// Adds defaults from a value, such as `T::default()`.
    #[must_use]
    pub fn defaults_value<V: Serialize>(mut self, value: &V) -> Self {
        match source::Defaults::value(value) {
            Ok(defaults) => self.source(defaults),
            Err(e) => {
                self.errors.push(e);
                self
            }
        }
    }

    /// Adds environment overrides `{prefix}{separator}A{separator}B=value` as a layer. They
    /// are read now, once: changing them takes a restart.
    #[must_use]
    pub fn env(self, prefix: &str, separator: &str) -> Self {
        self.source(source::Env::new(prefix, separator))
    }

    /// Adds any [`Source`].
    #[must_use]
    pub fn source(mut self, source: impl Source + 'static) -> Self {
        self.sources.push(Box::new(source));
        self
    }

    /// Sets the size and depth limits for every document.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    fn with_pattern(mut self, pattern: &str, add: impl FnOnce(Policy, Pattern) -> Policy) -> Self {
        match pattern.parse() {
            Ok(pattern) => self.policy = add(std::mem::take(&mut self.policy), pattern),
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// Marks the values matching `pattern` as secret: they print as `"***"` in events and
    /// logs, on top of the built-in key names (`password`, `token`, …).
    #[must_use]
    pub fn secret(self, pattern: &str) -> Self {
        self.with_pattern(pattern, Policy::secret)
    }

    /// Changes under `pattern` (`server.listen`, `db.**`) take effect only after a restart:
    /// by default the rest of the reload applies and these paths keep their old value and
    /// are reported as pending (see [`restart_mode`](Self::restart_mode)).
    #[must_use]
    pub fn restart_required(self, pattern: &str) -> Self {
        self.with_pattern(pattern, Policy::restart_required)
    }

    /// Changes under `pattern` reject the whole reload.
    #[must_use]
    pub fn deny(self, pattern: &str) -> Self {
        self.with_pattern(pattern, Policy::deny)
    }

    /// What a reload that changes restart-required paths does: apply the hot part (the
    /// default) or reject it whole.
    #[must_use]
    pub fn restart_mode(mut self, mode: RestartMode) -> Self {
        self.policy = std::mem::take(&mut self.policy).restart_mode(mode);
        self
    }

    /// Validates every config against a JSON Schema before the service's own rules.
    #[cfg(feature = "json-schema")]
    #[must_use]
    pub fn schema(mut self, schema: crate::schema::Schema) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Adds a component that must prepare every config that changes its paths before the
    /// config is applied (see [`Component`]). Components prepare in the order added.
    #[must_use]
    pub fn component(mut self, component: impl Component<T>) -> Self {
        let patterns = component
            .paths()
            .iter()
            .map(|p| p.parse::<Pattern>())
            .collect::<Result<Vec<_>>>();
        match patterns {
            Ok(patterns) => self.components.push(Registered {
                component: Arc::new(component),
                patterns,
            }),
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// How long one component may take to prepare before the reload is rejected. Default:
    /// 10 s.
    #[must_use]
    pub fn component_timeout(mut self, timeout: Duration) -> Self {
        self.component_timeout = timeout;
        self
    }

    /// How long a reload may wait on holds before it is reported again as still deferred
    /// (and again each time this period passes). Default: 30 s.
    #[must_use]
    pub fn max_hold(mut self, period: Duration) -> Self {
        self.max_hold = period;
        self
    }

    /// How many applied snapshots [`Reloader::history`] keeps for
    /// [`Reloader::rollback_to`]. Default: 16.
    #[must_use]
    pub fn history(mut self, snapshots: usize) -> Self {
        self.history_limit = snapshots;
        self
    }

    /// How long the watched files must be quiet before a batch of filesystem events becomes
    /// one reload: from 10 ms to 60 s. Default: 100 ms.
    #[must_use]
    pub fn debounce(mut self, quiet: Duration) -> Self {
        self.watch_options.debounce = quiet;
        self
    }

    /// Ignores watcher events for file names matching `glob`, on top of the default litter
    /// list ([`DEFAULT_IGNORES`](crate::source::DEFAULT_IGNORES)).
    #[must_use]
    pub fn ignore(mut self, glob: &str) -> Self {
        self.watch_options.ignore.push(glob.to_owned());
        self
    }

    /// Sets the file [`Reloader::save`] writes to, with its format from the extension.
    #[must_use]
    pub fn save_to(mut self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        match Format::from_path(&path) {
            Some(format) => self.save_to = Some((path, format)),
            None => self.errors.push(Error::InvalidOption {
                option: "save_to",
                reason: format!(
                    "{}: unknown format; use .toml, .yaml, .yml or .json",
                    path.display()
                ),
            }),
        }
        self
    }

    fn check_options(&mut self) -> Result<()> {
        if !self.errors.is_empty() {
            return Err(self.errors.remove(0));
        }
        if self.sources.is_empty() {
            return Err(Error::InvalidOption {
                option: "sources",
                reason: "add at least one source (file, dir, defaults, env)".into(),
            });
        }
        let debounce = self.watch_options.debounce;
        if debounce < Duration::from_millis(10) || debounce > Duration::from_secs(60) {
            return Err(Error::InvalidOption {
                option: "debounce",
                reason: format!("{} ms is outside 10 ms ..= 60 s", debounce.as_millis()),
            });
        }
        if self.history_limit == 0 {
            return Err(Error::InvalidOption {
                option: "history",
                reason: "keep at least one snapshot".into(),
            });
        }
        Ok(())
    }

    /// Loads the config for the first time and returns the reloader, version 1.
    ///
    /// # Errors
    ///
    /// The first option error, or [`Error::Invalid`] with every problem of the first load:
    /// each located at its file, line, column and config path.
    pub fn build(mut self) -> Result<Reloader<T>> {
        self.check_options()?;
        let started = Instant::now();
        let secrets = self.policy.secrets().clone();
        let redacted = |mut problems: Problems| {
            for problem in &mut problems.0 {
                secrets.redact_problem(problem);
            }
            Error::Invalid(problems)
        };
        let layers = Layers::load(&self.sources, &self.limits)?;
        let config: T = layers.deserialize().map_err(redacted)?;
        #[cfg(feature = "json-schema")]
        let schema = match &self.schema {
            Some(schema) => schema.check(&layers),
            None => Problems::default(),
        };
        #[cfg(not(feature = "json-schema"))]
        let schema = Problems::default();
        // The first load has nothing to diff against; the policy has nothing to hold back.
        let draft = plan::draft(
            &serde_json::Value::Null,
            config,
            Some(&layers),
            &Policy::new(),
            schema,
        )
        .map_err(redacted)?;
        for warning in &draft.warnings {
            tracing::warn!(target: "hotconf", %warning, "config warning");
        }
        let origins = revisions(layers.documents());
        let snapshot = Arc::new(Snapshot::new(draft.config, 1, origins.clone()));
        let effective = Arc::new(draft.effective);
        let mut loaded = Event::new(Outcome::Loaded, 1, Trigger::Load, layers.files());
        loaded.warnings = draft.warnings;
        loaded.elapsed = started.elapsed();
        tracing::info!(target: "hotconf", files = ?layers.files(), "config loaded, version 1");
        let (snapshots, _) = watch::channel(Arc::clone(&snapshot));
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let first = Record {
            snapshot: Arc::clone(&snapshot),
            trigger: Trigger::Load,
            outcome: Outcome::Loaded,
            changes: Vec::new(),
            pending: Vec::new(),
            effective: Arc::clone(&effective),
        };
        Ok(Reloader {
            inner: Arc::new(Inner {
                sources: self.sources,
                limits: self.limits,
                policy: self.policy,
                #[cfg(feature = "json-schema")]
                schema: self.schema,
                components: self.components,
                component_timeout: self.component_timeout,
                max_hold: self.max_hold,
                history_limit: self.history_limit,
                save_to: self.save_to,
                watch_options: self.watch_options,
                loaded,
                current: Arc::new(ArcSwap::new(snapshot)),
                state: Mutex::new(State {
                    effective,
                    seen: origins.clone(),
                    origins,
                    version: 1,
                    pending: Vec::new(),
                    served: 0,
                    last: None,
                }),
                requests: AtomicU64::new(0),
                gate: Mutex::new(Gate {
                    holds: 0,
                    deferred: None,
                    generation: 0,
                }),
                history: Mutex::new(VecDeque::from([first])),
                snapshots,
                events,
                subscribers: RwLock::new(Vec::new()),
                watching: Mutex::new(None),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_that_waited_during_a_newer_reload_is_answered_by_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.json");
        std::fs::write(&path, r#"{"rpm": 1}"#).unwrap();
        let reloader = Reloader::<serde_json::Value>::builder()
            .file(&path)
            .build()
            .unwrap();
        let mut events = reloader.events();

        // A request arrives and waits for the lock...
        let waiting = reloader.inner.requests.fetch_add(1, Ordering::SeqCst) + 1;
        // ...while a newer reload reads the sources and applies them.
        std::fs::write(&path, r#"{"rpm": 2}"#).unwrap();
        let applied = reloader.reload().unwrap();
        assert_eq!(applied.version, 2);
        assert_eq!(events.try_recv().unwrap().outcome, Outcome::Applied);

        // The waiting request gets that reload's result: no second read, no second event.
        let work = Work::Sources {
            trigger: Trigger::Reload,
            skip_seen: false,
        };
        let answer = reloader.run_ticket(work, waiting).unwrap().unwrap();
        assert_eq!((answer.outcome, answer.version), (Outcome::Applied, 2));
        assert!(
            events.try_recv().is_err(),
            "no event for a coalesced request"
        );
        // A watcher's request that was covered has nothing new to report.
        let work = Work::Sources {
            trigger: Trigger::Watch,
            skip_seen: true,
        };
        assert!(reloader.run_ticket(work, waiting).is_none());

        // A request made after the reload started runs its own.
        let later = reloader.reload().unwrap();
        assert_eq!(later.outcome, Outcome::Unchanged);
        assert_eq!(events.try_recv().unwrap().outcome, Outcome::Unchanged);
    }
}
