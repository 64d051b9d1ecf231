//! What the [`Reloader`](super::Reloader) façade, the worker and the pipeline share: the
//! live snapshot, the effective config, the reload lock, the sources and every setting the
//! builder fixed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::history::History;
use super::intent::Intent;
use super::lock;
use super::observe::Exit;
use super::pipeline::{Effective, Stages};
use super::status::Live;
use super::transaction::Parts;
use super::validator::{Schema, Validator};
use crate::document::Limits;
use crate::event::Event;
use crate::policy::{Fingerprint, Policy};
use crate::settings::{self, FileSettings, Settings};
use crate::snapshot::Snapshot;
use crate::source::{Document, Format, Source};
#[cfg(feature = "watch")]
use crate::watch::WatchOptions;

/// What the façade, the worker and the pipeline share.
pub(crate) struct Shared<T> {
    pub(super) current: Arc<ArcSwap<Snapshot<T>>>,
    /// The effective config: what the next attempt is diffed against.
    pub(super) effective: ArcSwap<Effective>,
    /// The reload lock: held by the worker for one attempt, never while events go out.
    pub(super) lock: Mutex<()>,
    pub(super) history: Mutex<History<T>>,
    pub(super) live: Mutex<Live>,
    pub(super) holds: AtomicUsize,
    /// The last documents each pushing source pushed; `None` for sources that are read.
    pub(super) pushed: Mutex<Vec<Option<Vec<Document>>>>,
    /// The trees of the last attempt's documents: a reload parses only what changed.
    pub(super) parsed: crate::layer::ParseCache,
    pub(super) exit: Exit<T>,
    pub(super) sources: Vec<Box<dyn Source>>,
    pub(super) limits: Limits,
    pub(super) policy: Policy,
    pub(super) schema: Option<Arc<Schema>>,
    pub(super) validator: Validator<T>,
    pub(super) parts: Parts<T>,
    pub(super) max_hold: Duration,
    pub(super) save_to: Option<(PathBuf, Format)>,
    #[cfg(feature = "watch")]
    pub(super) watch_options: WatchOptions,
    pub(super) loaded: Event,
    pub(super) worker: OnceLock<ThreadId>,
    /// The config's name: the `config` label of its metrics.
    pub(super) name: String,
    /// The hash of the effective config (see [`Event::hash`]).
    pub(super) hash: AtomicU64,
    /// Whether the watcher's reloads run.
    pub(super) enabled: AtomicBool,
    pub(super) fingerprint: Option<Fingerprint>,
    pub(super) intent: Option<Arc<dyn Intent>>,
    /// The name of the settings table; `None` when the config keeps that key.
    pub(super) settings_table: Option<String>,
    /// What the builder set, weighed against the file's settings.
    pub(super) settings_base: settings::Base,
    /// What the settings table of the last successful attempt says, and the effective
    /// settings it gives.
    pub(super) settings: Mutex<(FileSettings, Settings)>,
    /// Whether the settings table lets the watcher reload (the runtime flag is `enabled`).
    pub(super) file_enabled: AtomicBool,
    /// The effective debounce in milliseconds: the watcher reads it when a window opens.
    pub(super) debounce_ms: Arc<AtomicU64>,
    /// The files the settings table's `watch_paths` layered in the last successful attempt.
    pub(super) extra_files: Mutex<Vec<PathBuf>>,
    /// Tells the running watcher what to watch now.
    #[cfg(feature = "watch")]
    pub(super) retarget: Mutex<Option<crate::watch::Retarget>>,
}

impl<T> Shared<T> {
    pub(super) fn stages(&self) -> Stages<'_, T> {
        Stages {
            limits: &self.limits,
            policy: &self.policy,
            schema: self.schema.as_ref(),
            validator: Some(&self.validator),
            fingerprint: self.fingerprint.as_ref(),
            settings: self.settings_table.as_deref(),
            parsed: Some(&self.parsed),
        }
    }

    /// Puts the settings a successful attempt read into effect, logging what changed.
    pub(super) fn apply_settings(&self, file: FileSettings) {
        let new = settings::resolve(&self.settings_base, &file);
        let mut current = lock(&self.settings);
        let old = &current.1;
        if old.enabled != new.enabled {
            tracing::info!(target: "hotconf", old = old.enabled.value, new = new.enabled.value, from = %new.enabled.from, file = new.file.as_deref().unwrap_or("-"), "reloader setting enabled: {} → {}", old.enabled.value, new.enabled.value);
        }
        if old.debounce_ms != new.debounce_ms {
            tracing::info!(target: "hotconf", old = old.debounce_ms.value, new = new.debounce_ms.value, from = %new.debounce_ms.from, file = new.file.as_deref().unwrap_or("-"), "reloader setting debounce_ms: {} → {}", old.debounce_ms.value, new.debounce_ms.value);
        }
        self.debounce_ms
            .store(new.debounce_ms.value, Ordering::SeqCst);
        self.file_enabled.store(new.enabled.value, Ordering::SeqCst);
        *current = (file, new);
    }

    /// Reads the one document `origin` (the settings table's file), without the others; a
    /// pushing source's last push stands for its read. `None` when no source has it now.
    pub(super) fn read_one(
        &self,
        origin: &crate::source::Origin,
    ) -> Option<std::result::Result<Document, crate::error::Problems>> {
        let pushed = lock(&self.pushed);
        let path = origin.path();
        for (source, pushed) in self.sources.iter().zip(pushed.iter()) {
            let documents = match pushed {
                Some(docs) => docs.clone(),
                None if path.is_some_and(|p| source.files().iter().any(|f| f == p)) => {
                    match source.read(&self.limits) {
                        Ok(docs) => docs,
                        Err(problem) => return Some(Err(problem.into())),
                    }
                }
                None => continue,
            };
            if let Some(document) = documents.into_iter().find(|d| &d.origin == origin) {
                return Some(Ok(document));
            }
        }
        None
    }

    /// Reads the sources; a pushing source's last push stands for its read.
    pub(super) fn read(&self) -> std::result::Result<Vec<Document>, crate::error::Problems> {
        let pushed = lock(&self.pushed);
        let mut documents = Vec::new();
        let mut problems = Vec::new();
        for (source, pushed) in self.sources.iter().zip(pushed.iter()) {
            match pushed {
                Some(docs) => documents.extend(docs.iter().cloned()),
                None => match source.read(&self.limits) {
                    Ok(docs) => documents.extend(docs),
                    Err(problem) => problems.push(problem),
                },
            }
        }
        if problems.is_empty() {
            Ok(documents)
        } else {
            Err(crate::error::Problems(problems))
        }
    }

    /// Tells every source which documents the reloader now runs (see
    /// [`Source::accepted`]). The config is already in effect: a source that panics here
    /// is logged, and neither turns the outcome into a rejection nor keeps the other
    /// sources from hearing it.
    pub(super) fn accepted(&self, documents: &[Document]) {
        for source in &self.sources {
            let call = std::panic::AssertUnwindSafe(|| source.accepted(documents));
            if let Err(panic) = std::panic::catch_unwind(call) {
                let message = crate::component::panic_message(panic.as_ref());
                tracing::error!(target: "hotconf", source = ?source, %message, "a source panicked in accepted()");
            }
        }
    }

    /// Reads the sources, then the files their settings table lists in `watch_paths`,
    /// each right after the file holding the table: the documents, and the extra files.
    pub(super) fn read_all(
        &self,
    ) -> std::result::Result<crate::layer::Read, crate::error::Problems> {
        crate::layer::with_extras(
            self.read()?,
            self.settings_table.as_deref(),
            &self.limits,
            Some(&self.parsed),
        )
    }

    /// What the watcher watches: every source's targets and the extra files.
    #[cfg(feature = "watch")]
    pub(super) fn watch_targets(&self) -> Vec<crate::source::WatchTarget> {
        self.sources
            .iter()
            .flat_map(|source| source.watch_targets())
            .chain(
                lock(&self.extra_files)
                    .iter()
                    .cloned()
                    .map(crate::source::WatchTarget::File),
            )
            .collect()
    }

    /// Records the extra files a successful attempt layered; a running watcher watches
    /// them from now on.
    pub(super) fn set_extra_files(&self, extras: Vec<PathBuf>) {
        let mut current = lock(&self.extra_files);
        if *current == extras {
            return;
        }
        tracing::info!(target: "hotconf", old = ?*current, new = ?extras, "extra config files from the settings' watch_paths");
        *current = extras;
        drop(current);
        #[cfg(feature = "watch")]
        if let Some(retarget) = lock(&self.retarget).as_ref() {
            retarget(self.watch_targets());
        }
    }

    pub(super) fn source_files(&self) -> Vec<String> {
        self.sources
            .iter()
            .flat_map(|s| s.files())
            .map(|p| p.display().to_string())
            .collect()
    }

    pub(super) fn on_worker(&self) -> bool {
        self.worker.get() == Some(&std::thread::current().id())
    }
}
