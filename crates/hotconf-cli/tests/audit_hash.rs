//! `hotconf audit-hash` against the library's HMAC and a real audit log: the value comes
//! from standard input only, one trailing newline is not part of it, and a missing or
//! invalid key file is trouble (exit 2) that never echoes the key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use hotconf::Reloader;
use hotconf::audit::{AuditKey, AuditLog, hash_value};
use serde_json::json;

const SECRET: &str = "hunter2-distinctive";

fn audit_hash(key_file: &Path, stdin: &[u8]) -> Output {
    Command::cargo_bin("hotconf")
        .unwrap()
        .args(["audit-hash", "--key-file"])
        .arg(key_file)
        .env("NO_COLOR", "1")
        .write_stdin(stdin.to_vec())
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap()
}

fn key_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("audit.key");
    fs::write(&path, format!("{}\n", "5a".repeat(32))).unwrap();
    path
}

fn printed(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    stdout.strip_suffix('\n').unwrap().to_owned()
}

#[test]
fn prints_the_libraries_hmac_of_standard_input_less_one_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_file(dir.path());
    let key = AuditKey::load(&path).unwrap();
    let expected = hash_value(&key, &json!(SECRET));
    assert!(expected.starts_with("hmac-sha256:") && expected.len() == 12 + 64);

    for input in [
        SECRET.to_owned(),
        format!("{SECRET}\n"),
        format!("{SECRET}\r\n"),
    ] {
        let output = audit_hash(&path, input.as_bytes());
        assert_eq!(printed(&output), expected, "{input:?}");
        assert!(!String::from_utf8_lossy(&output.stderr).contains(SECRET));
    }
    // Only one newline goes: a second one is part of the value.
    let output = audit_hash(&path, format!("{SECRET}\n\n").as_bytes());
    assert_eq!(
        printed(&output),
        hash_value(&key, &json!(format!("{SECRET}\n")))
    );
    // A number in a config hashes like its digits.
    assert_eq!(
        printed(&audit_hash(&path, b"1234\n")),
        hash_value(&key, &json!(1234))
    );
    // Another key, another HMAC.
    let other = dir.path().join("other.key");
    fs::write(&other, "a5".repeat(32)).unwrap();
    assert_ne!(printed(&audit_hash(&other, SECRET.as_bytes())), expected);
}

/// The loop an operator runs: a secret changed in a service's audit log, and the value
/// they suspect, piped to `audit-hash` with the log's generated key, matches the record.
#[test]
fn agrees_with_a_real_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("app.toml");
    fs::write(&config, "[db]\npassword = \"before-distinctive\"\n").unwrap();
    let log_path = dir.path().join("audit.jsonl");
    let log = AuditLog::builder(&log_path).build().unwrap();
    let reloader = Reloader::<serde_json::Value>::builder()
        .file(&config)
        .audit(log)
        .build()
        .unwrap();
    fs::write(&config, format!("[db]\npassword = \"{SECRET}\"\n")).unwrap();
    reloader.reload().unwrap();
    reloader.shutdown();

    let text = fs::read_to_string(&log_path).unwrap();
    assert!(
        !text.contains(SECRET) && !text.contains("before-distinctive"),
        "{text}"
    );
    let applied: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    assert_eq!(applied["outcome"], "applied");
    assert_eq!(applied["changes"][0]["path"], "db.password");
    let recorded = applied["changes"][0]["new"].as_str().unwrap();

    let key_file = dir.path().join("audit.jsonl.key");
    let output = audit_hash(&key_file, format!("{SECRET}\n").as_bytes());
    assert_eq!(printed(&output), recorded);
    let output = audit_hash(&key_file, b"a wrong guess\n");
    assert_ne!(printed(&output), recorded);
}

#[test]
fn a_missing_or_invalid_key_file_is_trouble() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.key");
    let output = audit_hash(&missing, SECRET.as_bytes());
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("hotconf: error: --key-file: audit key file "),
        "{stderr}"
    );
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("os error 2"), "{stderr}");
    assert!(output.stdout.is_empty());

    let short = dir.path().join("short.key");
    fs::write(&short, "0123abcd\n").unwrap();
    let output = audit_hash(&short, SECRET.as_bytes());
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a valid key"), "{stderr}");
    assert!(
        !stderr.contains("0123abcd"),
        "the key is never echoed: {stderr}"
    );
    assert!(!stderr.contains(SECRET));

    let garbage = dir.path().join("garbage.key");
    fs::write(&garbage, format!("{}xyz", "00".repeat(32))).unwrap();
    let output = audit_hash(&garbage, SECRET.as_bytes());
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a hex digit"));

    let output = audit_hash(dir.path(), SECRET.as_bytes());
    assert_eq!(output.status.code(), Some(2), "a directory as the key file");
}

#[test]
fn the_value_comes_from_standard_input_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_file(dir.path());
    let output = Command::cargo_bin("hotconf")
        .unwrap()
        .args(["audit-hash", "--key-file"])
        .arg(&path)
        .arg("some-value")
        .write_stdin(Vec::new())
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "no value on the command line"
    );
    assert!(output.stdout.is_empty());

    let output = audit_hash(&path, &[0xff, 0xfe, b'\n']);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not UTF-8"));
}
