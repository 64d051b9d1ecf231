//! The config that falls out of the history is freed after the caller has its answer:
//! dropping a whole config (a 10,000-file directory's) is not part of a reload's latency.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use hotconf::{Outcome, Reloader, Validate};
use serde::{Deserialize, Serialize};

const DEADLINE: Duration = Duration::from_secs(10);

/// A config whose drop waits for the test while `ARMED`, when its name is `first`.
#[derive(Debug, Deserialize, Serialize)]
struct Config {
    name: String,
}

impl Validate for Config {}

static ARMED: AtomicBool = AtomicBool::new(false);
static DROPPED: AtomicBool = AtomicBool::new(false);
/// Set when the test lets a waiting drop finish.
static RELEASED: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

impl Drop for Config {
    fn drop(&mut self) {
        if self.name != "first" || !ARMED.load(Ordering::SeqCst) {
            return;
        }
        let (released, signal) = &RELEASED;
        let guard = released.lock().unwrap();
        // Bounded, so a failing test ends instead of hanging the run.
        let _ = signal
            .wait_timeout_while(guard, DEADLINE * 2, |released| !*released)
            .unwrap();
        DROPPED.store(true, Ordering::SeqCst);
    }
}

fn release() {
    let (released, signal) = &RELEASED;
    *released.lock().unwrap() = true;
    signal.notify_all();
}

/// Lets the waiting drop finish even when an assert fails first.
struct ReleaseOnExit;

impl Drop for ReleaseOnExit {
    fn drop(&mut self) {
        release();
    }
}

#[test]
fn the_config_that_falls_out_of_the_history_is_freed_after_the_answer() {
    let _release = ReleaseOnExit;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "name = \"first\"\n").unwrap();
    // One record: applying version 2 pushes version 1, the only holder of `first`, out.
    let reloader = Reloader::<Config>::builder()
        .file(&path)
        .history(1)
        .build()
        .unwrap();
    assert_eq!(reloader.current().config().name, "first");

    fs::write(&path, "name = \"second\"\n").unwrap();
    ARMED.store(true, Ordering::SeqCst);
    let (answers, answer) = mpsc::channel();
    let caller = {
        let reloader = reloader.clone();
        thread::spawn(move || answers.send(reloader.reload().map(|e| e.outcome)).unwrap())
    };
    // The answer comes while the old config's drop still waits.
    let outcome = answer
        .recv_timeout(DEADLINE)
        .expect("reload() answers before the config that fell out is freed");
    assert_eq!(outcome.unwrap(), Outcome::Applied);
    assert!(!DROPPED.load(Ordering::SeqCst));
    assert_eq!(reloader.current().config().name, "second");
    assert_eq!(
        reloader
            .history()
            .iter()
            .map(|r| r.snapshot.version())
            .collect::<Vec<_>>(),
        [2]
    );

    // And it is freed, right after.
    release();
    let until = Instant::now() + DEADLINE;
    while !DROPPED.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < until,
            "the config that fell out is never freed"
        );
        thread::sleep(Duration::from_millis(5));
    }
    caller.join().unwrap();
}
