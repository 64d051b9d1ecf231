//! The fleet reporter: an [`Observer`] that keeps this instance's [`Record`] under
//! `P.status/<instance>`, bound to a lease, so `hotconf fleet status` sees what it runs and
//! a dead instance disappears.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp,
    TxnOpResponse,
};
use hotconf::{Event, Observer, ObserverHealth};
use tokio::sync::mpsc;

use super::record::{self, Identity, Progress, Record};
use crate::{Connection, Error, Tracker, content_hash_of_event};

/// How long a record outlives its instance by default.
const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// The longest wait between reconnects.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Reports this instance's [`Record`] to etcd after every reload attempt. Register it with
/// [`ReloaderBuilder::observer`](hotconf::ReloaderBuilder::observer); it works on its own
/// thread (`hotconf-etcd-fleet`), so [`observe`](Observer::observe) never blocks the reload
/// worker.
///
/// The record is created only when no other live instance holds the name: a duplicate is
/// reported in [`health`](Observer::health) (naming the other holder's host and pid) and
/// logged, and the claim is retried until the other's lease expires. etcd trouble shows in
/// the health too; the reporter reconnects with backoff and writes the record again under
/// a new lease. Dropping it (the reloader drops its observers) revokes the lease: the
/// record goes at once. An instance that dies without that is gone after the lease's TTL.
///
/// ```no_run
/// use hotconf_etcd::{Connection, Prefix, Reporter, Tracker};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let etcd = Connection::new(["http://127.0.0.1:2379"]);
/// // In a service, the tracker is the EtcdSource's (`source.tracker()`).
/// let tracker = Tracker::new(Prefix::new("/app/")?);
/// let reporter = Reporter::builder(etcd, tracker).instance("web-1").build()?;
/// let reloader = hotconf::Reloader::<serde_json::Value>::builder()
///     .defaults(hotconf::source::Format::Toml, "rpm = 60")
///     .observer(reporter)
///     .build()?;
/// # Ok(())
/// # }
/// ```
pub struct Reporter {
    identity: Identity,
    key: String,
    tracker: Tracker,
    progress: Mutex<Progress>,
    health: Arc<Mutex<Option<String>>>,
    sender: Mutex<Option<mpsc::UnboundedSender<Record>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Builds a [`Reporter`].
#[derive(Debug)]
pub struct ReporterBuilder {
    connection: Connection,
    tracker: Tracker,
    instance: Option<String>,
    ttl: Duration,
}

impl Reporter {
    /// A reporter writing through `connection` for the prefix of `tracker` (the source's:
    /// it knows the etcd revision of each set of documents).
    pub fn builder(connection: Connection, tracker: Tracker) -> ReporterBuilder {
        ReporterBuilder {
            connection,
            tracker,
            instance: None,
            ttl: DEFAULT_TTL,
        }
    }

    /// The instance's name.
    pub fn instance(&self) -> &str {
        &self.identity.instance
    }

    /// The key of its record.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Stops reporting: revokes the lease (the record goes at once) and ends the thread;
    /// later events are ignored. Dropping the reporter does the same; call this when the
    /// reloader shuts down but is not dropped (it keeps its observers until then).
    pub fn stop(&self) {
        // Closing the channel tells the thread to revoke its lease and stop.
        drop(lock(&self.sender).take());
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReporterBuilder {
    /// The instance's name; default `host-pid`. One segment: no `/`, no spaces.
    #[must_use]
    pub fn instance(mut self, name: impl Into<String>) -> Self {
        self.instance = Some(name.into());
        self
    }

    /// How long the record outlives an instance that stops renewing its lease; 10 s by
    /// default, whole seconds (at least 1).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Starts the reporter's thread. Nothing is written before the first event.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] for an instance name that is empty or holds `/` or whitespace;
    /// [`Error::Io`] when the thread cannot start.
    pub fn build(self) -> Result<Reporter, Error> {
        let host = record::host_name();
        let pid = std::process::id();
        let instance = self.instance.unwrap_or_else(|| format!("{host}-{pid}"));
        if instance.is_empty()
            || instance
                .chars()
                .any(|c| c == '/' || c.is_whitespace() || c.is_control())
        {
            return Err(Error::Usage(format!(
                "instance name {instance:?}: use one segment without `/` or spaces"
            )));
        }
        let key = self.tracker.prefix().status_key(&instance);
        let health = Arc::new(Mutex::new(None));
        let (sender, receiver) = mpsc::unbounded_channel();
        let session = Session {
            connection: self.connection,
            key: key.clone(),
            instance: instance.clone(),
            ttl: i64::try_from(self.ttl.as_secs().max(1)).unwrap_or(i64::MAX),
            health: Arc::clone(&health),
        };
        let thread = std::thread::Builder::new()
            .name("hotconf-etcd-fleet".into())
            .spawn(move || session.run(receiver))
            .map_err(|e| Error::io("cannot start the fleet reporter's thread", e))?;
        Ok(Reporter {
            identity: Identity {
                instance,
                host,
                pid,
            },
            key,
            tracker: self.tracker,
            progress: Mutex::default(),
            health,
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }
}

impl Observer for Reporter {
    fn observe(&self, event: &Event) {
        let hash = content_hash_of_event(self.tracker.prefix(), event);
        let revision = self.tracker.get(&hash).map(|s| s.revision);
        let mut progress = lock(&self.progress);
        if let (Some(record), Some(sender)) = (
            record::update(&self.identity, &mut progress, event, hash, revision),
            lock(&self.sender).as_ref(),
        ) {
            // The thread is gone only after a stop.
            let _ = sender.send(record);
        }
    }

    fn health(&self) -> Option<ObserverHealth> {
        let error = lock(&self.health).clone();
        Some(
            ObserverHealth::new("fleet", error.is_none(), error).with_detail(
                serde_json::json!({"instance": self.identity.instance, "key": self.key}),
            ),
        )
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("instance", &self.identity.instance)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The reporter's thread: one connection and lease at a time.
struct Session {
    connection: Connection,
    key: String,
    instance: String,
    ttl: i64,
    health: Arc<Mutex<Option<String>>>,
}

/// Why a connection ended.
enum End {
    /// The reporter was dropped.
    Stopped,
    /// etcd trouble: reconnect.
    Lost(String),
}

impl Session {
    fn run(self, mut receiver: mpsc::UnboundedReceiver<Record>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                self.set_health(Some(format!("cannot start a runtime: {e}")));
                return;
            }
        };
        runtime.block_on(async {
            let Some(mut latest) = receiver.recv().await else {
                return;
            };
            let mut backoff = Duration::from_millis(100);
            let mut previous = None;
            loop {
                match self
                    .connected(&mut receiver, &mut latest, &mut previous)
                    .await
                {
                    End::Stopped => return,
                    End::Lost(error) => self.trouble(error),
                }
                let sleep = tokio::time::sleep(backoff);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        () = &mut sleep => break,
                        record = receiver.recv() => match record {
                            Some(record) => latest = record,
                            None => return,
                        },
                    }
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        });
    }

    fn set_health(&self, error: Option<String>) {
        *lock(&self.health) = error;
    }

    /// Shows `error` in the health; logs it when it is news (retries repeat it).
    fn trouble(&self, error: String) {
        let mut health = lock(&self.health);
        if health.as_deref() != Some(error.as_str()) {
            tracing::warn!(instance = %self.instance, "fleet status: {error}");
        }
        *health = Some(error);
    }

    /// Connects, takes a lease, claims the key and keeps the record current until the
    /// reporter is dropped or etcd trouble ends the connection.
    async fn connected(
        &self,
        receiver: &mut mpsc::UnboundedReceiver<Record>,
        latest: &mut Record,
        previous: &mut Option<i64>,
    ) -> End {
        let lost = |what: &str, e: &dyn std::fmt::Display| End::Lost(format!("{what}: {e}"));
        // Each step may take a timeout while etcd does not answer: a stop does not wait.
        let Some(client) = or_stop(receiver, latest, self.connection.connect()).await else {
            return End::Stopped;
        };
        let mut client = match client {
            Ok(client) => client,
            Err(e) => return lost("cannot report to etcd", &e),
        };
        let Some(granted) = or_stop(receiver, latest, client.lease_grant(self.ttl, None)).await
        else {
            return End::Stopped;
        };
        let lease = match granted {
            Ok(response) => response.id(),
            Err(e) => return lost("cannot take a lease for the status record", &e),
        };
        // The lease of the last connection may still hold our record: taken over below.
        let earlier = previous.replace(lease);
        let Some(kept) = or_stop(receiver, latest, client.lease_keep_alive(lease)).await else {
            // Nothing is bound to the lease yet; it expires on its own.
            return End::Stopped;
        };
        let (mut keeper, mut stream): (LeaseKeeper, LeaseKeepAliveStream) = match kept {
            Ok(pair) => pair,
            Err(e) => return lost("cannot keep the status record's lease", &e),
        };
        let period = Duration::from_millis(u64::try_from(self.ttl).unwrap_or(1) * 1000 / 3);
        let mut renew = tokio::time::interval(period.max(Duration::from_millis(300)));
        let mut retry = tokio::time::interval(Duration::from_secs(1));
        let mut owned = false;
        let end = loop {
            tokio::select! {
                record = receiver.recv() => match record {
                    Some(record) => {
                        *latest = record;
                        if owned {
                            match self.write(&mut client, lease, latest).await {
                                Ok(true) => {}
                                // Lost the key (the lease expired): claim it again.
                                Ok(false) => owned = false,
                                Err(e) => break lost("cannot write the status record", &e),
                            }
                        }
                    }
                    None => break End::Stopped,
                },
                _ = renew.tick() => {
                    if let Err(e) = keeper.keep_alive().await {
                        break lost("cannot renew the status record's lease", &e);
                    }
                }
                response = stream.message() => match response {
                    Ok(Some(response)) if response.ttl() > 0 => {}
                    Ok(Some(_)) => break End::Lost("the status record's lease expired".into()),
                    Ok(None) => break End::Lost("the lease keep-alive stream ended".into()),
                    Err(e) => break lost("the lease keep-alive failed", &e),
                },
                _ = retry.tick(), if !owned => match self.claim(&mut client, lease, earlier, latest).await {
                    Ok(None) => {
                        owned = true;
                        self.set_health(None);
                    }
                    Ok(Some(holder)) => {
                        let error = format!(
                            "instance name `{}` is in use by {holder}; its status is not \
                             reported until that instance's lease expires (give each \
                             instance its own name)",
                            self.instance
                        );
                        self.trouble(error);
                    }
                    Err(e) => break lost("cannot write the status record", &e),
                },
            }
        };
        if matches!(end, End::Stopped) {
            // Gone at once rather than after the TTL; best effort.
            let _ = tokio::time::timeout(Duration::from_secs(2), client.lease_revoke(lease)).await;
        }
        end
    }

    /// Creates the key under the lease if nobody holds it, or moves it over from `earlier`
    /// (this reporter's lease before a reconnect): `None` when it is ours, else who holds it.
    async fn claim(
        &self,
        client: &mut Client,
        lease: i64,
        earlier: Option<i64>,
        record: &Record,
    ) -> Result<Option<String>, etcd_client::Error> {
        let value = json(record);
        let txn = Txn::new()
            .when([Compare::create_revision(
                self.key.as_str(),
                CompareOp::Equal,
                0,
            )])
            .and_then([TxnOp::put(
                self.key.as_str(),
                value,
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(self.key.as_str(), None)]);
        let response = client.txn(txn).await?;
        if response.succeeded() {
            return Ok(None);
        }
        let holder = response.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(get) => get.kvs().first().cloned(),
            _ => None,
        });
        match holder {
            Some(kv) if kv.lease() == lease => {
                // Ours already (a retry after a lost answer): write the latest.
                self.write(client, lease, record).await.map(|_| None)
            }
            Some(kv) if Some(kv.lease()) == earlier && kv.lease() != 0 => {
                let old = kv.lease();
                let txn = Txn::new()
                    .when([Compare::lease(self.key.as_str(), CompareOp::Equal, old)])
                    .and_then([TxnOp::put(
                        self.key.as_str(),
                        json(record),
                        Some(PutOptions::new().with_lease(lease)),
                    )]);
                if client.txn(txn).await?.succeeded() {
                    // Nothing else is bound to the old lease; best effort.
                    let _ = client.lease_revoke(old).await;
                    Ok(None)
                } else {
                    Ok(Some("an instance that just took the name".to_owned()))
                }
            }
            Some(kv) => Ok(Some(match serde_json::from_slice::<Record>(kv.value()) {
                Ok(other) => format!("host {} pid {}", other.host, other.pid),
                Err(_) => "another writer".to_owned(),
            })),
            // Gone between the compare and the get: the next retry takes it.
            None => Ok(Some("an instance that just stopped".to_owned())),
        }
    }

    /// Writes the record if the key is still under our lease; `false` when it is not.
    async fn write(
        &self,
        client: &mut Client,
        lease: i64,
        record: &Record,
    ) -> Result<bool, etcd_client::Error> {
        let txn = Txn::new()
            .when([Compare::lease(self.key.as_str(), CompareOp::Equal, lease)])
            .and_then([TxnOp::put(
                self.key.as_str(),
                json(record),
                Some(PutOptions::new().with_lease(lease)),
            )]);
        Ok(client.txn(txn).await?.succeeded())
    }
}

/// Runs `step` unless the reporter stops first (`None`); records that arrive meanwhile
/// become the latest.
async fn or_stop<F: std::future::Future>(
    receiver: &mut mpsc::UnboundedReceiver<Record>,
    latest: &mut Record,
    step: F,
) -> Option<F::Output> {
    tokio::pin!(step);
    loop {
        tokio::select! {
            output = &mut step => return Some(output),
            record = receiver.recv() => match record {
                Some(record) => *latest = record,
                None => return None,
            },
        }
    }
}

fn json(record: &Record) -> Vec<u8> {
    // A record of strings and numbers always serializes.
    serde_json::to_vec(record).unwrap_or_default()
}
