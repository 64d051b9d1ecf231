//! The read path: one field read through every kind of reader, on 1 and 2 threads, with
//! and without a writer storing new configs meanwhile.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Cache};
use hotconf::Reloader;
use hotconf::source::{Defaults, Format};
use hotswap_config::prelude::HotswapConfig;

use crate::data::{self, Config, Fmt};
use crate::runner::{self, Case, Group, Settings};
use crate::sys;

/// Case names.
pub const RAW: &str = "raw `ArcSwap::load`";
/// See [`RAW`].
pub const CACHE: &str = "`arc_swap::Cache::load`";
/// See [`RAW`].
pub const LOAD: &str = "hotconf `Handle::load()`";
/// See [`RAW`].
pub const PROJECTION: &str = "hotconf projection (`handle.map(..).load()`)";
/// See [`RAW`].
pub const CACHED: &str = "hotconf `handle.cached()` (`Cached::load`)";
/// See [`RAW`].
pub const RWLOCK: &str = "`RwLock<Arc<T>>` read + clone";
/// See [`RAW`].
pub const HOTSWAP: &str = "hotswap-config 0.2.2 `get()`";

/// Every reader of the same config.
struct Readers {
    swap: ArcSwap<Config>,
    lock: RwLock<Arc<Config>>,
    reloader: Reloader<Config>,
    hotswap: HotswapConfig<Config>,
}

/// The four read groups: 1 and 2 threads, without and with a writer.
pub fn run(settings: &Settings) -> (Vec<Group>, Vec<String>) {
    let (text, _) = data::texts(Fmt::Toml, 1_000);
    let initial = Fmt::Toml.parse(text.as_bytes());
    let readers = Arc::new(Readers {
        swap: ArcSwap::from_pointee(initial.clone()),
        lock: RwLock::new(Arc::new(initial.clone())),
        reloader: Reloader::<Config>::builder()
            .source(Defaults::text(Format::Toml, text))
            .build()
            .expect("hotconf loads the config"),
        hotswap: HotswapConfig::new(initial.clone()),
    });
    let mut groups = Vec::new();
    let mut notes = Vec::new();
    for writing in [false, true] {
        let writer = writing.then(|| Writer::start(Arc::clone(&readers), initial.clone()));
        for threads in [1, 2] {
            let title = format!(
                "read one field, {threads} thread{}, {}",
                if threads == 1 { "" } else { "s" },
                if writing {
                    "a writer storing new configs"
                } else {
                    "no writer"
                }
            );
            groups.push(group(settings, &title, &readers, threads));
        }
        if let Some(writer) = writer {
            notes.push(writer.stop());
        }
    }
    (groups, notes)
}

fn group(settings: &Settings, title: &str, readers: &Readers, threads: usize) -> Group {
    let handle = readers.reloader.handle();
    let projection = handle.map(|config: &Config| &config.limits);
    let cases = vec![
        reader(RAW, threads, || (), |()| readers.swap.load().limits.rpm),
        reader(
            CACHE,
            threads,
            || Cache::new(&readers.swap),
            |cache| cache.load().limits.rpm,
        ),
        reader(LOAD, threads, || (), |()| handle.load().limits.rpm),
        reader(PROJECTION, threads, || (), |()| projection.load().rpm),
        reader(
            CACHED,
            threads,
            || handle.cached(),
            |cached| cached.load().limits.rpm,
        ),
        reader(
            RWLOCK,
            threads,
            || (),
            |()| {
                let config = Arc::clone(&readers.lock.read().expect("not poisoned"));
                config.limits.rpm
            },
        ),
        reader(
            HOTSWAP,
            threads,
            || (),
            |()| readers.hotswap.get().limits.rpm,
        ),
    ];
    runner::compare(settings, title, 0, cases)
}

/// A case that reads on `threads` threads at once, each with its own state from `make`
/// (a cache), and reports the mean time per read.
fn reader<'a, S>(
    name: &str,
    threads: usize,
    make: impl Fn() -> S + Sync + 'a,
    op: impl Fn(&mut S) -> u32 + Sync + 'a,
) -> Case<'a> {
    // The thread's own CPU time, not the wall clock: on a shared machine a reader thread
    // that is preempted mid-batch would otherwise count the time it was not running.
    let timed = move |iters: u64| {
        let mut state = make();
        let start = sys::thread_cpu_time();
        for _ in 0..iters {
            black_box(op(&mut state));
        }
        sys::thread_cpu_time() - start
    };
    Case::timed(name, move |iters| {
        if threads == 1 {
            return timed(iters);
        }
        let barrier = Barrier::new(threads);
        let total: Duration = thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        timed(iters)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a reader thread"))
                .sum()
        });
        total / u32::try_from(threads).expect("few threads")
    })
}

/// A thread that stores a new config (one value toggled) into every reader in turn, then
/// sleeps 100 µs, until stopped.
struct Writer {
    stop: Arc<AtomicBool>,
    stores: Arc<AtomicU64>,
    started: Instant,
    thread: thread::JoinHandle<()>,
}

impl Writer {
    fn start(readers: Arc<Readers>, initial: Config) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stores = Arc::new(AtomicU64::new(0));
        let thread = {
            let stop = Arc::clone(&stop);
            let stores = Arc::clone(&stores);
            thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("a tokio runtime");
                let mut config = initial;
                while !stop.load(Ordering::Relaxed) {
                    config.limits.rpm = if config.limits.rpm == 600 { 601 } else { 600 };
                    readers.swap.store(Arc::new(config.clone()));
                    *readers.lock.write().expect("not poisoned") = Arc::new(config.clone());
                    readers
                        .reloader
                        .apply(config.clone())
                        .expect("hotconf applies");
                    rt.block_on(readers.hotswap.update(config.clone()))
                        .expect("hotswap-config updates");
                    stores.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(Duration::from_micros(100));
                }
            })
        };
        Self {
            stop,
            stores,
            started: Instant::now(),
            thread,
        }
    }

    /// Stops the writer; says how often it stored.
    fn stop(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the writer thread");
        let rate =
            self.stores.load(Ordering::Relaxed) as f64 / self.started.elapsed().as_secs_f64();
        format!("The writer stored a new config into every reader about {rate:.0} times a second.")
    }
}
