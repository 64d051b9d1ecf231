//! Reader and reload costs. Figures and the machine they were measured on are in
//! BENCHMARKS.md; run with `cargo bench -p hotconf --bench reload`.
//!
//! Readers are compared with the lock most hand-written hot-reload code uses
//! (`RwLock<Arc<T>>`), measured in the same run, so the ratio holds on a noisy machine.

#![allow(clippy::expect_used)] // a benchmark that cannot set up should stop loudly

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread;

use criterion::{Criterion, criterion_group, criterion_main};
use hotconf::source::{Defaults, Dir, Format, Source};
use hotconf::{Pipeline, Reloader, Validate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Gateway {
    server: serde_json::Value,
    limits: RateLimits,
    routes: Vec<serde_json::Value>,
    upstreams: serde_json::Value,
    database: serde_json::Value,
    labels: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct RateLimits {
    rpm: u32,
    burst: u32,
}

impl Validate for Gateway {}

fn example_dir() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/config"
    ))
}

fn readers(c: &mut Criterion) {
    let reloader = Reloader::<Gateway>::builder()
        .source(Dir::new(example_dir()))
        .build()
        .expect("the example config loads");
    let handle = reloader.handle();
    let locked = RwLock::new(reloader.current());

    let mut group = c.benchmark_group("read");
    group.bench_function("hotconf Handle::load", |b| {
        b.iter(|| black_box(handle.load().limits.rpm))
    });
    let limits = handle.map(|config: &Gateway| &config.limits);
    group.bench_function("hotconf Projection::load", |b| {
        b.iter(|| black_box(limits.load().rpm))
    });
    group.bench_function("hotconf Handle::load_full", |b| {
        b.iter(|| black_box(handle.load_full().limits.rpm))
    });
    group.bench_function("RwLock<Arc<T>> read + clone", |b| {
        b.iter(|| {
            let config = Arc::clone(&locked.read().expect("not poisoned"));
            black_box(config.limits.rpm)
        })
    });

    // The same reads while another thread applies a new config as fast as it can.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let reloader = reloader.clone();
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut rpm = 1;
            while !stop.load(Ordering::Relaxed) {
                rpm = rpm % 1000 + 1;
                let _ = reloader.update(move |config| config.limits.rpm = rpm);
            }
        })
    };
    group.bench_function("hotconf Handle::load during reloads", |b| {
        b.iter(|| black_box(handle.load().limits.rpm))
    });
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer thread");
    group.finish();
}

fn reloads(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(example_dir()).expect("example dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
    }
    let reloader = Reloader::<Gateway>::builder()
        .source(Dir::new(dir.path()))
        .build()
        .expect("the example config loads");
    let toml = dir.path().join("10-server.toml");
    let original = std::fs::read_to_string(&toml).expect("read");

    let mut group = c.benchmark_group("reload");
    group.bench_function("3 files, unchanged", |b| {
        b.iter(|| reloader.reload().expect("valid"))
    });
    let mut flip = false;
    group.bench_function("3 files, one value changed", |b| {
        b.iter(|| {
            flip = !flip;
            let rpm = if flip { "rpm = 601" } else { "rpm = 600" };
            std::fs::write(&toml, original.replace("rpm = 600", rpm)).expect("write");
            reloader.reload().expect("valid")
        })
    });
    group.finish();
}

fn parsing(c: &mut Criterion) {
    // A config of ~2,000 routes in each format.
    let routes: Vec<serde_json::Value> = (0..2000)
        .map(|i| serde_json::json!({"path": format!("/api/v{i}"), "upstream": "users", "timeout_ms": 2000, "retries": [1, 2, 4]}))
        .collect();
    let value = serde_json::json!({"routes": routes});
    let json = serde_json::to_string_pretty(&value).expect("json");
    let toml = toml::to_string(&value).expect("toml");
    let mut group = c.benchmark_group("parse 2000 routes");
    group.bench_function(format!("JSON ({} KiB)", json.len() / 1024), |b| {
        b.iter(|| {
            let sources: Vec<Box<dyn Source>> =
                vec![Box::new(Defaults::text(Format::Json, json.clone()))];
            Pipeline::new().check::<serde_json::Value>(&sources)
        })
    });
    group.bench_function("serde_json::Value baseline", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(&json).expect("valid"))
    });
    group.bench_function(format!("TOML ({} KiB)", toml.len() / 1024), |b| {
        b.iter(|| {
            let sources: Vec<Box<dyn Source>> =
                vec![Box::new(Defaults::text(Format::Toml, toml.clone()))];
            Pipeline::new().check::<serde_json::Value>(&sources)
        })
    });
    group.finish();
}

criterion_group!(benches, readers, reloads, parsing);
criterion_main!(benches);
