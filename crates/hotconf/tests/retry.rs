//! Transient read errors (seed 004): a file briefly missing while it is replaced is read
//! after a bounded retry, one that stays missing is rejected after the policy's attempts
//! with the usual located error, and a genuinely missing optional file is not waited for.
//!
//! Attempts are counted by the policy itself ([`RetryPolicy::retries`]): no assert here
//! depends on how long anything took.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::thread;
use std::time::Duration;

use hotconf::source::{Dir, File, RetryPolicy, Source};
use hotconf::{Limits, Outcome, Reloader};
use serde_json::json;

type Json = serde_json::Value;

/// Patient enough that a loaded machine cannot make the writer thread win the race for
/// good: up to 3 s of retries, 50 ms apart at most.
fn patient() -> RetryPolicy {
    RetryPolicy::new(100, Duration::from_millis(5))
        .max_delay(Duration::from_millis(50))
        .total(Duration::from_secs(3))
}

/// Writes `text` to `path` from another thread after `delay`.
fn write_later(
    path: std::path::PathBuf,
    text: &'static str,
    delay: Duration,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        thread::sleep(delay);
        // Written beside it and renamed over: the reader never sees a half-written file.
        let temp = path.with_extension("tmp");
        fs::write(&temp, text).unwrap();
        fs::rename(&temp, &path).unwrap();
    })
}

#[test]
fn a_file_briefly_missing_is_read_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "rpm = 60\n").unwrap();
    let policy = patient();
    let file = File::new(&path).retry(policy.clone());
    assert_eq!(file.read(&Limits::default()).unwrap().len(), 1);
    assert_eq!(policy.retries(), 0, "a present file is read at once");

    fs::remove_file(&path).unwrap();
    let writer = write_later(path.clone(), "rpm = 120\n", Duration::from_millis(100));
    let documents = file.read(&Limits::default()).unwrap();
    writer.join().unwrap();
    assert_eq!(&*documents[0].bytes, b"rpm = 120\n");
    assert!(policy.retries() >= 1, "the missing file was retried");
}

#[test]
fn a_reload_during_a_delete_then_write_save_applies_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "rpm = 60\n").unwrap();
    let policy = patient();
    let reloader = Reloader::<Json>::builder()
        .source(File::new(&path).retry(policy.clone()))
        .build()
        .unwrap();

    fs::remove_file(&path).unwrap();
    let writer = write_later(path.clone(), "rpm = 120\n", Duration::from_millis(100));
    let event = reloader.reload().unwrap();
    writer.join().unwrap();
    assert_eq!(event.outcome, Outcome::Applied);
    assert_eq!(*reloader.current().config(), json!({"rpm": 120}));
    assert!(policy.retries() >= 1);
}

#[test]
fn a_file_that_stays_missing_is_rejected_after_the_policy_s_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "rpm = 60\n").unwrap();
    let policy = RetryPolicy::new(4, Duration::from_millis(1));
    let reloader = Reloader::<Json>::builder()
        .source(File::new(&path).retry(policy.clone()))
        .build()
        .unwrap();

    fs::remove_file(&path).unwrap();
    let error = reloader.reload().unwrap_err();
    let text = error.to_string();
    // The usual located read error, as without retries.
    assert!(
        text.contains(&format!("{}: no such file or directory", path.display())),
        "{text}"
    );
    assert!(!text.contains("attempt"), "{text}");
    assert_eq!(policy.retries(), 3, "4 attempts: 3 retries");
    assert_eq!(*reloader.current().config(), json!({"rpm": 60}));

    // Each reload retries afresh, with the same bound.
    assert!(reloader.reload().is_err());
    assert_eq!(policy.retries(), 6);
}

#[test]
fn an_optional_file_is_waited_for_only_when_it_was_there_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.toml");
    let policy = RetryPolicy::new(3, Duration::from_millis(1));
    let file = File::new(&path).optional(true).retry(policy.clone());
    let limits = Limits::default();

    // Never there: nothing, at once.
    assert!(file.read(&limits).unwrap().is_empty());
    assert!(file.read(&limits).unwrap().is_empty());
    assert_eq!(policy.retries(), 0);

    // There, then gone for good: waited for (bounded), then taken as removed.
    fs::write(&path, "rpm = 1\n").unwrap();
    assert_eq!(file.read(&limits).unwrap().len(), 1);
    fs::remove_file(&path).unwrap();
    assert!(file.read(&limits).unwrap().is_empty());
    assert_eq!(policy.retries(), 2);

    // Known to be gone now: the next read does not wait again.
    assert!(file.read(&limits).unwrap().is_empty());
    assert_eq!(policy.retries(), 2);
}

#[test]
fn a_dangling_link_for_an_optional_file_is_still_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.toml");
    std::os::unix::fs::symlink(dir.path().join("nowhere.toml"), &path).unwrap();
    let policy = RetryPolicy::new(2, Duration::from_millis(1));
    let file = File::new(&path).optional(true).retry(policy.clone());
    let problem = file.read(&Limits::default()).unwrap_err();
    assert_eq!(
        problem.to_string(),
        format!("{}: no such file or directory", path.display())
    );
    assert_eq!(policy.retries(), 1);
}

#[test]
fn errors_that_cannot_pass_are_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::create_dir(&path).unwrap();
    let policy = RetryPolicy::default();
    let problem = File::new(&path)
        .retry(policy.clone())
        .read(&Limits::default())
        .unwrap_err();
    assert_eq!(
        problem.to_string(),
        format!("{}: is a directory, expected a file", path.display())
    );
    assert_eq!(policy.retries(), 0);

    let big = dir.path().join("big.toml");
    fs::write(&big, vec![b'#'; 2048]).unwrap();
    let mut small = Limits::default();
    small.max_bytes = 1024;
    assert!(File::new(&big).retry(policy.clone()).read(&small).is_err());
    assert_eq!(policy.retries(), 0);
}

#[test]
fn a_directory_briefly_moved_away_is_read_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf.d");
    fs::create_dir(&conf).unwrap();
    fs::write(conf.join("10-app.toml"), "rpm = 60\n").unwrap();
    let policy = patient();
    let source = Dir::new(&conf).retry(policy.clone());

    let aside = dir.path().join("conf.d.old");
    fs::rename(&conf, &aside).unwrap();
    let mover = {
        let (aside, conf) = (aside.clone(), conf.clone());
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            fs::rename(&aside, &conf).unwrap();
        })
    };
    let documents = source.read(&Limits::default()).unwrap();
    mover.join().unwrap();
    assert_eq!(documents.len(), 1);
    assert_eq!(&*documents[0].bytes, b"rpm = 60\n");
    assert!(policy.retries() >= 1);

    // Gone for good: rejected after the attempts, located at the directory.
    fs::remove_dir_all(&conf).unwrap();
    let strict = RetryPolicy::new(3, Duration::from_millis(1));
    let problem = Dir::new(&conf)
        .retry(strict.clone())
        .read(&Limits::default())
        .unwrap_err();
    assert_eq!(
        problem.to_string(),
        format!("{}: no such file or directory", conf.display())
    );
    assert_eq!(strict.retries(), 2);
}

#[test]
fn without_retries_a_missing_file_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    let policy = RetryPolicy::none();
    let problem = File::new(&path)
        .retry(policy.clone())
        .read(&Limits::default())
        .unwrap_err();
    assert_eq!(
        problem.to_string(),
        format!("{}: no such file or directory", path.display())
    );
    assert_eq!(policy.retries(), 0);
}
