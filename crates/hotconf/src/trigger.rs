//! The trigger seam: how anything outside the engine asks the reload worker for a reload of
//! the sources, and how a source that knows when it changed pushes its new documents.
//!
//! The file watcher, a signal handler, an HTTP endpoint and a pushing source (etcd) all go
//! through a [`TriggerHandle`] or a [`Pusher`]; none of them needs the config type.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::document::Document;
use crate::error::Problems;
use crate::event::{Event, Timestamp, Trigger};

/// How much a reload of the sources insists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Mode {
    /// The watcher, while files may still be moving: a config that fails to load is not
    /// reported but answered [`Answer::Unsettled`], so the watcher waits for another quiet
    /// period. Nothing happens when the bytes are those of the last attempt.
    Settling,
    /// Nothing happens when every document has the bytes of the last attempt.
    IfChanged,
    /// Always runs the pipeline and reports an outcome.
    Always,
}

/// What the worker answers a request.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one answer per attempt, moved once: boxing the event would buy nothing"
)]
pub(crate) enum Answer {
    /// The attempt ran: its event, or nothing when the bytes had been seen.
    Done(Option<Result<Event, Rejection>>),
    /// A settling attempt failed while the files may still move: nothing was reported.
    Unsettled,
}

/// Why an attempt changed nothing; cloned for every caller it answers.
#[derive(Clone, Debug)]
pub(crate) enum Rejection {
    /// The config was refused.
    Invalid(Problems),
    /// The config was refused and aborting a prepared component panicked.
    RollbackFailed(Problems, Vec<String>),
    /// A rollback named a version the history no longer has.
    UnknownVersion(u64),
    /// A change made against a version that is no longer live: expected and live tags.
    Conflict(String, String),
}

impl Rejection {
    pub(crate) fn into_error(self) -> crate::Error {
        match self {
            Self::Invalid(problems) => crate::Error::Invalid(problems),
            Self::RollbackFailed(problems, failures) => {
                crate::Error::RollbackFailed { problems, failures }
            }
            Self::UnknownVersion(version) => crate::Error::UnknownVersion(version),
            Self::Conflict(expected, actual) => crate::Error::Conflict { expected, actual },
        }
    }
}

/// Told the answer, on the worker thread: must not block.
pub(crate) type Reply = Box<dyn FnOnce(Answer) + Send>;

/// A request for a reload of the sources.
pub(crate) struct Request {
    pub(crate) trigger: Trigger,
    pub(crate) mode: Mode,
    pub(crate) reply: Option<Reply>,
    /// A pushing source's new documents: source index, documents, the source's revision.
    pub(crate) push: Option<(usize, Vec<Document>, u64)>,
    /// A pushing source's health.
    pub(crate) health: Option<(usize, SourceHealth)>,
    /// The file watcher's new state.
    pub(crate) watcher: Option<WatcherState>,
    /// Who asked, when known (the admin API's caller).
    pub(crate) by: Option<String>,
    /// Every source re-reads everything (see [`Source::invalidate`](crate::source::Source::invalidate)):
    /// nothing a source remembers of earlier reads is trusted.
    pub(crate) full: bool,
}

impl Request {
    pub(crate) fn reload(trigger: Trigger, mode: Mode, reply: Option<Reply>) -> Self {
        Self {
            trigger,
            mode,
            reply,
            push: None,
            health: None,
            watcher: None,
            by: None,
            full: false,
        }
    }
}

type Send_ = Arc<dyn Fn(Request) -> bool + Send + Sync>;

/// Asks a reloader's worker for reloads from anywhere: another thread, a signal handler, a
/// server. Cheap to clone; it does not keep the reloader alive, and after the reloader is
/// gone its requests are refused (`false`).
///
/// ```
/// use hotconf::{Reloader, Trigger, source::{Defaults, Format}};
///
/// let reloader = Reloader::<serde_json::Value>::builder()
///     .defaults(Format::Toml, "rpm = 60")
///     .build()
///     .unwrap();
/// let mut events = reloader.events();
/// let trigger = reloader.trigger_handle();
/// assert!(trigger.request(Trigger::Signal));
/// // The worker reloads in the background and reports through events.
/// let event = events.blocking_recv().unwrap();
/// assert_eq!(event.trigger, Trigger::Signal);
/// ```
#[derive(Clone)]
pub struct TriggerHandle {
    send: Send_,
}

impl TriggerHandle {
    pub(crate) fn new(send: Send_) -> Self {
        Self { send }
    }

    /// Asks for a reload of the sources, recorded with `trigger`; returns at once.
    /// Requests that arrive while a reload runs are served together by the next one. The
    /// outcome is reported as an event like any other.
    ///
    /// Returns `false` when the reloader is gone.
    pub fn request(&self, trigger: Trigger) -> bool {
        (self.send)(Request::reload(trigger, Mode::Always, None))
    }

    pub(crate) fn send(&self, request: Request) -> bool {
        (self.send)(request)
    }

    /// Tells the worker the file watcher's new state, for the status and the observers.
    #[cfg(feature = "watch")]
    pub(crate) fn watcher(&self, state: WatcherState) -> bool {
        let mut request = Request::reload(Trigger::Watch, Mode::IfChanged, None);
        request.watcher = Some(state);
        (self.send)(request)
    }
}

impl fmt::Debug for TriggerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TriggerHandle").finish_non_exhaustive()
    }
}

/// How a source that pushes is doing, as shown in [`Status::sources`](crate::Status).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "message", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SourceHealth {
    /// Connected and up to date.
    Connected,
    /// Working, but not as it should (reconnecting, lagging); the message says how.
    Degraded(String),
    /// Not working; the last good config stays. The message says why.
    Error(String),
}

/// Given to a [`Source`](crate::source::Source) that can tell when it changes (see
/// [`Source::start`](crate::source::Source::start)): it pushes each new set of documents
/// with its revision, and its health.
#[derive(Clone)]
pub struct Pusher {
    trigger: TriggerHandle,
    source: usize,
}

impl Pusher {
    pub(crate) fn new(trigger: TriggerHandle, source: usize) -> Self {
        Self { trigger, source }
    }

    /// Pushes the source's documents as of `revision` (a store's revision, or any number
    /// that grows): the worker applies exactly these documents, without reading the source
    /// again, so a newer revision can never be mixed with an older read. Pushes that arrive
    /// during a reload are served together by the next one, the latest documents winning.
    ///
    /// Returns `false` when the reloader is gone: the source should stop.
    pub fn push(&self, documents: Vec<Document>, revision: u64) -> bool {
        self.trigger.send(Request {
            trigger: Trigger::Source,
            mode: Mode::IfChanged,
            reply: None,
            push: Some((self.source, documents, revision)),
            health: None,
            watcher: None,
            by: None,
            full: false,
        })
    }

    /// Reports the source's health; shown in the status.
    ///
    /// Returns `false` when the reloader is gone.
    pub fn health(&self, health: SourceHealth) -> bool {
        self.trigger.send(Request {
            trigger: Trigger::Source,
            mode: Mode::IfChanged,
            reply: None,
            push: None,
            health: Some((self.source, health)),
            watcher: None,
            by: None,
            full: false,
        })
    }
}

impl fmt::Debug for Pusher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pusher")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The file watcher's state, as [`Observer::watcher`](crate::Observer::watcher) is told it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WatcherState {
    /// Whether the watcher runs.
    pub watching: bool,
    /// Whether it polls instead of being told by the operating system.
    pub polling: bool,
    /// What went wrong, while something is wrong.
    pub error: Option<String>,
    /// When the state changed.
    #[serde(serialize_with = "timestamp")]
    pub at: SystemTime,
}

impl WatcherState {
    #[cfg(feature = "watch")]
    pub(crate) fn new(watching: bool, polling: bool, error: Option<String>) -> Self {
        Self {
            watching,
            polling,
            error,
            at: SystemTime::now(),
        }
    }
}

fn timestamp<S: serde::Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Timestamp(*at))
}
