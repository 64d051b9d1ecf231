//! File watching: filesystem activity into one reload per logical save.
//!
//! Three parts, from pure to thin:
//!
//! - [`scope`] resolves the sources' [`WatchTarget`]s into the directories to watch and the
//!   names in each that matter, following every symlink (a Kubernetes ConfigMap is two
//!   links deep) and waiting on the nearest existing ancestor for paths not there yet. It
//!   also decides which raw events are relevant: reads never are.
//! - [`coalesce`] is the quiet-window state machine: relevant events in, one batch out once
//!   the files have been quiet for the debounce time. No clock inside.
//! - The driver here owns the thread, the clock and notify. It blocks on the event channel
//!   with the coalescer's next deadline as its timeout (none when idle, so an idle watcher
//!   never wakes), and for each batch re-arms the watches, then asks the reload worker for
//!   a reload through the [trigger seam](crate::TriggerHandle): arming before reading
//!   means a change is either seen by the read or reported by a watch. The worker's answer
//!   comes back on the same channel, so the driver never blocks on the worker.
//!
//! Exactly once: every event of a save lands in one window, and the engine's content hashes
//! turn a batch whose bytes did not change (a touch, the reload's own reads) into nothing at
//! all; `Reloader::save` rewrites the file, which gives one `unchanged`. The watcher knows
//! nothing of the engine: it is one trigger among others.

mod coalesce;
mod scope;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use notify::RecursiveMode;

use crate::error::{Error, Result};
use crate::event::Trigger;
use crate::source::{Dir, Source, WatchTarget};
use crate::trigger::{self, Answer, Mode, TriggerHandle, WatcherState};
use coalesce::{Batch, Coalescer};
use scope::{Scope, Stamps};

/// How often the polling fallback looks at the files when native watching fails.
const FALLBACK_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest polling interval accepted: below it, polling is a busy loop.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How many more quiet periods a config that fails to load while its files are still
/// changing gets before the failure is reported.
const MAX_SETTLE_ROUNDS: u32 = 50;

/// How many times arming resolves the paths again when the tree changes under it.
const ARM_ATTEMPTS: usize = 4;

/// How the watcher turns filesystem events into reloads.
#[derive(Clone, Debug)]
pub(crate) struct WatchOptions {
    /// How long the files must be quiet before a batch of events becomes one reload.
    pub(crate) debounce: Duration,
    /// File-name globs whose events are ignored.
    pub(crate) ignore: Vec<String>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(100),
            ignore: crate::source::DEFAULT_IGNORES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

/// What the driver thread receives: filesystem events from notify, the worker's answer to
/// its last request, or the order to stop.
#[derive(Debug)]
pub(crate) enum Msg {
    Fs(notify::Result<notify::Event>),
    /// Boxed: an answer carries a whole event, the file events are small.
    Answer(Box<Answer>),
    /// Watch these targets from now on (the config's `watch_paths` changed).
    Targets(Vec<WatchTarget>),
    Stop,
}

/// Tells a running watcher what to watch now; does nothing once it stopped.
pub(crate) type Retarget = Box<dyn Fn(Vec<WatchTarget>) + Send>;

/// A running watcher; dropping it stops the watch.
#[derive(Debug)]
pub(crate) struct Watching {
    sender: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
    /// Set by the driver when it polls; shown in [`Status::polling`](crate::Status::polling).
    polling: Arc<AtomicBool>,
}

impl Watching {
    /// Whether the watcher polls (asked for, or fallen back to) rather than being told.
    pub(crate) fn polling(&self) -> bool {
        self.polling.load(Ordering::Relaxed)
    }

    /// A way to tell the driver what to watch now.
    pub(crate) fn retarget(&self) -> Retarget {
        let sender = self.sender.clone();
        Box::new(move |targets| {
            // The driver is gone only when watching stopped.
            let _ = sender.send(Msg::Targets(targets));
        })
    }

    /// The driver's channel, to inject backend failures in tests.
    #[cfg(all(test, feature = "tokio", feature = "toml"))]
    pub(crate) fn sender(&self) -> &Sender<Msg> {
        &self.sender
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        // The driver may be gone already (it exits when the reloader is gone).
        let _ = self.sender.send(Msg::Stop);
        // The driver runs no service code (callbacks run on the reload worker), so this is
        // never its own thread: joining cannot deadlock.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Refuses a polling interval so short that polling would be a busy loop.
pub(crate) fn check_poll_interval(interval: Duration) -> Result<()> {
    if interval < MIN_POLL_INTERVAL {
        return Err(Error::InvalidOption {
            option: "poll interval",
            reason: format!("{} ms is below 10 ms", interval.as_millis()),
        });
    }
    Ok(())
}

/// Starts watching `targets` on a thread of its own: each logical save becomes one request
/// to the worker through `trigger`. Returns once every watch is armed.
pub(crate) fn start(
    targets: Vec<WatchTarget>,
    options: &WatchOptions,
    debounce_ms: Arc<AtomicU64>,
    poll: Option<Duration>,
    trigger: TriggerHandle,
) -> Result<Watching> {
    let base = std::env::current_dir().map_err(Error::Watch)?;
    let (sender, receiver) = mpsc::channel();
    let mut problem = None;
    let backend = match poll {
        Some(interval) => Backend::poll(&sender, interval).map_err(watch_error)?,
        None => match Backend::native(&sender) {
            Ok(backend) => backend,
            Err(error) => {
                tracing::warn!(target: "hotconf::watch", %error, interval_ms = FALLBACK_POLL_INTERVAL.as_millis() as u64, "native file watching is not available, polling instead");
                problem = Some(format!(
                    "native file watching is not available ({error}), polling instead"
                ));
                Backend::poll(&sender, FALLBACK_POLL_INTERVAL).map_err(watch_error)?
            }
        },
    };
    let polling = Arc::new(AtomicBool::new(backend.is_poll()));
    let mut driver = Driver {
        trigger,
        receiver,
        sender: sender.clone(),
        armed: Armed::new(backend),
        scope: Scope::default(),
        targets,
        base,
        ignore: options.ignore.clone(),
        coalescer: Coalescer::new(Duration::from_millis(debounce_ms.load(Ordering::SeqCst))),
        debounce_ms,
        opened: None,
        settle_rounds: 0,
        in_flight: false,
        polling: Arc::clone(&polling),
    };
    driver.rearm();
    // A save made between the first load and now was seen by no watch: one read after
    // a quiet period catches it (and costs nothing when the bytes are the same).
    driver.open(Instant::now(), false);
    tracing::info!(target: "hotconf::watch", dirs = ?driver.scope.dirs().collect::<Vec<_>>(), polling = driver.armed.backend.is_poll(), "watching config files");
    driver.trigger.watcher(WatcherState::new(
        true,
        driver.armed.backend.is_poll(),
        problem,
    ));
    let thread = thread::Builder::new()
        .name("hotconf-watch".into())
        .spawn(move || driver.run())
        .map_err(Error::Watch)?;
    Ok(Watching {
        sender,
        thread: Some(thread),
        polling,
    })
}

fn watch_error(error: notify::Error) -> Error {
    Error::Watch(std::io::Error::other(error))
}

/// The notify backend: told by the operating system, or polling.
enum Backend {
    Native(notify::RecommendedWatcher),
    Poll(notify::PollWatcher),
}

impl Backend {
    fn native(sender: &Sender<Msg>) -> notify::Result<Self> {
        let sender = sender.clone();
        notify::recommended_watcher(move |event| {
            // The driver is gone only when watching stopped.
            let _ = sender.send(Msg::Fs(event));
        })
        .map(Self::Native)
    }

    fn poll(sender: &Sender<Msg>, interval: Duration) -> notify::Result<Self> {
        let sender = sender.clone();
        // Modification times have whole-second resolution here: compare contents too, or
        // two saves within a second look like one.
        let config = notify::Config::default()
            .with_poll_interval(interval)
            .with_compare_contents(true);
        notify::PollWatcher::new(
            move |event| {
                let _ = sender.send(Msg::Fs(event));
            },
            config,
        )
        .map(Self::Poll)
    }

    fn is_poll(&self) -> bool {
        matches!(self, Self::Poll(_))
    }

    fn watcher(&mut self) -> &mut dyn notify::Watcher {
        match self {
            Self::Native(watcher) => watcher,
            Self::Poll(watcher) => watcher,
        }
    }
}

/// The watches in place: which directories, and which directory each was when armed (a
/// directory deleted and recreated under the same name needs a new watch).
struct Armed {
    backend: Backend,
    watched: BTreeMap<PathBuf, Option<u64>>,
}

impl Armed {
    fn new(backend: Backend) -> Self {
        Self {
            backend,
            watched: BTreeMap::new(),
        }
    }

    /// Makes the next [`arm`](Self::arm) watch `dir` afresh.
    fn renew(&mut self, dir: &Path) {
        if let Some(identity) = self.watched.get_mut(dir) {
            *identity = None;
        }
    }

    /// Brings the watches in line with `scope`: drops those no longer needed, adds the new
    /// ones, renews those whose directory was replaced.
    fn arm(&mut self, scope: &Scope) -> notify::Result<()> {
        let stale: Vec<PathBuf> = self
            .watched
            .keys()
            .filter(|dir| !scope.watches(dir))
            .cloned()
            .collect();
        for dir in stale {
            self.watched.remove(&dir);
            // A removed directory's watch is gone already; nothing to undo.
            let _ = self.backend.watcher().unwatch(&dir);
        }
        for dir in scope.dirs() {
            // Identity before the watch: if the directory is replaced in between, the next
            // re-arm sees a mismatch and renews, rather than trusting a watch on the old one.
            let identity = fs::metadata(dir).ok().map(|meta| scope::inode(&meta));
            match self.watched.get(dir) {
                Some(known) if known.is_some() && *known == identity => continue,
                Some(_) => {
                    let _ = self.backend.watcher().unwatch(dir);
                    self.watched.remove(dir);
                }
                None => {}
            }
            self.backend
                .watcher()
                .watch(dir, RecursiveMode::NonRecursive)?;
            self.watched.insert(dir.to_path_buf(), identity);
        }
        Ok(())
    }
}

/// Whether arming failed because a directory vanished between resolving and watching.
fn vanished(error: &notify::Error) -> bool {
    match &error.kind {
        notify::ErrorKind::PathNotFound => true,
        notify::ErrorKind::Io(io) => io.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}

/// The thread's state: a thin loop around the coalescer, the scope and the trigger seam.
struct Driver {
    trigger: TriggerHandle,
    receiver: Receiver<Msg>,
    /// For a polling backend created on fallback.
    sender: Sender<Msg>,
    armed: Armed,
    scope: Scope,
    targets: Vec<WatchTarget>,
    base: PathBuf,
    ignore: Vec<String>,
    coalescer: Coalescer,
    /// The debounce in effect, in milliseconds: the reloader changes it when the config's
    /// settings say so; read when a window opens.
    debounce_ms: Arc<AtomicU64>,
    /// How the files looked when the open window opened.
    opened: Option<Stamps>,
    settle_rounds: u32,
    /// A request is with the worker: the next batch waits for its answer.
    in_flight: bool,
    polling: Arc<AtomicBool>,
}

impl Driver {
    fn run(mut self) {
        loop {
            let deadline = if self.in_flight {
                None
            } else {
                self.coalescer.deadline()
            };
            let received = match deadline {
                // Idle: block until something happens, without a timeout.
                None => self
                    .receiver
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
                Some(deadline) => self
                    .receiver
                    .recv_timeout(deadline.saturating_duration_since(Instant::now())),
            };
            match received {
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Msg::Fs(Ok(event))) => self.on_event(&event),
                Ok(Msg::Fs(Err(error))) => self.on_error(error),
                Ok(Msg::Answer(answer)) => self.on_answer(&answer),
                Ok(Msg::Targets(targets)) => {
                    tracing::debug!(target: "hotconf::watch", ?targets, "watching other files");
                    self.targets = targets;
                    self.rearm();
                    // A save between the worker's read and this arm was seen by no watch.
                    self.open(Instant::now(), false);
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if self.in_flight {
                continue;
            }
            if let Some(batch) = self.coalescer.flush(Instant::now())
                && !self.on_batch(&batch)
            {
                break;
            }
        }
        tracing::debug!(target: "hotconf::watch", "watcher stopped");
    }

    /// Opens or extends the window; notes how the files look when it opens.
    fn open(&mut self, now: Instant, rescan: bool) {
        self.coalescer.set_quiet(Duration::from_millis(
            self.debounce_ms.load(Ordering::SeqCst),
        ));
        let opened = if rescan {
            // Events may be lost: no file a directory would skip as unchanged is trusted.
            self.for_each_dir(Source::invalidate);
            self.coalescer.rescan(now)
        } else {
            self.coalescer.event(now)
        };
        if opened {
            self.opened = Some(Stamps::take(&self.targets));
        }
    }

    fn on_event(&mut self, event: &notify::Event) {
        if event.need_rescan() {
            tracing::warn!(target: "hotconf::watch", "file events were lost (event queue overflow), re-reading the config");
            self.open(Instant::now(), true);
        } else if self.scope.is_relevant(event, &self.ignore) {
            tracing::trace!(target: "hotconf::watch", ?event, "file event");
            // Marked before the batch's read begins: a file an event named is read again
            // whatever its stamp says.
            self.for_each_dir(|dir| event.paths.iter().for_each(|path| dir.named(path)));
            for path in &event.paths {
                // Only a watched directory's own removal or rename names it: its watch is
                // gone or follows the old directory, whatever its successor's inode number
                // (ext4 reuses it at once).
                if self.scope.watches(path) {
                    self.armed.renew(path);
                }
            }
            self.open(Instant::now(), false);
        }
    }

    fn for_each_dir(&self, mut each: impl FnMut(&Dir)) {
        for target in &self.targets {
            if let WatchTarget::Dir(dir) = target {
                each(dir);
            }
        }
    }

    fn on_error(&mut self, error: notify::Error) {
        if self.armed.backend.is_poll() {
            // Polling reports each path it could not scan (a file deleted mid-scan, a
            // dangling link). Only a watched directory going away needs a new arm.
            tracing::debug!(target: "hotconf::watch", %error, "polling could not read a path");
            if error.paths.iter().any(|path| self.scope.watches(path)) {
                self.open(Instant::now(), true);
            }
            return;
        }
        self.fall_back(&error);
        self.rearm();
        self.open(Instant::now(), true);
    }

    /// Replaces the native backend with polling, so the watch never silently dies.
    fn fall_back(&mut self, error: &notify::Error) {
        match Backend::poll(&self.sender, FALLBACK_POLL_INTERVAL) {
            Ok(backend) => {
                tracing::warn!(target: "hotconf::watch", %error, interval_ms = FALLBACK_POLL_INTERVAL.as_millis() as u64, "native file watching failed, polling instead");
                // Dropping the native backend stops its thread and releases its watches.
                self.armed = Armed::new(backend);
                self.trigger.watcher(WatcherState::new(
                    true,
                    true,
                    Some(format!(
                        "native file watching failed ({error}), polling instead"
                    )),
                ));
            }
            Err(poll_error) => {
                tracing::error!(target: "hotconf::watch", %error, %poll_error, "file watching failed and polling cannot start");
                self.trigger.watcher(WatcherState::new(
                    false,
                    false,
                    Some(format!(
                        "file watching failed ({error}) and polling cannot start ({poll_error})"
                    )),
                ));
            }
        }
    }

    /// Resolves the targets again and brings the watches in line.
    fn rearm(&mut self) {
        self.arm_scope();
        self.polling
            .store(self.armed.backend.is_poll(), Ordering::Relaxed);
    }

    fn arm_scope(&mut self) {
        for _ in 0..ARM_ATTEMPTS {
            self.scope = Scope::resolve(&self.targets, &self.base);
            match self.armed.arm(&self.scope) {
                Ok(()) => return,
                Err(error) if vanished(&error) => {
                    tracing::debug!(target: "hotconf::watch", %error, "a directory vanished while arming, resolving again");
                }
                Err(error) => {
                    if self.armed.backend.is_poll() {
                        break;
                    }
                    self.fall_back(&error);
                }
            }
        }
        tracing::warn!(target: "hotconf::watch", "the watched paths keep changing while arming; the next event arms again");
    }

    /// Re-arms, then asks the worker for a reload: a settling one while the files moved
    /// during the window, so that a half-written config gets more time. `false` when the
    /// reloader is gone.
    fn on_batch(&mut self, batch: &Batch) -> bool {
        // Arm before reading: a change after this point is reported by a watch, a change
        // before it is seen by the read.
        self.rearm();
        let now = Stamps::take(&self.targets);
        let moved = batch.forced || self.opened.take().is_some_and(|then| then != now);
        self.opened = Some(now);
        let mode = if moved && self.settle_rounds < MAX_SETTLE_ROUNDS {
            Mode::Settling
        } else {
            Mode::IfChanged
        };
        tracing::debug!(target: "hotconf::watch", events = batch.events, window_us = batch.opened.elapsed().as_micros() as u64, ?mode, "files quiet, asking for a reload");
        let answers = self.sender.clone();
        let reply: trigger::Reply = Box::new(move |answer| {
            // The driver is gone only when watching stopped.
            let _ = answers.send(Msg::Answer(Box::new(answer)));
        });
        self.in_flight =
            self.trigger
                .send(trigger::Request::reload(Trigger::Watch, mode, Some(reply)));
        self.in_flight
    }

    /// A settling reload that failed gets another quiet period; anything else ends the
    /// settling.
    fn on_answer(&mut self, answer: &Answer) {
        self.in_flight = false;
        match answer {
            Answer::Unsettled => {
                self.settle_rounds += 1;
                tracing::debug!(target: "hotconf::watch", round = self.settle_rounds, "config does not load while its files are still changing, letting them settle");
                self.coalescer.set_quiet(Duration::from_millis(
                    self.debounce_ms.load(Ordering::SeqCst),
                ));
                self.coalescer.settle(Instant::now());
            }
            Answer::Done(done) => {
                self.settle_rounds = 0;
                tracing::debug!(target: "hotconf::watch", outcome = ?done.as_ref().map(|r| r.as_ref().map(|e| e.outcome)), "watch reload done");
            }
        }
    }
}

#[cfg(test)]
// The tests wait on the event broadcast, and write TOML.
#[cfg(all(feature = "tokio", feature = "toml"))]
mod tests;
