//! Safe apply on real files: policy (restart required, denied), components as a
//! transaction, holds, history and rollback, dry runs, and the laws that readers never see
//! a rejected or torn config.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hotconf::{
    Change, Component, Error, Event, Outcome, PrepareError, ProblemKind, Reloader, Report,
    RestartMode, Rule, Staged, Trigger, Validate,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
struct Config {
    server: Server,
    limits: Limits,
    #[serde(default)]
    tenants: std::collections::BTreeMap<String, Tenant>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
struct Server {
    listen: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
struct Limits {
    rpm: u32,
    /// Must always equal `rpm`: the invariant readers check.
    rpm_copy: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
struct Tenant {
    id: u32,
}

impl Validate for Config {
    fn validate(&self, report: &mut Report) {
        if self.limits.rpm == 0 {
            report.error("limits.rpm", "must be greater than 0");
        }
        if self.limits.rpm != self.limits.rpm_copy {
            report.error("limits.rpm_copy", "must equal limits.rpm");
        }
    }
}

fn toml(listen: &str, rpm: u32) -> String {
    format!(
        "[server]\nlisten = \"{listen}\"\n\n[limits]\nrpm = {rpm}\nrpm_copy = {rpm}\n\n[tenants.acme]\nid = 7\n"
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.toml");
        fs::write(&path, toml("0.0.0.0:80", 60)).unwrap();
        Self { _dir: dir, path }
    }

    fn write(&self, text: &str) {
        fs::write(&self.path, text).unwrap();
    }

    fn builder(&self) -> hotconf::ReloaderBuilder<Config> {
        Reloader::<Config>::builder().file(&self.path)
    }
}

/// A component that records what happened to it, and can be told to fail, panic or stall.
#[derive(Default)]
struct Probe {
    name: &'static str,
    paths: Vec<String>,
    fail: AtomicBool,
    panic: AtomicBool,
    /// When set, prepare waits for a message on it.
    blocked: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    panic_on_commit: AtomicBool,
    prepared: AtomicUsize,
    committed: AtomicUsize,
    aborted: Arc<AtomicUsize>,
    /// The rpm this component runs with: changed only on commit.
    live_rpm: Arc<AtomicU64>,
}

impl Probe {
    fn new(name: &'static str, paths: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            name,
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            ..Self::default()
        })
    }
}

struct ProbeStage {
    rpm: u32,
    live_rpm: Arc<AtomicU64>,
    aborted: Arc<AtomicUsize>,
    panic: bool,
}

impl Staged for ProbeStage {
    fn commit(self: Box<Self>) {
        assert!(!self.panic, "commit bug");
        self.live_rpm.store(u64::from(self.rpm), Ordering::SeqCst);
    }

    fn abort(self: Box<Self>) {
        self.aborted.fetch_add(1, Ordering::SeqCst);
    }
}

impl Component<Config> for Arc<Probe> {
    fn name(&self) -> &str {
        self.name
    }

    fn paths(&self) -> Vec<String> {
        self.paths.clone()
    }

    fn prepare(
        &self,
        _old: Option<&Config>,
        new: &Config,
        _changes: &[Change],
    ) -> Result<Box<dyn Staged>, PrepareError> {
        self.prepared.fetch_add(1, Ordering::SeqCst);
        let blocked = self.blocked.lock().unwrap().take();
        if let Some(blocked) = blocked {
            let _ = blocked.recv();
        }
        assert!(!self.panic.load(Ordering::SeqCst), "prepare bug");
        if self.fail.load(Ordering::SeqCst) {
            return Err(format!("cannot serve {} rpm", new.limits.rpm).into());
        }
        Ok(Box::new(CountingStage {
            inner: ProbeStage {
                rpm: new.limits.rpm,
                live_rpm: Arc::clone(&self.live_rpm),
                aborted: Arc::clone(&self.aborted),
                panic: self.panic_on_commit.load(Ordering::SeqCst),
            },
            probe: Arc::clone(self),
        }))
    }
}

/// Counts commits on the probe, then does the stage's work.
struct CountingStage {
    inner: ProbeStage,
    probe: Arc<Probe>,
}

impl Staged for CountingStage {
    fn commit(self: Box<Self>) {
        self.probe.committed.fetch_add(1, Ordering::SeqCst);
        Box::new(self.inner).commit();
    }

    fn abort(self: Box<Self>) {
        Box::new(self.inner).abort();
    }
}

#[test]
fn restart_required_change_applies_the_hot_part_and_stays_pending_until_reverted() {
    let fixture = Fixture::new();
    let reloader = fixture
        .builder()
        .restart_required("server.listen")
        .build()
        .unwrap();

    fixture.write(&toml("0.0.0.0:81", 120));
    let event = reloader.reload().unwrap();
    assert_eq!((event.outcome, event.version), (Outcome::Applied, 2));
    assert_eq!(
        event.changes.len(),
        2,
        "rpm and rpm_copy: {:?}",
        event.changes
    );
    assert_eq!(event.pending, ["server.listen".parse().unwrap()]);
    let json: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
    assert_eq!(json["pending"], serde_json::json!(["server.listen"]));
    let current = reloader.current();
    assert_eq!(
        current.server.listen, "0.0.0.0:80",
        "effective config keeps the old value"
    );
    assert_eq!(current.limits.rpm, 120);
    assert_eq!(reloader.status().pending.len(), 1);

    // Another hot change: still pending, reported once per reload, not duplicated.
    fixture.write(&toml("0.0.0.0:81", 130));
    let event = reloader.reload().unwrap();
    assert_eq!(event.pending.len(), 1);
    assert_eq!(event.changes.len(), 2);

    // Only the restart-required path differs: nothing to apply.
    fixture.write(&toml("0.0.0.0:82", 130));
    let event = reloader.reload().unwrap();
    assert_eq!(
        (event.outcome, event.version),
        (Outcome::RestartRequired, 3)
    );
    assert_eq!(event.changes[0].path.to_string(), "server.listen");
    let json: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
    assert_eq!(json["event"], "restart_required");

    // Reverting the file clears the pending entry.
    fixture.write(&toml("0.0.0.0:80", 130));
    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Unchanged);
    assert!(event.pending.is_empty());
    assert!(reloader.status().pending.is_empty());
}

#[test]
fn restart_required_reject_mode_rejects_the_whole_reload() {
    let fixture = Fixture::new();
    let reloader = fixture
        .builder()
        .restart_required("server.**")
        .restart_mode(RestartMode::Reject)
        .build()
        .unwrap();
    fixture.write(&toml("0.0.0.0:81", 120));
    let error = reloader.reload().unwrap_err();
    let problem = &error.problems()[0];
    assert_eq!(problem.kind, ProblemKind::Policy);
    assert_eq!(
        (problem.line, problem.path.as_ref().unwrap().to_string()),
        (Some(2), "server.listen".into())
    );
    assert_eq!(
        reloader.current().limits.rpm,
        60,
        "the hot part is not applied either"
    );
}

#[test]
fn denied_change_rejects_the_reload_with_a_located_reason() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().deny("tenants.*.id").build().unwrap();
    fixture.write(&toml("0.0.0.0:80", 90).replace("id = 7", "id = 8"));
    let error = reloader.reload().unwrap_err();
    assert!(matches!(error, Error::Invalid(_)));
    let text = error.to_string();
    assert!(text.contains("app.toml:9:6: tenants.acme.id: this must not change while the service runs (denied by policy)"), "{text}");
    assert_eq!(reloader.current().limits.rpm, 60);
}

#[test]
fn components_prepare_then_commit_only_when_their_paths_change() {
    let fixture = Fixture::new();
    let limiter = Probe::new("limiter", &["limits.**"]);
    let listener = Probe::new("listener", &["server.*"]);
    let reloader = fixture
        .builder()
        .component(Arc::clone(&limiter))
        .component(Arc::clone(&listener))
        .build()
        .unwrap();
    // The first load prepares and commits every component.
    assert_eq!(limiter.committed.load(Ordering::SeqCst), 1);
    assert_eq!(limiter.live_rpm.load(Ordering::SeqCst), 60);
    assert_eq!(listener.committed.load(Ordering::SeqCst), 1);

    fixture.write(&toml("0.0.0.0:80", 70));
    reloader.reload().unwrap();
    assert_eq!(limiter.committed.load(Ordering::SeqCst), 2);
    assert_eq!(limiter.live_rpm.load(Ordering::SeqCst), 70);
    assert_eq!(
        listener.prepared.load(Ordering::SeqCst),
        1,
        "its paths did not change: prepared on the first load only"
    );
}

#[test]
fn a_failing_component_aborts_the_others_and_keeps_the_old_config() {
    let fixture = Fixture::new();
    let first = Probe::new("first", &["**"]);
    let second = Probe::new("second", &["limits.rpm"]);
    let third = Probe::new("third", &["**"]);
    let reloader = fixture
        .builder()
        .component(Arc::clone(&first))
        .component(Arc::clone(&second))
        .component(Arc::clone(&third))
        .build()
        .unwrap();
    second.fail.store(true, Ordering::SeqCst);
    let before = reloader.current();

    fixture.write(&toml("0.0.0.0:80", 80));
    let error = reloader.reload().unwrap_err();
    let problem = &error.problems()[0];
    assert_eq!(problem.kind, ProblemKind::Component);
    assert_eq!(
        problem.message,
        "component 'second' refused the config: cannot serve 80 rpm"
    );
    assert_eq!(
        first.aborted.load(Ordering::SeqCst),
        1,
        "the prepared one is aborted"
    );
    assert_eq!(
        first.committed.load(Ordering::SeqCst),
        1,
        "the first load's commit only"
    );
    assert_eq!(
        third.prepared.load(Ordering::SeqCst),
        1,
        "later ones are not asked (the first load asked them)"
    );
    assert!(Arc::ptr_eq(&before, &reloader.current()));

    second.fail.store(false, Ordering::SeqCst);
    let event = reloader.reload().unwrap();
    assert_eq!((event.outcome, event.version), (Outcome::Applied, 2));
    assert_eq!(first.live_rpm.load(Ordering::SeqCst), 80);
}

#[test]
fn component_panics_are_caught_and_reported() {
    let fixture = Fixture::new();
    let fast = Probe::new("fast", &["**"]);
    let slow = Probe::new("slow", &["**"]);
    let reloader = fixture
        .builder()
        .component(Arc::clone(&fast))
        .component(Arc::clone(&slow))
        .build()
        .unwrap();

    slow.panic.store(true, Ordering::SeqCst);
    fixture.write(&toml("0.0.0.0:80", 90));
    let error = reloader.reload().unwrap_err();
    let message = &error.problems()[0].message;
    assert_eq!(
        message,
        "component 'slow' refused the config: panicked: prepare bug"
    );
    assert_eq!(
        fast.aborted.load(Ordering::SeqCst),
        1,
        "the prepared one is aborted"
    );
    assert_eq!(reloader.current().version(), 1);

    // A commit that panics is reported; the config stays applied.
    slow.panic.store(false, Ordering::SeqCst);
    slow.panic_on_commit.store(true, Ordering::SeqCst);
    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Applied);
    assert!(
        event
            .warnings
            .iter()
            .any(|w| w.message.contains("'slow' panicked while committing")),
        "{:?}",
        event.warnings
    );
}

#[test]
fn a_prepare_that_times_out_rejects_and_its_late_result_is_aborted() {
    let fixture = Fixture::new();
    let fast = Probe::new("fast", &["**"]);
    let slow = Probe::new("slow", &["**"]);
    let reloader = fixture
        .builder()
        .component(Arc::clone(&fast))
        .component(Arc::clone(&slow))
        .component_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    // The slow prepare blocks until the test lets it go, after the reload gave up on it.
    let (release, blocked) = std::sync::mpsc::channel();
    *slow.blocked.lock().unwrap() = Some(blocked);

    fixture.write(&toml("0.0.0.0:80", 90));
    let error = reloader.reload().unwrap_err();
    let message = &error.problems()[0].message;
    assert_eq!(
        message,
        "component 'slow' refused the config: prepare timed out after 500 ms"
    );
    assert_eq!(fast.aborted.load(Ordering::SeqCst), 1);
    assert_eq!(reloader.current().version(), 1);

    release.send(()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while slow.aborted.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the late prepare was not aborted"
        );
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        slow.committed.load(Ordering::SeqCst),
        1,
        "committed on the first load, never for the late prepare"
    );
}

#[test]
fn a_hold_defers_reloads_which_coalesce_and_run_on_release() {
    let fixture = Fixture::new();
    // An observer: every event, none lost, in order.
    let (tx, events) = std::sync::mpsc::channel::<Event>();
    let tx = Mutex::new(tx);
    let reloader = fixture
        .builder()
        .max_hold(Duration::from_millis(50))
        .observer(move |event: &Event| {
            let _ = tx.lock().unwrap().send(event.clone());
        })
        .build()
        .unwrap();
    let next = || {
        events
            .recv_timeout(Duration::from_secs(10))
            .expect("an event within 10 s")
    };
    assert_eq!(next().outcome, Outcome::Loaded);

    let hold = reloader.hold();
    let second_hold = reloader.hold();
    fixture.write(&toml("0.0.0.0:80", 61));
    let event = reloader.reload().unwrap();
    assert_eq!((event.outcome, event.version), (Outcome::Deferred, 1));
    fixture.write(&toml("0.0.0.0:80", 62));
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Deferred);
    assert_eq!(
        reloader.current().limits.rpm,
        60,
        "nothing applies while held"
    );
    assert!(reloader.status().deferred_since.is_some());
    // Each trigger is reported deferred; held past max_hold, the deferral is reported
    // again as still waiting, not dropped (such a report may come between the two).
    let (mut deferred, mut still) = (0, 0);
    while deferred < 2 || still == 0 {
        let event = next();
        assert_eq!(event.outcome, Outcome::Deferred, "{}", event.to_json());
        if event.warnings.is_empty() {
            assert_eq!(event.trigger, Trigger::Reload, "{}", event.to_json());
            deferred += 1;
        } else {
            assert!(
                event.warnings[0].message.contains("still deferred"),
                "{:?}",
                event.warnings
            );
            still += 1;
        }
    }

    drop(hold);
    assert_eq!(
        reloader.current().version(),
        1,
        "one hold is still in place"
    );
    drop(second_hold);
    // Until the release reaches the worker, only more "still deferred" reports; then the
    // one reload that serves both triggers, with the latest content.
    let mut event = next();
    while event.outcome == Outcome::Deferred && !event.warnings.is_empty() {
        event = next();
    }
    assert_eq!(event.outcome, Outcome::Detected, "{}", event.to_json());
    let applied = next();
    assert_eq!(
        (applied.outcome, applied.version),
        (Outcome::Applied, 2),
        "{}",
        applied.to_json()
    );
    let changes: Vec<String> = applied.changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        changes,
        ["~ limits.rpm: 60 -> 62", "~ limits.rpm_copy: 60 -> 62"]
    );
    assert_eq!(reloader.current().limits.rpm, 62, "the latest content");
    // The marker: two triggers made one reload, so the next event is this one's, not a
    // second `applied` or `unchanged` from the release.
    let answer = reloader.reload_with(Trigger::Api).unwrap();
    let marker = next();
    assert_eq!(
        (marker.outcome, marker.trigger, marker.version, marker.seq),
        (Outcome::Unchanged, Trigger::Api, 2, answer.seq),
        "{}",
        marker.to_json()
    );
    assert_eq!(reloader.status().holds, 0);
    assert!(reloader.status().deferred_since.is_none());
}

#[test]
fn rollback_reapplies_an_earlier_version_as_a_new_one() {
    let fixture = Fixture::new();
    let limiter = Probe::new("limiter", &["limits.**"]);
    let reloader = fixture
        .builder()
        .component(Arc::clone(&limiter))
        .history(3)
        .build()
        .unwrap();
    for rpm in [100, 200, 300] {
        fixture.write(&toml("0.0.0.0:80", rpm));
        reloader.reload().unwrap();
    }
    let versions: Vec<u64> = reloader
        .history()
        .iter()
        .map(|r| r.snapshot.version())
        .collect();
    assert_eq!(versions, [2, 3, 4], "bounded to 3, oldest dropped");
    assert!(matches!(
        reloader.rollback_to(1),
        Err(Error::UnknownVersion(1))
    ));

    let event = reloader.rollback_to(2).unwrap();
    assert_eq!(
        (event.outcome, event.trigger, event.version),
        (Outcome::Applied, Trigger::Rollback, 5)
    );
    assert_eq!(reloader.current().limits.rpm, 100);
    assert_eq!(
        limiter.live_rpm.load(Ordering::SeqCst),
        100,
        "through the components"
    );
    let last = reloader.history().pop().unwrap();
    assert_eq!(
        (last.trigger, last.outcome),
        (Trigger::Rollback, Outcome::Applied)
    );
    assert_eq!(last.changes[0].to_string(), "~ limits.rpm: 300 -> 100");

    // The next reload from the sources wins again.
    let event = reloader.reload().unwrap();
    assert_eq!((event.version, reloader.current().limits.rpm), (6, 300));
}

#[test]
fn plan_reports_without_applying() {
    let fixture = Fixture::new();
    let limiter = Probe::new("limiter", &["limits.**"]);
    let reloader = fixture
        .builder()
        .restart_required("server.listen")
        .deny("tenants.*.id")
        .component(Arc::clone(&limiter))
        .build()
        .unwrap();

    fixture.write(&toml("0.0.0.0:81", 75));
    let plan = reloader.plan();
    assert_eq!(plan.outcome, Outcome::Applied);
    let rules: Vec<(String, Rule)> = plan
        .changes
        .iter()
        .map(|c| (c.change.path.to_string(), c.rule))
        .collect();
    assert_eq!(
        rules,
        [
            ("server.listen".to_owned(), Rule::RestartRequired),
            ("limits.rpm".to_owned(), Rule::Hot),
            ("limits.rpm_copy".to_owned(), Rule::Hot),
        ]
    );
    assert_eq!(plan.pending, ["server.listen".parse().unwrap()]);
    assert_eq!(plan.components, ["limiter"]);
    assert_eq!(
        limiter.prepared.load(Ordering::SeqCst),
        1,
        "prepared on the first load; a dry run calls no component"
    );
    assert_eq!(reloader.current().version(), 1);

    fixture.write(&toml("0.0.0.0:80", 60).replace("id = 7", "id = 9"));
    let plan = reloader.plan();
    assert_eq!(plan.outcome, Outcome::Rejected);
    assert_eq!(plan.changes[0].rule, Rule::Denied);
    assert!(plan.errors[0].message.contains("denied by policy"));

    fixture.write("[server\n");
    let plan = reloader.plan();
    assert_eq!(
        (plan.outcome, plan.errors[0].line),
        (Outcome::Rejected, Some(1))
    );
}

mod laws {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Save {
        Valid(u32),
        Invalid(&'static str),
    }

    fn save() -> impl Strategy<Value = Save> {
        prop_oneof![
            (1u32..5).prop_map(Save::Valid),
            prop_oneof![
                Just("[limits\n"),
                Just("[server]\nlisten = \"x\"\n[limits]\nrpm = 0\nrpm_copy = 0\n"),
                Just("[server]\nlisten = \"x\"\n[limits]\nrpm = 3\nrpm_copy = 4\n"),
                Just(""),
                Just("[server]\nlisten = 5\n"),
            ]
            .prop_map(Save::Invalid),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// After any sequence of valid and invalid saves, the active snapshot is the last
        /// valid config, and a rejected reload leaves the snapshot identical.
        #[test]
        fn active_snapshot_is_the_last_valid_config(saves in proptest::collection::vec(save(), 1..12)) {
            let fixture = Fixture::new();
            let reloader = fixture.builder().build().unwrap();
            let mut expected = 60;
            for save in saves {
                let before = reloader.current();
                match save {
                    Save::Valid(rpm) => {
                        fixture.write(&toml("0.0.0.0:80", rpm));
                        prop_assert!(reloader.reload().is_ok());
                        expected = rpm;
                    }
                    Save::Invalid(text) => {
                        fixture.write(text);
                        prop_assert!(reloader.reload().is_err());
                        prop_assert!(Arc::ptr_eq(&before, &reloader.current()));
                    }
                }
                prop_assert_eq!(reloader.current().limits.rpm, expected);
            }
        }
    }
}

/// Readers on several threads check an invariant of every snapshot they load while a writer
/// applies valid and invalid configs as fast as it can. No reader may ever see a config that
/// failed validation, a mix of two versions, or a version going back.
#[test]
fn readers_never_see_a_rejected_or_torn_config() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().build().unwrap();
    let handle = reloader.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let handle = handle.clone();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut last_version = 0;
                let mut loads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let snapshot = handle.load();
                    assert_eq!(
                        snapshot.limits.rpm, snapshot.limits.rpm_copy,
                        "torn or invalid config"
                    );
                    assert!(snapshot.limits.rpm > 0, "a rejected config became visible");
                    assert!(snapshot.version() >= last_version, "version went back");
                    last_version = snapshot.version();
                    loads += 1;
                }
                loads
            })
        })
        .collect();

    let started = Instant::now();
    let mut applied = 0;
    for i in 0..600u32 {
        let mut config = reloader.current().config().clone();
        if i % 3 == 0 {
            // Invalid: the two fields disagree.
            config.limits.rpm_copy = config.limits.rpm + 1;
            assert!(reloader.apply(config).is_err());
        } else {
            config.limits.rpm = i + 1;
            config.limits.rpm_copy = i + 1;
            applied += 1;
            assert_eq!(reloader.apply(config).unwrap().outcome, Outcome::Applied);
        }
        if started.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let loads: u64 = readers
        .into_iter()
        .map(|r| r.join().expect("a reader saw a bad config"))
        .sum();
    assert!(loads > 0);
    assert_eq!(reloader.current().version(), 1 + applied);
}
