//! `hotconf watch` as a sidecar: the real binary serves the admin API, page and metrics,
//! writes the audit log and posts alerts, over real HTTP, for a service that uses hotconf
//! only through `--on-apply`.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(15);
const SECRET: &str = "hunter2-sidecar-distinctive";

/// A running `hotconf watch --json …`, killed when dropped.
struct Sidecar {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Sidecar {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("hotconf"))
            .arg("watch")
            .arg("--json")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
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
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut pipe, collected) = (child.stderr.take().unwrap(), Arc::clone(&stderr));
        thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        Self {
            child,
            lines,
            stderr,
        }
    }

    fn event(&self) -> Value {
        let line = self.lines.recv_timeout(DEADLINE).unwrap_or_else(|e| {
            panic!(
                "no event within {DEADLINE:?} ({e}); stderr:\n{}",
                self.stderr.lock().unwrap()
            )
        });
        serde_json::from_str(&line).unwrap()
    }

    /// The admin address, printed on standard error before `loaded`. Standard error is
    /// collected by a thread of its own, which may not have read it yet when the event
    /// arrives: wait for it, with a deadline.
    fn admin(&self) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let text = self.stderr.lock().unwrap().clone();
            if let Some(at) = text.find("http://") {
                let rest = &text[at + 7..];
                // The whole address: up to the path's slash, which ends the line's URL.
                if let Some((address, _)) = rest.split_once('/') {
                    return address.to_owned();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no admin address on stderr within {DEADLINE:?}:\n{text}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request; the status code and body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A webhook receiver: every request body, in order.
fn webhook() -> (String, Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (sender, bodies) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .unwrap();
            if sender.send(String::from_utf8(body).unwrap()).is_err() {
                return;
            }
        }
    });
    (format!("http://{addr}/hook"), bodies)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "waited {DEADLINE:?} for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_sidecar_serves_audits_and_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("app.toml");
    fs::write(
        &config,
        format!("rpm = 60\n[db]\npassword = \"{SECRET}\"\n"),
    )
    .unwrap();
    let token = dir.path().join("token");
    fs::write(&token, "s3cret-token\n").unwrap();
    let audit = dir.path().join("audit.jsonl");
    let (hook, posts) = webhook();
    let sidecar = Sidecar::start(&[
        "--admin",
        "127.0.0.1:0",
        "--admin-token-file",
        token.to_str().unwrap(),
        "--audit",
        audit.to_str().unwrap(),
        "--alert-webhook",
        &hook,
        config.to_str().unwrap(),
    ]);
    assert_eq!(sidecar.event()["event"], "loaded");
    let admin = sidecar.admin();

    let (status, body) = http(&admin, "GET", "/status", &[], "");
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["version"], 1);
    let (status, body) = http(&admin, "GET", "/config", &[], "");
    assert_eq!(status, 200);
    assert!(body.contains("***") && !body.contains(SECRET), "{body}");
    // State changes need the token on loopback once one is configured.
    assert_eq!(http(&admin, "POST", "/reload", &[], "").0, 401);
    let bearer = [("Authorization", "Bearer s3cret-token")];
    let (status, body) = http(&admin, "POST", "/reload", &bearer, "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(sidecar.event()["event"], "unchanged");

    // A broken save: rejected on stdout, alerted, audited, counted.
    fs::write(
        &config,
        format!("rpm = = 0\n[db]\npassword = \"{SECRET}\"\n"),
    )
    .unwrap();
    let rejected = sidecar.event();
    assert_eq!(rejected["event"], "rejected", "{rejected}");
    let alert = posts
        .recv_timeout(DEADLINE)
        .expect("an alert for the rejected reload");
    assert!(
        alert.contains("rejected") && !alert.contains(SECRET),
        "{alert}"
    );
    let (status, metrics) = http(&admin, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    let failed = metrics
        .lines()
        .find(|line| line.starts_with("hotconf_config_last_reload_successful{"))
        .expect("the success gauge is exported");
    assert!(failed.ends_with(" 0"), "{failed}");

    // A good save with a new secret: applied, the alert resolves, the audit has an HMAC.
    fs::write(
        &config,
        "rpm = 90\n[db]\npassword = \"rotated-secret-value\"\n",
    )
    .unwrap();
    let applied = sidecar.event();
    assert_eq!(applied["event"], "applied", "{applied}");
    let resolved = posts.recv_timeout(DEADLINE).expect("a resolved alert");
    assert!(resolved.to_lowercase().contains("resolved"), "{resolved}");
    wait_for("three audit records after loaded", || {
        fs::read_to_string(&audit).is_ok_and(|log| log.lines().count() >= 4)
    });
    let log = fs::read_to_string(&audit).unwrap();
    assert!(
        !log.contains(SECRET) && !log.contains("rotated-secret-value"),
        "{log}"
    );
    assert!(log.contains("hmac-sha256:"), "{log}");
    let outcomes: Vec<String> = log
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["outcome"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(outcomes, ["loaded", "unchanged", "rejected", "applied"]);
    let (_, history) = http(&admin, "GET", "/history", &[], "");
    assert!(!history.contains(SECRET) && !history.contains("rotated-secret-value"));
}

#[test]
fn a_public_admin_address_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("app.toml");
    fs::write(&config, "rpm = 60\n").unwrap();
    let output = Command::new(assert_cmd::cargo::cargo_bin("hotconf"))
        .args(["watch", "--admin", "0.0.0.0:0", config.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("token"), "{stderr}");
}
