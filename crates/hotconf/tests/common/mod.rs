//! What the worker's tests share: a typed config with a rule that can stall, a file that
//! holds it, and an observer whose events can be waited on.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use hotconf::{Event, Outcome, Reloader, Report, Validate};
use serde::{Deserialize, Serialize};

pub const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Config {
    pub rpm: u32,
    #[serde(default)]
    pub size: usize,
    #[serde(default)]
    pub db: Db,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Db {
    #[serde(default)]
    pub password: String,
}

/// Rules that can be told to stall, to test the validation timeout.
pub static STALL: AtomicBool = AtomicBool::new(false);

impl Validate for Config {
    fn validate(&self, report: &mut Report) {
        if self.rpm == 0 {
            report.error("rpm", "must be greater than 0");
        }
        if self.rpm == 999_999 {
            while STALL.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.toml");
        fs::write(&path, "rpm = 60\n").unwrap();
        Self { _dir: dir, path }
    }

    pub fn write(&self, text: &str) {
        fs::write(&self.path, text).unwrap();
    }

    pub fn builder(&self) -> hotconf::ReloaderBuilder<Config> {
        Reloader::<Config>::builder().file(&self.path)
    }
}

/// Every event an observer sees, on a channel that can be waited on.
pub fn observed(builder: hotconf::ReloaderBuilder<Config>) -> (Reloader<Config>, Receiver<Event>) {
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
pub fn next_any(events: &Receiver<Event>) -> Event {
    events.recv_timeout(DEADLINE).expect("an event within 10 s")
}

/// The next attempt's event (`detected` announcements skipped).
pub fn next(events: &Receiver<Event>) -> Event {
    loop {
        let event = next_any(events);
        if event.outcome != Outcome::Detected {
            return event;
        }
    }
}

/// Every log line written to it, in one buffer: a tracing subscriber's writer, for tests
/// that look for a log line (the worker logs on its own thread, so the subscriber is global).
#[derive(Clone, Default)]
pub struct Captured(pub std::sync::Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
