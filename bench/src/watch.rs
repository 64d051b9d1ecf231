//! The file watchers, each measured in a fresh child process (this binary run again with
//! `--child …`): save → visible latency, the CPU time of an idle watching process, and a
//! storm of writes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hotconf::{Reloader, Validate};
use hotswap_config::prelude::HotswapConfig;
use serde::{Deserialize, Serialize};

use crate::runner::median;
use crate::sys;

/// The debounce both watchers are given.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// The watched config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Small {
    n: u64,
    name: String,
}

impl Validate for Small {}

fn text(n: u64) -> String {
    format!("n = {n}\nname = \"service\"\n")
}

/// A watching reloader of either library, in this process.
enum Watched {
    Hotconf(Reloader<Small>),
    Hotswap {
        config: HotswapConfig<Small>,
        // Keeps the subscription alive; dropping it spawns a task, so it is dropped inside
        // the runtime (see Drop).
        subscription: Option<Box<dyn std::any::Any>>,
        // Drives hotswap-config's watcher tasks.
        rt: tokio::runtime::Runtime,
    },
    None(Reloader<Small>),
}

impl Watched {
    fn start(who: &str, path: &Path, debounce: Duration, reloads: Arc<AtomicU64>) -> Self {
        match who {
            "hotconf" | "none" => {
                let reloader = Reloader::<Small>::builder()
                    .file(path)
                    .debounce(debounce)
                    .build()
                    .expect("hotconf loads");
                reloader.on_change(move |_| {
                    reloads.fetch_add(1, Ordering::Relaxed);
                });
                if who == "none" {
                    return Self::None(reloader);
                }
                reloader.watch().expect("hotconf watches");
                Self::Hotconf(reloader)
            }
            "hotswap" => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                let config: HotswapConfig<Small> = rt
                    .block_on(
                        HotswapConfig::builder()
                            .with_file(path)
                            .with_file_watch(true)
                            .with_watch_debounce(debounce)
                            .build(),
                    )
                    .expect("hotswap-config loads");
                let subscription = rt.block_on(config.subscribe(move || {
                    reloads.fetch_add(1, Ordering::Relaxed);
                }));
                Self::Hotswap {
                    config,
                    subscription: Some(Box::new(subscription)),
                    rt,
                }
            }
            other => panic!("no such watcher: {other}"),
        }
    }

    fn value(&self) -> u64 {
        match self {
            Self::Hotconf(r) | Self::None(r) => r.handle().load().n,
            Self::Hotswap { config, .. } => config.get().n,
        }
    }

    /// Waits until the config shows `n`; the time it took, or `None` past `limit`.
    fn wait_for(&self, n: u64, limit: Duration) -> Option<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            if self.value() == n {
                return Some(Instant::now());
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_micros(50));
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Self::Hotswap {
            subscription, rt, ..
        } = self
        {
            let _inside = rt.enter();
            drop(subscription.take());
        }
    }
}

fn save(path: &Path, writer: &str, text: &str) {
    match writer {
        "rename" => {
            let temp = path.with_extension("toml.tmp");
            fs::write(&temp, text).expect("write the temp file");
            fs::rename(&temp, path).expect("rename over");
        }
        _ => fs::write(path, text).expect("write in place"),
    }
}

fn temp_file(root: &Path) -> PathBuf {
    let path = root.join("app.toml");
    fs::write(&path, text(0)).expect("write the config");
    path
}

/// In a child: `latency WHO WRITER SAVES DIR DEBOUNCE_MS`, `idle WHO SECS DIR`, `storm WHO WRITES DIR`.
/// Prints `key=value` lines.
pub fn child(args: &[String]) {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let reloads = Arc::new(AtomicU64::new(0));
    match arg(0) {
        "latency" => {
            let saves: u64 = arg(3).parse().expect("a count");
            let path = temp_file(Path::new(arg(4)));
            let debounce = Duration::from_millis(arg(5).parse().expect("a debounce"));
            let watched = Watched::start(arg(1), &path, debounce, Arc::clone(&reloads));
            // Past the watcher's start-up before the first save.
            thread::sleep(DEBOUNCE * 3);
            let mut missed = 0;
            let mut in_a_row = 0;
            for n in 1..=saves {
                save(&path, arg(2), &text(n));
                let saved = Instant::now();
                match watched.wait_for(n, Duration::from_secs(2)) {
                    Some(at) => {
                        println!("ms={}", (at - saved).as_secs_f64() * 1e3);
                        in_a_row = 0;
                    }
                    None => {
                        missed += 1;
                        in_a_row += 1;
                    }
                }
                if in_a_row == 3 {
                    // The watch is gone: count the rest as missed rather than wait them out.
                    missed += saves - n;
                    break;
                }
                // Let a leading-edge debounce (hotswap-config's) reset between saves.
                thread::sleep(DEBOUNCE + DEBOUNCE / 2);
            }
            println!("missed={missed}");
        }
        "idle" => {
            let secs: u64 = arg(2).parse().expect("seconds");
            let path = temp_file(Path::new(arg(3)));
            let watched = Watched::start(arg(1), &path, DEBOUNCE, reloads);
            thread::sleep(DEBOUNCE * 5);
            let before = sys::cpu_time();
            thread::sleep(Duration::from_secs(secs));
            let cpu = sys::cpu_time() - before;
            println!("cpu_us={}", cpu.as_micros());
            println!("rss_kib={}", sys::rss_kib());
            drop(watched);
        }
        "storm" => {
            let writes: u64 = arg(2).parse().expect("a count");
            let path = temp_file(Path::new(arg(3)));
            let watched = Watched::start(arg(1), &path, DEBOUNCE, Arc::clone(&reloads));
            thread::sleep(DEBOUNCE * 3);
            let before = reloads.load(Ordering::Relaxed);
            let start = Instant::now();
            for n in 1..=writes {
                fs::write(&path, text(n)).expect("write in place");
            }
            let last = Instant::now();
            let seen = watched.wait_for(writes, Duration::from_secs(30));
            let at_visible = reloads.load(Ordering::Relaxed) - before;
            thread::sleep(Duration::from_secs(1));
            let after = reloads.load(Ordering::Relaxed) - before;
            println!("storm_ms={}", (last - start).as_secs_f64() * 1e3);
            match seen {
                Some(at) => println!("visible_ms={}", (at - last).as_secs_f64() * 1e3),
                None => println!("visible_ms=NaN"),
            }
            println!("reloads_at_visible={at_visible}");
            println!("reloads_after_1s={after}");
        }
        other => panic!("no such child: {other}"),
    }
}

/// Runs a child and returns its `key=value` output, and how many of its stderr lines
/// mention a failed reload.
fn run_child(args: &[&str]) -> (Vec<(String, String)>, usize) {
    let exe = std::env::current_exe().expect("this binary");
    let output = Command::new(exe)
        .arg("--child")
        .args(args)
        .output()
        .expect("run a child");
    assert!(output.status.success(), "child {args:?} failed: {output:?}");
    let pairs = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let failed = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.to_lowercase().contains("fail"))
        .count();
    (pairs, failed)
}

fn get(pairs: &[(String, String)], key: &str) -> f64 {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Save → visible figures of one watcher and writer.
#[derive(Clone, Debug)]
pub struct Latency {
    /// hotconf or hotswap-config.
    pub who: &'static str,
    /// The debounce it was given, ms.
    pub debounce_ms: u64,
    /// in place or rename.
    pub writer: &'static str,
    /// Milliseconds from the save's return to the new value being visible.
    pub p50: f64,
    /// See `p50`.
    pub p99: f64,
    /// See `p50`.
    pub max: f64,
    /// Saves never seen within 2 s.
    pub missed: u64,
    /// Saves made.
    pub saves: u64,
    /// Lines on stderr reporting a failed reload.
    pub failed: usize,
}

/// Idle CPU over a period.
#[derive(Clone, Debug)]
pub struct Idle {
    /// not watching, hotconf, hotswap-config.
    pub who: &'static str,
    /// CPU time (user + system), µs.
    pub cpu_us: f64,
    /// Resident set at the end, KiB.
    pub rss_kib: f64,
}

/// A storm of writes.
#[derive(Clone, Debug)]
pub struct Storm {
    /// hotconf or hotswap-config.
    pub who: &'static str,
    /// How long the writes took.
    pub storm_ms: f64,
    /// From the last write's return to its value being visible.
    pub visible_ms: f64,
    /// Reloads that applied by then.
    pub reloads: f64,
    /// Reloads that applied in the second after.
    pub reloads_after: f64,
    /// Lines on stderr reporting a failed reload.
    pub failed: usize,
}

/// Every watcher measurement.
#[derive(Clone, Debug)]
pub struct Watching {
    /// Save → visible.
    pub latency: Vec<Latency>,
    /// Idle processes.
    pub idle: Vec<Idle>,
    /// Seconds each idle process was measured.
    pub idle_secs: u64,
    /// Storms.
    pub storm: Vec<Storm>,
    /// Writes per storm.
    pub writes: u64,
}

/// Runs every watcher measurement in child processes.
pub fn run(quick: bool, root: &Path) -> Watching {
    let saves: u64 = if quick { 8 } else { 60 };
    let idle_secs: u64 = if quick { 2 } else { 10 };
    let writes: u64 = if quick { 1_000 } else { 10_000 };
    let dir = |name: &str| {
        let d = root.join(name);
        fs::create_dir_all(&d).expect("a child's dir");
        d.display().to_string()
    };
    let names = |who: &str| match who {
        "hotconf" => "hotconf",
        "hotswap" => "hotswap-config 0.2.2",
        _ => "not watching",
    };
    let mut latency = Vec::new();
    for writer in ["in place", "rename"] {
        let debounce = DEBOUNCE.as_millis() as u64;
        for (who, debounce_ms) in [
            ("hotconf", debounce),
            ("hotconf", 10),
            ("hotswap", debounce),
        ] {
            let w = if writer == "rename" {
                "rename"
            } else {
                "inplace"
            };
            let (pairs, failed) = run_child(&[
                "latency",
                who,
                w,
                &saves.to_string(),
                &dir(&format!("latency-{who}-{w}-{debounce_ms}")),
                &debounce_ms.to_string(),
            ]);
            let mut ms: Vec<f64> = pairs
                .iter()
                .filter(|(k, _)| k == "ms")
                .filter_map(|(_, v)| v.parse().ok())
                .collect();
            ms.sort_by(f64::total_cmp);
            let pct = |p: f64| {
                if ms.is_empty() {
                    f64::NAN
                } else {
                    ms[((ms.len() - 1) as f64 * p).round() as usize]
                }
            };
            let row = Latency {
                who: names(who),
                debounce_ms,
                writer,
                p50: median(ms.clone()),
                p99: pct(0.99),
                max: pct(1.0),
                missed: get(&pairs, "missed") as u64,
                saves,
                failed,
            };
            println!("save → visible: {row:?}");
            latency.push(row);
        }
    }
    let mut idle = Vec::new();
    for who in ["none", "hotconf", "hotswap"] {
        let (pairs, _) = run_child(&[
            "idle",
            who,
            &idle_secs.to_string(),
            &dir(&format!("idle-{who}")),
        ]);
        let row = Idle {
            who: names(who),
            cpu_us: get(&pairs, "cpu_us"),
            rss_kib: get(&pairs, "rss_kib"),
        };
        println!("idle: {row:?}");
        idle.push(row);
    }
    let mut storm = Vec::new();
    for who in ["hotconf", "hotswap"] {
        let (pairs, failed) = run_child(&[
            "storm",
            who,
            &writes.to_string(),
            &dir(&format!("storm-{who}")),
        ]);
        let row = Storm {
            who: names(who),
            storm_ms: get(&pairs, "storm_ms"),
            visible_ms: get(&pairs, "visible_ms"),
            reloads: get(&pairs, "reloads_at_visible"),
            reloads_after: get(&pairs, "reloads_after_1s"),
            failed,
        };
        println!("storm: {row:?}");
        storm.push(row);
    }
    Watching {
        latency,
        idle,
        idle_secs,
        storm,
        writes,
    }
}
