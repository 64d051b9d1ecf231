//! The one reload worker: a thread that owns the pipeline and the transaction. Every
//! trigger is a [`Request`] on its channel; it serves them one at a time, in order, and
//! sends every outcome out through the [exit](super::observe), after releasing the lock.
//!
//! Reloads of the sources coalesce: requests waiting in the queue behind one another are
//! served by one reload. Each programmatic change (`apply`, `update`, rollback) is served
//! on its own, in order. While a hold is in place, work waits in the [gate](super::gate).
//!
//! Beside it: `work` (what the gate defers), `transact` (applying a planned config) and
//! `paused` (a watcher reload while the settings table pauses reloading).

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Instant, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::gate::{Admit, Coalesce, Gate};
use super::observe::Applied;
use super::pipeline::{self, Input};
use super::replay::Clean;
use super::status::LocalOverride;
use super::{Shared, lock};
use crate::component::panic_message;
use crate::error::{Problem, ProblemKind, Problems};
use crate::event::{Event, FileChange, Outcome, Trigger};
use crate::source::{Document, Origin};
use crate::trigger::{self, Answer, Mode, Rejection, Reply};
use crate::validate::Validate;
use leftovers::Leftovers;
use work::Work;

mod leftovers;
mod paused;
#[cfg(all(test, feature = "json"))]
mod tests;
mod transact;
mod work;

/// A programmatic change of the config.
pub(crate) enum ConfigChange<T> {
    /// [`Reloader::apply`](crate::Reloader::apply).
    Replace(T),
    /// [`Reloader::update`](crate::Reloader::update): the edit runs on the worker, on the
    /// config live when its turn comes, so concurrent updates are not lost.
    Edit(Box<dyn FnOnce(&T) -> T + Send>),
    /// [`Reloader::rollback_to`](crate::Reloader::rollback_to).
    Rollback(u64),
    /// A whole config submitted as a document (the admin API's `PUT /config`), made
    /// against the live version and hash in `if_match` when given.
    Put {
        document: Document,
        if_match: Option<(u64, u64)>,
    },
}

/// What the worker is asked to do.
pub(crate) enum Request<T> {
    /// A reload of the sources, or a push, from the trigger seam.
    Sources(trigger::Request),
    /// A programmatic change.
    Config {
        change: ConfigChange<T>,
        trigger: Trigger,
        by: Option<String>,
        reply: Option<Reply>,
    },
    /// A [`Hold`](crate::Hold) was taken.
    Hold,
    /// A hold was released.
    Release,
    /// The last reloader is gone: finish the work in progress and stop.
    Shutdown,
}

/// The outcome of one attempt, before it goes out.
struct Finished<T> {
    /// The `detected` event that announces the attempt, when documents changed.
    detected: Option<Event>,
    event: Option<Event>,
    applied: Option<Applied<T>>,
    answer: AnswerKind,
}

enum AnswerKind {
    Event,
    Rejected(Rejection),
    Unsettled,
}

/// The worker's own state: only this thread touches it.
pub(crate) struct Worker<T> {
    shared: Arc<Shared<T>>,
    inbox: Receiver<Request<T>>,
    backlog: VecDeque<Request<T>>,
    gate: Gate<Work<T>>,
    /// The documents the effective config came from.
    origins: Vec<(Origin, u64)>,
    /// The documents of the last attempt, applied or not: bytes already seen are skipped.
    seen: Vec<(Origin, u64)>,
    /// While the settings table pauses the watcher: the revision of the table's file when
    /// its table was last read on its own. `None` until then (its revision in `seen`).
    settings_seen: Option<u64>,
    /// The last attempt on the sources, when it was not rejected and the effective config
    /// has not moved since: an explicit reload of the same bytes repeats its outcome.
    clean: Option<Clean>,
    /// What the last attempt is done with, settled once its callers have their answer.
    leftovers: Leftovers<T>,
}

impl<T> Worker<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    pub(crate) fn new(
        shared: Arc<Shared<T>>,
        inbox: Receiver<Request<T>>,
        origins: Vec<(Origin, u64)>,
    ) -> Self {
        let max_hold = shared.max_hold;
        Self {
            shared,
            inbox,
            backlog: VecDeque::new(),
            gate: Gate::new(max_hold),
            seen: origins.clone(),
            origins,
            settings_seen: None,
            clean: None,
            leftovers: Leftovers::default(),
        }
    }

    /// Serves requests until shutdown.
    pub(crate) fn run(mut self) {
        loop {
            let request = match self.next() {
                Ok(request) => request,
                Err(RecvTimeoutError::Timeout) => {
                    self.report_deferral();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            match request {
                Request::Shutdown => break,
                Request::Hold => {
                    self.gate.hold();
                    self.publish_gate();
                }
                Request::Release => {
                    let released = self.gate.release();
                    self.publish_gate();
                    for work in released {
                        self.run_work(work);
                    }
                }
                Request::Sources(request) => {
                    if let Some(work) = self.sources_work(request) {
                        let work = self.coalesce(work);
                        self.offer(work);
                    }
                }
                Request::Config {
                    change,
                    trigger,
                    by,
                    reply,
                } => self.offer(Work::Config {
                    change,
                    trigger,
                    by,
                    reply,
                }),
            }
        }
        tracing::debug!(target: "hotconf", "reload worker stopped");
    }

    /// The next request, waking for the gate's deadline if one is set.
    fn next(&mut self) -> Result<Request<T>, RecvTimeoutError> {
        if let Some(request) = self.backlog.pop_front() {
            return Ok(request);
        }
        match self.gate.deadline() {
            None => self
                .inbox
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
            Some(deadline) => self
                .inbox
                .recv_timeout(deadline.saturating_duration_since(Instant::now())),
        }
    }

    /// Records a push, a health report or the watcher's state; returns the reload to run,
    /// if any.
    fn sources_work(&mut self, request: trigger::Request) -> Option<Work<T>> {
        if let Some(state) = request.watcher {
            lock(&self.shared.live).watcher = Some(state.clone());
            self.shared.exit.watcher(&state);
            return None;
        }
        if let Some((source, health)) = request.health {
            let mut live = lock(&self.shared.live);
            if let Some(status) = live.sources.get_mut(source) {
                status.health = health;
            }
            return None;
        }
        if let Some((source, documents, revision)) = request.push {
            let mut pushed = lock(&self.shared.pushed);
            if let Some(slot) = pushed.get_mut(source) {
                *slot = Some(documents);
            }
            drop(pushed);
            let mut live = lock(&self.shared.live);
            if let Some(status) = live.sources.get_mut(source) {
                status.revision = Some(revision);
            }
        }
        Some(Work::Sources {
            // A signal (SIGHUP) is how an operator says "read everything again".
            full: request.full || request.trigger == Trigger::Signal,
            trigger: request.trigger,
            mode: request.mode,
            by: request.by,
            replies: request.reply.into_iter().collect(),
        })
    }

    /// Serves every reload of the sources waiting right behind `work` with it: they
    /// arrived while the previous reload ran, and one read serves them all.
    fn coalesce(&mut self, mut work: Work<T>) -> Work<T> {
        while let Ok(request) = self.inbox.try_recv() {
            self.backlog.push_back(request);
        }
        while let Some(Request::Sources(_)) = self.backlog.front() {
            let Some(Request::Sources(request)) = self.backlog.pop_front() else {
                break;
            };
            if let Some(later) = self.sources_work(request) {
                // Sources work always absorbs sources work.
                let _ = work.absorb(later);
            }
        }
        work
    }

    fn offer(&mut self, mut work: Work<T>) {
        let replies = work.take_replies();
        let trigger = work.trigger();
        let work = match self.gate.admit(work, Instant::now()) {
            Admit::Run(mut work) => {
                restore_replies(&mut work, replies);
                work
            }
            Admit::Deferred => {
                self.publish_gate();
                let event = self.event(Outcome::Deferred, trigger);
                tracing::info!(target: "hotconf", trigger = trigger.as_str(), holds = self.gate.holds(), "reload deferred while held");
                let event = self.shared.exit.emit(event, None);
                for reply in replies {
                    reply(Answer::Done(Some(Ok(event.clone()))));
                }
                return;
            }
        };
        self.run_work(work);
    }

    fn report_deferral(&mut self) {
        let Some(waited) = self.gate.due(Instant::now()) else {
            return;
        };
        let mut event = self.event(Outcome::Deferred, Trigger::Reload);
        event.warnings.push(Problem::warning(
            ProblemKind::Policy,
            format!(
                "reload still deferred after {} ms: {} hold(s) in place",
                waited.as_millis(),
                self.gate.holds()
            ),
        ));
        self.shared.exit.emit(event, None);
    }

    fn publish_gate(&self) {
        let since = self
            .gate
            .deferred_since()
            .map(|since| SystemTime::now() - Instant::now().saturating_duration_since(since));
        lock(&self.shared.live).deferred_since = since;
    }

    /// Runs one piece of work under the reload lock, then sends its outcome out with the
    /// lock released, then answers the callers.
    fn run_work(&mut self, mut work: Work<T>) {
        let replies = work.take_replies();
        let started = Instant::now();
        let trigger = work.trigger();
        let by = work.by();
        if trigger == Trigger::Watch && !self.shared.enabled.load(Ordering::SeqCst) {
            tracing::info!(target: "hotconf", "config change seen but not applied: reloading from the watcher is disabled until enable()");
            answer_all(replies, &Answer::Done(None));
            return;
        }
        let version_before = self.shared.current.load().version();
        let shared = Arc::clone(&self.shared);
        let lock = lock(&shared.lock);
        if let Work::Sources { full: true, .. } = work {
            for source in &self.shared.sources {
                source.invalidate();
            }
        }
        // The service's own code runs here too (its Deserialize and Serialize impls, an
        // update's closure): a panic rejects the attempt instead of killing the worker.
        let attempt = catch_unwind(AssertUnwindSafe(|| match work {
            Work::Sources { trigger, mode, .. }
                if trigger == Trigger::Watch
                    && !self.shared.file_enabled.load(Ordering::SeqCst) =>
            {
                // Paused by the settings table: only its own file is looked at, and when
                // that turns reloading back on, this becomes a reload like any other.
                self.paused(trigger, mode)
                    .unwrap_or_else(|| self.reload_sources(trigger, mode, by.clone()))
            }
            Work::Sources { trigger, mode, .. } => self.reload_sources(trigger, mode, by.clone()),
            Work::Config {
                change, trigger, ..
            } => self.change_config(change, trigger, by.clone()),
        }));
        let finished = attempt.unwrap_or_else(|panic| {
            let message = panic_message(panic.as_ref());
            tracing::error!(target: "hotconf", trigger = trigger.as_str(), %message, "reload panicked");
            let problem = Problem::error(
                ProblemKind::Validation,
                format!("the reload panicked: {message}"),
            );
            self.reject(trigger, self.shared.source_files(), problem.into())
        });
        drop(lock);
        let hash = self.shared.hash.load(Ordering::SeqCst);
        if let Some(mut detected) = finished.detected {
            detected.by.clone_from(&by);
            detected.hash = hash;
            self.shared.exit.emit(detected, None);
        }
        let event = finished.event.map(|mut event| {
            event.elapsed = started.elapsed();
            event.by = by;
            event.hash = hash;
            event.version_before = version_before;
            self.shared.exit.emit(event, finished.applied)
        });
        let answer = match finished.answer {
            AnswerKind::Unsettled => Answer::Unsettled,
            AnswerKind::Rejected(rejection) => Answer::Done(Some(Err(rejection))),
            AnswerKind::Event => Answer::Done(event.map(Ok)),
        };
        answer_all(replies, &answer);
        // The tree of a config applied just now is built here, once the callers have
        // their answer: the next attempt is diffed against it.
        let _ = self.shared.effective.load().tree();
        self.leftovers.settle(&self.shared.parsed);
    }

    fn event(&self, outcome: Outcome, trigger: Trigger) -> Event {
        let version = self.shared.current.load().version();
        let files = self.origins.iter().map(|(o, _)| o.to_string()).collect();
        let mut event = Event::new(outcome, version, trigger, files);
        event.revisions = self.origins.iter().map(|(_, r)| *r).collect();
        event.hash = self.shared.hash.load(Ordering::SeqCst);
        event
    }

    fn reload_sources(&mut self, trigger: Trigger, mode: Mode, by: Option<String>) -> Finished<T> {
        let mut read = match self.shared.read_all() {
            Ok(read) => read,
            Err(_) if mode == Mode::Settling => return unsettled(),
            Err(problems) => {
                let files = self.shared.source_files();
                return self.reject(trigger, files, problems);
            }
        };
        let revisions: Vec<(Origin, u64)> = read
            .documents
            .iter()
            .map(|d| (d.origin.clone(), d.revision))
            .collect();
        if mode <= Mode::IfChanged && revisions == self.seen {
            tracing::debug!(target: "hotconf", "sources have the bytes of the last attempt");
            return Finished {
                detected: None,
                event: None,
                applied: None,
                answer: AnswerKind::Event,
            };
        }
        if revisions == self.seen
            && let Some(clean) = &self.clean
        {
            tracing::debug!(target: "hotconf", "sources have the bytes of the last clean attempt: its outcome stands");
            self.settings_seen = None;
            let version = self.shared.current.load().version();
            let files = revisions.iter().map(|(o, _)| o.to_string()).collect();
            let revisions = revisions.iter().map(|(_, r)| *r).collect();
            return Finished {
                detected: None,
                event: Some(clean.event(version, trigger, files, revisions)),
                applied: None,
                answer: AnswerKind::Event,
            };
        }
        self.clean = None;
        let changed = FileChange::between(&self.seen, &revisions);
        let detected = (!changed.is_empty()).then(|| {
            let mut detected = self.event(Outcome::Detected, trigger);
            detected.changed.clone_from(&changed);
            detected
        });
        let base = self.shared.effective.load_full();
        let extras = std::mem::take(&mut read.extras);
        let (attempt, spent) =
            pipeline::run_leaving(&self.shared.stages(), Some(&*base), Input::from(read));
        self.leftovers.layers = spent;
        let mut finished = match attempt.result {
            Err(_) if mode == Mode::Settling => return unsettled(),
            Err(problems) => self.reject(trigger, attempt.files, problems),
            Ok(planned) => {
                // The sources win over a local override.
                lock(&self.shared.live).local_override = None;
                let clean = Clean::of(&planned);
                let finished = self.transact(planned, attempt.origins, attempt.files, trigger, by);
                if finished
                    .event
                    .as_ref()
                    .is_some_and(|event| event.outcome != Outcome::Rejected)
                {
                    self.clean = Some(clean);
                }
                finished
            }
        };
        // The settings live outside the typed config: a change to the table alone gives
        // `unchanged`, and still takes effect. A rejected attempt keeps the old ones.
        if let Some(settings) = attempt.settings
            && finished
                .event
                .as_ref()
                .is_some_and(|event| event.outcome != Outcome::Rejected)
        {
            self.shared.apply_settings(settings);
            self.shared.set_extra_files(extras);
        }
        self.settings_seen = None;
        if finished.event.as_ref().is_some_and(|event| {
            matches!(
                event.outcome,
                Outcome::Applied | Outcome::Unchanged | Outcome::RestartRequired
            )
        }) {
            // An accepted outcome comes from loaded layers, which hold the documents read.
            if let Some(layers) = &self.leftovers.layers {
                self.shared.accepted(layers.documents());
            }
        }
        if let Some(event) = &mut finished.event {
            event.revisions = revisions.iter().map(|(_, r)| *r).collect();
        }
        self.seen = revisions;
        finished.detected = detected;
        if let Some(event) = &mut finished.event {
            event.changed = changed;
        }
        finished
    }

    fn change_config(
        &mut self,
        change: ConfigChange<T>,
        trigger: Trigger,
        by: Option<String>,
    ) -> Finished<T> {
        // The effective config may move away from the sources: the next reload of the same
        // bytes must run to bring it back.
        self.clean = None;
        let input = match change {
            ConfigChange::Put { document, if_match } => {
                if let Some((version, hash)) = if_match {
                    let live = (
                        self.shared.current.load().version(),
                        self.shared.hash.load(Ordering::SeqCst),
                    );
                    if live != (version, hash) {
                        return quiet(Rejection::Conflict(
                            crate::event::etag(version, hash),
                            crate::event::etag(live.0, live.1),
                        ));
                    }
                }
                Input::Submitted(document)
            }
            ConfigChange::Replace(config) => Input::Config(config),
            ConfigChange::Edit(edit) => Input::Config(edit(self.shared.current.load().config())),
            ConfigChange::Rollback(version) => match self.rollback_config(version) {
                Ok(config) => Input::Config(config),
                Err(rejection) => return quiet(rejection),
            },
        };
        let base = self.shared.effective.load_full();
        let attempt = pipeline::run(&self.shared.stages(), Some(&*base), input);
        let files: Vec<String> = self.origins.iter().map(|(o, _)| o.to_string()).collect();
        let mut finished = match attempt.result {
            // A submitted document names itself; a config given whole names the files.
            Err(problems) if attempt.files.is_empty() => self.reject(trigger, files, problems),
            Err(problems) => self.reject(trigger, attempt.files, problems),
            Ok(planned) => self.transact(planned, self.origins.clone(), files, trigger, by.clone()),
        };
        if let (Some(event), Some(_)) = (&mut finished.event, &finished.applied) {
            event.revisions = self.origins.iter().map(|(_, r)| *r).collect();
            lock(&self.shared.live).local_override = Some(LocalOverride {
                version: event.version,
                trigger,
                by,
                at: event.at,
            });
        }
        finished
    }

    /// The config of an earlier version, or why there is none.
    fn rollback_config(&self, version: u64) -> Result<T, Rejection> {
        let effective = lock(&self.shared.history)
            .get(version)
            .map(|record| Arc::clone(&record.effective));
        let Some(effective) = effective else {
            return Err(Rejection::UnknownVersion(version));
        };
        crate::deserialize::from_node(effective.tree()).map_err(|mut problem| {
            problem.message = format!("version {version} no longer loads: {}", problem.message);
            Rejection::Invalid(problem.into())
        })
    }

    fn reject(&self, trigger: Trigger, files: Vec<String>, problems: Problems) -> Finished<T> {
        let version = self.shared.current.load().version();
        let mut event = Event::new(Outcome::Rejected, version, trigger, files);
        event.errors = problems.errors().cloned().collect();
        event.stage = event.errors.first().map(|problem| problem.kind.stage());
        Finished {
            detected: None,
            event: Some(event),
            applied: None,
            answer: AnswerKind::Rejected(Rejection::Invalid(problems)),
        }
    }
}

fn unsettled<T>() -> Finished<T> {
    Finished {
        detected: None,
        event: None,
        applied: None,
        answer: AnswerKind::Unsettled,
    }
}

/// Refused before any attempt: the caller is told, no event goes out.
fn quiet<T>(rejection: Rejection) -> Finished<T> {
    Finished {
        detected: None,
        event: None,
        applied: None,
        answer: AnswerKind::Rejected(rejection),
    }
}

fn restore_replies<T>(work: &mut Work<T>, replies: Vec<Reply>) {
    match work {
        Work::Sources { replies: slot, .. } => *slot = replies,
        Work::Config { reply, .. } => *reply = replies.into_iter().next(),
    }
}

fn answer_all(replies: Vec<Reply>, answer: &Answer) {
    for reply in replies {
        let copy = match answer {
            Answer::Unsettled => Answer::Unsettled,
            Answer::Done(done) => Answer::Done(done.clone()),
        };
        reply(copy);
    }
}
