//! No secret value reaches the log, at any level: every line the library logs at TRACE
//! while loading, rejecting, applying and planning configs with secrets is captured and
//! searched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Write;
use std::sync::{Arc, Mutex};

use hotconf::{Reloader, Report, Validate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Config {
    rpm: u32,
    db: Db,
    #[serde(default)]
    extra: Extra,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Db {
    password: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct Extra {
    #[serde(default)]
    signing: String,
}

impl Validate for Config {
    fn validate(&self, report: &mut Report) {
        if self.rpm == 0 {
            report.error("rpm", "must be greater than 0");
        }
    }
}

/// Everything logged, in one buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_secret_value_is_logged_at_any_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    let write = |text: &str| fs::write(&path, text).unwrap();
    write("rpm = 60\n[db]\npassword = \"hunter2\"\n");
    let reloader = Reloader::<Config>::builder()
        .file(&path)
        .secret("extra.signing")
        .build()
        .unwrap();
    reloader.watch().unwrap();
    // Applied: a secret changes, and one under a user pattern appears.
    write("rpm = 61\n[db]\npassword = \"swordfish\"\n[extra]\nsigning = \"k3y-material\"\n");
    reloader.plan();
    reloader.reload().unwrap();
    // Rejected: a type error at a secret path would quote the value.
    write("rpm = 61\n[db]\npassword = 987654\n");
    assert!(reloader.reload().is_err());
    // Rejected by validation while a new secret is in the file.
    write("rpm = 0\n[db]\npassword = \"tr0ub4dor\"\n");
    assert!(reloader.reload().is_err());
    reloader.plan();
    reloader.shutdown();

    // A hold kept past its period is reported again, at warn.
    let other = dir.path().join("other.toml");
    fs::write(&other, "rpm = 1\n[db]\npassword = \"p\"\n").unwrap();
    let held = Reloader::<Config>::builder()
        .file(&other)
        .max_hold(std::time::Duration::from_millis(20))
        .build()
        .unwrap();
    let hold = held.hold();
    fs::write(&other, "rpm = 2\n[db]\npassword = \"p\"\n").unwrap();
    assert_eq!(held.reload().unwrap().outcome, hotconf::Outcome::Deferred);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let logged =
        || String::from_utf8_lossy(&captured.0.lock().unwrap()).contains("reload still deferred");
    while !logged() {
        assert!(
            std::time::Instant::now() < deadline,
            "no warning for a long hold"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(hold);
    held.shutdown();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("config applied"),
        "the log was captured: {log}"
    );
    assert!(log.contains("config rejected"), "{log}");
    // Each applied change is logged at info, redacted.
    assert!(
        log.contains(r#"change=~ db.password: "***" -> "***""#),
        "{log}"
    );
    assert!(log.contains("change=~ rpm: 60 -> 61"), "{log}");
    for secret in [
        "hunter2",
        "swordfish",
        "k3y-material",
        "987654",
        "tr0ub4dor",
    ] {
        assert!(!log.contains(secret), "the log leaks {secret}:\n{log}");
    }
}
