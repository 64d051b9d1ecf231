//! What watching costs: the time from the end of a save to the new snapshot being visible,
//! and what an idle watcher adds to a process. Figures and the machine they were measured
//! on are in BENCHMARKS.md; run with `cargo bench -p hotconf --bench watch`.
//!
//! Not a criterion benchmark: latency is a distribution over real saves with a real
//! debounce window, and idle cost is measured in child processes (this binary run again
//! with `--idle watching` or `--idle baseline`), each reading its own CPU time from
//! /proc/self/task/*/schedstat (nanoseconds) and its resident memory from /proc/self/status.
//! Without `--bench` (as `cargo test --benches` runs it) it does a short smoke run.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hotconf::Reloader;
use serde_json::Value;

const DEBOUNCE: Duration = Duration::from_millis(100);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--idle") {
        let seconds = args.get(at + 2).and_then(|s| s.parse().ok()).unwrap_or(10);
        idle(&args[at + 1], Duration::from_secs(seconds));
        return;
    }
    // `cargo bench` passes --bench; `cargo test --benches` does not: a short smoke run then.
    let full = args.iter().any(|a| a == "--bench");
    let (saves, idle_secs) = if full { (200, 10) } else { (3, 1) };

    println!("machine: {} ({} CPUs)", cpu_model(), cpus());
    println!(
        "debounce: {} ms, {saves} saves per writer",
        DEBOUNCE.as_millis()
    );
    for writer in [Writer::Rename, Writer::InPlace] {
        latency(writer, saves);
    }
    idle_comparison(Duration::from_secs(idle_secs));
}

#[derive(Clone, Copy, Debug)]
enum Writer {
    /// Temp file, then rename over (vim's default, sed -i, editors' atomic save).
    Rename,
    /// Truncate and write the file itself (cp, shell redirection).
    InPlace,
}

impl Writer {
    fn save(self, path: &Path, text: &str) {
        match self {
            Self::Rename => {
                let temp = path.with_extension("toml.tmp");
                fs::write(&temp, text).unwrap();
                fs::rename(&temp, path).unwrap();
            }
            Self::InPlace => fs::write(path, text).unwrap(),
        }
    }
}

/// Saves `saves` times, each after the previous one is visible, and reports how long after
/// the save's last system call the new snapshot was published.
fn latency(writer: Writer, saves: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "n = 0\n").unwrap();
    let reloader = Reloader::<Value>::builder()
        .file(&path)
        .debounce(DEBOUNCE)
        .build()
        .unwrap();
    // Callbacks run on the watcher thread right after the swap: when readers see it.
    let (visible, seen) = mpsc::channel();
    reloader.on_change(move |update| {
        let _ = visible.send((Instant::now(), update.new.version()));
    });
    reloader.watch().unwrap();
    // Let the watcher's start-up catch-up window pass, so it does not join the first save.
    std::thread::sleep(DEBOUNCE * 3);

    let mut above = Vec::new();
    for n in 1..=saves {
        writer.save(&path, &format!("n = {n}\n"));
        let saved = Instant::now();
        let (at, version) = seen
            .recv_timeout(Duration::from_secs(10))
            .expect("the save became visible");
        assert_eq!(version, n + 1, "one reload per save");
        above.push(at.duration_since(saved).as_secs_f64() * 1e3 - DEBOUNCE.as_secs_f64() * 1e3);
    }
    above.sort_by(f64::total_cmp);
    let pct = |p: f64| above[((above.len() - 1) as f64 * p).round() as usize];
    println!(
        "save -> visible, {writer:?}: p50 = debounce + {:.2} ms, p99 = debounce + {:.2} ms, max = debounce + {:.2} ms",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
}

/// Runs the idle measurement in fresh processes: not watching, watching, and polling once
/// a second (the fallback when native watching fails).
fn idle_comparison(period: Duration) {
    let exe = std::env::current_exe().unwrap();
    let run = |mode: &str| {
        let output = Command::new(&exe)
            .args(["--idle", mode, &period.as_secs().to_string()])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let baseline = run("baseline");
    let watching = run("watching");
    let polling = run("polling");
    let field = |report: &str, key: &str| -> f64 {
        report
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    for (name, report) in [
        ("not watching", &baseline),
        ("watching", &watching),
        ("polling every 1 s", &polling),
    ] {
        println!(
            "idle {} s, {name}: process cpu {:.4} % ({:.0} us), watcher threads cpu {:.0} us and {} wakeups, rss {:.0} KiB",
            period.as_secs(),
            field(report, "cpu_percent="),
            field(report, "cpu_us="),
            field(report, "watch_cpu_us="),
            field(report, "watch_switches="),
            field(report, "rss_kib="),
        );
    }
    for (name, report) in [("watcher", &watching), ("polling watcher", &polling)] {
        println!(
            "idle {name} adds: cpu {:+.4} %, rss {:+.0} KiB",
            field(report, "cpu_percent=") - field(&baseline, "cpu_percent="),
            field(report, "rss_kib=") - field(&baseline, "rss_kib="),
        );
    }
}

/// In a child process: the same reloader, not watching, watching or polling, idle for
/// `period`.
fn idle(mode: &str, period: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "n = 0\n").unwrap();
    let reloader = Reloader::<Value>::builder()
        .file(&path)
        .debounce(DEBOUNCE)
        .build()
        .unwrap();
    match mode {
        "watching" => reloader.watch().unwrap(),
        "polling" => reloader.watch_polling(Duration::from_secs(1)).unwrap(),
        _ => {}
    }
    // Past start-up (the watcher's one catch-up read) before measuring.
    std::thread::sleep(DEBOUNCE * 5);
    // The process's CPU time is read innermost, so reading the threads' details is not
    // counted as idle cost.
    let watch0 = watch_threads();
    let cpu0 = cpu_ns();
    std::thread::sleep(period);
    let cpu1 = cpu_ns();
    let watch1 = watch_threads();
    let cpu = cpu1 - cpu0;
    println!("cpu_us={}", cpu / 1000);
    println!(
        "cpu_percent={}",
        cpu as f64 / period.as_nanos() as f64 * 100.0
    );
    println!("watch_cpu_us={}", (watch1.0 - watch0.0) / 1000);
    println!("watch_switches={}", watch1.1 - watch0.1);
    println!("rss_kib={}", rss_kib());
    drop(reloader);
}

/// CPU time of every thread of this process, in nanoseconds.
fn cpu_ns() -> u64 {
    fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// CPU time (ns) and context switches of the watcher's threads (ours and notify's): what
/// they cost and how often they woke.
fn watch_threads() -> (u64, u64) {
    fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let task = task.ok()?.path();
            let name = fs::read_to_string(task.join("comm")).ok()?;
            if !(name.starts_with("hotconf-watch") || name.starts_with("notify-rs")) {
                return None;
            }
            let cpu = fs::read_to_string(task.join("schedstat"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()?;
            let status = fs::read_to_string(task.join("status")).ok()?;
            let switches = status
                .lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
            Some((cpu, switches))
        })
        .fold((0, 0), |(c, s), (cpu, switches)| (c + cpu, s + switches))
}

fn rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into())
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
