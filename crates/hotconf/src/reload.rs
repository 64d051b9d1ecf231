//! The engine: reads the sources, runs the pipeline and swaps the snapshot in, one reload at
//! a time.
//!
//! A reload is: read sources → parse → merge → deserialize → validate → diff → swap →
//! notify. Any failure before the swap leaves the old snapshot active and reports every
//! problem found. Reloads are serialized by one lock that readers never touch: readers only
//! do a pointer load on the [`Handle`].

use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Instant;

use arc_swap::ArcSwap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};

use crate::diff::{Change, diff};
use crate::error::{Error, Problem, ProblemKind, Problems, Result};
use crate::event::{Event, Outcome, Trigger};
use crate::layer::Layers;
use crate::parse::Limits;
use crate::path::Pattern;
use crate::policy::Secrets;
use crate::snapshot::{Handle, Snapshot};
use crate::source::{self, Format, Origin, Source};
use crate::validate::{self, Validate};

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

/// What the reload lock guards: the effective config as plain JSON (to diff the next one
/// against), the document revisions it came from, and the version counter.
struct State {
    effective: serde_json::Value,
    origins: Vec<(Origin, u64)>,
    version: u64,
}

struct Inner<T> {
    sources: Vec<Box<dyn Source>>,
    limits: Limits,
    secrets: Secrets,
    save_to: Option<(PathBuf, Format)>,
    current: Arc<ArcSwap<Snapshot<T>>>,
    state: Mutex<State>,
    snapshots: watch::Sender<Arc<Snapshot<T>>>,
    events: broadcast::Sender<Event>,
    subscribers: RwLock<Vec<Subscriber<T>>>,
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

    /// A receiver of every reload [`Event`] from now on: applied, rejected, unchanged.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
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
        let started = Instant::now();
        let mut state = self.inner.lock_state();
        tracing::debug!(target: "hotconf", trigger = trigger.as_str(), "reload started");
        let layers = match Layers::load(&self.inner.sources, &self.inner.limits) {
            Ok(layers) => layers,
            Err(problems) => {
                return Err(self.reject(&state, trigger, self.source_files(), problems, started));
            }
        };
        let files = layers.files();
        let config = match layers.deserialize::<T>() {
            Ok(config) => config,
            Err(problems) => return Err(self.reject(&state, trigger, files, problems, started)),
        };
        let origins = layers
            .documents()
            .iter()
            .map(|d| (d.origin.clone(), d.revision))
            .collect();
        self.commit(
            &mut state,
            config,
            Some(&layers),
            origins,
            trigger,
            files,
            started,
        )
    }

    /// Replaces the effective config with `config`, through the same validation and diff as a
    /// reload. It stays in effect until the next reload from the sources, which wins; use
    /// [`save`](Self::save) to make it last.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] when `config` fails validation; nothing changes.
    pub fn apply(&self, config: T) -> Result<Event> {
        let started = Instant::now();
        let mut state = self.inner.lock_state();
        let origins = state.origins.clone();
        let files = origins.iter().map(|(o, _)| o.to_string()).collect();
        self.commit(
            &mut state,
            config,
            None,
            origins,
            Trigger::Apply,
            files,
            started,
        )
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
        let _state = self.inner.lock_state();
        let snapshot = self.current();
        crate::save::save(&path, format, snapshot.config())?;
        tracing::info!(target: "hotconf", path = %path.display(), version = snapshot.version(), "config saved");
        Ok(path)
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        state: &mut MutexGuard<'_, State>,
        config: T,
        layers: Option<&Layers>,
        origins: Vec<(Origin, u64)>,
        trigger: Trigger,
        files: Vec<String>,
        started: Instant,
    ) -> Result<Event> {
        let problems = validate::run(&config, layers);
        if problems.has_errors() {
            return Err(self.reject(state, trigger, files, problems, started));
        }
        let json = match serde_json::to_value(&config) {
            Ok(json) => json,
            Err(e) => {
                let problem =
                    Problem::error(ProblemKind::Type, format!("config does not serialize: {e}"));
                return Err(self.reject(state, trigger, files, problem.into(), started));
            }
        };
        let changes = diff(&state.effective, &json);
        let warnings: Vec<Problem> = problems.warnings().cloned().collect();
        state.origins = origins;
        if changes.is_empty() {
            let event = Event::new(Outcome::Unchanged, state.version, trigger, files);
            return Ok(self.finish(event, started));
        }
        state.version += 1;
        state.effective = json;
        let new = Arc::new(Snapshot::new(config, state.version, state.origins.clone()));
        let old = self.inner.current.swap(Arc::clone(&new));
        self.inner.snapshots.send_replace(Arc::clone(&new));

        let mut event = Event::new(Outcome::Applied, state.version, trigger, files);
        event.warnings = warnings;
        event
            .warnings
            .extend(self.notify(&old, &new, &changes, trigger));
        event.changes = changes;
        self.inner.secrets.redact(&mut event.changes);
        Ok(self.finish(event, started))
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
            let interested = subscriber.filter.is_empty()
                || changes.iter().any(|change| {
                    subscriber
                        .filter
                        .iter()
                        .any(|p| p.covers(&change.path) || p.overlaps(&change.path))
                });
            if !interested {
                continue;
            }
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (subscriber.callback)(&update))) {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".into());
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

    fn source_files(&self) -> Vec<String> {
        self.inner
            .sources
            .iter()
            .flat_map(|s| s.files())
            .map(|p| p.display().to_string())
            .collect()
    }
}

impl<T> Inner<T> {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic while reloading cannot leave State half-written: every field is assigned
        // after the last fallible step. So a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Configures and builds a [`Reloader`]. Sources layer in the order they are added.
pub struct ReloaderBuilder<T> {
    sources: Vec<Box<dyn Source>>,
    limits: Limits,
    secrets: Secrets,
    save_to: Option<(PathBuf, Format)>,
    errors: Vec<Error>,
    config: PhantomData<fn() -> T>,
}

impl<T> Default for ReloaderBuilder<T> {
    fn default() -> Self {
        Self {
            sources: Vec::new(),
            limits: Limits::default(),
            secrets: Secrets::new(),
            save_to: None,
            errors: Vec::new(),
            config: PhantomData,
        }
    }
}

impl<T> fmt::Debug for ReloaderBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloaderBuilder")
            .field("sources", &self.sources)
            .field("limits", &self.limits)
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

    /// Marks the values matching `pattern` as secret: they print as `"***"` in events and
    /// logs, on top of the built-in key names (`password`, `token`, …).
    #[must_use]
    pub fn secret(mut self, pattern: &str) -> Self {
        match pattern.parse() {
            Ok(pattern) => self.secrets = std::mem::take(&mut self.secrets).pattern(pattern),
            Err(e) => self.errors.push(e),
        }
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

    /// Loads the config for the first time and returns the reloader, version 1.
    ///
    /// # Errors
    ///
    /// The first option error, or [`Error::Invalid`] with every problem of the first load:
    /// each located at its file, line, column and config path.
    pub fn build(mut self) -> Result<Reloader<T>> {
        if !self.errors.is_empty() {
            return Err(self.errors.remove(0));
        }
        if self.sources.is_empty() {
            return Err(Error::InvalidOption {
                option: "sources",
                reason: "add at least one source (file, dir, defaults, env)".into(),
            });
        }
        let layers = Layers::load(&self.sources, &self.limits)?;
        let config: T = layers.deserialize()?;
        let problems = validate::run(&config, Some(&layers));
        if problems.has_errors() {
            return Err(Error::Invalid(problems));
        }
        for warning in problems.warnings() {
            tracing::warn!(target: "hotconf", %warning, "config warning");
        }
        let effective = serde_json::to_value(&config)
            .map_err(|e| Error::Unsaveable(format!("config does not serialize: {e}")))?;
        let origins: Vec<_> = layers
            .documents()
            .iter()
            .map(|d| (d.origin.clone(), d.revision))
            .collect();
        let snapshot = Arc::new(Snapshot::new(config, 1, origins.clone()));
        tracing::info!(target: "hotconf", files = ?layers.files(), "config loaded, version 1");
        let (snapshots, _) = watch::channel(Arc::clone(&snapshot));
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Ok(Reloader {
            inner: Arc::new(Inner {
                sources: self.sources,
                limits: self.limits,
                secrets: self.secrets,
                save_to: self.save_to,
                current: Arc::new(ArcSwap::new(snapshot)),
                state: Mutex::new(State {
                    effective,
                    origins,
                    version: 1,
                }),
                snapshots,
                events,
                subscribers: RwLock::new(Vec::new()),
            }),
        })
    }
}
