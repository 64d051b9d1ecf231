//! The audit log on a real reloader and real files: one record per attempt for every
//! outcome, secrets only as HMACs, rotation, a log that cannot be written (a full disk, a
//! path under a file, a directory in its place) never failing a reload, fail-closed
//! rejecting at stage `audit`, and the key file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::{Captured, Config, DEADLINE, Fixture};
use hotconf::audit::{AuditError, AuditKey, AuditLog, hash_value};
use hotconf::{ObserverHealth, Outcome, Reloader, Stage, Trigger};
use serde_json::{Value, json};

const SECRET: &str = "hunter2-distinctive";
const SECRET_2: &str = "swordfish-distinctive";

/// Every record in the log at `path`, oldest first.
fn records(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The records once there are at least `count`, within the deadline.
fn wait_records(path: &Path, count: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let found = records(path);
        if found.len() >= count {
            return found;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{count} records expected, found {found:#?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn audit_health(reloader: &Reloader<Config>) -> ObserverHealth {
    let status = reloader.status();
    let mut audit = status.observers.into_iter().filter(|o| o.name == "audit");
    let health = audit.next().expect("the audit log in the status");
    assert!(audit.next().is_none(), "listed once");
    health
}

struct Logged {
    fixture: Fixture,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Logged {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            fixture: Fixture::new(),
            log: dir.path().join("audit.jsonl"),
            dir,
        }
    }

    fn key(&self) -> AuditKey {
        AuditKey::load(self.dir.path().join("audit.jsonl.key")).unwrap()
    }
}

#[test]
fn loaded_applied_rejected_unchanged_and_restart_required_records() {
    let t = Logged::new();
    let log = AuditLog::builder(&t.log).build().unwrap();
    let reloader = t
        .fixture
        .builder()
        .name("app")
        .restart_required("size")
        .audit(log)
        .build()
        .unwrap();
    let file = t.fixture.path.display().to_string();

    let loaded = &wait_records(&t.log, 1)[0];
    assert_eq!(loaded["outcome"], "loaded");
    assert_eq!(loaded["config"], "app");
    assert_eq!(loaded["trigger"], "load");
    assert_eq!(loaded["by"], Value::Null);
    assert_eq!(
        (&loaded["version_before"], &loaded["version_after"]),
        (&json!(0), &json!(1))
    );
    assert_eq!(loaded["files"][0]["file"], file);
    let hash = loaded["files"][0]["hash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 16);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(loaded.get("stage").is_none());

    t.fixture.write("rpm = 120\n");
    let applied_event = reloader.reload().unwrap();
    let applied = &wait_records(&t.log, 2)[1];
    assert_eq!(applied["outcome"], "applied");
    assert_eq!(applied["seq"], applied_event.seq);
    assert_eq!(applied["trigger"], "reload");
    assert_eq!(
        (&applied["version_before"], &applied["version_after"]),
        (&json!(1), &json!(2))
    );
    assert_eq!(
        applied["changes"],
        json!([{"path": "rpm", "kind": "modified", "old": 60, "new": 120}])
    );
    assert_ne!(
        applied["files"][0]["hash"],
        hash.as_str(),
        "new content, new hash"
    );
    assert_eq!(
        (
            &applied["errors"],
            &applied["warnings"],
            &applied["pending"]
        ),
        (&json!([]), &json!([]), &json!([]))
    );
    assert!(applied["duration_us"].is_u64());
    assert!(applied["time"].as_str().unwrap().ends_with('Z'));

    t.fixture.write("rpm = 0\n");
    reloader.reload().unwrap_err();
    let rejected = &wait_records(&t.log, 3)[2];
    assert_eq!(rejected["outcome"], "rejected");
    assert_eq!(rejected["stage"], "validate");
    assert_eq!(
        (&rejected["version_before"], &rejected["version_after"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(
        rejected["errors"],
        json!([{"file": file, "line": 1, "column": 7, "path": "rpm",
                "message": "must be greater than 0", "kind": "validation"}])
    );
    assert_eq!(rejected["changes"], json!([]));

    t.fixture.write("rpm = 120 # the same config\n");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Unchanged);
    let unchanged = &wait_records(&t.log, 4)[3];
    assert_eq!(unchanged["outcome"], "unchanged");
    assert_eq!(
        (&unchanged["version_before"], &unchanged["version_after"]),
        (&json!(2), &json!(2))
    );

    t.fixture.write("rpm = 120\nsize = 5\n");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::RestartRequired);
    let restart = &wait_records(&t.log, 5)[4];
    assert_eq!(restart["outcome"], "restart_required");
    assert_eq!(restart["pending"], json!(["size"]));
    assert_eq!(
        restart["changes"],
        json!([{"path": "size", "kind": "modified", "old": 0, "new": 5}])
    );

    // One record per attempt, numbered like the events, nothing else.
    let all = records(&t.log);
    assert_eq!(all.len(), 5);
    let seqs: Vec<u64> = all.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    let attempts: Vec<u64> = reloader.attempts().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, attempts);
    let health = audit_health(&reloader);
    assert!(health.ok, "{health:?}");
    assert_eq!(health.detail["records"], 5);
    assert_eq!(health.detail["write_failures"], 0);
    assert_eq!(health.detail["path"], t.log.display().to_string());
}

#[test]
fn deferred_rollback_and_api_records_say_what_started_them_and_who_asked() {
    let t = Logged::new();
    let log = AuditLog::builder(&t.log).build().unwrap();
    let reloader = t.fixture.builder().audit(log).build().unwrap();

    let hold = reloader.hold();
    t.fixture.write("rpm = 70\n");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Deferred);
    let deferred = &wait_records(&t.log, 2)[1];
    assert_eq!(deferred["outcome"], "deferred");
    assert_eq!(
        (&deferred["version_before"], &deferred["version_after"]),
        (&json!(1), &json!(1))
    );
    drop(hold);
    let ran = &wait_records(&t.log, 3)[2];
    assert_eq!(ran["outcome"], "applied", "the deferred reload ran: {ran}");
    assert_eq!(ran["version_after"], 2);

    reloader.rollback_to(1).unwrap();
    let rollback = &wait_records(&t.log, 4)[3];
    assert_eq!(rollback["outcome"], "applied");
    assert_eq!(rollback["trigger"], "rollback");
    assert_eq!(
        (&rollback["version_before"], &rollback["version_after"]),
        (&json!(2), &json!(3))
    );
    assert_eq!(
        rollback["changes"],
        json!([{"path": "rpm", "kind": "modified", "old": 70, "new": 60}])
    );

    reloader
        .control()
        .reload(Some("api 127.0.0.1:51234".into()))
        .unwrap();
    let api = &wait_records(&t.log, 5)[4];
    assert_eq!(api["trigger"], "api");
    assert_eq!(api["by"], "api 127.0.0.1:51234");
    assert_eq!(
        api["outcome"], "applied",
        "the sources win over the rollback"
    );
}

#[test]
fn secrets_are_written_as_hmacs_only() {
    let t = Logged::new();
    t.fixture
        .write(&format!("rpm = 60\n[db]\npassword = \"{SECRET}\"\n"));
    let log = AuditLog::builder(&t.log).build().unwrap();
    let reloader = t.fixture.builder().audit(log).build().unwrap();
    t.fixture
        .write(&format!("rpm = 60\n[db]\npassword = \"{SECRET_2}\"\n"));
    reloader.reload().unwrap();
    t.fixture.write("rpm = 0\n[db]\npassword = 1234\n");
    reloader.reload().unwrap_err();

    let all = wait_records(&t.log, 3);
    let key = t.key();
    assert_eq!(
        all[1]["changes"],
        json!([{"path": "db.password", "kind": "modified",
                "old": hash_value(&key, &json!(SECRET)),
                "new": hash_value(&key, &json!(SECRET_2))}])
    );
    // The events themselves keep the redacted form.
    assert_eq!(reloader.attempts()[1].changes[0].new, Some(json!("***")));

    let text = fs::read_to_string(&t.log).unwrap();
    for clear in [SECRET, SECRET_2, "***"] {
        assert!(!text.contains(clear), "{clear:?} in the log: {text}");
    }
    let key_text = fs::read_to_string(key.path()).unwrap();
    let debug = format!("{:?}", AuditLog::builder(&t.log).build().unwrap());
    assert!(
        debug.starts_with("AuditLog") && debug.contains("audit.jsonl"),
        "{debug}"
    );
    assert!(
        !debug.contains(key_text.trim()),
        "the key is not in Debug: {debug}"
    );
    let status = serde_json::to_string(&reloader.status()).unwrap();
    for output in [key_text, status, format!("{:?}", key)] {
        assert!(!output.contains(SECRET) && !output.contains(SECRET_2));
    }
}

#[test]
fn rotation_keeps_k_files_and_loses_no_record_in_them() {
    let t = Logged::new();
    let log = AuditLog::builder(&t.log)
        .max_bytes(1000)
        .keep(3)
        .build()
        .unwrap();
    let reloader = t.fixture.builder().audit(log).build().unwrap();
    let mut last = 0;
    for rpm in 100..130 {
        t.fixture.write(&format!("rpm = {rpm}\n"));
        last = reloader.reload().unwrap().seq;
    }
    let path = |index: usize| PathBuf::from(format!("{}.{index}", t.log.display()));
    let start = Instant::now();
    while records(&t.log).last().map(|r| r["seq"].as_u64()) != Some(Some(last)) {
        assert!(start.elapsed() < DEADLINE, "the last record never came");
        thread::sleep(Duration::from_millis(10));
    }
    assert!(
        path(3).exists() && !path(4).exists(),
        "keeps 3 rotated files"
    );
    let mut kept = Vec::new();
    for file in [path(3), path(2), path(1), t.log.clone()] {
        let size = fs::metadata(&file).unwrap().len();
        assert!(size <= 1000, "{}: {size} bytes", file.display());
        let found = records(&file);
        assert!(!found.is_empty());
        kept.extend(found.iter().map(|r| r["seq"].as_u64().unwrap()));
    }
    // Numbered like the attempts (`detected` events take numbers in between).
    let expected: Vec<u64> = reloader
        .attempts()
        .iter()
        .map(|event| event.seq)
        .filter(|seq| *seq >= kept[0])
        .collect();
    assert_eq!(
        kept, expected,
        "every record from the oldest kept on, in order"
    );
    assert_eq!(kept.last(), Some(&last));
    assert!(kept[0] > 1, "the oldest were rotated away");
    assert!(audit_health(&reloader).ok);
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_never_blocks_a_reload_and_shows_in_the_status() {
    // The only test here with a recorder: write failures are counted in the metrics too.
    #[cfg(feature = "metrics")]
    let recorder = {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).unwrap();
        handle
    };
    let dir = tempfile::tempdir().unwrap();
    let fixture = Fixture::new();
    let log = AuditLog::builder("/dev/full")
        .key_file(key_in(dir.path()))
        .build()
        .unwrap();
    // A name of its own: the recorder is the process's, and the other tests that write to
    // /dev/full, running at the same time, count their failures under theirs.
    let reloader = fixture
        .builder()
        .name("full-disk")
        .audit(log)
        .build()
        .unwrap();
    for rpm in [61, 62, 63] {
        fixture.write(&format!("rpm = {rpm}\n"));
        assert_eq!(reloader.reload().unwrap().outcome, Outcome::Applied);
        assert_eq!(reloader.current().rpm, rpm);
    }
    let health = audit_health(&reloader);
    assert!(!health.ok);
    let error = health.error.unwrap();
    assert!(
        error.contains("/dev/full") && error.contains("os error 28"),
        "{error}"
    );
    assert_eq!(
        health.detail["write_failures"], 4,
        "the load and three reloads"
    );
    assert_eq!(health.detail["records"], 0);
    #[cfg(feature = "metrics")]
    {
        let text = recorder.render();
        assert!(
            text.lines()
                .any(|line| line == r#"hotconf_audit_write_failures_total{config="full-disk"} 4"#),
            "{text}"
        );
    }
    assert!(Path::new("/dev/full").exists());
}

/// A key file of our own, so that nothing is created beside a log that is not a real file.
fn key_in(dir: &Path) -> PathBuf {
    let path = dir.join("audit.key");
    fs::write(&path, "ab".repeat(32)).unwrap();
    path
}

#[test]
fn a_log_under_a_file_or_in_a_directorys_place_is_reported_until_it_can_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    fs::write(&file, "").unwrap();
    let taken = dir.path().join("taken");
    fs::create_dir(&taken).unwrap();
    // ENOTDIR and EISDIR: the permission errors a test running as root can still get.
    for (path, errno) in [(file.join("audit.jsonl"), 20), (taken.clone(), 21)] {
        let fixture = Fixture::new();
        let log = AuditLog::builder(&path)
            .key_file(key_in(dir.path()))
            .build()
            .unwrap();
        let reloader = fixture.builder().audit(log).build().unwrap();
        fixture.write("rpm = 90\n");
        assert_eq!(reloader.reload().unwrap().outcome, Outcome::Applied);
        assert_eq!(reloader.current().rpm, 90);
        let health = audit_health(&reloader);
        assert!(!health.ok);
        let error = health.error.unwrap();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains(&format!("os error {errno}")), "{error}");
        assert_eq!(health.detail["write_failures"], 2);
        assert_eq!(health.detail["records"], 0);
    }

    // The directory goes: the next record is written, and the log is healthy again.
    let fixture = Fixture::new();
    let log = AuditLog::builder(&taken)
        .key_file(key_in(dir.path()))
        .build()
        .unwrap();
    let reloader = fixture.builder().audit(log).build().unwrap();
    fs::remove_dir(&taken).unwrap();
    fixture.write("rpm = 91\n");
    reloader.reload().unwrap();
    let written = wait_records(&taken, 1);
    assert_eq!(written[0]["outcome"], "applied");
    let health = audit_health(&reloader);
    assert!(health.ok, "{health:?}");
    assert_eq!(health.error, None);
    assert_eq!(
        (
            health.detail["write_failures"].as_u64(),
            health.detail["records"].as_u64()
        ),
        (Some(1), Some(1))
    );
}

#[cfg(target_os = "linux")]
#[test]
fn fail_closed_rejects_at_stage_audit_when_the_intent_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Fixture::new();
    let log = AuditLog::builder("/dev/full")
        .key_file(key_in(dir.path()))
        .fail_closed(true)
        .build()
        .unwrap();
    let reloader = fixture.builder().audit(log).build().unwrap();
    let before = reloader.current();

    fixture.write("rpm = 120\n");
    let error = reloader.reload().unwrap_err().to_string();
    assert!(error.contains("audit log"), "{error}");
    assert!(error.contains("os error 28"), "{error}");
    let current = reloader.current();
    assert!(
        std::sync::Arc::ptr_eq(&before, &current),
        "the old snapshot stays live"
    );
    assert_eq!((current.version(), current.rpm), (1, 60));
    let rejected = reloader.attempts().pop().unwrap();
    assert_eq!(rejected.outcome, Outcome::Rejected);
    assert_eq!(rejected.stage, Some(Stage::Audit));
    assert_eq!(rejected.errors[0].kind, hotconf::ProblemKind::Audit);
    assert!(!audit_health(&reloader).ok);

    // A programmatic change takes the same step.
    let mut config = (*reloader.current()).clone();
    config.rpm = 77;
    reloader.apply(config).unwrap_err();
    assert_eq!(reloader.attempts().pop().unwrap().stage, Some(Stage::Audit));
    assert_eq!(
        (reloader.current().version(), reloader.current().rpm),
        (1, 60)
    );
}

#[test]
fn fail_closed_writes_the_intent_before_the_swap() {
    let t = Logged::new();
    t.fixture
        .write(&format!("rpm = 60\n[db]\npassword = \"{SECRET}\"\n"));
    let log = AuditLog::builder(&t.log).fail_closed(true).build().unwrap();
    let seen = t.log.clone();
    // What the log holds when the new config is already live, as a callback sees it.
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let reloader = t.fixture.builder().audit(log).build().unwrap();
    reloader.on_change(move |_| {
        let _ = tx.lock().unwrap().send(records(&seen));
    });
    t.fixture
        .write(&format!("rpm = 61\n[db]\npassword = \"{SECRET_2}\"\n"));
    reloader.control().reload(Some("ops".into())).unwrap();

    let at_swap = rx.recv_timeout(DEADLINE).unwrap();
    let intent = at_swap.last().unwrap();
    assert_eq!(intent["outcome"], "intent", "{at_swap:#?}");
    assert_eq!(intent.get("seq"), None);
    assert_eq!(
        (&intent["version_before"], &intent["version_after"]),
        (&json!(1), &json!(2))
    );
    assert_eq!(
        (&intent["trigger"], &intent["by"]),
        (&json!("api"), &json!("ops"))
    );
    assert_eq!(
        intent["files"][0]["file"],
        t.fixture.path.display().to_string()
    );
    let key = t.key();
    let password = intent["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|change| change["path"] == "db.password")
        .unwrap();
    assert_eq!(password["new"], hash_value(&key, &json!(SECRET_2)));

    let all = wait_records(&t.log, 3);
    let outcomes: Vec<&str> = all.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["loaded", "intent", "applied"]);
    assert_eq!(all[2]["files"], intent["files"]);
    assert_eq!(all[2]["changes"], intent["changes"]);
    let text = fs::read_to_string(&t.log).unwrap();
    assert!(!text.contains(SECRET) && !text.contains(SECRET_2));
}

#[test]
fn a_fail_closed_log_that_cannot_be_opened_fails_at_build() {
    let dir = tempfile::tempdir().unwrap();
    let error = AuditLog::builder(dir.path())
        .key_file(key_in(dir.path()))
        .fail_closed(true)
        .build()
        .unwrap_err();
    assert!(matches!(error, AuditError::Open { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("os error 21"), "{message}");
    // Not fail-closed: the same log is only reported.
    AuditLog::builder(dir.path())
        .key_file(key_in(dir.path()))
        .build()
        .unwrap();
}

#[test]
fn the_key_file_is_made_beside_the_log_once_and_reused() {
    let t = Logged::new();
    t.fixture
        .write(&format!("rpm = 60\n[db]\npassword = \"{SECRET}\"\n"));
    let key_path = t.dir.path().join("audit.jsonl.key");
    let first = AuditLog::builder(&t.log).build().unwrap();
    assert_eq!(first.key().path(), key_path);
    let text = fs::read_to_string(&key_path).unwrap();
    assert_eq!(text.trim_end().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let fingerprint = first.fingerprint();
    drop(first);

    // The next start reads the same key: the same secret has the same HMAC.
    let again = AuditLog::builder(&t.log).build().unwrap();
    assert_eq!(fs::read_to_string(&key_path).unwrap(), text);
    assert_eq!(
        again.fingerprint()(&json!(SECRET)),
        fingerprint(&json!(SECRET))
    );
    assert_eq!(
        again.fingerprint()(&json!(SECRET)),
        hash_value(&t.key(), &json!(SECRET))
    );

    // A key file given must exist; an invalid one is refused, and left as it is.
    let missing = t.dir.path().join("missing.key");
    let error = AuditLog::builder(&t.log)
        .key_file(&missing)
        .build()
        .unwrap_err();
    assert!(matches!(error, AuditError::Key { .. }), "{error:?}");
    assert!(error.to_string().contains(&missing.display().to_string()));
    assert!(!missing.exists());
    fs::write(&key_path, "not a key\n").unwrap();
    let error = AuditLog::builder(&t.log).build().unwrap_err();
    assert!(matches!(error, AuditError::InvalidKey { .. }), "{error:?}");
    assert_eq!(fs::read_to_string(&key_path).unwrap(), "not a key\n");
}

#[test]
fn a_plain_observer_log_writes_redacted_changes_without_a_config_name() {
    let t = Logged::new();
    t.fixture
        .write(&format!("rpm = 60\n[db]\npassword = \"{SECRET}\"\n"));
    let log = AuditLog::builder(&t.log).build().unwrap();
    let reloader = t.fixture.builder().observer(log).build().unwrap();
    t.fixture
        .write(&format!("rpm = 60\n[db]\npassword = \"{SECRET_2}\"\n"));
    assert_eq!(reloader.reload().unwrap().trigger, Trigger::Reload);
    let all = wait_records(&t.log, 2);
    assert_eq!(all[1].get("config"), None);
    assert_eq!(
        all[1]["changes"][0]["new"], "***",
        "no fingerprint: redacted"
    );
    let health = audit_health(&reloader);
    assert!(health.ok, "{health:?}");
    assert_eq!(health.detail["records"], 2);
    let text = fs::read_to_string(&t.log).unwrap();
    assert!(!text.contains(SECRET) && !text.contains(SECRET_2));
}

/// The only test here that sets the global subscriber. Under `cargo test` the other tests
/// log into it too, from the same process: lines are counted only when they name this
/// test's own temporary directory.
#[test]
fn a_failure_is_logged_once_per_streak_and_no_secret_is_logged() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().display().to_string();
    let count = |needle: &str| {
        let text = captured.text();
        text.lines()
            .filter(|line| line.contains(needle) && line.contains(&ours))
            .count()
    };
    const FAILING: &str = "cannot write the audit log; reloads go on without it";
    const WRITABLE: &str = "audit log writable again";

    let fixture = Fixture::new();
    let path = dir.path().join("audit.jsonl");
    fs::create_dir(&path).unwrap();
    let log = AuditLog::builder(&path)
        .key_file(key_in(dir.path()))
        .build()
        .unwrap();
    fixture.write(&format!("rpm = 60\n[db]\npassword = \"{SECRET}\"\n"));
    let reloader = fixture.builder().audit(log).build().unwrap();
    let mut rpm = 60;
    let mut reload = |fixture: &Fixture| {
        rpm += 1;
        let secret = if rpm % 2 == 0 { SECRET } else { SECRET_2 };
        fixture.write(&format!("rpm = {rpm}\n[db]\npassword = \"{secret}\"\n"));
        assert_eq!(reloader.reload().unwrap().outcome, Outcome::Applied);
    };
    reload(&fixture);
    reload(&fixture);
    assert_eq!(
        (count(FAILING), count(WRITABLE)),
        (1, 0),
        "three failures, one line"
    );

    fs::remove_dir(&path).unwrap();
    reload(&fixture);
    reload(&fixture);
    assert_eq!((count(FAILING), count(WRITABLE)), (1, 1));

    // The log is replaced by a directory: a new streak, logged again.
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    reload(&fixture);
    reload(&fixture);
    assert_eq!((count(FAILING), count(WRITABLE)), (2, 1));
    let health = audit_health(&reloader);
    assert_eq!(health.detail["write_failures"], 5);
    assert_eq!(health.detail["records"], 2);

    // A key file others can read is loaded, with a warning.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        const READABLE: &str = "can be read by others than its owner";
        let open = key_in(dir.path());
        fs::set_permissions(&open, fs::Permissions::from_mode(0o644)).unwrap();
        let before = count(READABLE);
        AuditKey::load(&open).unwrap();
        assert_eq!(count(READABLE), before + 1);
        fs::set_permissions(&open, fs::Permissions::from_mode(0o600)).unwrap();
        AuditKey::load(&open).unwrap();
        assert_eq!(count(READABLE), before + 1);
    }

    let text = captured.text();
    assert!(text.contains("hotconf::audit"), "{text}");
    assert!(!text.contains(SECRET) && !text.contains(SECRET_2), "{text}");
}
