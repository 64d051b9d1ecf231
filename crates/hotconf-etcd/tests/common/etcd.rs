//! A real etcd for tests: Debian's `etcd` binary, started on free loopback ports with its
//! data in a temp dir (on tmpfs when there is one: etcd 3.4 syncs every write), stopped on
//! drop. `etcdctl` drives it from outside, like an operator would.
//!
//! Shared by the crates' tests with `#[path = "…/common/etcd.rs"] mod etcd;`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The etcd binary: `$ETCD` or `etcd` on the PATH.
fn etcd_bin() -> String {
    std::env::var("ETCD").unwrap_or_else(|_| "etcd".into())
}

/// The etcdctl binary: `$ETCDCTL` or `etcdctl` on the PATH.
fn etcdctl_bin() -> String {
    std::env::var("ETCDCTL").unwrap_or_else(|_| "etcdctl".into())
}

/// Whether etcd is installed. Under CI a missing etcd fails the test (scripts/test.sh
/// installs it); elsewhere the test says so and is skipped.
pub fn available() -> bool {
    let found = Command::new(etcd_bin())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "etcd is not installed (scripts/test.sh installs etcd-server and etcd-client)"
        );
        eprintln!("skipped: etcd is not installed");
    }
    found
}

/// A free loopback port (the OS picks it; there is a small window before etcd binds it,
/// which `Etcd::start` covers by retrying on fresh ports).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// TLS material made with the `openssl` command: a CA, a server certificate for 127.0.0.1
/// and localhost, and a client certificate (CN `root`).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TlsFiles {
    pub fn generate(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=hotconf-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for (name, cn) in [("server", "localhost"), ("client", "root")] {
            run(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ]);
            run(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.pem"),
            ]);
        }
        Self {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }
}

/// How to start etcd.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Serve clients over TLS with these files, and require client certificates when
    /// `client_cert_auth`.
    pub tls: Option<TlsFiles>,
    pub client_cert_auth: bool,
}

/// A running etcd (or a stopped one that can be started again on the same ports and data).
pub struct Etcd {
    root: tempfile::TempDir,
    data: PathBuf,
    name: String,
    client_port: u16,
    peer_port: u16,
    options: Options,
    child: Option<Child>,
    log: PathBuf,
    /// `root:password` once `enable_auth` ran: etcdctl then authenticates.
    auth: Option<(String, String)>,
}

impl Etcd {
    /// Starts a plain etcd on free ports.
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    /// Starts etcd with `options` on free ports; retries on new ports if one was taken.
    pub fn start_with(options: Options) -> Self {
        let base = if Path::new("/dev/shm").is_dir() {
            tempfile::Builder::new()
                .prefix("hotconf-etcd-")
                .tempdir_in("/dev/shm")
        } else {
            tempfile::Builder::new().prefix("hotconf-etcd-").tempdir()
        }
        .unwrap();
        let mut etcd = Self {
            data: base.path().join("data"),
            log: base.path().join("etcd.log"),
            root: base,
            name: "hotconf-test".into(),
            client_port: 0,
            peer_port: 0,
            options,
            child: None,
            auth: None,
        };
        let mut last = String::new();
        for _ in 0..5 {
            etcd.client_port = free_port();
            etcd.peer_port = free_port();
            if etcd.client_port == etcd.peer_port {
                continue;
            }
            match etcd.try_start(Duration::from_secs(30)) {
                Ok(()) => return etcd,
                Err(e) => {
                    last = e;
                    etcd.kill();
                    let _ = std::fs::remove_dir_all(&etcd.data);
                }
            }
        }
        panic!("etcd did not start: {last}");
    }

    /// A directory next to etcd's data for the test's own files (certificates, caches).
    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// The client URL: `http://127.0.0.1:PORT` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    pub fn tls(&self) -> Option<&TlsFiles> {
        self.options.tls.as_ref()
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    fn try_start(&mut self, deadline: Duration) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut command = Command::new(etcd_bin());
        command
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--listen-client-urls")
            .arg(self.endpoint())
            .arg("--advertise-client-urls")
            .arg(self.endpoint())
            .arg("--listen-peer-urls")
            .arg(self.peer_url())
            .arg("--initial-advertise-peer-urls")
            .arg(self.peer_url())
            .arg("--initial-cluster")
            .arg(format!("{}={}", self.name, self.peer_url()))
            .arg("--initial-cluster-token")
            .arg("hotconf-test")
            .arg("--initial-cluster-state")
            .arg("new")
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(tls) = &self.options.tls {
            command
                .arg("--cert-file")
                .arg(&tls.server_cert)
                .arg("--key-file")
                .arg(&tls.server_key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca);
            if self.options.client_cert_auth {
                command.arg("--client-cert-auth");
            }
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot run etcd: {e}"))?;
        self.child = Some(child);
        self.wait_ready(deadline)
    }

    fn wait_ready(&mut self, deadline: Duration) -> Result<(), String> {
        let until = Instant::now() + deadline;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("etcd exited ({status}): {}", self.log_tail()));
            }
            if TcpStream::connect(("127.0.0.1", self.client_port)).is_ok() {
                let out = self.ctl_output(&["endpoint", "health", "--command-timeout=2s"]);
                if out.status.success() {
                    return Ok(());
                }
            }
            if Instant::now() > until {
                return Err(format!(
                    "etcd not healthy in {deadline:?}: {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The end of etcd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Kills etcd (SIGKILL, as a crash would) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether etcd runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts etcd again on the same ports with the same data (after `kill`).
    pub fn restart(&mut self) {
        self.kill();
        // The ports were ours a moment ago; retry a while in case the kernel holds them.
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            match self.try_start(Duration::from_secs(30)) {
                Ok(()) => return,
                Err(e) if Instant::now() > until => panic!("etcd did not restart: {e}"),
                Err(_) => {
                    self.kill();
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    /// Saves a snapshot of etcd's data to `path` (etcdctl snapshot save).
    pub fn snapshot(&self, path: &Path) {
        self.ctl(&["snapshot", "save", path.to_str().unwrap()]);
    }

    /// Stops etcd and replaces its data with `snapshot` (etcdctl snapshot restore), then
    /// starts it again: the cluster goes back to the snapshot's revision.
    pub fn restore(&mut self, snapshot: &Path) {
        self.kill();
        std::fs::remove_dir_all(&self.data).unwrap();
        let out = Command::new(etcdctl_bin())
            .env("ETCDCTL_API", "3")
            .arg("snapshot")
            .arg("restore")
            .arg(snapshot)
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--name")
            .arg(&self.name)
            .arg("--initial-cluster")
            .arg(format!("{}={}", self.name, self.peer_url()))
            .arg("--initial-cluster-token")
            .arg("hotconf-test")
            .arg("--initial-advertise-peer-urls")
            .arg(self.peer_url())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "snapshot restore: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.restart();
    }

    fn ctl_command(&self) -> Command {
        let mut command = Command::new(etcdctl_bin());
        command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .arg("--dial-timeout=3s");
        if let Some(tls) = &self.options.tls {
            command
                .arg(format!("--cacert={}", tls.ca.display()))
                .arg(format!("--cert={}", tls.client_cert.display()))
                .arg(format!("--key={}", tls.client_key.display()));
        }
        if let Some((user, password)) = &self.auth {
            command.arg(format!("--user={user}:{password}"));
        }
        command
    }

    /// Runs etcdctl with `args`; returns its output whatever the exit status.
    pub fn ctl_output(&self, args: &[&str]) -> Output {
        self.ctl_command().args(args).output().unwrap()
    }

    /// Runs etcdctl with `args` and returns its stdout; panics when it fails.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = self.ctl_output(args);
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Puts `value` at `key` with etcdctl (the value is passed on stdin-free argv; fine
    /// for tests).
    pub fn put(&self, key: &str, value: &str) {
        self.ctl(&["put", key, "--", value]);
    }

    /// Deletes `key`.
    pub fn del(&self, key: &str) {
        self.ctl(&["del", key]);
    }

    /// Runs a transaction of puts and deletes in one revision (etcdctl txn): `ops` are
    /// etcdctl txn lines such as `put /app/a.toml "x = 1"` or `del /app/b.toml`.
    pub fn txn(&self, ops: &[&str]) {
        let mut child = self
            .ctl_command()
            .arg("txn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let stdin = child.stdin.as_mut().unwrap();
            // No compares; an empty line; the success ops; an empty line; no failure ops.
            let mut script = String::from("\n");
            for op in ops {
                script.push_str(op);
                script.push('\n');
            }
            script.push_str("\n\n");
            stdin.write_all(script.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            // etcdctl 3.4 prints SUCCESS for a transaction whose compares held.
            out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("SUCCESS"),
            "etcdctl txn: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The cluster's current revision.
    pub fn revision(&self) -> i64 {
        let out = self.ctl(&["endpoint", "status", "--write-out=json"]);
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        value[0]["Status"]["header"]["revision"].as_i64().unwrap()
    }

    /// Compacts the history up to `revision`: watches from before it are cancelled.
    pub fn compact(&self, revision: i64) {
        self.ctl(&["compaction", &revision.to_string(), "--physical"]);
    }

    /// Adds `root` with `password`, grants it the root role and turns authentication on:
    /// from then on every client must log in (etcdctl here does).
    pub fn enable_auth(&mut self, password: &str) {
        self.ctl(&["user", "add", &format!("root:{password}")]);
        self.ctl(&["user", "grant-role", "root", "root"]);
        self.ctl(&["auth", "enable"]);
        self.auth = Some(("root".into(), password.into()));
    }

    /// Adds a user with read/write access to keys starting with `prefix` only.
    pub fn add_user(&self, user: &str, password: &str, prefix: &str) {
        self.ctl(&["user", "add", &format!("{user}:{password}")]);
        self.ctl(&["role", "add", user]);
        self.ctl(&[
            "role",
            "grant-permission",
            user,
            "--prefix=true",
            "readwrite",
            prefix,
        ]);
        self.ctl(&["user", "grant-role", user, user]);
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits up to `deadline` for `check` to return `Some`, polling; panics with `what` if it
/// never does.
pub fn wait_for<T>(deadline: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + deadline;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Etcd {
    /// The client port (for a proxy in front of etcd). (Added by helper SOURCE.)
    pub fn client_port(&self) -> u16 {
        self.client_port
    }
}
