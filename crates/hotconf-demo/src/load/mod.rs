//! `hotconf-demo load`: starts the demo (this very binary) on a config of its own, drives
//! steady load over kept-alive connections while rewriting the config files through
//! different writers, checks what hotconf promises, and prints the figures.
//!
//! What is checked: no request fails; at least 95% of the answers are 2xx where the limits
//! allow them (429s only on the limited route, whose accepted rate follows its `rpm`); the
//! versions each connection sees never go back; every save has exactly the outcome it must
//! (a valid one is visible in answers, an invalid one is refused with its location while
//! the old config keeps answering, a restart-required one is pending in `/status`); the
//! admin history and the audit log list exactly those attempts; alerts were posted;
//! the service stops cleanly on SIGTERM.

mod edits;
mod service;
mod traffic;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

use edits::{Edit, Expect, Files, Writer};
use service::{Service, Webhook};
use traffic::Sample;

/// The load test's options.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoadArgs {
    /// How long to drive load, in seconds.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// How many times to rewrite the config files meanwhile.
    #[arg(long, default_value_t = 100)]
    saves: usize,
    /// How many kept-alive connections drive load.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// A pause after each request of each connection, in milliseconds (0: none).
    #[arg(long, default_value_t = 0)]
    pace_ms: u64,
    /// The demo binary to start; this one by default.
    #[arg(long, value_name = "PATH")]
    bin: Option<PathBuf>,
    /// Work in DIR (config, audit log, the service's log) and keep it afterwards.
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
}

/// How long to wait for the outcome of one save: generous, for a loaded machine.
const OUTCOME_WAIT: Duration = Duration::from_secs(30);

/// One save and what came of it.
#[derive(Debug)]
struct Done {
    edit: Edit,
    /// Seconds since the load started: the write, and its outcome seen.
    window: (f64, f64),
    event: Value,
}

pub(crate) fn run(args: &LoadArgs) -> anyhow::Result<()> {
    if args.connections < 2 {
        bail!("--connections: at least 2 (one drives the limited route)");
    }
    let bin = match &args.bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe().context("cannot find this binary")?,
    };
    let work = match &args.work {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("hotconf-demo-load-{}", std::process::id())),
    };
    let result = run_in(args, &bin, &work);
    if args.work.is_none() && result.is_ok() {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        println!("work directory kept: {}", work.display());
    }
    result
}

fn run_in(args: &LoadArgs, bin: &Path, work: &Path) -> anyhow::Result<()> {
    let (config, data, scratch) = (work.join("config"), work.join("data"), work.join("scratch"));
    for dir in [&config, &data, &scratch] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut files = Files::start();
    for (name, text) in files.all() {
        std::fs::write(config.join(name), text)?;
    }
    let webhook = Webhook::start()?;
    let mut service = Service::start(bin, &config, &data, &webhook.url, work.join("service.log"))?;
    let admin = traffic::agent();
    wait_for(
        "the API and the admin API to answer",
        Duration::from_secs(30),
        || {
            let api = traffic::request(&admin, &format!("{}/", service.api)).ok();
            let health = admin_text(&admin, &service.admin, "/healthz").is_ok();
            (api.is_some_and(|(status, _, _)| status == 200) && health).then_some(())
        },
    )?;
    if !edits::vim_available() {
        println!("vim not found: the editor's saves use sed -i");
    }

    let duration = Duration::from_secs(args.duration.max(5));
    let warmup = (duration / 10).clamp(Duration::from_secs(2), Duration::from_secs(5));
    let settle = Duration::from_secs(1);
    let spacing = (duration - warmup - settle) / u32::try_from(args.saves.max(1))?;
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let pace = Duration::from_millis(args.pace_ms);
    let threads = traffic::start(&service.api, args.connections, pace, start, &stop);

    std::thread::sleep(warmup);
    let rss_before = service.rss_kib();
    let mut done = Vec::new();
    let mut problems = Vec::new();
    for i in 0..args.saves {
        let due = start + warmup + spacing * u32::try_from(i)?;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let edit = files.edit(i);
        match save(&service, &admin, &config, &scratch, edit, start) {
            Ok((saved, mut found)) => {
                problems.append(&mut found);
                done.push(saved);
            }
            Err(error) => {
                problems.push(format!("save {i}: {error:#}"));
                break;
            }
        }
    }
    std::thread::sleep(settle);
    let rss_after = service.rss_kib();
    stop.store(true, Ordering::Relaxed);
    let connections: Vec<traffic::Connection> =
        threads.into_iter().filter_map(|t| t.join().ok()).collect();
    let elapsed = start.elapsed();
    if connections.len() != args.connections {
        problems.push("a connection thread panicked".to_owned());
    }

    let mut report = Report::default();
    report.traffic(&connections, &done, elapsed, &mut problems);
    problems.extend(check_history(&service, &admin, &data, &done)?);
    let rejected = done
        .iter()
        .filter(|d| d.event["event"] == "rejected")
        .count();
    if rejected > 0
        && wait_for("an alert at the webhook", OUTCOME_WAIT, || {
            (webhook.received() > 0).then_some(())
        })
        .is_err()
    {
        problems.push(format!("{rejected} rejected reloads, but no alert arrived"));
    }
    let metrics = admin_text(&admin, &service.admin, "/metrics").unwrap_or_default();
    for name in ["hotconf_config_reloads_total", "demo_requests_total"] {
        if !metrics.contains(name) {
            problems.push(format!("/metrics has no {name}"));
        }
    }
    if let (Some(before), Some(after)) = (rss_before, rss_after)
        && after > before.max(16 * 1024) * 3
    {
        problems.push(format!("RSS grew from {before} KiB to {after} KiB"));
    }
    let stopped = service.stop();

    report.print(args, &done, rss_before, rss_after, webhook.received());
    match stopped {
        Ok(took) => println!("  stop:      SIGTERM -> exit 0 in {} ms", took.as_millis()),
        Err(error) => problems.push(format!("{error:#}")),
    }
    if problems.is_empty() {
        println!("PASS");
        Ok(())
    } else {
        for problem in &problems {
            println!("  FAILED: {problem}");
        }
        let log = service.log_text();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        println!("the service's last log lines:");
        for line in tail.iter().rev() {
            println!("  | {line}");
        }
        bail!("{} check(s) failed", problems.len())
    }
}

/// Writes one save, waits for its outcome and checks it: the version, the answers, the
/// pending paths. Answers what happened and the problems found.
fn save(
    service: &Service,
    admin: &ureq::Agent,
    config: &Path,
    scratch: &Path,
    edit: Edit,
    start: Instant,
) -> anyhow::Result<(Done, Vec<String>)> {
    let status = admin_json(admin, &service.admin, "/status")?;
    let (seq_before, version_before) = (
        status["last_attempt"]["seq"].as_u64(),
        status["version"].as_u64(),
    );
    let (seq_before, version_before) = (seq_before.unwrap_or(0), version_before.unwrap_or(0));
    let written = start.elapsed().as_secs_f64();
    edits::write(edit.writer, &config.join(edit.file), &edit.text, scratch)
        .with_context(|| format!("cannot save {} with {}", edit.file, edit.writer.name()))?;
    let what = format!(
        "the outcome of '{}' ({} by {})",
        edit.label,
        edit.file,
        edit.writer.name()
    );
    let status = wait_for(&what, OUTCOME_WAIT, || {
        let status = admin_json(admin, &service.admin, "/status").ok()?;
        let last = &status["last_attempt"];
        (last["seq"].as_u64() > Some(seq_before) && last["event"] != "detected").then_some(status)
    })?;
    let seen = start.elapsed().as_secs_f64();
    let event = status["last_attempt"].clone();
    let version = event["version"].as_u64().unwrap_or(0);
    let mut problems = Vec::new();
    let label = format!("'{}' ({}, {})", edit.label, edit.file, edit.writer.name());
    if event["event"] != edit.expect.outcome() {
        problems.push(format!(
            "{label}: {} instead of {}: {event}",
            event["event"],
            edit.expect.outcome()
        ));
    }
    let expected_version = match edit.expect {
        Expect::Applied => version_before + 1,
        _ => version_before,
    };
    if version != expected_version {
        problems.push(format!(
            "{label}: version {version}, expected {expected_version}"
        ));
    }
    if let Expect::Rejected { located } = edit.expect {
        let errors = event["errors"].as_array().cloned().unwrap_or_default();
        let at_line = errors.iter().any(|e| {
            e["file"].as_str().is_some_and(|f| f.ends_with(edit.file))
                && e["line"].as_u64() > Some(0)
        });
        if errors.is_empty() || (located && !at_line) {
            problems.push(format!(
                "{label}: rejected without a located error: {event}"
            ));
        }
    }
    let pending: Vec<&str> = status["pending"]
        .as_array()
        .map(|p| p.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if pending != edit.pending {
        problems.push(format!(
            "{label}: pending {pending:?}, expected {:?}",
            edit.pending
        ));
    }
    if let Some(probe) = &edit.probe {
        let url = format!("{}{}", service.api, probe.path);
        match traffic::request(&traffic::agent(), &url) {
            Ok((_, answered, body)) => {
                let value = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|json| json.pointer(probe.pointer).cloned());
                if answered != expected_version || value.as_ref() != Some(&probe.value) {
                    problems.push(format!(
                        "{label}: {} answered version {answered} with {} = {value:?}, expected \
                         version {expected_version} with {}",
                        probe.path, probe.pointer, probe.value
                    ));
                }
            }
            Err(error) => problems.push(format!("{label}: probe {url}: {error}")),
        }
    }
    Ok((
        Done {
            edit,
            window: (written, seen),
            event,
        },
        problems,
    ))
}

/// The admin history and the audit log must list the first load and then exactly one
/// attempt per save, with the outcome and version seen when it was made.
fn check_history(
    service: &Service,
    admin: &ureq::Agent,
    data: &Path,
    done: &[Done],
) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let expected: Vec<(String, u64, u64)> = done
        .iter()
        .map(|d| {
            let e = &d.event;
            let outcome = e["event"].as_str().unwrap_or_default().to_owned();
            (
                outcome,
                e["version"].as_u64().unwrap_or(0),
                e["seq"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let history = admin_json(admin, &service.admin, "/history")?;
    let history: Vec<(String, u64, u64)> = history
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter(|e| e["event"] != "loaded")
                .map(|e| {
                    let outcome = e["event"].as_str().unwrap_or_default().to_owned();
                    (
                        outcome,
                        e["version"].as_u64().unwrap_or(0),
                        e["seq"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if history != expected {
        problems.push(format!(
            "the admin history lists {} attempts after the first load, the saves made {}: {}",
            history.len(),
            expected.len(),
            first_difference(&history, &expected)
        ));
    }
    let audit_path = data.join("audit.jsonl");
    let audit = std::fs::read_to_string(&audit_path)
        .with_context(|| format!("cannot read {}", audit_path.display()))?;
    let mut records = Vec::new();
    for line in audit.lines() {
        let record: Value = serde_json::from_str(line).context("an audit record is not JSON")?;
        match record["outcome"].as_str() {
            Some("intent") => {}
            Some("loaded") if records.is_empty() => records.push(None),
            Some(outcome) => records.push(Some((
                outcome.to_owned(),
                record["version_after"].as_u64().unwrap_or(0),
                record["seq"].as_u64().unwrap_or(0),
            ))),
            None => problems.push(format!("an audit record without an outcome: {line}")),
        }
    }
    let audited: Vec<(String, u64, u64)> = records.iter().skip(1).flatten().cloned().collect();
    if records.first() != Some(&None) || audited.len() + 1 != records.len() || audited != expected {
        problems.push(format!(
            "the audit log holds {} records after the first load, the saves made {}: {}",
            audited.len(),
            expected.len(),
            first_difference(&audited, &expected)
        ));
    }
    Ok(problems)
}

fn first_difference(got: &[(String, u64, u64)], expected: &[(String, u64, u64)]) -> String {
    let at = got.iter().zip(expected).position(|(g, e)| g != e);
    match at {
        Some(i) => format!("#{i}: {:?} where {:?} was seen", got[i], expected[i]),
        None if got.len() == expected.len() => "identical".to_owned(),
        None => format!("the first {} agree", got.len().min(expected.len())),
    }
}

/// The figures, gathered from the connections.
#[derive(Debug, Default)]
struct Report {
    requests: usize,
    allowed: usize,
    allowed_2xx: usize,
    limited_429: usize,
    failed: usize,
    versions_max: u64,
    quiet: Vec<Duration>,
    reloading: Vec<Duration>,
    rate_lines: Vec<String>,
    seconds: f64,
}

impl Report {
    fn traffic(
        &mut self,
        connections: &[traffic::Connection],
        done: &[Done],
        elapsed: Duration,
        problems: &mut Vec<String>,
    ) {
        self.seconds = elapsed.as_secs_f64();
        // A request overlapping a reload: from the write until its outcome was seen, and a
        // little after.
        let windows: Vec<(f64, f64)> = done
            .iter()
            .map(|d| (d.window.0, d.window.1 + 0.1))
            .collect();
        let during = |s: &Sample| {
            let end = s.at + s.latency.as_secs_f64();
            windows.iter().any(|&(from, to)| s.at <= to && end >= from)
        };
        let mut seen_versions = std::collections::BTreeSet::new();
        for connection in connections {
            self.requests += connection.samples.len() + connection.failed;
            self.failed += connection.failed;
            problems.extend(connection.failures.iter().cloned());
            if connection.went_back > 0 {
                problems.push(format!("versions went back {} times", connection.went_back));
            }
            seen_versions.extend(connection.versions.iter().copied());
            let limited = connection.path == traffic::LIMITED_PATH;
            for sample in &connection.samples {
                if limited {
                    self.limited_429 += usize::from(sample.status == 429);
                    continue;
                }
                self.allowed += 1;
                self.allowed_2xx += usize::from((200..300).contains(&sample.status));
                if during(sample) {
                    self.reloading.push(sample.latency);
                } else {
                    self.quiet.push(sample.latency);
                }
            }
            if limited {
                let (lines, found) = traffic::rate_check(&connection.samples, edits::LIMITED.1);
                self.rate_lines = lines;
                problems.extend(found);
            }
        }
        self.versions_max = seen_versions.last().copied().unwrap_or(0);
        if self.failed > 0 {
            problems.push(format!("{} requests failed", self.failed));
        }
        // Counted as integers: 2xx * 100 >= allowed * 95.
        if self.allowed == 0 || self.allowed_2xx * 100 < self.allowed * 95 {
            problems.push(format!(
                "{} of {} answers 2xx where the limits allow them",
                self.allowed_2xx, self.allowed
            ));
        }
        for d in done.iter().filter(|d| d.event["event"] == "applied") {
            let version = d.event["version"].as_u64().unwrap_or(0);
            if !seen_versions.contains(&version) {
                problems.push(format!(
                    "no connection saw version {version} ('{}')",
                    d.edit.label
                ));
            }
        }
    }

    fn print(
        &mut self,
        args: &LoadArgs,
        done: &[Done],
        rss_before: Option<u64>,
        rss_after: Option<u64>,
        alerts: usize,
    ) {
        let count = |outcome: &str| done.iter().filter(|d| d.event["event"] == outcome).count();
        let by = |writer: Writer| done.iter().filter(|d| d.edit.writer == writer).count();
        let per_second = self.requests as f64 / self.seconds.max(0.001);
        println!(
            "hotconf-demo load: {} connections, {:.1} s, {} requests ({per_second:.0}/s), {} failed",
            args.connections, self.seconds, self.requests, self.failed
        );
        let share = 100.0 * self.allowed_2xx as f64 / self.allowed.max(1) as f64;
        println!(
            "  2xx:       {share:.2}% where the limits allow ({} of {}); {} answered 429 on {}",
            self.allowed_2xx,
            self.allowed,
            self.limited_429,
            traffic::LIMITED_PATH
        );
        for line in &self.rate_lines {
            println!("  limit:     {line}");
        }
        println!(
            "  saves:     {} ({} applied, {} rejected, {} unchanged, {} restart required); \
             rename {}, in place {}, cp {}, sed -i {}, vim -es {}",
            done.len(),
            count("applied"),
            count("rejected"),
            count("unchanged"),
            count("restart_required"),
            by(Writer::Rename),
            by(Writer::InPlace),
            by(Writer::Copy),
            by(Writer::Sed),
            by(Writer::Editor),
        );
        println!(
            "  versions:  up to {} seen by the connections",
            self.versions_max
        );
        let ms = |d: Option<Duration>| {
            d.map_or("-".to_owned(), |d| {
                format!("{:.2} ms", d.as_secs_f64() * 1e3)
            })
        };
        println!(
            "  latency:   without reloads p50 {} p99 {} (n={}); during reloads p50 {} p99 {} (n={})",
            ms(traffic::quantile(&mut self.quiet, 0.5)),
            ms(traffic::quantile(&mut self.quiet, 0.99)),
            self.quiet.len(),
            ms(traffic::quantile(&mut self.reloading, 0.5)),
            ms(traffic::quantile(&mut self.reloading, 0.99)),
            self.reloading.len(),
        );
        let mib = |k: Option<u64>| {
            k.map_or("n/a".to_owned(), |k| {
                format!("{:.1} MiB", k as f64 / 1024.0)
            })
        };
        println!(
            "  RSS:       before {} after {}",
            mib(rss_before),
            mib(rss_after)
        );
        println!("  alerts:    {alerts} webhook posts");
    }
}

fn admin_text(agent: &ureq::Agent, admin: &str, path: &str) -> anyhow::Result<String> {
    let mut response = agent
        .get(format!("{admin}{path}"))
        .call()
        .with_context(|| format!("GET {admin}{path}"))?;
    let status = response.status();
    let body = response.body_mut().read_to_string()?;
    if !status.is_success() {
        bail!("GET {admin}{path}: {status}: {body}");
    }
    Ok(body)
}

fn admin_json(agent: &ureq::Agent, admin: &str, path: &str) -> anyhow::Result<Value> {
    let text = admin_text(agent, admin, path)?;
    serde_json::from_str(&text).with_context(|| format!("GET {admin}{path}: not JSON"))
}

/// Polls `check` until it answers, or fails after `limit`.
fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check() {
            return Ok(found);
        }
        if Instant::now() > deadline {
            bail!("gave up waiting for {what} after {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
