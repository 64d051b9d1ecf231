//! `hotconf push` against a real etcd: published in one revision, refused when invalid, on
//! a concurrent change and over etcd's limits; authentication and TLS; never a value in
//! the output.
#![cfg(feature = "etcd")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../hotconf-etcd/tests/common/etcd.rs"]
mod etcd;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use etcd::Etcd;
use serde_json::{Value, json};

fn hotconf(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::cargo_bin("hotconf").unwrap();
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("ETCD_PASSWORD")
        .timeout(Duration::from_secs(60));
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn text(output: &Output) -> (i32, String, String) {
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json_of(output: &Output) -> (i32, Value) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout:?}, stderr {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap(), value)
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

fn keys(etcd: &Etcd, prefix: &str) -> Vec<String> {
    etcd.ctl(&["get", "--prefix", prefix, "--keys-only"])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn value(etcd: &Etcd, key: &str) -> String {
    etcd.ctl(&["get", key, "--print-value-only"])
        .trim_end_matches('\n')
        .to_owned()
}

#[test]
fn push_publishes_a_valid_directory_in_one_revision() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/stale.toml", "old = 1");
    etcd.put("/app.status/web-1", "{}");
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("a.toml", "[db]\npassword = \"hunter2\"\n"),
            ("b.yaml", "rpm: 60\n"),
        ],
    );
    let path = dir.path().to_str().unwrap();
    let endpoint = etcd.endpoint();
    let before = etcd.revision();
    let output = hotconf(
        &["push", path, "--etcd", &endpoint, "--prefix", "/app/"],
        &[],
    );
    let (code, stdout, stderr) = text(&output);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("put     /app/a.toml"), "{stdout}");
    assert!(stdout.contains("delete  /app/stale.toml"), "{stdout}");
    assert!(
        stdout.contains(&format!("published /app/ at revision {}", before + 1)),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"));
    assert_eq!(etcd.revision(), before + 1, "one transaction");
    assert_eq!(keys(&etcd, "/app/"), ["/app/a.toml", "/app/b.yaml"]);
    assert_eq!(value(&etcd, "/app/b.yaml"), "rpm: 60");
    assert_eq!(keys(&etcd, "/app.status/"), ["/app.status/web-1"]);

    // Again: identical, nothing written, exit 0.
    let output = hotconf(
        &[
            "push", path, "--etcd", &endpoint, "--prefix", "/app/", "--json",
        ],
        &[],
    );
    let (code, report) = json_of(&output);
    assert_eq!(code, 0);
    assert_eq!(report["outcome"], json!("unchanged"));
    assert_eq!(report["written"], json!(false));
    assert_eq!(report["revision"], json!(before + 1));
    assert_eq!(report["put"], json!([]));
    assert_eq!(report["unchanged"], json!(["/app/a.toml", "/app/b.yaml"]));
    assert_eq!(etcd.revision(), before + 1);

    // The JSON of a push that writes.
    write(dir.path(), &[("b.yaml", "rpm: 120\n")]);
    let (code, report) = json_of(&hotconf(
        &[
            "push", path, "--etcd", &endpoint, "--prefix", "/app/", "--json",
        ],
        &[],
    ));
    assert_eq!(code, 0);
    assert_eq!(report["outcome"], json!("published"));
    assert_eq!(report["written"], json!(true));
    assert_eq!(report["prefix"], json!("/app/"));
    assert_eq!(report["read_revision"], json!(before + 1));
    assert_eq!(report["revision"], json!(before + 2));
    assert_eq!(report["put"], json!(["/app/b.yaml"]));
    assert_eq!(report["deleted"], json!([]));
    assert_eq!(report["files"].as_array().unwrap().len(), 2);
    assert_eq!(report["content_hash"].as_str().unwrap().len(), 16);
    assert_eq!(report["pending"], json!([]));
    assert_eq!(report["warnings"], json!([]));
    assert!(!report.to_string().contains("hunter2"));
}

#[test]
fn push_refuses_an_invalid_directory_and_writes_nothing() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "x = 0");
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("a.toml", "x = 1\n"),
            ("b.toml", "token = \"s3cr3t\"\ny = [1,\n"),
        ],
    );
    let path = dir.path().to_str().unwrap();
    let endpoint = etcd.endpoint();
    let before = etcd.revision();
    let (code, stdout, stderr) = text(&hotconf(
        &["push", path, "--etcd", &endpoint, "--prefix", "/app/"],
        &[],
    ));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("b.toml:2:"), "{stderr}");
    assert!(
        stderr.contains("invalid: 1 error; nothing was pushed"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cr3t") && !stdout.contains("s3cr3t"));
    let (code, report) = json_of(&hotconf(
        &[
            "push", path, "--etcd", &endpoint, "--prefix", "/app/", "--json",
        ],
        &[],
    ));
    assert_eq!(code, 1);
    assert_eq!(report["outcome"], json!("invalid"));
    assert_eq!(report["valid"], json!(false));
    let error = &report["errors"][0];
    assert!(
        error["file"].as_str().unwrap().ends_with("b.toml"),
        "{report}"
    );
    assert_eq!(error["line"], json!(2));
    assert_eq!(etcd.revision(), before, "nothing written");
    assert_eq!(value(&etcd, "/app/a.toml"), "x = 0");

    // A denied change (compared with what is there) is invalid as well.
    write(dir.path(), &[("b.toml", "y = 1\n"), ("a.toml", "x = 2\n")]);
    let (code, _, stderr) = text(&hotconf(
        &[
            "push", path, "--etcd", &endpoint, "--prefix", "/app/", "--deny", "x",
        ],
        &[],
    ));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("a.toml:1:"), "{stderr}");
    assert_eq!(etcd.revision(), before);
}

#[test]
fn push_on_a_concurrent_change_is_a_conflict() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "x = 0");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("a.toml", "x = 1\n")]);
    let path = dir.path().to_str().unwrap();
    let endpoint = etcd.endpoint();
    let read = etcd.revision().to_string();
    // Another operator's change lands between the read and the push.
    etcd.put("/app/b.toml", "y = 1");
    let (code, stdout, stderr) = text(&hotconf(
        &[
            "push",
            path,
            "--etcd",
            &endpoint,
            "--prefix",
            "/app/",
            "--expect-revision",
            &read,
        ],
        &[],
    ));
    assert_eq!(code, 3, "{stdout}{stderr}");
    assert!(stderr.contains("conflict"), "{stderr}");
    let after = etcd.revision();
    let (code, report) = json_of(&hotconf(
        &[
            "push",
            path,
            "--etcd",
            &endpoint,
            "--prefix",
            "/app/",
            "--expect-revision",
            &read,
            "--json",
        ],
        &[],
    ));
    assert_eq!(code, 3);
    assert_eq!(report["outcome"], json!("conflict"));
    assert_eq!(report["read_revision"].to_string(), read);
    assert_eq!(etcd.revision(), after, "nothing written");
    assert_eq!(value(&etcd, "/app/a.toml"), "x = 0");
    assert_eq!(keys(&etcd, "/app/"), ["/app/a.toml", "/app/b.toml"]);
    // Based on the latest revision, the same push goes through.
    let latest = after.to_string();
    let (code, _, stderr) = text(&hotconf(
        &[
            "push",
            path,
            "--etcd",
            &endpoint,
            "--prefix",
            "/app/",
            "--expect-revision",
            &latest,
        ],
        &[],
    ));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(keys(&etcd, "/app/"), ["/app/a.toml"]);
}

#[test]
fn push_over_etcds_limits_is_refused_with_a_clear_message() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..129 {
        write(
            dir.path(),
            &[(&format!("{i:03}.toml"), &format!("n = {i}"))],
        );
    }
    let path = dir.path().to_str().unwrap();
    let endpoint = etcd.endpoint();
    let before = etcd.revision();
    let (code, _, stderr) = text(&hotconf(
        &["push", path, "--etcd", &endpoint, "--prefix", "/app/"],
        &[],
    ));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("129 operations") && stderr.contains("etcd allows 128"),
        "{stderr}"
    );
    let (code, report) = json_of(&hotconf(
        &[
            "push", path, "--etcd", &endpoint, "--prefix", "/app/", "--json",
        ],
        &[],
    ));
    assert_eq!(code, 2);
    assert_eq!(report["error"]["kind"], json!("usage"));
    assert_eq!(etcd.revision(), before);
}

#[test]
fn push_trouble_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("a.toml", "x = 1")]);
    let path = dir.path().to_str().unwrap();
    let nowhere = format!("http://127.0.0.1:{}", etcd::free_port());
    let (code, report) = json_of(&hotconf(
        &[
            "push", path, "--etcd", &nowhere, "--prefix", "/app/", "--json",
        ],
        &[],
    ));
    assert_eq!(code, 2);
    assert_eq!(report["error"]["kind"], json!("io"));
    let missing = dir.path().join("missing");
    let (code, report) = json_of(&hotconf(
        &[
            "push",
            missing.to_str().unwrap(),
            "--etcd",
            &nowhere,
            "--prefix",
            "/app/",
            "--json",
        ],
        &[],
    ));
    assert_eq!(code, 2);
    assert_eq!(report["error"]["kind"], json!("not_found"));
    let (code, report) = json_of(&hotconf(
        &["push", path, "--etcd", &nowhere, "--prefix", "", "--json"],
        &[],
    ));
    assert_eq!(code, 2);
    assert_eq!(report["error"]["kind"], json!("usage"));
    // A user without a password is a usage error, before any connection.
    let (code, report) = json_of(&hotconf(
        &[
            "push",
            path,
            "--etcd",
            &nowhere,
            "--prefix",
            "/app/",
            "--etcd-user",
            "app",
            "--json",
        ],
        &[],
    ));
    assert_eq!(code, 2);
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ETCD_PASSWORD"),
        "{report}"
    );
}

#[test]
fn push_logs_in_with_a_password_from_a_file_or_the_environment() {
    if !etcd::available() {
        return;
    }
    let mut etcd = Etcd::start();
    etcd.enable_auth("rootpw");
    etcd.add_user("app", "apppw", "/app/");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("a.toml", "x = 1\n")]);
    let path = dir.path().to_str().unwrap();
    let endpoint = etcd.endpoint();
    let password_file = etcd.dir().join("password");
    std::fs::write(&password_file, "apppw\n").unwrap();
    let base = [
        "push",
        path,
        "--etcd",
        &endpoint,
        "--prefix",
        "/app/",
        "--etcd-user",
        "app",
    ];
    let with_file = [
        &base[..],
        &["--etcd-password-file", password_file.to_str().unwrap()],
    ]
    .concat();
    let (code, stdout, stderr) = text(&hotconf(&with_file, &[]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(value(&etcd, "/app/a.toml"), "x = 1");
    write(dir.path(), &[("a.toml", "x = 2\n")]);
    let (code, _, stderr) = text(&hotconf(&base, &[("ETCD_PASSWORD", "apppw")]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(value(&etcd, "/app/a.toml"), "x = 2");
    // A wrong password: trouble, and the password is not in the message.
    write(dir.path(), &[("a.toml", "x = 3\n")]);
    let (code, stdout, stderr) = text(&hotconf(&base, &[("ETCD_PASSWORD", "wrong-pw")]));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        !stderr.contains("wrong-pw") && !stdout.contains("wrong-pw"),
        "{stderr}"
    );
    assert_eq!(value(&etcd, "/app/a.toml"), "x = 2");
}

#[test]
fn push_talks_tls_with_a_client_certificate() {
    if !etcd::available() {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let files = etcd::TlsFiles::generate(certs.path());
    let etcd = Etcd::start_with(etcd::Options {
        tls: Some(files.clone()),
        client_cert_auth: true,
    });
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("a.toml", "x = 1\n")]);
    let path = dir.path().to_str().unwrap();
    let endpoint = etcd.endpoint();
    let (code, stdout, stderr) = text(&hotconf(
        &[
            "push",
            path,
            "--etcd",
            &endpoint,
            "--prefix",
            "/app/",
            "--etcd-ca",
            files.ca.to_str().unwrap(),
            "--etcd-cert",
            files.client_cert.to_str().unwrap(),
            "--etcd-key",
            files.client_key.to_str().unwrap(),
        ],
        &[],
    ));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(value(&etcd, "/app/a.toml"), "x = 1");
    // Without the client certificate etcd refuses: trouble.
    let (code, _, stderr) = text(&hotconf(
        &[
            "push",
            path,
            "--etcd",
            &endpoint,
            "--prefix",
            "/app/",
            "--etcd-ca",
            files.ca.to_str().unwrap(),
        ],
        &[],
    ));
    assert_eq!(code, 2, "{stderr}");
}
