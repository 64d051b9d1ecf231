//! The engine: the [`Reloader`] façade over one reload worker.
//!
//! - [`pipeline`]: the one function every path calls (first load, plan, reload, CLI).
//! - [`worker`]: the one thread that owns the pipeline and the transaction; every trigger
//!   is a request to it.
//! - [`gate`]: the pure hold state machine.
//! - [`transaction`]: components prepare, resources build, swap, commit.
//! - [`history`]: the applied versions kept for rollback.
//! - [`observe`]: the one exit every event leaves through.
//! - [`validator`]: validation under a timeout.
//! - [`status`]: what the engine knows at a glance; [`inspect`]: the methods that read it.
//! - [`intent`]: the record written before the swap (the audit log's fail-closed mode).
//! - [`control`]: the [`Control`] handle, not generic over the config, for admin servers.

mod builder;
mod control;
mod gate;
mod history;
mod inspect;
mod intent;
mod observe;
pub(crate) mod pipeline;
mod replay;
mod shared;
mod status;
mod transaction;
mod validator;
#[cfg(feature = "watch")]
mod watching;
mod worker;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use builder::ReloaderBuilder;
pub use control::{ConfigView, Control};
pub use history::Record;
pub use intent::{Intent, IntentRecord};
pub use observe::{Observer, ObserverHealth, Update};
pub use status::{LocalOverride, SourceStatus, Status};

use crate::error::{Error, Result};
use crate::event::{Event, Outcome, Trigger};
use crate::path::Pattern;
use crate::plan::Plan;
use crate::snapshot::{Handle, Snapshot};
use crate::trigger::{self, Answer, Mode, TriggerHandle};
use crate::validate::Validate;
#[cfg(feature = "watch")]
use crate::watch::Watching;
use observe::Subscriber;
use pipeline::Input;
use worker::{ConfigChange, Request};

pub(crate) use shared::Shared;

pub(crate) fn lock<S>(mutex: &Mutex<S>) -> MutexGuard<'_, S> {
    // Every lock here guards data that is assigned whole, after the last fallible step: a
    // panic while holding it cannot leave it half-written, so a poisoned lock is consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The owner of the worker: the last [`Reloader`] clone to go stops it.
struct Inner<T> {
    shared: Arc<Shared<T>>,
    requests: Sender<Request<T>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    #[cfg(feature = "watch")]
    watching: Mutex<Option<Watching>>,
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        shutdown(
            &self.shared,
            &self.requests,
            &self.worker,
            #[cfg(feature = "watch")]
            &self.watching,
        );
    }
}

fn shutdown<T>(
    shared: &Shared<T>,
    requests: &Sender<Request<T>>,
    worker: &Mutex<Option<JoinHandle<()>>>,
    #[cfg(feature = "watch")] watching: &Mutex<Option<Watching>>,
) {
    // The watcher first, so that no new batch arrives; dropped outside the lock.
    #[cfg(feature = "watch")]
    {
        let watcher = lock(watching).take();
        drop(watcher);
    }
    let _ = requests.send(Request::Shutdown);
    let thread = lock(worker).take();
    if let Some(thread) = thread
        && !shared.on_worker()
    {
        // The worker finishes the work in progress and sends its event before it stops.
        let _ = thread.join();
    }
}

/// Owns a config's sources and its live snapshot; its worker thread runs every reload.
///
/// Cheap to clone: clones share the same config and worker. Dropping the last clone (or
/// [`shutdown`](Self::shutdown)) stops the watcher and the worker. See the
/// [crate docs](crate) for a tour.
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
            .field("sources", &self.inner.shared.sources)
            .field("version", &self.inner.shared.current.load().version())
            .finish_non_exhaustive()
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
        Handle::new(Arc::clone(&self.inner.shared.current))
    }

    /// The current snapshot (shorthand for `handle().load_full()`).
    pub fn current(&self) -> Arc<Snapshot<T>> {
        self.inner.shared.current.load_full()
    }

    /// For async code: a tokio `watch` receiver that always holds the latest snapshot;
    /// await `changed()`, or poll `has_changed()`. No runtime is needed to create or poll
    /// it. Needs the `tokio` feature.
    #[cfg(feature = "tokio")]
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<Snapshot<T>>> {
        self.inner.shared.exit.snapshots()
    }

    /// For async code and dashboards: a tokio broadcast receiver of every [`Event`] from
    /// now on. A receiver that falls more than 64 events behind is told how many it lost;
    /// use an [`Observer`] where nothing may be lost. Needs the `tokio` feature.
    #[cfg(feature = "tokio")]
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.inner.shared.exit.events()
    }

    /// The event of the first load (`loaded`, version 1), as `hotconf watch` prints it.
    pub fn loaded_event(&self) -> Event {
        self.inner.shared.loaded.clone()
    }

    /// Registers a callback run after every applied reload, in registration order: for
    /// code that must react to a new config (rebuild a client, log the diff).
    ///
    /// Callbacks run on the reload worker after the reload lock is released, before the
    /// observers: they may call any method of the reloader (one that would wait for the
    /// worker queues its request and returns an [`Outcome::Queued`] event instead). A panic
    /// in a callback is caught and reported as a warning of the event; the other callbacks
    /// still run and the new config stays applied. A slow callback delays the next reload,
    /// never a reader.
    pub fn on_change<F>(&self, callback: F)
    where
        F: Fn(&Update<'_, T>) + Send + Sync + 'static,
    {
        self.inner.shared.exit.subscribe(Subscriber {
            filter: Vec::new(),
            callback: Box::new(callback),
        });
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
        self.inner.shared.exit.subscribe(Subscriber {
            filter,
            callback: Box::new(callback),
        });
        Ok(())
    }

    /// Adds an [`Observer`] from now on; to see the first load too, add it with
    /// [`ReloaderBuilder::observer`].
    pub fn observe(&self, observer: impl Observer) {
        self.inner.shared.exit.observe(Arc::new(observer));
    }

    /// The seam through which anything asks for a reload without waiting for it.
    pub fn trigger_handle(&self) -> TriggerHandle {
        trigger_handle(&self.inner.requests)
    }

    /// Re-reads every source and applies the result if it is valid and differs.
    ///
    /// The reload runs on the worker; this waits for it. Calls made while another reload
    /// runs are served together by the next one, and each gets its result.
    ///
    /// When every document has the bytes of the last attempt, and that attempt was not
    /// rejected and the config has not been changed by other means since, the outcome is
    /// known: the event repeats it (`unchanged`, or `restart_required` with the changes
    /// still held back) without parsing or validating again, so such a reload costs one
    /// read of each file. A rejected attempt, or a config changed by [`apply`](Self::apply),
    /// [`update`](Self::update) or a rollback, always runs the whole pipeline.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] with every problem found when the new config is rejected; the old
    /// snapshot stays active. The rejection is also sent out as an event.
    pub fn reload(&self) -> Result<Event> {
        self.reload_with(Trigger::Reload)
    }

    /// [`reload`](Self::reload), recording what triggered it (a signal, an API call).
    ///
    /// # Errors
    ///
    /// As [`reload`](Self::reload).
    pub fn reload_with(&self, trigger: Trigger) -> Result<Event> {
        self.reload_by(trigger, None)
    }

    fn reload_by(&self, trigger: Trigger, by: Option<String>) -> Result<Event> {
        self.ask(trigger, |reply| {
            let mut request = trigger::Request::reload(trigger, Mode::Always, Some(reply));
            request.by = by;
            Request::Sources(request)
        })
    }

    /// [`reload`](Self::reload), re-reading every file even where a source would skip it
    /// as unchanged: a [`Dir`](crate::source::Dir) otherwise reads only the files whose
    /// inode, size or times changed (see
    /// [`Source::invalidate`](crate::source::Source::invalidate)). For when something may
    /// have changed a file behind the stamps' back (a filesystem that lies about times, a
    /// restored backup with its times forced). A reload triggered by a signal
    /// ([`Trigger::Signal`], `SIGHUP` in `hotconf watch`) is always a full one.
    ///
    /// ```
    /// use hotconf::{Reloader, source::Dir};
    ///
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join("app.toml"), "rpm = 60\n")?;
    /// let source = Dir::new(dir.path());
    /// let reloader = Reloader::<serde_json::Value>::builder()
    ///     .source(source.clone())
    ///     .build()?;
    /// assert_eq!(source.files_read(), 1);
    /// reloader.reload_full()?;
    /// assert_eq!(source.files_read(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`reload`](Self::reload).
    pub fn reload_full(&self) -> Result<Event> {
        self.reload_full_with(Trigger::Reload)
    }

    /// [`reload_full`](Self::reload_full), recording what triggered it.
    ///
    /// # Errors
    ///
    /// As [`reload`](Self::reload).
    pub fn reload_full_with(&self, trigger: Trigger) -> Result<Event> {
        self.ask(trigger, |reply| {
            let mut request = trigger::Request::reload(trigger, Mode::Always, Some(reply));
            request.full = true;
            Request::Sources(request)
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
        self.change(ConfigChange::Replace(config), Trigger::Apply, None)
    }

    /// Applies a change made by `edit` to a copy of the config live when the worker gets
    /// to it (seed-style `update_config(|c| c.port = 9090)`): concurrent updates are
    /// applied one after another, none lost.
    ///
    /// # Errors
    ///
    /// As [`apply`](Self::apply).
    pub fn update(&self, edit: impl FnOnce(&mut T) + Send + 'static) -> Result<Event>
    where
        T: Clone,
    {
        let edit = move |live: &T| {
            let mut config = live.clone();
            edit(&mut config);
            config
        };
        self.change(ConfigChange::Edit(Box::new(edit)), Trigger::Apply, None)
    }

    /// Applies the config of an earlier version again, through the same transaction (policy,
    /// validation, components). It becomes a new version: versions never go back.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownVersion`] when `version` is not in the [`history`](Self::history);
    /// otherwise as [`apply`](Self::apply).
    pub fn rollback_to(&self, version: u64) -> Result<Event> {
        self.change(ConfigChange::Rollback(version), Trigger::Rollback, None)
    }

    fn change(
        &self,
        change: ConfigChange<T>,
        trigger: Trigger,
        by: Option<String>,
    ) -> Result<Event> {
        self.ask(trigger, |reply| Request::Config {
            change,
            trigger,
            by,
            reply: Some(reply),
        })
    }

    /// Sends a request to the worker and waits for its answer; on the worker itself,
    /// queues it and answers [`Outcome::Queued`].
    fn ask(
        &self,
        trigger: Trigger,
        request: impl FnOnce(trigger::Reply) -> Request<T>,
    ) -> Result<Event> {
        let shared = &self.inner.shared;
        if shared.on_worker() {
            let request = request(Box::new(|_| {}));
            self.inner
                .requests
                .send(request)
                .map_err(|_| Error::Stopped)?;
            let version = shared.current.load().version();
            return Ok(Event::new(
                Outcome::Queued,
                version,
                trigger,
                shared.source_files(),
            ));
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let reply: trigger::Reply = Box::new(move |answer| {
            let _ = tx.send(answer);
        });
        self.inner
            .requests
            .send(request(reply))
            .map_err(|_| Error::Stopped)?;
        match rx.recv().map_err(|_| Error::Stopped)? {
            Answer::Done(Some(Ok(event))) => Ok(event),
            Answer::Done(Some(Err(rejection))) => Err(rejection.into_error()),
            // Only a watcher's request can be skipped or left unsettled.
            Answer::Done(None) | Answer::Unsettled => {
                let version = shared.current.load().version();
                Ok(Event::new(
                    Outcome::Unchanged,
                    version,
                    trigger,
                    shared.source_files(),
                ))
            }
        }
    }

    /// Defers reloads until the returned guard, and every other hold, is dropped: for
    /// critical work that must not see the config change under it (a migration, a batch).
    ///
    /// While held, reloads are not lost: reloads of the sources coalesce, programmatic
    /// changes keep their order, each is reported as `deferred`, and all run on the worker
    /// when the last hold is released. A hold kept longer than
    /// [`ReloaderBuilder::max_hold`] is reported again as still deferred, each time that
    /// period passes.
    pub fn hold(&self) -> Hold<T> {
        self.inner.shared.holds.fetch_add(1, Ordering::SeqCst);
        // Sent in order with every request: one made after this returns is deferred.
        let _ = self.inner.requests.send(Request::Hold);
        Hold {
            requests: self.inner.requests.clone(),
            shared: Arc::clone(&self.inner.shared),
        }
    }

    /// What a reload of the sources as they are now would do, without doing it: the
    /// changes and their rules, the pending restarts, the components that would prepare
    /// (they are not called), and the errors that would reject it. Runs on the calling
    /// thread, through the same pipeline as a reload.
    pub fn plan(&self) -> Plan {
        let shared = &self.inner.shared;
        let read = match shared.read_all() {
            Ok(read) => read,
            Err(mut problems) => {
                for problem in &mut problems.0 {
                    shared.policy.secrets().redact_problem(problem);
                }
                return Plan {
                    outcome: Outcome::Rejected,
                    files: shared.source_files(),
                    changes: Vec::new(),
                    pending: Vec::new(),
                    components: Vec::new(),
                    errors: problems.0,
                    warnings: Vec::new(),
                };
            }
        };
        let base = shared.effective.load_full();
        let attempt = pipeline::run(&shared.stages(), Some(&*base), Input::from(read));
        let components = match &attempt.result {
            Ok(planned) => shared.parts.interested(&planned.changes, false),
            Err(_) => Vec::new(),
        };
        attempt.to_plan(components)
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
        let shared = &self.inner.shared;
        let (path, format) = shared
            .save_to
            .clone()
            .ok_or_else(|| Error::Unsaveable("no file source to save to".into()))?;
        // Hold the reload lock so the file gets the config that is active when it lands.
        let _lock = lock(&shared.lock);
        let snapshot = self.current();
        crate::save::save(
            &path,
            format,
            snapshot.config(),
            shared.settings_table.as_deref(),
        )?;
        tracing::info!(target: "hotconf", path = %path.display(), version = snapshot.version(), "config saved");
        Ok(path)
    }

    /// Stops the watcher and the worker now, after the reload in progress (its event still
    /// goes out). Later calls that need the worker fail with [`Error::Stopped`]; readers
    /// keep the last snapshot. Dropping the last clone does the same.
    pub fn shutdown(&self) {
        shutdown(
            &self.inner.shared,
            &self.inner.requests,
            &self.inner.worker,
            #[cfg(feature = "watch")]
            &self.inner.watching,
        );
    }

    /// For the watcher's unit tests.
    #[cfg(all(test, feature = "watch", feature = "tokio", feature = "toml"))]
    pub(crate) fn watching(&self) -> &Mutex<Option<Watching>> {
        &self.inner.watching
    }
}

fn trigger_handle<T: Send + 'static>(requests: &Sender<Request<T>>) -> TriggerHandle {
    let requests = Mutex::new(requests.clone());
    TriggerHandle::new(Arc::new(move |request| {
        lock(&requests).send(Request::Sources(request)).is_ok()
    }))
}

/// A guard from [`Reloader::hold`]: reloads wait while any is alive.
#[must_use = "reloads are deferred only while the hold is kept"]
pub struct Hold<T> {
    requests: Sender<Request<T>>,
    shared: Arc<Shared<T>>,
}

impl<T> Drop for Hold<T> {
    fn drop(&mut self) {
        self.shared.holds.fetch_sub(1, Ordering::SeqCst);
        // The worker runs what waited; nothing to do if it is gone.
        let _ = self.requests.send(Request::Release);
    }
}

impl<T> fmt::Debug for Hold<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hold").finish_non_exhaustive()
    }
}
