//! The service under test: the real `hotconf-demo` binary started as a child process on a
//! config of the load test's own, a webhook receiver for its alerts, and a clean stop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running demo; killed when dropped unless it was stopped.
#[derive(Debug)]
pub(crate) struct Service {
    child: Option<Child>,
    pub(crate) api: String,
    pub(crate) admin: String,
    pub(crate) log: PathBuf,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Service {
    /// Starts `bin` on `config`, its data (audit log) in `data`, both ports free ones.
    pub(crate) fn start(
        bin: &Path,
        config: &Path,
        data: &Path,
        webhook: &str,
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let stderr = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args(["--alert-webhook", webhook])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().context("no standard output")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (sender, receiver) = mpsc::channel();
        let kept = Arc::clone(&lines);
        std::thread::Builder::new()
            .name("demo-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    // The receiver goes away once both URLs are known.
                    let _ = sender.send(line.clone());
                    kept.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line);
                }
            })?;
        let mut service = Self {
            child: Some(child),
            api: String::new(),
            admin: String::new(),
            log,
            stdout: lines,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while service.api.is_empty() || service.admin.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = receiver.recv_timeout(left).map_err(|_| {
                anyhow::anyhow!(
                    "the demo printed no URLs within 60 s; its log:\n{}",
                    service.log_text()
                )
            })?;
            if let Some(url) = line.strip_prefix("API:") {
                service.api = url.trim().trim_end_matches('/').to_owned();
            } else if let Some(url) = line.strip_prefix("Admin:") {
                service.admin = url.trim().trim_end_matches('/').to_owned();
            }
        }
        Ok(service)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the service wrote on standard error so far.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The resident set size, in KiB (Linux).
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Sends SIGTERM and waits for a clean exit: status 0, and its last words printed.
    pub(crate) fn stop(&mut self) -> anyhow::Result<Duration> {
        let mut child = self.child.take().context("already stopped")?;
        let asked = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .context("cannot run kill")?;
        if !sent.success() {
            bail!("kill -TERM {} failed", child.id());
        }
        let deadline = asked + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("the demo did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = asked.elapsed();
        if !status.success() {
            bail!(
                "the demo exited with {status} after SIGTERM; its log:\n{}",
                self.log_text()
            );
        }
        // Its standard output closes at exit; the reader thread has the last line then.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.printed("hotconf-demo: stopped") {
            if Instant::now() > deadline {
                bail!("the demo exited 0 without saying it stopped");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(took)
    }

    fn printed(&self, line: &str) -> bool {
        self.stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|l| l == line)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A webhook receiver: counts the alerts POSTed to it.
#[derive(Debug)]
pub(crate) struct Webhook {
    pub(crate) url: String,
    received: Arc<AtomicUsize>,
}

impl Webhook {
    pub(crate) fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}/alerts", listener.local_addr()?);
        let received = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&received);
        // Lives until the process ends, blocked in accept.
        std::thread::Builder::new()
            .name("webhook".into())
            .spawn(move || {
                for stream in listener.incoming().map_while(Result::ok) {
                    if answer(stream).is_ok() {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })?;
        Ok(Self { url, received })
    }

    /// How many alerts arrived.
    pub(crate) fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
}

/// Reads one request (headers and a `Content-Length` body) and answers 200.
fn answer(mut stream: std::net::TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut length = 0;
    let mut post = false;
    let mut first = true;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if first {
            post = line.starts_with("POST ");
            first = false;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")?;
    if post {
        Ok(())
    } else {
        Err(std::io::ErrorKind::InvalidData.into())
    }
}
