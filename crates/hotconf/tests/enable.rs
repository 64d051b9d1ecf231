//! Pausing and resuming reloads from the watcher (seed-style `enable_hot_reload`), and the
//! watcher's state as observers and the status see it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Captured, DEADLINE, Fixture, next, observed};
use hotconf::{Event, Observer, Outcome, WatcherState};

fn count(captured: &Captured, needle: &str) -> usize {
    captured.text().matches(needle).count()
}

#[test]
fn disabled_reloading_sees_saves_without_applying_them_until_enabled() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let fixture = Fixture::new();
    let (reloader, events) = observed(fixture.builder());
    next(&events);
    reloader.watch().unwrap();
    reloader.disable();
    assert!(!reloader.is_enabled());
    assert!(!reloader.status().enabled);
    fixture.write("rpm = 61\n");
    let skipped = "not applied: reloading from the watcher is disabled";
    let deadline = Instant::now() + DEADLINE;
    while count(&captured, skipped) == 0 {
        assert!(
            Instant::now() < deadline,
            "the watcher's save reached the worker"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(reloader.current().version(), 1);
    assert!(events.try_recv().is_err(), "no event while disabled");
    // Manual reloads still work while the watcher's are paused.
    assert_eq!(reloader.reload().unwrap().version, 2);
    reloader.enable();
    // Served after enable()'s own read, which found nothing new.
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Unchanged);
    // A save the watcher saw while paused is applied by enable() itself: the watcher has
    // already reported it and will not again.
    reloader.disable();
    fixture.write("rpm = 63\n");
    let deadline = Instant::now() + DEADLINE;
    while count(&captured, skipped) < 2 {
        assert!(
            Instant::now() < deadline,
            "the second save reached the worker"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(reloader.current().config().rpm, 61);
    reloader.enable();
    let deadline = Instant::now() + DEADLINE;
    while reloader.current().config().rpm != 63 {
        assert!(
            Instant::now() < deadline,
            "the save made while disabled is applied"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(reloader.status().enabled);
}

struct States(Mutex<mpsc::Sender<WatcherState>>);

impl Observer for States {
    fn observe(&self, _: &Event) {}

    fn watcher(&self, state: &WatcherState) {
        let _ = self.0.lock().unwrap().send(state.clone());
    }
}

#[test]
fn observers_are_told_the_watchers_state() {
    let fixture = Fixture::new();
    let (tx, rx) = mpsc::channel();
    let reloader = fixture
        .builder()
        .observer(States(Mutex::new(tx)))
        .build()
        .unwrap();
    reloader.watch_polling(Duration::from_millis(50)).unwrap();
    let started = rx.recv_timeout(DEADLINE).unwrap();
    assert!(started.watching && started.polling && started.error.is_none());
    reloader.unwatch();
    let stopped = rx.recv_timeout(DEADLINE).unwrap();
    assert!(!stopped.watching);
    assert!(rx.try_recv().is_err());
    let last = reloader.attempts().last().unwrap().outcome;
    assert_eq!(last, Outcome::Loaded, "watcher states are not attempts");
}
