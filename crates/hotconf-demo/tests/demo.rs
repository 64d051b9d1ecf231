//! The real `hotconf-demo` binary: under load while its config is rewritten (the load
//! test's own checks, briefly), its first run, a restart that keeps the edited config, a
//! reset, and a config that cannot load.

// Test helpers panic on purpose: a failure here is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hotconf-demo");

/// Waits for `child` to exit, killing it after `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the demo did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `check` until it answers, panicking after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn under_load_every_save_has_its_outcome_and_no_request_fails() {
    let work = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "load",
            "--duration",
            "15",
            "--saves",
            "20",
            // A good neighbour to the tests running beside it: about 400 requests a
            // second per connection at most.
            "--pace-ms",
            "2",
            "--work",
        ])
        .arg(work.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Generous: a debug build on a loaded two-core machine.
    let status = wait_exit(&mut child, Duration::from_secs(300));
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.success(),
        "{stdout}\n{stderr}\n{}",
        service_log(work.path())
    );
    assert!(stdout.contains("\nPASS\n"), "{stdout}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    assert!(stdout.contains("saves:     20 ("), "{stdout}");
    assert!(stdout.contains("exit 0"), "{stdout}");
    // What the load test read is really there: the audit log of the first load and 20 saves.
    let audit = std::fs::read_to_string(work.path().join("data/audit.jsonl")).unwrap();
    let attempts = audit.lines().filter(|l| !l.contains("\"intent\"")).count();
    assert_eq!(attempts, 21, "{audit}");
}

fn service_log(work: &Path) -> String {
    std::fs::read_to_string(work.join("service.log")).unwrap_or_default()
}

/// A running demo and the lines it printed.
struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    printed: Vec<String>,
}

impl Demo {
    fn start(data: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let mut demo = Self {
            child,
            lines,
            printed: Vec::new(),
        };
        demo.wait_line("Ctrl-C stops.");
        demo
    }

    fn wait_line(&mut self, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.printed.iter().any(|l| l == wanted) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line {wanted:?} in {:?}", self.printed));
            self.printed.push(line);
        }
    }

    fn url(&self, prefix: &str) -> String {
        let line = self.printed.iter().find(|l| l.starts_with(prefix)).unwrap();
        line[prefix.len()..].trim().trim_end_matches('/').to_owned()
    }

    /// GET on the API: the status, `X-Config-Version` and the body as JSON.
    fn get(&self, path: &str) -> (u16, u64, serde_json::Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .get(format!("{}{path}", self.url("API:")))
            .call()
            .unwrap();
        let version = response.headers()["x-config-version"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = response.body_mut().read_to_string().unwrap();
        (
            response.status().as_u16(),
            version,
            serde_json::from_str(&body).unwrap(),
        )
    }

    /// GET on the admin API: the body.
    fn admin(&self, path: &str) -> String {
        ureq::get(format!("{}{path}", self.url("Admin:")))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    }

    fn stop(mut self) {
        let term = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let status = wait_exit(&mut self.child, Duration::from_secs(60));
        assert!(status.success(), "{status}");
        self.wait_line("hotconf-demo: stopped");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // A failed test leaves no demo running; after a clean stop this does nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_data_directory_is_made_once_kept_across_restarts_and_reset_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let demo = Demo::start(&data, &[]);
    let features = data.join("config/features.toml");
    for name in ["server.toml", "limits.yaml", "routes.json", "features.toml"] {
        let path = data.join("config").join(name);
        assert!(
            demo.printed
                .iter()
                .any(|l| l.trim() == path.display().to_string())
        );
        assert!(path.exists(), "{}", path.display());
    }
    let (status, version, chat) = demo.get("/api/chat?msg=hi");
    assert_eq!((status, version), (200, 1));
    assert_eq!(
        chat["message"].as_str().unwrap().to_lowercase(),
        chat["message"]
    );

    // A save is applied live: the next answers shout, with the new version.
    let bundled = std::fs::read_to_string(&features).unwrap();
    std::fs::write(&features, bundled.replace("shout = false", "shout = true")).unwrap();
    let shouted = wait_for("the flag in an answer", Duration::from_secs(60), || {
        let (_, version, body) = demo.get("/api/chat?msg=hi");
        (version == 2).then_some(body)
    });
    let message = shouted["message"].as_str().unwrap();
    assert_eq!(message, message.to_uppercase());
    assert_eq!(demo.get("/api/flags").2["shout"], true);
    demo.stop();

    // A restart keeps the edited file.
    let demo = Demo::start(&data, &[]);
    assert_eq!(demo.get("/api/flags").2["shout"], true);
    demo.stop();
    let audit = std::fs::read_to_string(data.join("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 3, "{audit}"); // loaded, applied, loaded

    // --reset brings back the bundled config and starts a new audit log.
    let demo = Demo::start(&data, &["--reset"]);
    assert_eq!(demo.get("/api/flags").2["shout"], false);
    assert_eq!(std::fs::read_to_string(&features).unwrap(), bundled);
    demo.stop();
    let audit = std::fs::read_to_string(data.join("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 1, "{audit}");
}

#[test]
fn a_config_that_cannot_load_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("bundled");
    for name in ["server.toml", "limits.yaml", "routes.json", "features.toml"] {
        std::fs::copy(bundled.join(name), config.join(name)).unwrap();
    }
    let limits = std::fs::read_to_string(config.join("limits.yaml")).unwrap();
    std::fs::write(
        config.join("limits.yaml"),
        limits.replace("rpm: 6000", "rpm: 0"),
    )
    .unwrap();
    let output = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let line = limits
        .lines()
        .position(|l| l.contains("rpm: 6000"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!("limits.yaml:{line}:"))
            && stderr.contains("limits.default.rpm: must be greater than 0"),
        "{stderr}"
    );
    // --config leaves the data directory without a config of its own.
    assert!(!dir.path().join("data/config").exists());
}

#[test]
fn the_admin_token_guards_stats_and_never_leaves_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let demo = Demo::start(&data, &[]);
    let config = data.join("config");
    let token = "tok-5ecret-42";
    let server = std::fs::read_to_string(config.join("server.toml")).unwrap();
    std::fs::write(
        config.join("server.toml"),
        server.replace("admin_token = \"\"", &format!("admin_token = \"{token}\"")),
    )
    .unwrap();
    wait_for("the token applied", Duration::from_secs(60), || {
        (demo.get("/api/flags").1 == 2).then_some(())
    });
    let features = std::fs::read_to_string(config.join("features.toml")).unwrap();
    std::fs::write(
        config.join("features.toml"),
        features.replace("stats = false", "stats = true"),
    )
    .unwrap();
    wait_for("the stats flag applied", Duration::from_secs(60), || {
        (demo.get("/api/flags").1 == 3).then_some(())
    });

    assert_eq!(demo.get("/api/stats").0, 401);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut stats = agent
        .get(format!("{}/api/stats", demo.url("API:")))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(stats.status().as_u16(), 200);
    let stats: serde_json::Value =
        serde_json::from_str(&stats.body_mut().read_to_string().unwrap()).unwrap();
    assert!(stats["flags"]["ok"].as_u64().unwrap() >= 2, "{stats}");

    // Redacted on the admin API, an HMAC in the audit log.
    let live = demo.admin("/config");
    assert!(live.contains(r#""admin_token":"***""#), "{live}");
    for text in [live, demo.admin("/history"), demo.admin("/status")] {
        assert!(!text.contains(token), "{text}");
    }
    let audit = std::fs::read_to_string(data.join("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 3, "{audit}");
    assert!(
        audit.contains("hmac-sha256:") && !audit.contains(token),
        "{audit}"
    );
    demo.stop();
}

/// `--etcd URL --prefix P`: an empty prefix is filled with the bundled config, the service
/// follows what is put there, NACKs a bad value while it keeps serving, and reports to the
/// fleet status.
#[cfg(feature = "etcd")]
#[test]
fn from_etcd_the_same_service_follows_the_prefix_and_reports_to_the_fleet() {
    #[path = "../../hotconf-etcd/tests/common/etcd.rs"]
    mod etcd;
    use hotconf_etcd::{Connection, Prefix, State, fleet_status_blocking};

    if !etcd::available() {
        return;
    }
    let etcd = etcd::Etcd::start();
    let work = tempfile::tempdir().unwrap();
    let demo = Demo::start(
        work.path(),
        &[
            "--etcd",
            &etcd.endpoint(),
            "--prefix",
            "/demo/",
            "--instance",
            "demo-1",
        ],
    );
    // The bundled config was published, and the service serves it.
    let keys = etcd.ctl(&["get", "/demo/", "--prefix", "--keys-only"]);
    for name in ["features.toml", "limits.yaml", "routes.json", "server.toml"] {
        assert!(keys.contains(&format!("/demo/{name}")), "{keys}");
    }
    let (status, version, flags) = demo.get("/api/flags");
    assert_eq!((status, version), (200, 1));
    assert_eq!(flags["shout"], false);
    let connection = Connection::new([etcd.endpoint()]);
    let prefix = Prefix::new("/demo/").unwrap();
    let state = |want: State| {
        wait_for("the fleet status", Duration::from_secs(30), || {
            let fleet = fleet_status_blocking(&connection, &prefix).ok()?;
            let instance = fleet.instances.first()?;
            (fleet.instances.len() == 1 && instance.state == want).then(|| instance.clone())
        })
    };
    state(State::Synced);

    // A change put in etcd is the next request's config.
    etcd.put(
        "/demo/features.toml",
        "[flags]\nshout = true\ntrace = false\nstats = false\n",
    );
    wait_for("the new flag", Duration::from_secs(30), || {
        let (_, version, flags) = demo.get("/api/flags");
        (flags["shout"] == true).then_some(version)
    });
    let (_, version, _) = demo.get("/api/flags");
    assert_eq!(version, 2);
    state(State::Synced);

    // A route naming an unknown backend: NACKed at its key, the old config keeps serving.
    let routes = include_str!("../bundled/routes.json");
    let bad = routes.replace("\"primary\": \"flaky\"", "\"primary\": \"nope\"");
    assert_ne!(bad, routes);
    let line = bad.lines().position(|l| l.contains("\"nope\"")).unwrap() + 1;
    etcd.put("/demo/routes.json", &bad);
    let nacked = state(State::Nacked);
    let error = &nacked.record.errors[0];
    assert_eq!(
        error.file.as_deref(),
        Some("/demo/routes.json"),
        "{error:?}"
    );
    assert_eq!(error.line, Some(u32::try_from(line).unwrap()), "{error:?}");
    assert!(error.message.contains("nope"), "{error:?}");
    let (status, version, flags) = demo.get("/api/flags");
    assert_eq!(
        (status, version, flags["shout"].clone()),
        (200, 2, true.into())
    );
    demo.stop();
}
