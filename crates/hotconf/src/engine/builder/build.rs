//! [`ReloaderBuilder::build`]: the first load, through the same pipeline and transaction
//! as every reload, then the worker and the pushing sources start.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use arc_swap::ArcSwap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::history::{History, Record};
use crate::engine::observe::Exit;
use crate::engine::pipeline::{self, Effective, Input, Stages};
use crate::engine::status::{Live, SourceStatus};
use crate::engine::validator::Validator;
use crate::engine::worker::Worker;
use crate::engine::{Inner, Reloader, Shared, trigger_handle};
use crate::error::{Error, Problems, Result};
use crate::event::{Event, Outcome, Trigger};
use crate::layer;
use crate::settings;
use crate::snapshot::Snapshot;
use crate::source::Source;
use crate::trigger::{Pusher, SourceHealth};
use crate::validate::Validate;

use super::ReloaderBuilder;

impl<T> ReloaderBuilder<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
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
        #[cfg(feature = "watch")]
        {
            use std::time::Duration;
            let debounce = self.watch_options.debounce;
            if debounce < Duration::from_millis(10) || debounce > Duration::from_secs(60) {
                return Err(Error::InvalidOption {
                    option: "debounce",
                    reason: format!("{} ms is outside 10 ms ..= 60 s", debounce.as_millis()),
                });
            }
        }
        if self.history_limit == 0 {
            return Err(Error::InvalidOption {
                option: "history",
                reason: "keep at least one snapshot".into(),
            });
        }
        Ok(())
    }

    /// Loads the config for the first time and returns the reloader, version 1: the
    /// sources are read and run through the same pipeline as every reload, the components
    /// prepare and commit and the resources build, then the worker starts and pushing
    /// sources are started.
    ///
    /// # Errors
    ///
    /// The first option error, or [`Error::Invalid`] with every problem of the first load:
    /// each located at its file, line, column and config path.
    pub fn build(mut self) -> Result<Reloader<T>> {
        self.check_options()?;
        let started = Instant::now();
        self.parts.set_timeout(self.timeout);
        self.parts.resolve()?;
        let schema = self.schema.map(Arc::new);
        let validator = Validator::start(schema.clone(), self.timeout).map_err(Error::Thread)?;
        let parsed = layer::ParseCache::default();
        let mut read = layer::read(&self.sources, &self.limits)
            .and_then(|documents| {
                layer::with_extras(
                    documents,
                    self.settings_table.as_deref(),
                    &self.limits,
                    Some(&parsed),
                )
            })
            .map_err(|mut problems| {
                for problem in &mut problems.0 {
                    self.policy.secrets().redact_problem(problem);
                }
                Error::Invalid(problems)
            })?;
        let stages = Stages {
            limits: &self.limits,
            policy: &self.policy,
            schema: schema.as_ref(),
            validator: Some(&validator),
            fingerprint: self.fingerprint.as_ref(),
            settings: self.settings_table.as_deref(),
            parsed: Some(&parsed),
        };
        let extra_files = std::mem::take(&mut read.extras);
        let documents = read.documents.clone();
        let attempt = pipeline::run(&stages, None, Input::from(read));
        let planned = attempt.result.map_err(Error::Invalid)?;
        let file_settings = attempt.settings.unwrap_or_default();
        let effective_settings = settings::resolve(&self.settings_base, &file_settings);
        let (file_enabled, debounce_ms) = (
            effective_settings.enabled.value,
            effective_settings.debounce_ms.value,
        );
        if file_settings != settings::FileSettings::default() {
            tracing::info!(target: "hotconf", enabled = file_enabled, debounce_ms, file = effective_settings.file.as_deref().unwrap_or("-"), "reloader settings read from the config");
        }
        let snapshot = Arc::new(Snapshot::new(planned.config, 1, attempt.origins.clone()));
        let mut prepared = self
            .parts
            .prepare(None, &snapshot, &Arc::from([]))
            .map_err(|failed| {
                let problems = Problems::from(*failed.problem);
                if failed.failures.is_empty() {
                    Error::Invalid(problems)
                } else {
                    Error::RollbackFailed {
                        problems,
                        failures: failed.failures,
                    }
                }
            })?;
        prepared.publish(&snapshot);
        let mut loaded = Event::new(Outcome::Loaded, 1, Trigger::Load, attempt.files);
        let hash = planned.hash;
        loaded.hash = hash;
        // Nothing was live before the first load.
        loaded.version_before = 0;
        loaded.revisions = attempt.origins.iter().map(|(_, r)| *r).collect();
        loaded.warnings = planned.warnings;
        loaded.warnings.extend(prepared.commit());
        let effective = Arc::new(Effective::applied(planned.tree, &snapshot));
        let mut history = History::new(self.history_limit);
        // The first record: nothing falls out.
        let _ = history.push(Record {
            snapshot: Arc::clone(&snapshot),
            trigger: Trigger::Load,
            outcome: Outcome::Loaded,
            changes: Vec::new(),
            pending: Vec::new(),
            effective: Arc::clone(&effective),
        });
        let exit = Exit::new(Arc::clone(&snapshot), self.observers, self.attempts_limit);
        loaded.elapsed = started.elapsed();
        let loaded = exit.emit(loaded, None);
        let sources = self
            .sources
            .iter()
            .map(|source| {
                let files: Vec<String> = source
                    .files()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                SourceStatus {
                    name: if files.is_empty() {
                        format!("{source:?}")
                    } else {
                        files.join(", ")
                    },
                    health: SourceHealth::Connected,
                    revision: None,
                }
            })
            .collect();
        let save_to = self
            .save_to
            .or_else(|| self.sources.iter().rev().find_map(|s| s.save_target()));
        let shared = Arc::new(Shared {
            current: Arc::new(ArcSwap::new(snapshot)),
            effective: ArcSwap::new(effective),
            lock: Mutex::new(()),
            history: Mutex::new(history),
            live: Mutex::new(Live {
                pending: Vec::new(),
                deferred_since: None,
                sources,
                local_override: None,
                watcher: None,
            }),
            holds: AtomicUsize::new(0),
            pushed: Mutex::new(vec![None; self.sources.len()]),
            parsed,
            exit,
            sources: self.sources,
            limits: self.limits,
            policy: self.policy,
            schema,
            validator,
            parts: self.parts,
            max_hold: self.max_hold,
            save_to,
            #[cfg(feature = "watch")]
            watch_options: self.watch_options,
            loaded,
            worker: OnceLock::new(),
            name: self.name,
            hash: AtomicU64::new(hash),
            enabled: AtomicBool::new(true),
            fingerprint: self.fingerprint,
            intent: self.intent,
            settings_table: self.settings_table,
            settings_base: self.settings_base,
            settings: Mutex::new((file_settings, effective_settings)),
            file_enabled: AtomicBool::new(file_enabled),
            debounce_ms: Arc::new(AtomicU64::new(debounce_ms)),
            extra_files: Mutex::new(extra_files),
            #[cfg(feature = "watch")]
            retarget: Mutex::new(None),
        });
        let (requests, inbox) = mpsc::channel();
        let worker = Worker::new(Arc::clone(&shared), inbox, attempt.origins);
        // A stack the parsers can use as it is: no hop to a parser thread per document.
        let stack = crate::format::parser_stack(&self.limits);
        let mut thread = std::thread::Builder::new().name("hotconf-reload".into());
        if let Some(stack) = stack {
            thread = thread.stack_size(stack);
        }
        let thread = thread
            .spawn(move || {
                if let Some(stack) = stack {
                    crate::format::spawned_with(stack);
                }
                worker.run();
            })
            .map_err(Error::Thread)?;
        let _ = shared.worker.set(thread.thread().id());
        let reloader = Reloader {
            inner: Arc::new(Inner {
                shared: Arc::clone(&shared),
                requests: requests.clone(),
                worker: Mutex::new(Some(thread)),
                #[cfg(feature = "watch")]
                watching: Mutex::new(None),
            }),
        };
        // Before any source starts: nothing can reach the worker yet, so no later
        // acceptance can overtake this one.
        shared.accepted(&documents);
        let handle = trigger_handle(&requests);
        for (index, source) in shared.sources.iter().enumerate() {
            source
                .start(Pusher::new(handle.clone(), index))
                .map_err(|problem| Error::Invalid(problem.into()))?;
        }
        Ok(reloader)
    }
}
