//! Rollbacks that are refused: by a validation rule that became stricter since the version
//! was applied, by a component, and for a version the history does not have. Each leaves
//! the version, the config, the components and the history as they were, and returns the
//! error; the positive control (the same rollback once the refusal is lifted) shows it was
//! that refusal.
//!
//! A rollback refused by policy cannot be set up through the public API: the first load
//! takes every value, and every later version passed the same `deny` rules against the one
//! before it, so all the versions in the history agree on every denied path (and, with
//! restart-required changes held back, on every restart-required path too).

#![cfg(feature = "toml")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotconf::{
    Change, Component, Error, Event, Outcome, PrepareError, ProblemKind, Reloader, Report, Staged,
    Trigger, Validate, staged,
};
use serde::{Deserialize, Serialize};

const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
struct Config {
    rpm: u32,
}

/// Makes the rules stricter: 100 rpm and more become invalid. Only
/// `a_rollback_the_rules_now_refuse_changes_nothing` sets it; the other tests here stay
/// below 100 rpm, so they pass whichever thread runs them.
static STRICT: AtomicBool = AtomicBool::new(false);

impl Validate for Config {
    fn validate(&self, report: &mut Report) {
        if STRICT.load(Ordering::SeqCst) && self.rpm >= 100 {
            report.error("rpm", "must be below 100 now");
        }
    }
}

/// A rate limiter whose live rpm changes only on commit, and that can be told to refuse.
#[derive(Default)]
struct Limiter {
    refuse: AtomicBool,
    live: Arc<AtomicU32>,
}

impl Component<Config> for Arc<Limiter> {
    fn name(&self) -> &str {
        "limiter"
    }

    fn prepare(
        &self,
        _old: Option<&Config>,
        new: &Config,
        _changes: &[Change],
    ) -> Result<Box<dyn Staged>, PrepareError> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(format!("cannot serve {} rpm", new.rpm).into());
        }
        let (live, rpm) = (Arc::clone(&self.live), new.rpm);
        Ok(staged(move || live.store(rpm, Ordering::SeqCst)))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Fixture {
    fn new(rpm: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.toml");
        fs::write(&path, format!("rpm = {rpm}\n")).unwrap();
        Self { _dir: dir, path }
    }

    /// Writes `rpm` to the file and reloads it: one more version.
    fn reload_to(&self, reloader: &Reloader<Config>, rpm: u32) -> Event {
        fs::write(&self.path, format!("rpm = {rpm}\n")).unwrap();
        let event = reloader.reload().unwrap();
        assert_eq!(event.outcome, Outcome::Applied, "{}", event.to_json());
        event
    }
}

/// A reloader with an observer that sees every event, on a channel.
fn observed(builder: hotconf::ReloaderBuilder<Config>) -> (Reloader<Config>, Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let reloader = builder
        .observer(move |event: &Event| {
            let _ = tx.lock().unwrap().send(event.clone());
        })
        .build()
        .unwrap();
    (reloader, rx)
}

/// The next event, `detected` ones included.
fn next_any(events: &Receiver<Event>) -> Event {
    events.recv_timeout(DEADLINE).expect("an event within 10 s")
}

/// Everything observed so far, up to and including the event numbered `seq`.
fn until(events: &Receiver<Event>, seq: u64) {
    while next_any(events).seq < seq {}
}

fn versions(reloader: &Reloader<Config>) -> Vec<u64> {
    reloader
        .history()
        .iter()
        .map(|record| record.snapshot.version())
        .collect()
}

/// The refused rollback's event: `rejected` at the version that stays, with `problem`.
fn expect_rejected(events: &Receiver<Event>, version: u64) -> Event {
    let event = next_any(events);
    assert_eq!(
        (event.outcome, event.trigger, event.version),
        (Outcome::Rejected, Trigger::Rollback, version),
        "{}",
        event.to_json()
    );
    event
}

#[test]
fn a_rollback_the_rules_now_refuse_changes_nothing() {
    let fixture = Fixture::new(120);
    let limiter = Arc::new(Limiter::default());
    let (reloader, events) = observed(
        Reloader::<Config>::builder()
            .file(&fixture.path)
            .component(Arc::clone(&limiter)),
    );
    let seq = fixture.reload_to(&reloader, 60).seq;
    until(&events, seq);
    let before = reloader.current();

    STRICT.store(true, Ordering::SeqCst);
    let refused = reloader.rollback_to(1);
    STRICT.store(false, Ordering::SeqCst);
    let Err(Error::Invalid(problems)) = refused else {
        panic!("expected a validation error, got {refused:?}");
    };
    let problem = &problems.0[0];
    assert_eq!(problem.kind, ProblemKind::Validation, "{problem:?}");
    assert_eq!(
        problem.path.as_ref().map(ToString::to_string).as_deref(),
        Some("rpm")
    );
    assert_eq!(problem.message, "must be below 100 now");
    assert!(Arc::ptr_eq(&before, &reloader.current()), "config kept");
    assert_eq!(reloader.current().version(), 2);
    assert_eq!(limiter.live.load(Ordering::SeqCst), 60, "not committed");
    assert_eq!(versions(&reloader), [1, 2]);
    let event = expect_rejected(&events, 2);
    assert_eq!(event.errors[0].message, "must be below 100 now");

    // The positive control: with the old rules the same rollback applies.
    let event = reloader.rollback_to(1).unwrap();
    assert_eq!((event.outcome, event.version), (Outcome::Applied, 3));
    assert_eq!(reloader.current().rpm, 120);
    assert_eq!(limiter.live.load(Ordering::SeqCst), 120);
}

#[test]
fn a_rollback_a_component_refuses_changes_nothing() {
    let fixture = Fixture::new(60);
    let limiter = Arc::new(Limiter::default());
    let (reloader, events) = observed(
        Reloader::<Config>::builder()
            .file(&fixture.path)
            .component(Arc::clone(&limiter)),
    );
    let seq = fixture.reload_to(&reloader, 70).seq;
    until(&events, seq);
    let before = reloader.current();

    limiter.refuse.store(true, Ordering::SeqCst);
    let refused = reloader.rollback_to(1);
    let Err(Error::Invalid(problems)) = refused else {
        panic!("expected a refusal, got {refused:?}");
    };
    assert_eq!(problems.0[0].kind, ProblemKind::Component);
    assert_eq!(
        problems.0[0].message,
        "component 'limiter' refused the config: cannot serve 60 rpm"
    );
    assert!(Arc::ptr_eq(&before, &reloader.current()), "config kept");
    assert_eq!(reloader.current().rpm, 70);
    assert_eq!(limiter.live.load(Ordering::SeqCst), 70, "not committed");
    assert_eq!(versions(&reloader), [1, 2]);
    expect_rejected(&events, 2);

    // The positive control: once the component agrees, the same rollback applies.
    limiter.refuse.store(false, Ordering::SeqCst);
    let event = reloader.rollback_to(1).unwrap();
    assert_eq!((event.outcome, event.version), (Outcome::Applied, 3));
    assert_eq!(limiter.live.load(Ordering::SeqCst), 60);
}

#[test]
fn a_rollback_to_a_version_not_in_the_history_is_refused_without_an_event() {
    let fixture = Fixture::new(60);
    let (reloader, events) = observed(Reloader::<Config>::builder().file(&fixture.path).history(2));
    fixture.reload_to(&reloader, 70);
    let seq = fixture.reload_to(&reloader, 80).seq;
    until(&events, seq);
    assert_eq!(versions(&reloader), [2, 3], "version 1 was dropped");
    let before = reloader.current();

    for unknown in [1, 4, 99] {
        assert!(
            matches!(reloader.rollback_to(unknown), Err(Error::UnknownVersion(v)) if v == unknown),
            "{unknown}"
        );
    }
    assert!(Arc::ptr_eq(&before, &reloader.current()));
    assert_eq!(versions(&reloader), [2, 3]);
    // The marker: the next event is this reload's, so the refusals sent none.
    let answer = reloader.reload_with(Trigger::Api).unwrap();
    let event = next_any(&events);
    assert_eq!(
        (event.outcome, event.trigger, event.seq),
        (Outcome::Unchanged, Trigger::Api, answer.seq),
        "{}",
        event.to_json()
    );
    // A version still kept rolls back.
    let event = reloader.rollback_to(2).unwrap();
    assert_eq!((event.version, reloader.current().rpm), (4, 70));
}
