//! `hotconf watch --etcd URL --prefix P`: the real binary as a fleet of sidecars over a
//! real etcd. Each instance applies what is put under the prefix, NACKs a bad value with
//! its key, line and column while it keeps the last good config, shows up in
//! `hotconf fleet status`, writes the applied documents for `--on-apply` with
//! `--write-to`, and takes its record away when it stops.
#![cfg(all(unix, feature = "etcd"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../hotconf-etcd/tests/common/etcd.rs"]
mod etcd;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use etcd::{Etcd, wait_for};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(20);

fn hotconf() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("hotconf"))
}

/// A running `hotconf watch --json --etcd …`.
struct Instance {
    child: Child,
    lines: Receiver<String>,
}

impl Instance {
    fn start(etcd: &Etcd, name: &str, extra: &[&str]) -> Self {
        let mut child = hotconf()
            .args(["watch", "--json", "--etcd", &etcd.endpoint()])
            .args(["--prefix", "/app/", "--instance", name])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (sender, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        thread::spawn(move || {
            for line in stdout.lines() {
                if sender.send(line.unwrap()).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// The next event printed.
    fn event(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(DEADLINE)
            .expect("an event within the deadline");
        serde_json::from_str(&line).unwrap()
    }

    /// Asserts nothing more is printed for a moment (after the changes it must ignore).
    fn quiet(&self) {
        if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            panic!("unexpected event: {line}");
        }
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> i32 {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        status.code().unwrap_or(-1)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fleet(etcd: &Etcd) -> (Output, Value) {
    let out = hotconf()
        .args(["fleet", "status", "--json", "--etcd", &etcd.endpoint()])
        .args(["--prefix", "/app/"])
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, json)
}

/// Each instance's state in `fleet status --json`, by name.
fn states(json: &Value) -> Vec<(String, String)> {
    let mut states: Vec<(String, String)> = json["instances"]
        .as_array()
        .map(|instances| {
            instances
                .iter()
                .map(|i| {
                    (
                        i["instance"].as_str().unwrap_or_default().to_owned(),
                        i["state"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    states.sort();
    states
}

fn wait_for_states(etcd: &Etcd, want: &[(&str, &str)]) -> Value {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    wait_for(DEADLINE, "the fleet's states", || {
        let (_, json) = fleet(etcd);
        (states(&json) == want).then_some(json)
    })
}

#[test]
fn a_fleet_of_sidecars_applies_nacks_and_reports_every_change() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/limits.toml", "rpm = 60\n");
    etcd.put("/app/notes.txt", "not a document");
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    let seen = dir.path().join("seen");
    let on_apply = format!("cat {}/limits.toml >> {}", files.display(), seen.display());
    let one = Instance::start(
        &etcd,
        "one",
        &[
            "--write-to",
            files.to_str().unwrap(),
            "--on-apply",
            &on_apply,
        ],
    );
    let two = Instance::start(&etcd, "two", &[]);
    for instance in [&one, &two] {
        let loaded = instance.event();
        assert_eq!(loaded["event"], "loaded", "{loaded}");
        assert_eq!(loaded["files"], serde_json::json!(["/app/limits.toml"]));
    }
    assert_eq!(
        std::fs::read_to_string(files.join("limits.toml")).unwrap(),
        "rpm = 60\n"
    );
    let json = wait_for_states(&etcd, &[("one", "SYNCED"), ("two", "SYNCED")]);
    assert_eq!(json["instances"][0]["version"], 1, "{json}");

    // A change reaches every instance, once; --on-apply finds the new file written.
    etcd.put("/app/limits.toml", "rpm = 120\n");
    for instance in [&one, &two] {
        let applied = instance.event();
        assert_eq!(applied["event"], "applied", "{applied}");
        assert_eq!(applied["trigger"], "source");
        assert_eq!(applied["changes"][0]["path"], "rpm");
        assert_eq!(applied["changes"][0]["new"], 120);
    }
    wait_for(DEADLINE, "--on-apply to read the new file", || {
        let text = std::fs::read_to_string(&seen).ok()?;
        (text == "rpm = 120\n").then_some(())
    });
    wait_for_states(&etcd, &[("one", "SYNCED"), ("two", "SYNCED")]);

    // A bad value put directly: every instance NACKs it with the key, line and column,
    // and keeps serving the last good config.
    etcd.put("/app/routes.toml", "[routes]\nhome = \n");
    for instance in [&one, &two] {
        let rejected = instance.event();
        assert_eq!(rejected["event"], "rejected", "{rejected}");
        assert_eq!(rejected["version"], 2);
        let error = &rejected["errors"][0];
        assert_eq!(error["file"], "/app/routes.toml", "{rejected}");
        assert_eq!(
            (error["line"].as_u64(), error["column"].as_u64()),
            (Some(2), Some(8))
        );
    }
    let json = wait_for_states(&etcd, &[("one", "NACKED"), ("two", "NACKED")]);
    let nack = &json["instances"][0];
    assert_eq!(nack["version"], 2, "{json}");
    assert_eq!(nack["errors"][0]["file"], "/app/routes.toml", "{json}");
    assert_eq!(nack["errors"][0]["line"], 2, "{json}");
    let (out, _) = fleet(&etcd);
    assert_eq!(out.status.code(), Some(1), "a NACKed fleet is not synced");
    // The files stay those of the last good config.
    assert!(!files.join("routes.toml").exists());

    // The fix applies everywhere; keys that are not documents never mattered.
    etcd.put("/app/routes.toml", "[routes]\nhome = \"/\"\n");
    for instance in [&one, &two] {
        assert_eq!(instance.event()["event"], "applied");
    }
    wait_for_states(&etcd, &[("one", "SYNCED"), ("two", "SYNCED")]);
    assert_eq!(
        std::fs::read_to_string(files.join("routes.toml")).unwrap(),
        "[routes]\nhome = \"/\"\n"
    );
    let (out, _) = fleet(&etcd);
    assert_eq!(out.status.code(), Some(0));
    etcd.put("/app/notes.txt", "still not a document");
    one.quiet();

    // A stopped instance takes its record with it at once.
    assert_eq!(two.stop(), 0);
    wait_for_states(&etcd, &[("one", "SYNCED")]);
    assert_eq!(one.stop(), 0);
    wait_for_states(&etcd, &[]);
    let (out, _) = fleet(&etcd);
    assert_eq!(out.status.code(), Some(1), "no live instance is not synced");
}

#[test]
fn watch_needs_either_paths_or_etcd_and_not_both() {
    let both = hotconf()
        .args([
            "watch",
            "--etcd",
            "http://127.0.0.1:1",
            "--prefix",
            "/app/",
            "x.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
    let neither = hotconf().args(["watch"]).output().unwrap();
    assert_eq!(neither.status.code(), Some(2));
    let no_prefix = hotconf()
        .args(["watch", "--etcd", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(no_prefix.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_prefix.stderr).contains("--prefix"));
}

#[test]
fn an_unreachable_etcd_at_start_is_io_trouble_naming_the_endpoint() {
    let port = etcd::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let out = hotconf()
        .args(["watch", "--json", "--etcd", &endpoint, "--prefix", "/app/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["error"]["kind"], "io", "{json}");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&endpoint) && message.contains("/app/"),
        "{message}"
    );
    // Nothing claims to report for an instance that never started.
    assert!(String::from_utf8_lossy(&out.stderr).is_empty(), "{out:?}");
}
