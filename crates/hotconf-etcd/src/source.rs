//! [`EtcdSource`]: the documents under an etcd key prefix, read at one revision and then
//! pushed on every change.
//!
//! Each key under the prefix whose name ends in `.toml`, `.yaml`/`.yml` or `.json` is one
//! document ([`format_of`](crate::format_of)), with the key as its origin: a problem in a
//! value is reported as `/app/server.toml:3:7: …`, like a file's. Documents come in key
//! order; other keys are ignored.
//!
//! # How it stays current
//!
//! [`read`](Source::read) reads the prefix at revision R (the reloader's first load). The
//! reloader then calls [`start`](Source::start): a thread named `hotconf-etcd-watch` watches
//! the prefix from R + 1 and pushes each watch response's documents once, with the etcd
//! revision of its last event: a transaction's keys arrive together and make one reload,
//! never two. Progress notifications are requested every
//! [`progress_every`](EtcdSource::progress_every) and move the known revision when nothing
//! under the prefix changes.
//!
//! - **Lost connection**: the health in [`Status`](hotconf::Status) turns to `error` and
//!   the service keeps its last good config; the source reconnects with a jittered backoff
//!   between [`backoff`](EtcdSource::backoff)'s bounds and resumes from the last revision
//!   it saw + 1, so a change made meanwhile is not missed.
//! - **Compaction**: when the revision to resume from was compacted away (etcd cancels the
//!   watch), the source reads the whole prefix again and pushes it; the engine's diff
//!   decides what changed, deletions included.
//! - **Restore**: on every (re)connect the source compares etcd's cluster id and revision
//!   with what it saw; if the cluster changed or the revision went back (etcd restored
//!   from an older snapshot, where a watch from a future revision would wait silently),
//!   it reads the prefix again.
//! - **Periodic resync**: every [`resync_every`](EtcdSource::resync_every) the prefix is
//!   read again and pushed, catching anything a watch could miss.
//! - **Last-known-good cache** (opt-in, [`cache`](EtcdSource::cache)): every read and push
//!   is written to a local file (atomically, mode 0600); when etcd cannot be reached at
//!   start, the documents come from it and the health says `degraded` until etcd answers.
//!   A damaged cache is an error, never an empty config.
//!
//! Every set of documents is recorded in the [`Tracker`] (see
//! [`tracker`](EtcdSource::tracker)) before it is returned or pushed, so the fleet reporter
//! can tell which revision an event's documents came from.
//!
//! # Metrics
//!
//! Through the [`metrics`](https://docs.rs/metrics) facade (the service installs the
//! recorder), each series labelled with the source's `prefix`:
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `hotconf_etcd_connected` | gauge | `prefix` | 1 while the watch runs, 0 while etcd is unreachable |
//! | `hotconf_etcd_revision` | gauge | `prefix` | the etcd revision the source is current to (its last event or progress notification) |
//! | `hotconf_etcd_resyncs_total` | counter | `prefix`, `reason` | full re-reads of the prefix: `compacted`, `restored`, `periodic`, `reconnect` (a connection with nothing to resume from: the source started from its cache) |
//! | `hotconf_etcd_disconnects_total` | counter | `prefix` | lost connections and failed reconnects |
//!
//! # Known problems
//!
//! - A restore that is followed by enough writes to carry etcd's revision past the one the
//!   source saw, all before the source reconnects, looks like ordinary progress: the
//!   periodic resync corrects it.
//! - The whole prefix is read in one range request, so it must fit one gRPC message
//!   (4 MiB by default). Config prefixes are far smaller.
//! - The cache holds the documents last read from etcd, whether or not the service accepted
//!   them: starting from it loads them through the same pipeline, which rejects a bad one.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use hotconf::Reloader;
//! use hotconf_etcd::{Connection, EtcdSource, Prefix};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let source = EtcdSource::new(
//!     Connection::new(["http://127.0.0.1:2379"]).user("app", "s3cret"),
//!     Prefix::new("/app/")?,
//! )
//! .cache("/var/cache/app/etcd.json")
//! .resync_every(Duration::from_secs(600));
//! let tracker = source.tracker(); // for the fleet reporter
//! let reloader = Reloader::<serde_json::Value>::builder().source(source).build()?;
//! # let _ = (reloader, tracker);
//! # Ok(())
//! # }
//! ```

mod cache;
mod metric;
mod mirror;
mod watch;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hotconf::source::{Document, Source};
use hotconf::{Limits, Problem, ProblemKind, Pusher};
use tokio::sync::oneshot;

use crate::keys::Prefix;
use crate::{Connection, Tracker};
use mirror::Mirror;
use watch::{Timers, Watch};

/// The default [`resync_every`](EtcdSource::resync_every): 5 minutes.
pub const DEFAULT_RESYNC_EVERY: Duration = Duration::from_secs(300);
/// The default [`progress_every`](EtcdSource::progress_every): 30 seconds (etcd's own
/// progress notifications come every 10 minutes).
pub const DEFAULT_PROGRESS_EVERY: Duration = Duration::from_secs(30);
/// The default [`backoff`](EtcdSource::backoff) bounds: 200 ms doubling up to 10 s.
pub const DEFAULT_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(200), Duration::from_secs(10));

/// A config source over an etcd key prefix: one document per key, kept current by a watch.
/// See the [module docs](self) for how it behaves when etcd misbehaves.
pub struct EtcdSource {
    connection: Connection,
    prefix: Prefix,
    cache: Option<PathBuf>,
    timers: Timers,
    tracker: Tracker,
    /// What the last [`read`](Source::read) found, for [`start`](Source::start).
    read: Mutex<Option<ReadState>>,
    /// Dropped with the source: tells the watch thread to stop.
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

/// The result of a read, handed to the watch thread.
struct ReadState {
    mirror: Mirror,
    /// Why etcd could not be read, when the mirror came from the cache.
    trouble: Option<String>,
}

impl EtcdSource {
    /// The documents under `prefix` in the etcd at `connection`.
    pub fn new(connection: Connection, prefix: Prefix) -> Self {
        let tracker = Tracker::new(prefix.clone());
        Self {
            connection,
            prefix,
            cache: None,
            timers: Timers {
                resync_every: DEFAULT_RESYNC_EVERY,
                progress_every: DEFAULT_PROGRESS_EVERY,
                backoff_min: DEFAULT_BACKOFF.0,
                backoff_max: DEFAULT_BACKOFF.1,
            },
            tracker,
            read: Mutex::new(None),
            stop: Mutex::new(None),
        }
    }

    /// Keeps a last-known-good cache in the file at `path` (its directory must exist):
    /// written after every read and push, read at start when etcd cannot be reached. Off by
    /// default. The file holds the config's values: it is created with mode 0600.
    #[must_use]
    pub fn cache(mut self, path: impl Into<PathBuf>) -> Self {
        self.cache = Some(path.into());
        self
    }

    /// How often the whole prefix is read again and pushed (an unchanged config makes no
    /// event); [`DEFAULT_RESYNC_EVERY`] by default.
    #[must_use]
    pub fn resync_every(mut self, every: Duration) -> Self {
        self.timers.resync_every = every.max(Duration::from_millis(1));
        self
    }

    /// How often the watch asks etcd for a progress notification, which moves the known
    /// revision while nothing under the prefix changes (a reconnect then resumes from a
    /// recent revision); [`DEFAULT_PROGRESS_EVERY`] by default.
    #[must_use]
    pub fn progress_every(mut self, every: Duration) -> Self {
        self.timers.progress_every = every.max(Duration::from_millis(1));
        self
    }

    /// The bounds of the reconnect backoff: the first retry after about `min`, doubling up
    /// to `max` (each wait jittered by ±25 %, never over `max`); [`DEFAULT_BACKOFF`] by
    /// default. A `max` below `min` is taken as `min`.
    #[must_use]
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.timers.backoff_min = min;
        self.timers.backoff_max = max.max(min);
        self
    }

    /// The tracker every set of documents is recorded in before it is returned or pushed
    /// (a clone: call this before handing the source to the builder).
    pub fn tracker(&self) -> Tracker {
        self.tracker.clone()
    }

    /// The prefix.
    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// Reads the prefix from etcd on a short-lived thread of its own (so that a caller on
    /// a tokio runtime does not block it).
    fn fetch(&self) -> Result<Mirror, crate::Error> {
        let connection = &self.connection;
        let prefix = &self.prefix;
        std::thread::scope(|scope| {
            let reading = std::thread::Builder::new()
                .name("hotconf-etcd-read".into())
                .spawn_scoped(scope, || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| crate::Error::io("cannot start a tokio runtime", e))?;
                    runtime.block_on(async {
                        let mut client = connection.connect().await?;
                        watch::fetch(&mut client, prefix).await.map_err(|source| {
                            crate::Error::etcd(
                                format!("cannot read {prefix} from {}", connection.describe()),
                                source,
                            )
                        })
                    })
                })
                .map_err(|e| crate::Error::io("cannot start a thread", e))?;
            reading
                .join()
                .unwrap_or_else(|_| Err(crate::Error::Usage("reading etcd panicked".into())))
        })
    }

    /// Whether a failure to read etcd is one the cache may stand in for: etcd could not be
    /// reached, rather than refusing the request (a wrong password, a missing permission).
    fn unreachable(error: &crate::Error) -> bool {
        let crate::Error::Etcd { source, .. } = error else {
            return false;
        };
        match source {
            // gRPC codes: 1 cancelled, 2 unknown, 4 deadline exceeded, 14 unavailable; etcd
            // refuses a wrong password with 3 and a missing permission with 7.
            etcd_client::Error::GRpcStatus(status) => {
                matches!(status.code() as i32, 1 | 2 | 4 | 14)
            }
            etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
            _ => false,
        }
    }

    fn problem(&self, message: String) -> Problem {
        Problem::error(ProblemKind::Io, message).in_file(self.prefix.as_str())
    }
}

impl Source for EtcdSource {
    fn read(&self, limits: &Limits) -> Result<Vec<Document>, Problem> {
        let (mirror, trouble) = match self.fetch() {
            Ok(mirror) => (mirror, None),
            Err(error) => {
                let Some(path) = self.cache.as_ref().filter(|_| Self::unreachable(&error)) else {
                    return Err(self.problem(error.to_string()));
                };
                if !path.exists() {
                    return Err(self.problem(format!(
                        "{error} (and there is no last-known-good cache at {} yet)",
                        path.display()
                    )));
                }
                let mirror = cache::read(path, &self.prefix)
                    .map_err(|cache| self.problem(format!("{error}; and {cache}")))?;
                tracing::warn!(
                    target: "hotconf_etcd",
                    prefix = %self.prefix,
                    revision = mirror.revision(),
                    "{error}; starting from the last-known-good cache {}",
                    path.display()
                );
                (mirror, Some(error.to_string()))
            }
        };
        let documents = mirror.documents();
        if let Some(big) = documents
            .iter()
            .find(|d| d.bytes.len() as u64 > limits.max_bytes)
        {
            return Err(Problem::error(
                ProblemKind::Limit,
                format!(
                    "the value is {} bytes, over the limit of {} bytes (Limits::max_bytes)",
                    big.bytes.len(),
                    limits.max_bytes
                ),
            )
            .in_file(big.origin.to_string()));
        }
        self.tracker.record(mirror.revision(), mirror.values());
        if trouble.is_none()
            && let Some(path) = &self.cache
            && let Err(error) = cache::write(path, &self.prefix, &mirror)
        {
            tracing::warn!(target: "hotconf_etcd", "{error}");
        }
        *self.read.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(ReadState { mirror, trouble });
        Ok(documents)
    }

    fn start(&self, pusher: Pusher) -> Result<(), Problem> {
        let mut stop = self.stop.lock().unwrap_or_else(PoisonError::into_inner);
        if stop.is_some() {
            return Err(self.problem("the etcd source was started twice".into()));
        }
        let read = self
            .read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Started without a read: nothing to resume from, so the first connection reads.
        let (mirror, from_cache, trouble) = match read {
            Some(ReadState { mirror, trouble }) => (mirror, trouble.is_some(), trouble),
            None => (Mirror::default(), true, None),
        };
        metric::register(self.prefix.as_str());
        let (sender, receiver) = oneshot::channel();
        let watch = Watch {
            connection: self.connection.clone(),
            prefix: self.prefix.clone(),
            timers: self.timers,
            tracker: self.tracker.clone(),
            cache: self.cache.clone(),
            mirror,
            from_cache,
            trouble,
        };
        watch::spawn(watch, pusher, receiver)
            .map_err(|e| self.problem(format!("cannot start the etcd watch thread: {e}")))?;
        *stop = Some(sender);
        Ok(())
    }
}

impl fmt::Debug for EtcdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The status shows this as the source's name: endpoints and prefix, never a password.
        write!(
            f,
            "etcd {} {}",
            self.connection.endpoints().join(","),
            self.prefix
        )
    }
}
