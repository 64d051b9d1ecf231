//! The reload worker: every method called from inside a callback and an observer, events
//! numbered without gaps from concurrent triggers, validation timeouts, panics in service
//! code, holds, shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self};
use std::thread;
use std::time::{Duration, Instant};

use hotconf::{Error, Event, Outcome, Reloader, Trigger};

#[test]
fn observers_see_every_event_from_the_first_load_numbered_without_gaps() {
    let fixture = Fixture::new();
    let (reloader, events) = observed(fixture.builder());
    let loaded = next(&events);
    assert_eq!(
        (loaded.outcome, loaded.seq, loaded.version),
        (Outcome::Loaded, 1, 1)
    );
    assert_eq!(reloader.loaded_event().seq, 1);

    fixture.write("rpm = 0\n");
    assert!(reloader.reload().is_err());
    fixture.write("rpm = 0\n# same config, other bytes\n");
    assert!(reloader.reload().is_err());
    fixture.write("rpm = 70\n");
    reloader.reload().unwrap();
    reloader.reload().unwrap();
    let seen: Vec<(u64, Outcome, u64)> = (0..7)
        .map(|_| next_any(&events))
        .map(|e| (e.seq, e.outcome, e.version))
        .collect();
    // Each change of the file is announced before its attempt; a reload of the same
    // bytes announces nothing.
    assert_eq!(
        seen,
        [
            (2, Outcome::Detected, 1),
            (3, Outcome::Rejected, 1),
            (4, Outcome::Detected, 1),
            (5, Outcome::Rejected, 1),
            (6, Outcome::Detected, 1),
            (7, Outcome::Applied, 2),
            (8, Outcome::Unchanged, 2),
        ]
    );
    assert!(events.try_recv().is_err(), "nothing else");
}

/// What a method called from inside the worker returned.
type Calls = Vec<(&'static str, String)>;

/// Calls every method of the reloader and records what each returned.
fn call_everything(reloader: &Reloader<Config>) -> Calls {
    let mut calls: Calls = Vec::new();
    let mut record = |name, value: String| calls.push((name, value));
    record(
        "reload",
        format!("{:?}", reloader.reload().map(|e| e.outcome)),
    );
    record(
        "reload_with",
        format!(
            "{:?}",
            reloader.reload_with(Trigger::Api).map(|e| e.outcome)
        ),
    );
    let mut config = reloader.current().config().clone();
    config.rpm += 1000;
    record(
        "apply",
        format!("{:?}", reloader.apply(config).map(|e| e.outcome)),
    );
    record(
        "update",
        format!("{:?}", reloader.update(|c| c.rpm += 1).map(|e| e.outcome)),
    );
    record(
        "rollback_to",
        format!("{:?}", reloader.rollback_to(1).map(|e| e.outcome)),
    );
    record("history", format!("{}", reloader.history().len()));
    record("status", format!("{}", reloader.status().version));
    record("plan", format!("{:?}", reloader.plan().outcome));
    record("save", format!("{:?}", reloader.save().is_ok()));
    let hold = reloader.hold();
    record("hold", format!("{}", reloader.status().holds));
    drop(hold);
    reloader.on_change(|_| {});
    reloader.observe(|_: &Event| {});
    record("current", format!("{}", reloader.current().version()));
    record("handle", format!("{}", reloader.handle().load().version()));
    record(
        "subscribe",
        format!("{}", reloader.subscribe().borrow().version()),
    );
    drop(reloader.events());
    record(
        "trigger",
        format!("{}", reloader.trigger_handle().request(Trigger::Api)),
    );
    record("watch", format!("{:?}", reloader.watch().is_ok()));
    reloader.unwatch();
    record("loaded_event", format!("{}", reloader.loaded_event().seq));
    calls
}

fn check_calls(calls: &Calls) {
    let get = |name: &str| calls.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    // Methods that wait for the worker queue their request and say so.
    for name in ["reload", "reload_with", "apply", "update", "rollback_to"] {
        assert_eq!(get(name), "Ok(Queued)", "{name}");
    }
    assert_eq!(
        get("plan"),
        "Unchanged",
        "the file holds what was just applied"
    );
    assert_eq!(get("save"), "true");
    assert_eq!(get("hold"), "1");
    assert_eq!(get("watch"), "true");
    assert_eq!(get("trigger"), "true");
}

#[test]
fn every_method_can_be_called_from_a_callback_and_an_observer() {
    for from_observer in [false, true] {
        let fixture = Fixture::new();
        let reloader = fixture.builder().build().unwrap();
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let once = AtomicBool::new(false);
        // The closure keeps a clone: a cycle that only this test's process end breaks.
        let inside = reloader.clone();
        let body = move || {
            if !once.swap(true, Ordering::SeqCst) {
                let calls = call_everything(&inside);
                let _ = tx.lock().unwrap().send(calls);
            }
        };
        if from_observer {
            reloader.observe(move |event: &Event| {
                if event.outcome == Outcome::Applied {
                    body();
                }
            });
        } else {
            reloader.on_change(move |_| body());
        }
        let mut events = reloader.events();
        fixture.write("rpm = 70\n");
        reloader.reload().unwrap();
        let calls = rx
            .recv_timeout(DEADLINE)
            .expect("no deadlock inside the worker");
        check_calls(&calls);
        // The queued requests run after the event that called them went out.
        let deadline = Instant::now() + DEADLINE;
        let mut triggers = Vec::new();
        let done = |t: &Vec<(Trigger, Outcome)>| {
            t.contains(&(Trigger::Rollback, Outcome::Applied))
                && t.contains(&(Trigger::Apply, Outcome::Applied))
        };
        while !done(&triggers) && Instant::now() < deadline {
            if let Ok(event) = events.try_recv() {
                triggers.push((event.trigger, event.outcome));
            } else {
                thread::sleep(Duration::from_millis(2));
            }
        }
        assert!(
            triggers.contains(&(Trigger::Rollback, Outcome::Applied)),
            "{triggers:?}"
        );
        assert!(
            triggers.contains(&(Trigger::Apply, Outcome::Applied)),
            "{triggers:?}"
        );
    }
}

/// Code written against arc-swap's `Access` takes a handle or a projection.
fn rpm_through_access(config: &impl arc_swap::access::Access<u32>) -> u32 {
    *config.load()
}

#[test]
fn handles_and_projections_implement_arc_swaps_access() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().build().unwrap();
    let handle = reloader.handle();
    let snapshot = arc_swap::access::Access::<hotconf::Snapshot<Config>>::load(&handle);
    assert_eq!(snapshot.version(), 1);
    let rpm = handle.map(|config: &Config| &config.rpm);
    assert_eq!(rpm_through_access(&rpm), 60);
    fixture.write("rpm = 70\n");
    reloader.reload().unwrap();
    assert_eq!(rpm_through_access(&rpm), 70);
}

#[test]
fn history_read_from_a_callback_holds_the_version_being_applied() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().build().unwrap();
    let inside = reloader.clone();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    reloader.on_change(move |update| {
        let versions: Vec<u64> = inside
            .history()
            .iter()
            .map(|r| r.snapshot.version())
            .collect();
        let status = inside.status().version;
        let _ = tx
            .lock()
            .unwrap()
            .send((update.new.version(), versions, status));
    });
    fixture.write("rpm = 70\n");
    reloader.reload().unwrap();
    let (new, versions, status) = rx.recv_timeout(DEADLINE).unwrap();
    assert_eq!((new, versions, status), (2, vec![1, 2], 2));
}

#[test]
fn a_panicking_observer_is_reported_and_the_worker_goes_on() {
    let fixture = Fixture::new();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let reloader = fixture
        .builder()
        .observer(|event: &Event| assert!(event.outcome != Outcome::Applied, "observer bug"))
        .observer(move |event: &Event| {
            if event.outcome != Outcome::Detected {
                let _ = tx.lock().unwrap().send(event.seq);
            }
        })
        .build()
        .unwrap();
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), 1);
    for rpm in [70, 80] {
        fixture.write(&format!("rpm = {rpm}\n"));
        let event = reloader.reload().unwrap();
        assert_eq!(event.outcome, Outcome::Applied);
        assert_eq!(
            rx.recv_timeout(DEADLINE).unwrap(),
            event.seq,
            "later observers still run"
        );
    }
    assert_eq!(reloader.current().rpm, 80);
}

/// One thread's requests: 0 reload, 1 update, 2 a trigger that does not wait, 3 an
/// invalid apply, 4 a hold taken and released.
fn run_ops(reloader: &Reloader<Config>, ops: &[u8]) {
    for (i, op) in ops.iter().enumerate() {
        let i = u32::try_from(i).unwrap();
        match op {
            0 => drop(reloader.reload()),
            1 => drop(reloader.update(move |c| c.rpm = 100 + i)),
            2 => drop(reloader.trigger_handle().request(Trigger::Api)),
            3 => drop(reloader.apply(Config {
                rpm: 0,
                size: 0,
                db: Db::default(),
            })),
            _ => drop(reloader.hold()),
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    #[test]
    fn concurrent_triggers_give_each_event_once_in_order_without_gaps(
        threads in proptest::collection::vec(proptest::collection::vec(0u8..5, 1..20), 1..5)
    ) {
        let fixture = Fixture::new();
        let (reloader, events) = observed(fixture.builder());
        let workers: Vec<_> = threads
            .into_iter()
            .map(|ops| {
                let reloader = reloader.clone();
                thread::spawn(move || run_ops(&reloader, &ops))
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        // A marker that runs after everything the threads queued.
        fixture.write("rpm = 12345\n");
        let marker = reloader.reload().unwrap();
        let mut seqs = Vec::new();
        let mut versions = Vec::new();
        loop {
            let event = next_any(&events);
            seqs.push(event.seq);
            versions.push(event.version);
            if event.seq == marker.seq {
                break;
            }
        }
        let expected: Vec<u64> = (1..=marker.seq).collect();
        proptest::prop_assert_eq!(seqs, expected, "every event once, in order");
        proptest::prop_assert!(versions.windows(2).all(|w| w[0] <= w[1]), "versions never go back");
        proptest::prop_assert!(events.try_recv().is_err(), "nothing after the marker");
    }
}

#[test]
fn concurrent_updates_are_applied_one_after_another_none_lost() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().build().unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let reloader = reloader.clone();
            thread::spawn(move || {
                for _ in 0..25 {
                    reloader.update(|c| c.rpm += 1).unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(reloader.current().rpm, 160);
    assert_eq!(reloader.current().version(), 101);
}

#[test]
fn a_stuck_validation_rejects_without_wedging_the_worker() {
    let fixture = Fixture::new();
    let reloader = fixture
        .builder()
        .component_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    STALL.store(true, Ordering::SeqCst);
    fixture.write("rpm = 999999\n");
    let error = reloader.reload().unwrap_err();
    assert_eq!(
        error.problems()[0].message,
        "validation timed out after 100 ms"
    );
    fixture.write("rpm = 70\n");
    let error = reloader.reload().unwrap_err();
    assert!(
        error.problems()[0]
            .message
            .starts_with("validation of attempt"),
        "{error}"
    );
    assert_eq!(reloader.current().rpm, 60);
    STALL.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + DEADLINE;
    loop {
        match reloader.reload() {
            Ok(event) => {
                assert_eq!(event.outcome, Outcome::Applied);
                break;
            }
            Err(_) => assert!(Instant::now() < deadline, "validation never recovered"),
        }
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(reloader.current().rpm, 70);
}

#[test]
fn shutdown_finishes_the_reload_in_progress_and_loses_no_event() {
    let fixture = Fixture::new();
    let (reloader, events) = observed(fixture.builder());
    assert_eq!(next(&events).outcome, Outcome::Loaded);
    fixture.write("rpm = 70\n");
    assert!(reloader.trigger_handle().request(Trigger::Signal));
    // Whether the request was served before or after it, shutdown returns only once the
    // worker stopped; an event it produced is never lost.
    reloader.shutdown();
    let served: Vec<Event> = events
        .try_iter()
        .filter(|e| e.outcome != Outcome::Detected)
        .collect();
    assert!(served.len() <= 1);
    if let Some(event) = served.first() {
        assert_eq!(event.outcome, Outcome::Applied);
        assert_eq!(reloader.current().rpm, 70);
    }
    assert!(matches!(reloader.reload(), Err(Error::Stopped)));
    assert!(!reloader.trigger_handle().request(Trigger::Reload));
    assert_eq!(
        reloader.handle().load().version(),
        reloader.current().version()
    );
}

#[test]
fn a_panic_in_the_service_code_the_worker_runs_rejects_and_the_worker_goes_on() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().build().unwrap();
    let error = reloader
        .update(|config| {
            assert!(config.rpm == 0, "update bug");
        })
        .unwrap_err();
    assert_eq!(
        error.problems()[0].message,
        "the reload panicked: update bug"
    );
    assert_eq!(reloader.current().version(), 1);
    fixture.write("rpm = 70\n");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Applied);
    assert_eq!(reloader.update(|c| c.rpm = 71).unwrap().version, 3);
}

#[test]
fn status_says_since_when_a_reload_waits_on_a_hold() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().build().unwrap();
    // SystemTime and Instant are separate clocks: allow a little slack.
    let before = std::time::SystemTime::now() - Duration::from_millis(50);
    let hold = reloader.hold();
    assert_eq!(reloader.status().holds, 1);
    assert_eq!(reloader.status().deferred_since, None, "nothing waits yet");
    fixture.write("rpm = 70\n");
    // The answer comes once the worker has deferred it.
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Deferred);
    let since = reloader.status().deferred_since.expect("a reload waits");
    let after = std::time::SystemTime::now() + Duration::from_millis(50);
    assert!(
        before <= since && since <= after,
        "{before:?} <= {since:?} <= {after:?}"
    );
    drop(hold);
    let deadline = Instant::now() + DEADLINE;
    while reloader.current().version() == 1 {
        assert!(Instant::now() < deadline, "the deferred reload never ran");
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(reloader.status().deferred_since, None);
    assert_eq!(reloader.status().holds, 0);
}

#[test]
fn concurrent_reloads_after_one_change_apply_it_once_and_answer_every_caller() {
    let fixture = Fixture::new();
    let (reloader, events) = observed(fixture.builder());
    assert_eq!(next(&events).outcome, Outcome::Loaded);
    fixture.write("rpm = 70\n");

    let start = std::sync::Barrier::new(8);
    let answers: Vec<Event> = thread::scope(|scope| {
        let callers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    reloader.reload()
                })
            })
            .collect();
        callers
            .into_iter()
            .map(|caller| caller.join().unwrap().expect("every caller gets Ok"))
            .collect()
    });

    // The marker: everything the reloads sent comes before this reload's event.
    let marker = reloader.reload_with(Trigger::Api).unwrap();
    let mut seen = Vec::new();
    loop {
        let event = next_any(&events);
        if event.seq == marker.seq {
            break;
        }
        seen.push(event);
    }
    let count = |outcome| seen.iter().filter(|e| e.outcome == outcome).count();
    assert_eq!(count(Outcome::Applied), 1, "{seen:#?}");
    assert_eq!(count(Outcome::Detected), 1, "the change is announced once");
    assert_eq!(
        count(Outcome::Unchanged),
        seen.len() - 2,
        "callers not served by the applied reload find nothing new: {seen:#?}"
    );
    for answer in &answers {
        assert_eq!(answer.version, 2, "{}", answer.to_json());
        assert!(
            matches!(answer.outcome, Outcome::Applied | Outcome::Unchanged),
            "{}",
            answer.to_json()
        );
        assert!(
            seen.iter().any(|e| e.seq == answer.seq),
            "each answer is an event that went out: {}",
            answer.to_json()
        );
    }
    assert_eq!(reloader.current().version(), 2);
    assert_eq!(reloader.current().rpm, 70);
}

#[test]
fn debug_output_shows_state_not_the_config() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().build().unwrap();
    let text = format!("{reloader:?}");
    assert!(text.starts_with("Reloader { sources: ["), "{text}");
    assert!(text.contains("version: 1"), "{text}");
    let hold = reloader.hold();
    assert_eq!(format!("{hold:?}"), "Hold { .. }");
}
