//! What the EtcdSource tests share: an instance (a real `hotconf::Reloader` over a real
//! `EtcdSource`) whose events can be waited on, a metrics recorder that remembers values,
//! and a TCP proxy that can cut an instance off from etcd without stopping etcd.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hotconf::{Event, Outcome, Reloader, SourceHealth};
use hotconf_etcd::{Connection, EtcdSource, Prefix, Tracker};

/// How long a test waits for anything.
pub const DEADLINE: Duration = Duration::from_secs(15);

pub type Config = serde_json::Value;

/// A reloader over an EtcdSource, with every event on a channel.
pub struct Instance {
    pub reloader: Reloader<Config>,
    pub events: Receiver<Event>,
    pub tracker: Tracker,
}

/// A source with timers fit for tests: quick reconnects, frequent progress requests.
pub fn source(endpoint: &str, prefix: &str) -> EtcdSource {
    EtcdSource::new(Connection::new([endpoint]), Prefix::new(prefix).unwrap())
        .backoff(Duration::from_millis(50), Duration::from_millis(300))
        .progress_every(Duration::from_millis(200))
}

impl Instance {
    pub fn start(source: EtcdSource) -> Self {
        Self::try_start(source).unwrap()
    }

    pub fn try_start(source: EtcdSource) -> Result<Self, hotconf::Error> {
        let tracker = source.tracker();
        let (tx, events) = mpsc::channel();
        let tx = Mutex::new(tx);
        let reloader = Reloader::<Config>::builder()
            .source(source)
            .observer(move |event: &Event| {
                let _ = tx.lock().unwrap().send(event.clone());
            })
            .build()?;
        Ok(Self {
            reloader,
            events,
            tracker,
        })
    }

    /// The next attempt's event (`detected` ones skipped).
    pub fn next(&self) -> Event {
        let until = Instant::now() + DEADLINE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let event = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no event within {DEADLINE:?}"));
            if event.outcome != Outcome::Detected {
                return event;
            }
        }
    }

    /// The next event, which must be `outcome`.
    pub fn expect(&self, outcome: Outcome) -> Event {
        let event = self.next();
        assert_eq!(event.outcome, outcome, "{event:#?}");
        event
    }

    /// The live config as JSON.
    pub fn config(&self) -> Config {
        (**self.reloader.current()).clone()
    }

    /// The source's health in the status.
    pub fn health(&self) -> SourceHealth {
        self.reloader.status().sources[0].health.clone()
    }

    /// The revision of the source's last push, in the status.
    pub fn revision(&self) -> Option<u64> {
        self.reloader.status().sources[0].revision
    }

    /// Waits until the health matches.
    pub fn wait_health(&self, what: &str, check: impl Fn(&SourceHealth) -> bool) -> SourceHealth {
        crate::etcd::wait_for(DEADLINE, what, || {
            let health = self.health();
            check(&health).then_some(health)
        })
    }
}

/// Whether `health` is a trouble report (error or degraded).
pub fn troubled(health: &SourceHealth) -> bool {
    !matches!(health, SourceHealth::Connected)
}

/// Whether the process has a thread of this name (as the kernel keeps it: 15 bytes).
pub fn has_thread(name: &str) -> bool {
    let name = &name[..name.len().min(15)];
    std::fs::read_dir("/proc/self/task").unwrap().any(|task| {
        let comm = task.unwrap().path().join("comm");
        std::fs::read_to_string(comm).is_ok_and(|c| c.trim() == name)
    })
}

// ---- metrics --------------------------------------------------------------------------

/// A metrics recorder that remembers each series' last value, keyed
/// `name{label=value,…}` with the labels in order.
#[derive(Default)]
pub struct Recorded(Mutex<HashMap<String, Arc<Value>>>);

#[derive(Default)]
pub struct Value(AtomicU64);

impl metrics::CounterFn for Value {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::SeqCst);
    }
}

impl metrics::GaugeFn for Value {
    fn increment(&self, value: f64) {
        self.set(f64::from_bits(self.0.load(Ordering::SeqCst)) + value);
    }
    fn decrement(&self, value: f64) {
        self.set(f64::from_bits(self.0.load(Ordering::SeqCst)) - value);
    }
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::SeqCst);
    }
}

impl metrics::HistogramFn for Value {
    fn record(&self, _value: f64) {}
}

impl Recorded {
    fn series(&self, key: &metrics::Key) -> Arc<Value> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        Arc::clone(self.0.lock().unwrap().entry(name).or_default())
    }
}

impl metrics::Recorder for Recorded {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.series(key))
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(self.series(key))
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::from_arc(self.series(key))
    }
}

static RECORDED: OnceLock<&'static Recorded> = OnceLock::new();

/// The process's recorder (installed on first use; tests use distinct prefixes).
fn recorded() -> &'static Recorded {
    RECORDED.get_or_init(|| {
        let recorded: &'static Recorded = Box::leak(Box::default());
        metrics::set_global_recorder(recorded).unwrap();
        recorded
    })
}

/// Installs the recorder; call before building the instance.
pub fn record_metrics() {
    recorded();
}

/// A counter's value; 0 when never recorded.
pub fn counter(series: &str) -> u64 {
    let map = recorded().0.lock().unwrap();
    map.get(series).map_or(0, |v| v.0.load(Ordering::SeqCst))
}

/// A gauge's value, if recorded.
pub fn gauge(series: &str) -> Option<f64> {
    let map = recorded().0.lock().unwrap();
    map.get(series)
        .map(|v| f64::from_bits(v.0.load(Ordering::SeqCst)))
}

// ---- proxy ----------------------------------------------------------------------------

/// A TCP proxy on a free loopback port in front of etcd: `cut` closes every connection
/// through it and refuses new ones until `mend`. Lets a test take one instance off etcd
/// while etcd keeps running (so the test can write and compact meanwhile).
pub struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s, st) = (Arc::clone(&cut), Arc::clone(&streams), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                if c.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mut streams = s.lock().unwrap();
                streams.push(client.try_clone().unwrap());
                streams.push(server.try_clone().unwrap());
                drop(streams);
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Self {
            port,
            cut,
            streams,
            stop,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Lets connections through again.
    pub fn mend(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
