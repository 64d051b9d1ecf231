//! A fleet against one etcd: how long from a put until every instance applied it, and
//! until `fleet status` agrees.
//!
//! `cargo bench -p hotconf-etcd --bench fleet` starts its own etcd (data on tmpfs when
//! there is one: etcd 3.4 syncs every write) and `INSTANCES` (default 100) instances in this
//! process, each a real `Reloader` with its own `EtcdSource` (its own client and watch)
//! and its own fleet `Reporter`. Then, after one warm-up put that is not counted, `PUTS`
//! (default 50) times: one put of the config;
//! the time until all instances applied that version (from just before the put, by one
//! clock); each instance's own apply time (`Event::elapsed`, the reload alone); and the
//! time until `fleet_status` reads every instance SYNCED on the new content.
//!
//! Prints p50, p99 and max of each. Not a test: `cargo test` does not run it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/etcd.rs"]
mod etcd;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use hotconf::{Event, Outcome, Reloader};
use hotconf_etcd::{Connection, EtcdSource, Prefix, Reporter, fleet_status_blocking};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn quantiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index]
    };
    format!(
        "p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        // `cargo bench -- --list` asks every bench target for its cases.
        println!("fleet: bench");
        return;
    }
    let instances = env("INSTANCES", 100);
    let puts = env("PUTS", 50);
    assert!(etcd::available(), "etcd is not installed");
    let etcd = etcd::Etcd::start();
    let endpoint = etcd.endpoint();
    let prefix = Prefix::new("/bench/").unwrap();
    etcd.put("/bench/app.toml", "rpm = -1\n");

    // Every instance tells this thread (instance, version, when it was applied, how long
    // its reload took).
    let (applied, events) = mpsc::channel::<(usize, u64, Instant, Duration)>();
    let started = Instant::now();
    let mut fleet = Vec::new();
    for i in 0..instances {
        let source = EtcdSource::new(Connection::new([endpoint.clone()]), prefix.clone());
        let reporter = Reporter::builder(Connection::new([endpoint.clone()]), source.tracker())
            .instance(format!("bench-{i:03}"))
            .build()
            .unwrap();
        let applied = std::sync::Mutex::new(applied.clone());
        let reloader = Reloader::<serde_json::Value>::builder()
            .name(format!("bench-{i:03}"))
            .source(source)
            .observer(reporter)
            .observer(move |event: &Event| {
                if event.outcome == Outcome::Applied {
                    let _ = applied.lock().unwrap().send((
                        i,
                        event.version,
                        Instant::now(),
                        event.elapsed,
                    ));
                }
            })
            .build()
            .unwrap();
        fleet.push(reloader);
    }
    println!(
        "{instances} instances started in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let connection = Connection::new([endpoint.clone()]);
    let wait_synced = |deadline: Duration| -> Duration {
        let from = Instant::now();
        loop {
            let status = fleet_status_blocking(&connection, &prefix).unwrap();
            if status.synced() && status.instances.len() == instances {
                return from.elapsed();
            }
            assert!(from.elapsed() < deadline, "the fleet never agreed");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    wait_synced(Duration::from_secs(60));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut client = runtime
        .block_on(Connection::new([endpoint.clone()]).connect())
        .unwrap();
    let (mut all, mut reloads, mut agreed) = (Vec::new(), Vec::new(), Vec::new());
    // Put 0 warms up: every instance's first reload after its load pays one-time costs
    // (first allocations of its history and channels, cold caches) and is not counted.
    for put in 0..=puts {
        let version = put as u64 + 2;
        let before = Instant::now();
        runtime
            .block_on(client.put("/bench/app.toml", format!("rpm = {put}\n"), None))
            .unwrap();
        let mut seen = vec![false; instances];
        let mut last = before;
        while seen.iter().any(|s| !s) {
            let (i, v, at, elapsed) = events
                .recv_timeout(Duration::from_secs(30))
                .expect("every instance applies the put");
            assert_eq!(v, version, "instance {i} applied another version");
            seen[i] = true;
            last = last.max(at);
            reloads.push(elapsed);
        }
        let synced = before.elapsed() + wait_synced(Duration::from_secs(30));
        if std::env::var_os("VERBOSE").is_some() {
            eprintln!("put {put}: {:.2} ms", (last - before).as_secs_f64() * 1e3);
        }
        if put == 0 {
            reloads.clear();
            continue;
        }
        all.push(last - before);
        agreed.push(synced);
    }
    println!("{puts} puts, {instances} instances, etcd {endpoint}");
    println!("put -> all {instances} applied:      {}", quantiles(all));
    println!("put -> fleet status all SYNCED: {}", quantiles(agreed));
    println!("one instance's reload (elapsed): {}", quantiles(reloads));
    drop(fleet);
}
