//! The watch loop: one named thread with a current-thread runtime that keeps the source's
//! [`Mirror`] current and pushes every new set of documents.
//!
//! Per connection (a session): connect, ask etcd for its header (a count-only range read),
//! re-read the prefix if there is nothing to resume from or etcd went back (another cluster
//! id, an older revision: a snapshot restore), then watch from the mirror's revision + 1.
//! Each watch response is applied whole (a transaction's events arrive together) and, when
//! a document changed, pushed once. A compacted watch re-reads the prefix and watches
//! again; so does the resync timer. A lost connection reports the source's health and
//! comes back after a bounded, jittered backoff, resuming where it left off.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use etcd_client::{Client, EventType, GetOptions, WatchOptions, WatchResponse};
use hotconf::{Pusher, SourceHealth};
use tokio::sync::oneshot;
use tokio::time::{Instant, MissedTickBehavior};

use super::cache;
use super::metric::{self, Resync};
use super::mirror::{Change, Mirror};
use crate::keys::Prefix;
use crate::{Connection, Tracker};

/// How long one connect or request may take before the session counts as lost (the
/// connection's own timeouts normally answer first).
const GUARD: Duration = Duration::from_secs(15);

/// The loop's timers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timers {
    pub(crate) resync_every: Duration,
    pub(crate) progress_every: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
}

/// Everything the loop needs; moved onto its thread.
#[derive(Debug)]
pub(crate) struct Watch {
    pub(crate) connection: Connection,
    pub(crate) prefix: Prefix,
    pub(crate) timers: Timers,
    pub(crate) tracker: Tracker,
    pub(crate) cache: Option<PathBuf>,
    pub(crate) mirror: Mirror,
    /// The mirror came from the cache: there is no revision to resume from.
    pub(crate) from_cache: bool,
    /// Why etcd could not be read at start, when the mirror came from the cache.
    pub(crate) trouble: Option<String>,
}

/// Why a session ended.
enum End {
    /// The reloader is gone.
    Stopped,
    /// The connection or the watch was lost; the message says how.
    Lost(String),
}

fn lost(context: &str, error: impl std::fmt::Display) -> End {
    End::Lost(format!("{context}: {error}"))
}

/// Runs `future` under [`GUARD`].
async fn guard<T>(
    context: &str,
    future: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, End> {
    match tokio::time::timeout(GUARD, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(lost(context, error)),
        Err(_) => Err(End::Lost(format!(
            "{context}: no answer in {} s",
            GUARD.as_secs()
        ))),
    }
}

/// Reads every key under `prefix` in one range read; the mirror is at the read's header
/// revision.
pub(crate) async fn fetch(
    client: &mut Client,
    prefix: &Prefix,
) -> Result<Mirror, etcd_client::Error> {
    let response = client
        .get(
            prefix.as_str(),
            Some(GetOptions::new().with_range(prefix.range_end())),
        )
        .await?;
    let (revision, cluster) = response
        .header()
        .map_or((0, 0), |h| (h.revision(), h.cluster_id()));
    Ok(Mirror::read(
        response.kvs().iter().map(|kv| (kv.key(), kv.value())),
        revision,
        cluster,
    ))
}

/// Starts the loop on a thread named `hotconf-etcd-watch`; it ends when `stop`'s sender
/// is dropped or the reloader is gone.
pub(crate) fn spawn(
    watch: Watch,
    pusher: Pusher,
    stop: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("hotconf-etcd-watch".into())
        .spawn(move || {
            // Built here, not by the caller: the reloader may be built inside a runtime,
            // where a runtime can be neither run nor dropped.
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    pusher.health(SourceHealth::Error(format!(
                        "cannot start the etcd watch's runtime: {error}"
                    )));
                    return;
                }
            };
            let next_resync = Instant::now() + watch.timers.resync_every;
            let mut running = Running {
                watch,
                pusher,
                reported: None,
                next_resync,
            };
            runtime.block_on(running.run(stop));
        })?;
    Ok(())
}

struct Running {
    watch: Watch,
    pusher: Pusher,
    /// The health last reported.
    reported: Option<SourceHealth>,
    /// When the resync timer fires next; any full read moves it.
    next_resync: Instant,
}

impl Running {
    async fn run(&mut self, mut stop: oneshot::Receiver<()>) {
        let prefix = self.watch.prefix.as_str().to_owned();
        metric::revision(&prefix, self.watch.mirror.revision());
        if let Some(trouble) = self.watch.trouble.take() {
            let health = SourceHealth::Degraded(self.cached_message(&trouble));
            if !self.report(health) {
                return;
            }
        }
        let mut delay = self.watch.timers.backoff_min;
        loop {
            let end = tokio::select! {
                _ = &mut stop => return,
                end = self.session(&mut delay) => end,
            };
            let why = match end {
                End::Stopped => return,
                End::Lost(why) => why,
            };
            metric::disconnected(&prefix);
            let wait = jitter(delay).min(self.watch.timers.backoff_max);
            let message = format!("{why}; retrying in {} ms", wait.as_millis());
            tracing::warn!(target: "hotconf_etcd", prefix = %prefix, "{message}");
            let health = if self.watch.from_cache {
                SourceHealth::Degraded(self.cached_message(&message))
            } else {
                SourceHealth::Error(format!("{message}; the last good config stays"))
            };
            if !self.report(health) {
                return;
            }
            tokio::select! {
                _ = &mut stop => return,
                () = tokio::time::sleep(wait) => {}
            }
            delay = delay.saturating_mul(2).min(self.watch.timers.backoff_max);
        }
    }

    fn cached_message(&self, trouble: &str) -> String {
        let cache = self
            .watch
            .cache
            .as_ref()
            .map_or_else(String::new, |path| path.display().to_string());
        format!(
            "serving the last-known-good cache {cache} (etcd revision {}): {trouble}",
            self.watch.mirror.revision()
        )
    }

    /// Reports `health` unless it is the one last reported; `false` when the reloader is
    /// gone.
    fn report(&mut self, health: SourceHealth) -> bool {
        if self.reported.as_ref() == Some(&health) {
            return true;
        }
        let alive = self.pusher.health(health.clone());
        self.reported = Some(health);
        alive
    }

    async fn session(&mut self, delay: &mut Duration) -> End {
        match self.connected_session(delay).await {
            Ok(never) => match never {},
            Err(end) => end,
        }
    }

    async fn connected_session(
        &mut self,
        delay: &mut Duration,
    ) -> Result<std::convert::Infallible, End> {
        let endpoints = self.watch.connection.endpoints().join(",");
        let mut client = match tokio::time::timeout(GUARD, self.watch.connection.connect()).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => return Err(End::Lost(error.to_string())),
            Err(_) => {
                return Err(End::Lost(format!(
                    "cannot connect to {endpoints}: no answer in {} s",
                    GUARD.as_secs()
                )));
            }
        };
        let prefix = &self.watch.prefix;
        let header = guard(
            &format!("cannot read {prefix} from {endpoints}"),
            client.get(
                prefix.as_str(),
                Some(
                    GetOptions::new()
                        .with_range(prefix.range_end())
                        .with_count_only(),
                ),
            ),
        )
        .await?
        .header()
        .map(|h| (h.cluster_id(), h.revision()));
        let mirror = &self.watch.mirror;
        let resync = if self.watch.from_cache {
            Some(Resync::Reconnect)
        } else if header.is_none_or(|(cluster, revision)| {
            cluster != mirror.cluster() || revision < mirror.revision()
        }) {
            Some(Resync::Restored)
        } else {
            None
        };
        if let Some(reason) = resync {
            if reason == Resync::Restored {
                tracing::warn!(
                    target: "hotconf_etcd",
                    prefix = %prefix,
                    seen_cluster = mirror.cluster(),
                    seen_revision = mirror.revision(),
                    cluster = header.map(|h| h.0),
                    revision = header.map(|h| h.1),
                    "etcd went back (restored from a snapshot?): reading the prefix again"
                );
            }
            self.resync(&mut client, reason).await?;
        }
        self.watch.from_cache = false;
        metric::connected(self.watch.prefix.as_str(), true);
        if !self.report(SourceHealth::Connected) {
            return Err(End::Stopped);
        }
        loop {
            self.watch_once(&mut client, delay).await?;
        }
    }

    /// Watches from the mirror's revision + 1 until the watch is compacted (then re-reads
    /// and returns, to watch again) or lost. The backoff starts over once etcd confirms
    /// the watch.
    async fn watch_once(&mut self, client: &mut Client, delay: &mut Duration) -> Result<(), End> {
        let prefix = self.watch.prefix.clone();
        let options = WatchOptions::new()
            .with_range(prefix.range_end())
            .with_start_revision(self.watch.mirror.revision() + 1)
            .with_progress_notify();
        let mut stream = guard(
            &format!("cannot watch {prefix}"),
            client.watch(prefix.as_str(), Some(options)),
        )
        .await?;
        let every = self.watch.timers.progress_every;
        let mut progress = tokio::time::interval_at(Instant::now() + every, every);
        progress.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = stream.message() => {
                    let response = match message {
                        Ok(Some(response)) => response,
                        Ok(None) => return Err(End::Lost("etcd closed the watch".into())),
                        Err(error) => return Err(lost("the watch broke", error)),
                    };
                    if response.canceled() {
                        if response.compact_revision() > 0 {
                            tracing::info!(
                                target: "hotconf_etcd",
                                prefix = %prefix,
                                from = self.watch.mirror.revision() + 1,
                                compacted = response.compact_revision(),
                                "the watch's revision was compacted: reading the prefix again"
                            );
                            self.resync(client, Resync::Compacted).await?;
                            return Ok(());
                        }
                        return Err(End::Lost(format!(
                            "etcd cancelled the watch: {}",
                            response.cancel_reason()
                        )));
                    }
                    if response.created() {
                        *delay = self.watch.timers.backoff_min;
                    }
                    self.on_response(&response)?;
                }
                _ = progress.tick() => {
                    if let Err(error) = stream.request_progress().await {
                        return Err(lost("cannot request the watch's progress", error));
                    }
                }
                () = tokio::time::sleep_until(self.next_resync) => {
                    self.resync(client, Resync::Periodic).await?;
                }
            }
        }
    }

    /// Applies one watch response and pushes when a document changed. A response with no
    /// events is the watch's creation (no news) or a progress notification: every change
    /// up to its header revision was delivered.
    fn on_response(&mut self, response: &WatchResponse) -> Result<(), End> {
        let mirror = &mut self.watch.mirror;
        if response.events().is_empty() {
            if !response.created()
                && let Some(header) = response.header()
            {
                mirror.progress(header.revision());
                metric::revision(self.watch.prefix.as_str(), mirror.revision());
            }
            return Ok(());
        }
        let changes = response.events().iter().filter_map(|event| {
            let kv = event.kv()?;
            Some(Change {
                key: kv.key(),
                value: match event.event_type() {
                    EventType::Put => Some(kv.value()),
                    EventType::Delete => None,
                },
                revision: kv.mod_revision(),
            })
        });
        if mirror.apply(changes) {
            self.publish()
        } else {
            metric::revision(self.watch.prefix.as_str(), mirror.revision());
            Ok(())
        }
    }

    /// Re-reads the whole prefix and pushes it; the engine's diff decides what changed.
    async fn resync(&mut self, client: &mut Client, reason: Resync) -> Result<(), End> {
        let prefix = self.watch.prefix.clone();
        self.watch.mirror = guard(&format!("cannot read {prefix}"), fetch(client, &prefix)).await?;
        metric::resync(prefix.as_str(), reason);
        self.next_resync = Instant::now() + self.watch.timers.resync_every;
        self.publish()
    }

    /// Records the mirror's documents in the tracker, pushes them, then caches them.
    fn publish(&mut self) -> Result<(), End> {
        let mirror = &self.watch.mirror;
        let revision = mirror.revision();
        self.watch.tracker.record(revision, mirror.values());
        let pushed = u64::try_from(revision).unwrap_or_default();
        if !self.pusher.push(mirror.documents(), pushed) {
            return Err(End::Stopped);
        }
        metric::revision(self.watch.prefix.as_str(), revision);
        if let Some(path) = &self.watch.cache
            && let Err(error) = cache::write(path, &self.watch.prefix, mirror)
        {
            tracing::warn!(target: "hotconf_etcd", "{error}");
        }
        Ok(())
    }
}

/// `delay` scaled by a factor in [0.75, 1.25), so that instances that lost etcd together
/// do not all come back in the same instant.
fn jitter(delay: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let factor = 0.75 + f64::from(nanos % 1000) / 2000.0;
    delay.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_quarter() {
        for _ in 0..100 {
            let d = jitter(Duration::from_millis(1000));
            assert!(
                d >= Duration::from_millis(750) && d < Duration::from_millis(1250),
                "{d:?}"
            );
        }
    }
}
