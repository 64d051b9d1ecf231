//! The reload metrics, read back from the Prometheus text a real recorder renders: every
//! series at zero from the start, exact values after a scripted sequence of reloads, two
//! reloaders apart by their `config` label, the watcher's mode, and labels that carry no
//! path, value or error text.
//!
//! The recorder is global (the metrics observer runs on the reload worker's thread). nextest
//! runs each test in its own process; under `cargo test` they share one recorder, so each
//! test uses its own config name.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotconf::metrics::{self as names, Metrics};
use hotconf::{
    Change, Component, Outcome, PrepareError, Reloader, Report, Staged, Validate, staged,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};

const DEADLINE: Duration = Duration::from_secs(10);

const OUTCOMES: [&str; 6] = [
    "loaded",
    "applied",
    "rejected",
    "unchanged",
    "restart_required",
    "deferred",
];
const TRIGGERS: [&str; 8] = [
    "load", "reload", "watch", "signal", "apply", "rollback", "api", "source",
];
const STAGES: [&str; 11] = [
    "read",
    "parse",
    "deserialize",
    "validate",
    "schema",
    "policy",
    "timeout",
    "prepare",
    "commit",
    "audit",
    "source",
];
const GAUGES: [&str; 6] = [
    "hotconf_config_last_reload_successful",
    "hotconf_config_last_reload_success_timestamp_seconds",
    "hotconf_config_version",
    "hotconf_config_hash",
    "hotconf_config_restart_pending",
    "hotconf_watch_polling",
];

/// The process's recorder, installed once.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // As the docs tell a service to: the duration as a real histogram.
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(names::RELOAD_DURATION_SECONDS.into()),
                &names::RELOAD_DURATION_BUCKETS,
            )
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).expect("the only recorder of this process");
        handle
    })
}

/// One sample: `name{labels} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the sample lines of the Prometheus text format (comments skipped).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = value.parse().expect("a number");
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("labels end with }");
                    (name.to_owned(), parse_labels(body))
                }
            };
            Sample {
                name,
                labels,
                value,
            }
        })
        .collect()
}

/// `a="x",b="y"`, with the format's escapes (`\"`, `\\`, `\n`).
fn parse_labels(body: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("key=\"value\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next().expect("a closing quote");
            match c {
                '\\' => match chars.next().expect("an escaped character").1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// The rendered samples, queried by name and exact label set.
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    fn take() -> Self {
        let text = recorder().render();
        let samples = parse(&text);
        Self { text, samples }
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut found = self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels == wanted);
        let sample = found.next()?;
        assert!(found.next().is_none(), "{name} {labels:?} twice");
        Some(sample.value)
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{}", self.text))
    }

    fn reloads(&self, config: &str, outcome: &str, trigger: &str) -> f64 {
        self.value(
            names::RELOADS_TOTAL,
            &[
                ("config", config),
                ("outcome", outcome),
                ("trigger", trigger),
            ],
        )
    }

    fn failures(&self, config: &str, stage: &str) -> f64 {
        self.value(
            names::RELOAD_FAILURES_TOTAL,
            &[("config", config), ("stage", stage)],
        )
    }

    fn gauge(&self, config: &str, name: &str) -> f64 {
        self.value(name, &[("config", config)])
    }

    /// Every reload counted for `config`.
    fn attempts(&self, config: &str) -> f64 {
        self.samples
            .iter()
            .filter(|s| {
                s.name == names::RELOADS_TOTAL
                    && s.labels.get("config").map(String::as_str) == Some(config)
            })
            .map(|s| s.value)
            .sum()
    }

    /// Asserts every `reloads_total` series of `config` is zero except `nonzero`.
    fn assert_reloads(&self, config: &str, nonzero: &[(&str, &str, f64)]) {
        for outcome in OUTCOMES {
            for trigger in TRIGGERS {
                let expected = nonzero
                    .iter()
                    .find(|(o, t, _)| *o == outcome && *t == trigger)
                    .map_or(0.0, |(_, _, n)| *n);
                assert_eq!(
                    self.reloads(config, outcome, trigger),
                    expected,
                    "{config} {outcome}/{trigger}"
                );
            }
        }
    }

    /// Asserts every failure stage of `config` is zero except `nonzero`.
    fn assert_failures(&self, config: &str, nonzero: &[(&str, f64)]) {
        for stage in STAGES {
            let expected = nonzero
                .iter()
                .find(|(s, _)| *s == stage)
                .map_or(0.0, |(_, n)| *n);
            assert_eq!(self.failures(config, stage), expected, "{config} {stage}");
        }
    }
}

/// Scrapes until `config` has counted `attempts` reloads (observers run on the worker).
fn settle(config: &str, attempts: f64) -> Scrape {
    let start = Instant::now();
    loop {
        let scrape = Scrape::take();
        if scrape.attempts(config) == attempts {
            return scrape;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{config}: {} attempts counted, waiting for {attempts}\n{}",
            scrape.attempts(config),
            scrape.text
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Config {
    rpm: u32,
    listen: String,
    #[serde(default)]
    password: String,
}

impl Validate for Config {
    fn validate(&self, report: &mut Report) {
        if self.rpm == 0 {
            report.error("rpm", "must be greater than 0");
        }
    }
}

/// Refuses rpm = 13.
struct Limiter;

impl Component<Config> for Limiter {
    fn name(&self) -> &str {
        "limiter"
    }

    fn prepare(
        &self,
        _old: Option<&Config>,
        new: &Config,
        _changes: &[Change],
    ) -> Result<Box<dyn Staged>, PrepareError> {
        if new.rpm == 13 {
            return Err("unlucky bucket size".into());
        }
        Ok(staged(|| {}))
    }
}

/// A component that panics while committing rpm = 77.
struct Router;

impl Component<Config> for Router {
    fn name(&self) -> &str {
        "router"
    }

    fn prepare(
        &self,
        _old: Option<&Config>,
        new: &Config,
        _changes: &[Change],
    ) -> Result<Box<dyn Staged>, PrepareError> {
        let explode = new.rpm == 77;
        Ok(staged(move || {
            assert!(!explode, "router table corrupt");
        }))
    }
}

fn write(path: &Path, rpm: u32, listen: &str) {
    fs::write(
        path,
        format!("rpm = {rpm}\nlisten = \"{listen}\"\npassword = \"hunter2-metrics-secret\"\n"),
    )
    .unwrap();
}

fn app_file(dir: &Path) -> PathBuf {
    let path = dir.join("app.toml");
    write(&path, 60, "0.0.0.0:80");
    path
}

#[test]
fn every_series_exists_at_zero_from_the_start() {
    recorder();
    let metrics = Metrics::with_components("fresh", ["pool", "router"]);
    assert_eq!(metrics.config(), "fresh");
    let scrape = Scrape::take();
    scrape.assert_reloads("fresh", &[]);
    scrape.assert_failures("fresh", &[]);
    for gauge in GAUGES {
        assert_eq!(scrape.gauge("fresh", gauge), 0.0, "{gauge}");
    }
    for counter in [
        names::ALERTS_DROPPED_TOTAL,
        names::AUDIT_WRITE_FAILURES_TOTAL,
    ] {
        assert_eq!(scrape.gauge("fresh", counter), 0.0, "{counter}");
    }
    for component in ["pool", "router"] {
        assert_eq!(
            scrape.value(
                names::COMPONENT_APPLY_FAILURES_TOTAL,
                &[("config", "fresh"), ("component", component)]
            ),
            0.0
        );
    }
    let count = format!("{}_count", names::RELOAD_DURATION_SECONDS);
    assert_eq!(scrape.gauge("fresh", &count), 0.0);
    // 48 reload series, 11 stages, 6 gauges, 2 module counters, 2 components, and the
    // histogram's count and sum: nothing else carries this config.
    let ours = scrape
        .samples
        .iter()
        .filter(|s| s.labels.get("config").map(String::as_str) == Some("fresh"))
        .filter(|s| !s.labels.contains_key("le"))
        .count();
    assert_eq!(ours, 48 + 11 + 6 + 2 + 2 + 2);
    // The histogram's buckets, empty, up to +Inf.
    let bucket = format!("{}_bucket", names::RELOAD_DURATION_SECONDS);
    assert_eq!(
        scrape.value(&bucket, &[("config", "fresh"), ("le", "+Inf")]),
        0.0
    );

    // Every series is described: a help and a type line each.
    for name in [
        names::RELOADS_TOTAL,
        names::RELOAD_FAILURES_TOTAL,
        names::LAST_RELOAD_SUCCESSFUL,
        names::LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS,
        names::RELOAD_DURATION_SECONDS,
        names::VERSION,
        names::HASH,
        names::RESTART_PENDING,
        names::COMPONENT_APPLY_FAILURES_TOTAL,
        names::WATCH_POLLING,
        names::ALERTS_DROPPED_TOTAL,
        names::AUDIT_WRITE_FAILURES_TOTAL,
    ] {
        assert!(
            scrape.text.contains(&format!("# HELP {name} ")),
            "{name} has no help\n{}",
            scrape.text
        );
        assert!(scrape.text.contains(&format!("# TYPE {name} ")), "{name}");
    }
}

#[test]
fn a_scripted_sequence_of_reloads_gives_exact_values() {
    recorder();
    let dir = tempfile::tempdir().unwrap();
    let path = app_file(dir.path());
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let reloader = Reloader::<Config>::builder()
        .file(&path)
        .name("app")
        .restart_required("listen")
        .component(Limiter)
        .metrics()
        .build()
        .unwrap();

    // The first load: every series exists, the load counted.
    let scrape = settle("app", 1.0);
    scrape.assert_reloads("app", &[("loaded", "load", 1.0)]);
    scrape.assert_failures("app", &[]);
    assert_eq!(scrape.gauge("app", names::LAST_RELOAD_SUCCESSFUL), 1.0);
    assert_eq!(scrape.gauge("app", names::VERSION), 1.0);
    assert_eq!(scrape.gauge("app", names::RESTART_PENDING), 0.0);
    assert_eq!(scrape.gauge("app", names::WATCH_POLLING), 0.0);
    let loaded_at = scrape.gauge("app", names::LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS);
    assert!(loaded_at >= before.floor(), "{loaded_at} vs {before}");
    let hash = reloader.attempts()[0].hash;
    assert_ne!(hash, 0);
    assert_eq!(
        scrape.gauge("app", names::HASH),
        (hash & 0xFFFF_FFFF_FFFF) as f64
    );
    assert_eq!(
        scrape.value(
            names::COMPONENT_APPLY_FAILURES_TOTAL,
            &[("config", "app"), ("component", "limiter")]
        ),
        0.0,
        "a component known to the builder starts at zero"
    );

    // Applied.
    write(&path, 120, "0.0.0.0:80");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Applied);
    let scrape = settle("app", 2.0);
    assert_eq!(scrape.gauge("app", names::VERSION), 2.0);
    let applied_hash = reloader.attempts()[1].hash;
    assert_ne!(applied_hash, hash);
    assert_eq!(
        scrape.gauge("app", names::HASH),
        (applied_hash & 0xFFFF_FFFF_FFFF) as f64
    );

    // Rejected at parse, then at validate: not successful, version and hash kept.
    fs::write(&path, "rpm = = 1\n").unwrap();
    assert!(reloader.reload().is_err());
    let scrape = settle("app", 3.0);
    assert_eq!(scrape.gauge("app", names::LAST_RELOAD_SUCCESSFUL), 0.0);
    scrape.assert_failures("app", &[("parse", 1.0)]);
    write(&path, 0, "0.0.0.0:80");
    assert!(reloader.reload().is_err());
    let scrape = settle("app", 4.0);
    scrape.assert_failures("app", &[("parse", 1.0), ("validate", 1.0)]);
    assert_eq!(scrape.gauge("app", names::VERSION), 2.0);
    assert_eq!(
        scrape.gauge("app", names::HASH),
        (applied_hash & 0xFFFF_FFFF_FFFF) as f64
    );

    // Only a restart-required path changed: successful, one path pending.
    write(&path, 120, "0.0.0.0:8080");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::RestartRequired);
    let scrape = settle("app", 5.0);
    assert_eq!(scrape.gauge("app", names::LAST_RELOAD_SUCCESSFUL), 1.0);
    assert_eq!(scrape.gauge("app", names::RESTART_PENDING), 1.0);

    // Deferred under a hold: the last outcome stays a success until the reload runs.
    let hold = reloader.hold();
    write(&path, 125, "0.0.0.0:8080");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Deferred);
    let scrape = settle("app", 6.0);
    assert_eq!(scrape.gauge("app", names::LAST_RELOAD_SUCCESSFUL), 1.0);
    drop(hold);
    let scrape = settle("app", 7.0);
    assert_eq!(scrape.gauge("app", names::VERSION), 3.0);
    assert_eq!(
        scrape.gauge("app", names::RESTART_PENDING),
        1.0,
        "still held back"
    );

    // A component refuses: rejected at prepare, the component blamed; the pending
    // restart is still pending.
    write(&path, 13, "0.0.0.0:8080");
    assert!(reloader.reload().is_err());
    let scrape = settle("app", 8.0);
    scrape.assert_failures(
        "app",
        &[("parse", 1.0), ("validate", 1.0), ("prepare", 1.0)],
    );
    assert_eq!(
        scrape.value(
            names::COMPONENT_APPLY_FAILURES_TOTAL,
            &[("config", "app"), ("component", "limiter")]
        ),
        1.0
    );
    assert_eq!(scrape.gauge("app", names::LAST_RELOAD_SUCCESSFUL), 0.0);
    assert_eq!(scrape.gauge("app", names::RESTART_PENDING), 1.0);

    // Deferred again: the last outcome stays "rejected" until the reload runs, which also
    // puts the restart-required path back, so nothing is pending.
    let hold = reloader.hold();
    write(&path, 130, "0.0.0.0:80");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Deferred);
    let scrape = settle("app", 9.0);
    assert_eq!(scrape.gauge("app", names::LAST_RELOAD_SUCCESSFUL), 0.0);
    assert_eq!(scrape.gauge("app", names::VERSION), 3.0);
    drop(hold);
    let scrape = settle("app", 10.0);
    assert_eq!(scrape.gauge("app", names::LAST_RELOAD_SUCCESSFUL), 1.0);
    assert_eq!(scrape.gauge("app", names::VERSION), 4.0);
    assert_eq!(scrape.gauge("app", names::RESTART_PENDING), 0.0);

    // Nothing changed: unchanged, a success.
    fs::write(&path, "rpm = = 1\n").unwrap();
    assert!(reloader.reload().is_err());
    write(&path, 130, "0.0.0.0:80");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Unchanged);
    let scrape = settle("app", 12.0);
    assert_eq!(scrape.gauge("app", names::LAST_RELOAD_SUCCESSFUL), 1.0);
    assert_eq!(scrape.gauge("app", names::VERSION), 4.0);

    scrape.assert_reloads(
        "app",
        &[
            ("loaded", "load", 1.0),
            ("applied", "reload", 3.0),
            ("rejected", "reload", 4.0),
            ("restart_required", "reload", 1.0),
            ("unchanged", "reload", 1.0),
            ("deferred", "reload", 2.0),
        ],
    );
    scrape.assert_failures(
        "app",
        &[("parse", 2.0), ("validate", 1.0), ("prepare", 1.0)],
    );
    // Every attempt but the deferred ones was timed.
    let count = format!("{}_count", names::RELOAD_DURATION_SECONDS);
    assert_eq!(scrape.gauge("app", &count), 10.0);
    let sum = format!("{}_sum", names::RELOAD_DURATION_SECONDS);
    assert!(scrape.gauge("app", &sum) > 0.0);
    let bucket = format!("{}_bucket", names::RELOAD_DURATION_SECONDS);
    assert_eq!(
        scrape.value(&bucket, &[("config", "app"), ("le", "+Inf")]),
        10.0
    );
    assert!(scrape.gauge("app", names::LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS) >= loaded_at);

    // A programmatic change is counted under its own trigger.
    let mut config = (*reloader.current().config()).clone();
    config.rpm = 140;
    assert_eq!(reloader.apply(config).unwrap().outcome, Outcome::Applied);
    let scrape = settle("app", 13.0);
    assert_eq!(scrape.reloads("app", "applied", "apply"), 1.0);
    assert_eq!(scrape.gauge("app", names::VERSION), 5.0);

    // Labels are bounded: no path, value, version or error text anywhere.
    let dir_name = dir.path().display().to_string();
    for leak in [
        dir_name.as_str(),
        "app.toml",
        "hunter2-metrics-secret",
        "unlucky",
        "must be greater",
        "0.0.0.0",
    ] {
        assert!(!scrape.text.contains(leak), "{leak} in\n{}", scrape.text);
    }
    for sample in &scrape.samples {
        for key in sample.labels.keys() {
            assert!(
                ["config", "outcome", "trigger", "stage", "component", "le"]
                    .contains(&key.as_str()),
                "unexpected label {key} on {}",
                sample.name
            );
        }
    }
}

#[test]
fn a_component_that_panics_while_committing_is_counted() {
    recorder();
    let dir = tempfile::tempdir().unwrap();
    let path = app_file(dir.path());
    let reloader = Reloader::<Config>::builder()
        .file(&path)
        .name("commit")
        .metrics()
        // Added after metrics(): known only from its first failure.
        .component(Router)
        .build()
        .unwrap();
    let scrape = settle("commit", 1.0);
    let router = [("config", "commit"), ("component", "router")];
    assert_eq!(
        scrape.get(names::COMPONENT_APPLY_FAILURES_TOTAL, &router),
        None
    );

    write(&path, 77, "0.0.0.0:80");
    let event = reloader.reload().unwrap();
    assert_eq!(
        event.outcome,
        Outcome::Applied,
        "a commit panic is a warning"
    );
    let scrape = settle("commit", 2.0);
    assert_eq!(
        scrape.value(names::COMPONENT_APPLY_FAILURES_TOTAL, &router),
        1.0
    );
    assert_eq!(scrape.gauge("commit", names::LAST_RELOAD_SUCCESSFUL), 1.0);
    scrape.assert_failures("commit", &[]);
}

#[test]
fn two_reloaders_with_different_names_stay_apart() {
    recorder();
    let dir = tempfile::tempdir().unwrap();
    let (alpha_dir, beta_dir) = (dir.path().join("a"), dir.path().join("b"));
    fs::create_dir(&alpha_dir).unwrap();
    fs::create_dir(&beta_dir).unwrap();
    let (alpha_path, beta_path) = (app_file(&alpha_dir), app_file(&beta_dir));
    let alpha = Reloader::<Config>::builder()
        .file(&alpha_path)
        .name("alpha")
        .metrics()
        .build()
        .unwrap();
    let beta = Reloader::<Config>::builder()
        .file(&beta_path)
        .name("beta")
        .metrics()
        .build()
        .unwrap();

    write(&alpha_path, 61, "0.0.0.0:80");
    alpha.reload().unwrap();
    write(&alpha_path, 62, "0.0.0.0:80");
    alpha.reload().unwrap();
    fs::write(&beta_path, "rpm = \"many\"\nlisten = \"x\"\n").unwrap();
    assert!(beta.reload().is_err());

    settle("alpha", 3.0);
    let scrape = settle("beta", 2.0);
    scrape.assert_reloads(
        "alpha",
        &[("loaded", "load", 1.0), ("applied", "reload", 2.0)],
    );
    scrape.assert_reloads(
        "beta",
        &[("loaded", "load", 1.0), ("rejected", "reload", 1.0)],
    );
    scrape.assert_failures("alpha", &[]);
    scrape.assert_failures("beta", &[("deserialize", 1.0)]);
    assert_eq!(scrape.gauge("alpha", names::VERSION), 3.0);
    assert_eq!(scrape.gauge("beta", names::VERSION), 1.0);
    assert_eq!(scrape.gauge("alpha", names::LAST_RELOAD_SUCCESSFUL), 1.0);
    assert_eq!(scrape.gauge("beta", names::LAST_RELOAD_SUCCESSFUL), 0.0);
}

#[test]
fn the_default_config_label_is_config() {
    recorder();
    let dir = tempfile::tempdir().unwrap();
    let path = app_file(dir.path());
    let _reloader = Reloader::<Config>::builder()
        .file(&path)
        .metrics()
        .build()
        .unwrap();
    let scrape = settle("config", 1.0);
    assert_eq!(scrape.reloads("config", "loaded", "load"), 1.0);
}

#[cfg(feature = "watch")]
#[test]
fn polling_the_files_shows_in_watch_polling() {
    recorder();
    let dir = tempfile::tempdir().unwrap();
    let path = app_file(dir.path());
    let reloader = Reloader::<Config>::builder()
        .file(&path)
        .name("polled")
        .metrics()
        .build()
        .unwrap();
    let polling = |expected: f64| {
        let start = Instant::now();
        while Scrape::take().gauge("polled", names::WATCH_POLLING) != expected {
            assert!(start.elapsed() < DEADLINE, "watch_polling never {expected}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    polling(0.0);
    reloader.watch_polling(Duration::from_millis(50)).unwrap();
    polling(1.0);
    reloader.unwatch();
    polling(0.0);

    // Watching by events: the watcher's state reaches the worker before a reload asked
    // after it, so once that reload is counted the gauge is final.
    reloader.watch().unwrap();
    let start = Instant::now();
    while !reloader.status().watching {
        assert!(start.elapsed() < DEADLINE, "never watching");
        std::thread::sleep(Duration::from_millis(10));
    }
    reloader.reload().unwrap();
    let start = Instant::now();
    let scrape = loop {
        let scrape = Scrape::take();
        if scrape.attempts("polled") >= 2.0 {
            break scrape;
        }
        assert!(start.elapsed() < DEADLINE, "the reload never counted");
        std::thread::sleep(Duration::from_millis(10));
    };
    // inotify may be out of watches on a busy machine: then it polls, and says so.
    let expected = if reloader.status().polling { 1.0 } else { 0.0 };
    assert_eq!(scrape.gauge("polled", names::WATCH_POLLING), expected);
}

#[test]
fn alert_and_audit_failures_count_under_their_config() {
    recorder();
    let _metrics = Metrics::new("helpers");
    names::alert_dropped("helpers");
    names::alert_dropped("helpers");
    names::audit_write_failed("helpers");
    let scrape = Scrape::take();
    assert_eq!(scrape.gauge("helpers", names::ALERTS_DROPPED_TOTAL), 2.0);
    assert_eq!(
        scrape.gauge("helpers", names::AUDIT_WRITE_FAILURES_TOTAL),
        1.0
    );
}

#[test]
fn the_parser_reads_labels_escapes_and_bare_names() {
    let samples = parse(
        "# HELP x help\n# TYPE x counter\nx 3\ny{a=\"1\",b=\"q\\\"uote\\\\d\"} 2.5\n\nz{c=\"\"} -1\n",
    );
    assert_eq!(samples.len(), 3);
    assert_eq!((samples[0].name.as_str(), samples[0].value), ("x", 3.0));
    assert!(samples[0].labels.is_empty());
    assert_eq!(samples[1].labels["a"], "1");
    assert_eq!(samples[1].labels["b"], "q\"uote\\d");
    assert_eq!(samples[1].value, 2.5);
    assert_eq!(samples[2].labels["c"], "");
    assert_eq!(samples[2].value, -1.0);
}
