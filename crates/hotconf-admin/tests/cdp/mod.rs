//! A small Chrome DevTools Protocol client for the browser tests: it starts a headless
//! Chromium in a temporary profile, attaches to one page over the browser's WebSocket, and
//! sends commands that each wait for their reply with a deadline.
//!
//! Only what the tests use: navigate, evaluate, click, screenshot. Every wait has a deadline
//! and an error that says what it waited for, with the page's console and exceptions.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use tungstenite::{Message, WebSocket};

/// How long a single protocol command may take.
pub const CALL: Duration = Duration::from_secs(10);
/// How long Chromium may take to start and open its DevTools port.
const LAUNCH: Duration = Duration::from_secs(20);
/// Between two looks at a state we wait for.
const POLL: Duration = Duration::from_millis(15);
/// The socket's read timeout: the read loop wakes this often to check its deadline.
const TICK: Duration = Duration::from_millis(50);

/// What went wrong, in words that say what was asked or awaited.
pub struct Error(String);

impl Error {
    fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Test functions print the error with Debug: keep it readable.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// This module's result.
pub type Result<T> = std::result::Result<T, Error>;

/// The Chromium binary to use: `$CHROMIUM`, else `/usr/bin/chromium`.
///
/// When it is missing the test is skipped with a line that says so, unless `CI` is set:
/// there `scripts/test.sh` installs it, so a missing browser is a failure.
pub fn chromium(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.is_file() {
        return Some(path);
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(
        !ci,
        "{test}: no Chromium at {} and CI is set: scripts/test.sh installs Debian's `chromium`",
        path.display()
    );
    println!(
        "SKIP {test}: no Chromium at {} (apt-get install chromium, or set CHROMIUM=/path)",
        path.display()
    );
    None
}

/// A headless Chromium with one page attached. Dropping it kills the browser.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Protocol events of the page not yet looked at (`Page.loadEventFired`, ...).
    events: VecDeque<Value>,
    /// The page's console lines and uncaught exceptions, for the error messages.
    console: Vec<String>,
    exceptions: Vec<String>,
    dir: TempDir,
}

impl fmt::Debug for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.child.id())
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts `chromium` headless in a fresh profile and opens a blank page.
    pub fn launch(chromium: &Path) -> Result<Browser> {
        let dir = tempfile::tempdir().map_err(|e| Error::new(format!("tempdir: {e}")))?;
        let profile = dir.path().join("profile");
        let log_path = dir.path().join("chromium.log");
        let log = File::create(&log_path)
            .map_err(|e| Error::new(format!("create {}: {e}", log_path.display())))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Error::new(format!("clone log file: {e}")))?;
        // The tests run as root (no sandbox) on machines whose network may be closed: no
        // background fetches, updates, sync or QUIC probes. A fixed window size gives
        // screenshots a known size.
        let child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| Error::new(format!("start {}: {e}", chromium.display())))?;
        // From here on, Drop kills the child even when the start fails.
        let mut starting = Starting {
            child: Some(child),
            log: log_path,
        };
        let (port, path) = starting.devtools_port(&profile)?;
        let ws = connect(port, &path)?;
        let child = starting
            .child
            .take()
            .ok_or_else(|| Error::new("child gone"))?;
        let mut browser = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            events: VecDeque::new(),
            console: Vec::new(),
            exceptions: Vec::new(),
            dir,
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }))?;
        let target_id = target["targetId"]
            .as_str()
            .ok_or_else(|| Error::new(format!("Target.createTarget: no targetId in {target}")))?
            .to_owned();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        )?;
        browser.session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| Error::new(format!("attachToTarget: no sessionId in {attached}")))?
            .to_owned();
        browser.call("Page.enable", json!({}))?;
        // Lifecycle events carry the loader id: a navigation waits for its own `load`.
        browser.call("Page.setLifecycleEventsEnabled", json!({ "enabled": true }))?;
        browser.call("Runtime.enable", json!({}))?;
        Ok(browser)
    }

    /// Sends one command (to the page once attached, else to the browser) and waits up to
    /// [`CALL`] for its reply; events that arrive meanwhile are kept.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.call_within(method, params, CALL)
    }

    /// As [`call`](Self::call), waiting up to `limit`. A reply that comes later is dropped.
    pub fn call_within(&mut self, method: &str, params: Value, limit: Duration) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            command["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::text(command.to_string()))
            .map_err(|e| Error::new(format!("CDP {method}: send: {e}")))?;
        let deadline = Instant::now() + limit;
        loop {
            let Some(message) = self.read(deadline, method)? else {
                return Err(Error::new(format!(
                    "CDP {method}: no reply within {limit:?}{}",
                    self.context()
                )));
            };
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    return Err(Error::new(format!("CDP {method}: {error}")));
                }
                return Ok(message["result"].clone());
            }
            self.keep(message);
        }
    }

    /// Reads one protocol message, or None once `deadline` passed.
    fn read(&mut self, deadline: Instant, what: &str) -> Result<Option<Value>> {
        loop {
            if Instant::now() >= deadline {
                return Ok(None);
            }
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(text.as_str())
                        .map(Some)
                        .map_err(|e| Error::new(format!("CDP {what}: bad JSON {e}: {text}")));
                }
                Ok(Message::Close(frame)) => {
                    return Err(Error::new(format!(
                        "CDP {what}: the browser closed the connection ({frame:?})"
                    )));
                }
                // Pings are answered by tungstenite on the next write or flush.
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(Error::new(format!("CDP {what}: read: {e}"))),
            }
        }
    }

    fn keep(&mut self, event: Value) {
        match event["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args = event["params"]["args"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let words: Vec<String> = args
                    .iter()
                    .map(|a| match &a["value"] {
                        Value::String(s) => s.clone(),
                        Value::Null => a["description"].as_str().unwrap_or("?").to_owned(),
                        v => v.to_string(),
                    })
                    .collect();
                let kind = event["params"]["type"].as_str().unwrap_or("log");
                self.console.push(format!("{kind}: {}", words.join(" ")));
            }
            Some("Runtime.exceptionThrown") => {
                let details = &event["params"]["exceptionDetails"];
                let text = details["exception"]["description"]
                    .as_str()
                    .or_else(|| details["text"].as_str())
                    .unwrap_or("?");
                self.exceptions.push(format!(
                    "{text} (at {}:{})",
                    details["lineNumber"], details["columnNumber"]
                ));
            }
            Some(_) => {
                // Only the last events matter (navigation waits); keep the queue bounded.
                if self.events.len() >= 256 {
                    self.events.pop_front();
                }
                self.events.push_back(event);
            }
            None => {}
        }
    }

    /// The page's console and uncaught exceptions so far, for an error message.
    fn context(&self) -> String {
        let mut out = String::new();
        if !self.exceptions.is_empty() {
            out.push_str("\n  page exceptions:\n    ");
            out.push_str(&self.exceptions.join("\n    "));
        }
        if !self.console.is_empty() {
            let from = self.console.len().saturating_sub(20);
            out.push_str("\n  page console (last lines):\n    ");
            out.push_str(&self.console[from..].join("\n    "));
        }
        out
    }

    /// Uncaught exceptions the page threw so far.
    pub fn exceptions(&self) -> &[String] {
        &self.exceptions
    }

    /// Console lines the page wrote so far (`log: ...`, `error: ...`).
    pub fn console(&self) -> &[String] {
        &self.console
    }

    /// Loads `url` and waits for its `load` event (that of this navigation, not a late one
    /// of the page before).
    pub fn navigate(&mut self, url: &str) -> Result<()> {
        self.events.clear();
        let reply = self.call("Page.navigate", json!({ "url": url }))?;
        if let Some(error) = reply["errorText"].as_str() {
            return Err(Error::new(format!("navigate to {url}: {error}")));
        }
        let loader = reply["loaderId"].clone();
        let loaded = |e: &Value| {
            e["method"] == "Page.lifecycleEvent"
                && e["params"]["name"] == "load"
                && e["params"]["loaderId"] == loader
        };
        let deadline = Instant::now() + CALL;
        loop {
            if self.events.iter().any(loaded) {
                return Ok(());
            }
            let what = format!("the load event of {url}");
            match self.read(deadline, &what)? {
                Some(message) => self.keep(message),
                None => {
                    return Err(Error::new(format!(
                        "navigate: no load event from {url} within {CALL:?}{}",
                        self.context()
                    )));
                }
            }
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value as JSON;
    /// `undefined` comes back as null. A thrown exception is an error.
    pub fn eval(&mut self, expression: &str) -> Result<Value> {
        self.try_eval(expression)?
            .map_err(|thrown| Error::new(format!("evaluate `{expression}` threw: {thrown}")))
    }

    /// As [`eval`](Self::eval), with the page's exception apart from the protocol's errors.
    fn try_eval(&mut self, expression: &str) -> Result<std::result::Result<Value, String>> {
        let reply = self.call(
            "Runtime.evaluate",
            json!({
                "expression": expression,
                "returnByValue": true,
                "awaitPromise": true,
                "timeout": CALL.as_millis() as u64,
            }),
        )?;
        if let Some(details) = reply.get("exceptionDetails") {
            let text = details["exception"]["description"]
                .as_str()
                .or_else(|| details["text"].as_str())
                .unwrap_or("?");
            return Ok(Err(text.to_owned()));
        }
        Ok(Ok(reply["result"]["value"].clone()))
    }

    /// Evaluates `expression` every few milliseconds until it gives a truthy value (not
    /// null, false, 0 or ""), and returns that value. An exception counts as not yet (the
    /// element may not be rendered yet). After `limit`, an error that names `what`, the
    /// last value or exception seen, and the page's console.
    pub fn wait_for(&mut self, what: &str, expression: &str, limit: Duration) -> Result<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let last = match self.try_eval(expression)? {
                Ok(value) => {
                    let truthy = match &value {
                        Value::Null => false,
                        Value::Bool(b) => *b,
                        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                        Value::String(s) => !s.is_empty(),
                        _ => true,
                    };
                    if truthy {
                        return Ok(value);
                    }
                    format!("`{expression}` was {value}")
                }
                Err(thrown) => format!("`{expression}` threw {thrown}"),
            };
            if Instant::now() >= deadline {
                return Err(Error::new(format!(
                    "timed out after {limit:?} waiting for {what} ({last}){}",
                    self.context()
                )));
            }
            thread::sleep(POLL);
        }
    }

    /// Clicks the element `selector` names, as a user could: it is scrolled into view and
    /// must be visible, enabled and on top at its centre; then it is focused and clicked in
    /// the same script turn, so that a re-render cannot slip between press and release.
    pub fn click(&mut self, selector: &str) -> Result<()> {
        let sel = serde_json::to_string(selector).map_err(|e| Error::new(e.to_string()))?;
        let done = self.eval(&format!(
            "(() => {{
                const el = document.querySelector({sel});
                if (!el) return 'missing';
                el.scrollIntoView({{block: 'center'}});
                const r = el.getBoundingClientRect();
                if (r.width === 0 || r.height === 0) return 'not visible';
                if (el.disabled) return 'disabled';
                const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                if (!top || !(top === el || el.contains(top))) {{
                    return 'covered by ' + (top ? top.outerHTML.slice(0, 80) : 'nothing');
                }}
                el.focus();
                el.click();
                return 'clicked';
            }})()"
        ))?;
        if done != "clicked" {
            return Err(Error::new(format!(
                "click {selector}: {done}{}",
                self.context()
            )));
        }
        Ok(())
    }

    /// Types `text` into the focused element, as a keyboard would insert it.
    pub fn type_text(&mut self, text: &str) -> Result<()> {
        self.call("Input.insertText", json!({ "text": text }))?;
        Ok(())
    }

    /// Takes a PNG screenshot of the viewport, checks it is a PNG, writes it to `path`
    /// and returns its bytes.
    pub fn screenshot(&mut self, path: &Path) -> Result<Vec<u8>> {
        let reply = self.call("Page.captureScreenshot", json!({ "format": "png" }))?;
        let data = reply["data"]
            .as_str()
            .ok_or_else(|| Error::new("Page.captureScreenshot: no data"))?;
        let png = data_encoding::BASE64
            .decode(data.as_bytes())
            .map_err(|e| Error::new(format!("screenshot: bad base64: {e}")))?;
        png_size(&png).map_err(|e| Error::new(format!("screenshot: {e}")))?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| Error::new(format!("create {}: {e}", parent.display())))?;
        }
        fs::write(path, &png).map_err(|e| Error::new(format!("write {}: {e}", path.display())))?;
        Ok(png)
    }

    /// The browser's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The temporary directory the browser's profile and log live in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Asked to close, Chromium ends its renderer and helper processes too; killed, it
        // leaves them to notice on their own. Kill it when it does not close in time.
        let close = json!({ "id": 0, "method": "Browser.close" });
        if self.ws.send(Message::text(close.to_string())).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                thread::sleep(POLL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The width and height of a PNG, after checking its signature, its first chunk (`IHDR`)
/// and its last one (`IEND`).
pub fn png_size(png: &[u8]) -> std::result::Result<(u32, u32), String> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !png.starts_with(SIGNATURE) {
        return Err(format!(
            "not a PNG: starts with {:?}",
            &png[..png.len().min(8)]
        ));
    }
    if png.len() < 8 + 25 + 12 || &png[12..16] != b"IHDR" {
        return Err(format!("PNG without an IHDR chunk ({} bytes)", png.len()));
    }
    if &png[png.len() - 8..png.len() - 4] != b"IEND" {
        return Err("PNG without an IEND chunk: truncated".to_owned());
    }
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    Ok((be(16), be(20)))
}

/// A started Chromium whose DevTools port is not known yet; kills it when dropped.
struct Starting {
    child: Option<Child>,
    log: PathBuf,
}

impl Starting {
    /// Waits for `<profile>/DevToolsActivePort`: the port on its first line, the browser's
    /// WebSocket path on the second.
    fn devtools_port(&mut self, profile: &Path) -> Result<(u16, String)> {
        let file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + LAUNCH;
        loop {
            // Written once the port is open; read both lines or wait for the rest.
            if let Ok(text) = fs::read_to_string(&file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next())
                    && let Ok(port) = port.trim().parse::<u16>()
                    && path.starts_with("/devtools/browser/")
                {
                    return Ok((port, path.trim().to_owned()));
                }
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(Error::new(format!(
                    "chromium exited ({status}) before opening its DevTools port:\n{}",
                    tail(&self.log)
                )));
            }
            if Instant::now() >= deadline {
                return Err(Error::new(format!(
                    "timed out after {LAUNCH:?} waiting for {}:\n{}",
                    file.display(),
                    tail(&self.log)
                )));
            }
            thread::sleep(POLL);
        }
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Opens the browser's WebSocket at `ws://127.0.0.1:port/path`.
fn connect(port: u16, path: &str) -> Result<WebSocket<TcpStream>> {
    let url = format!("ws://127.0.0.1:{port}{path}");
    let stream = TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| Error::new(format!("connect to {url}: {e}")))?;
    let timeouts = |stream: &TcpStream, read: Duration| -> io::Result<()> {
        stream.set_read_timeout(Some(read))?;
        stream.set_write_timeout(Some(CALL))?;
        stream.set_nodelay(true)
    };
    // The handshake must not see a read timeout as a half-done handshake: give it the
    // whole call budget, then read in short ticks so every wait can check its deadline.
    timeouts(&stream, CALL).map_err(|e| Error::new(format!("socket options: {e}")))?;
    let (ws, _response) = tungstenite::client(url.as_str(), stream)
        .map_err(|e| Error::new(format!("WebSocket handshake with {url}: {e}")))?;
    timeouts(ws.get_ref(), TICK).map_err(|e| Error::new(format!("socket options: {e}")))?;
    Ok(ws)
}

/// The last lines of Chromium's log, for an error message.
fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(15);
    format!(
        "  {} (last lines):\n    {}",
        log.display(),
        lines[from..].join("\n    ")
    )
}
