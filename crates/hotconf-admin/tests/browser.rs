//! The admin web page in a real headless Chromium, driven over the DevTools protocol.
//!
//! Skipped with a line that says so when Chromium is missing, unless `CI` is set
//! (`scripts/test.sh` installs Debian's `chromium`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cdp;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use cdp::Browser;
use hotconf::Reloader;
use hotconf_admin::{Admin, AdminServer};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

const DEADLINE: Duration = Duration::from_secs(10);

/// The secret values the config holds; neither may ever reach the page.
const SECRET: &str = "s3cret-distinctive";
const SECRET_2: &str = "an0ther-distinctive";

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
struct Config {
    server: Server,
    db: Db,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
struct Server {
    greeting: String,
    /// Restart required.
    #[serde(default)]
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
struct Db {
    password: String,
}

impl hotconf::Validate for Config {
    fn validate(&self, report: &mut hotconf::Report) {
        if self.server.greeting.is_empty() {
            report.error("server.greeting", "must not be empty");
        }
    }
}

/// Saves the config file as an editor does: a new file renamed over the old one.
fn save(path: &Path, greeting: &str, password: &str) {
    save_text(
        path,
        &format!("[server]\ngreeting = \"{greeting}\"\n\n[db]\npassword = \"{password}\"\n"),
    );
}

fn save_text(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// A watched reloader over a temp TOML file, its admin API on a free loopback port, and a
/// headless Chromium showing the page. Fields drop in order: browser, server, reloader.
struct Fixture {
    browser: Browser,
    /// None while it is stopped.
    server: Option<AdminServer>,
    reloader: Reloader<Config>,
    path: PathBuf,
    _dir: TempDir,
}

impl Fixture {
    /// None when Chromium is missing (the test is skipped). Ready: the page shows version 1
    /// and its event stream is open.
    fn start(test: &str, token: Option<&str>) -> Option<Fixture> {
        let mut fixture = Fixture::open(test, token, "127.0.0.1:0")?;
        fixture.ready();
        Some(fixture)
    }

    /// The page loaded, nothing awaited yet.
    fn open(test: &str, token: Option<&str>, bind: &str) -> Option<Fixture> {
        let chromium = cdp::chromium(test)?;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.toml");
        save(&path, "hello-one", SECRET);
        let reloader = Reloader::<Config>::builder()
            .name("app")
            .file(&path)
            .restart_required("server.port")
            .build()
            .unwrap();
        reloader.watch().unwrap();
        let mut admin = Admin::new(reloader.control());
        if let Some(token) = token {
            admin = admin.token(token);
        }
        let server = admin.spawn(bind.parse().unwrap()).unwrap();
        let mut browser = Browser::launch(&chromium).unwrap();
        let port = server.addr().port();
        browser
            .navigate(&format!("http://127.0.0.1:{port}/"))
            .unwrap();
        Some(Fixture {
            browser,
            server: Some(server),
            reloader,
            path,
            _dir: dir,
        })
    }

    #[track_caller]
    fn ready(&mut self) {
        self.wait(
            "the first status",
            "document.getElementById('status').dataset.loaded === 'true'",
        );
        self.wait_text("#version", "1");
        // The event stream is connected: what follows arrives live.
        self.wait(
            "the event stream to open",
            "document.getElementById('conn').dataset.state === 'open'",
        );
    }

    #[track_caller]
    fn wait(&mut self, what: &str, expression: &str) -> serde_json::Value {
        self.browser.wait_for(what, expression, DEADLINE).unwrap()
    }

    /// Waits until the element `selector` names has exactly `text`.
    #[track_caller]
    fn wait_text(&mut self, selector: &str, text: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        let want = serde_json::to_string(text).unwrap();
        self.wait(
            &format!("{selector} to read {text:?}"),
            &format!("(document.querySelector({sel}) || {{}}).textContent === {want}"),
        );
    }

    /// The text of the element `selector` names.
    #[track_caller]
    fn text(&mut self, selector: &str) -> String {
        let sel = serde_json::to_string(selector).unwrap();
        let value = self
            .browser
            .eval(&format!(
                "(document.querySelector({sel}) || {{}}).textContent"
            ))
            .unwrap();
        value
            .as_str()
            .unwrap_or_else(|| panic!("no {selector}: {value}"))
            .to_owned()
    }

    /// Neither secret is in the page's text, its HTML, its console or its exceptions.
    #[track_caller]
    fn assert_no_secret(&mut self) {
        let page = self
            .browser
            .eval("document.body.innerText + '\\n' + document.documentElement.outerHTML")
            .unwrap();
        let page = page.as_str().unwrap();
        assert!(page.contains("hotconf"), "not the admin page: {page}");
        for secret in [SECRET, SECRET_2] {
            assert!(!page.contains(secret), "the page shows a secret:\n{page}");
            for line in self
                .browser
                .console()
                .iter()
                .chain(self.browser.exceptions())
            {
                assert!(!line.contains(secret), "the console shows a secret: {line}");
            }
        }
    }
}

/// Serves `page` to every request on a free loopback port, from a thread; returns its URL.
fn static_server(page: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(DEADLINE));
            // Read the request head; the page asks for nothing else that needs a body.
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let (status, body) = if head.starts_with(b"GET / ") {
                ("200 OK", page)
            } else {
                ("404 Not Found", "not found")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

const STATIC_PAGE: &str = r#"<!doctype html>
<html><head><title>cdp self-test</title>
<style>body { font: 16px sans-serif; } #count { font-size: 48px; color: #a40; }</style>
</head><body>
<h1>CDP self-test</h1>
<p id="count">0</p>
<button id="more" onclick="more()">more</button>
<button id="off" disabled>off</button>
<input id="name">
<div id="cover-wrap" style="position: relative">
  <button id="covered">under</button>
  <div style="position: absolute; inset: 0; background: #ccc"></div>
</div>
<script>
  let n = 0;
  function more() { n += 1; document.getElementById('count').textContent = String(n); }
  setTimeout(() => { window.late = 'arrived'; }, 200);
  console.log('page', 'ready');
</script>
</body></html>"#;

/// The DevTools client itself, against a static page: navigation, evaluation, waits, clicks,
/// typing, a screenshot, and the errors each one gives when things go wrong.
#[test]
fn cdp_client_drives_a_static_page() {
    let Some(chromium) = cdp::chromium("cdp_client_drives_a_static_page") else {
        return;
    };
    let url = static_server(STATIC_PAGE);
    let mut browser = Browser::launch(&chromium).unwrap();
    browser.navigate(&url).unwrap();
    assert_eq!(browser.eval("document.title").unwrap(), "cdp self-test");
    assert_eq!(browser.eval("1 + 2").unwrap(), 3);
    assert_eq!(
        browser.eval("Promise.resolve({a: [1, 'x']})").unwrap(),
        serde_json::json!({"a": [1, "x"]})
    );
    assert_eq!(browser.eval("undefined").unwrap(), serde_json::Value::Null);

    // A value that appears later is waited for; the wait returns it.
    let late = browser
        .wait_for("the late value", "window.late", DEADLINE)
        .unwrap();
    assert_eq!(late, "arrived");

    // A click runs the page's handler.
    browser.click("#more").unwrap();
    browser.click("#more").unwrap();
    browser
        .wait_for(
            "the count to reach 2",
            "document.getElementById('count').textContent === '2'",
            DEADLINE,
        )
        .unwrap();

    // Console lines are collected.
    browser
        .wait_for(
            "a tick",
            "new Promise(r => setTimeout(() => r(true), 20))",
            DEADLINE,
        )
        .unwrap();
    assert!(
        browser.console().iter().any(|l| l == "log: page ready"),
        "{:?}",
        browser.console()
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shot.png");
    let png = browser.screenshot(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), png);
    let (width, height) = cdp::png_size(&png).unwrap();
    assert!(width >= 800 && height >= 600, "{width}x{height}");
    assert!(
        png.len() > 4_000,
        "a near-empty screenshot: {} bytes",
        png.len()
    );

    // Failures say what failed.
    let threw = browser.eval("null.x").unwrap_err().to_string();
    assert!(
        threw.contains("null.x") && threw.contains("TypeError"),
        "{threw}"
    );
    let timeout = browser
        .wait_for(
            "a thing that never comes",
            "window.never",
            Duration::from_millis(200),
        )
        .unwrap_err()
        .to_string();
    // An expression that throws is waited on too, and the exception is reported.
    let thrown = browser
        .wait_for(
            "an element that never comes",
            "document.querySelector('#never').hidden === false",
            Duration::from_millis(200),
        )
        .unwrap_err()
        .to_string();
    assert!(
        thrown.contains("waiting for an element that never comes") && thrown.contains("TypeError"),
        "{thrown}"
    );
    browser
        .eval("setTimeout(() => { const p = document.createElement('p'); p.id = 'soon'; document.body.appendChild(p); }, 100)")
        .unwrap();
    browser
        .wait_for(
            "an element that comes later",
            "document.querySelector('#soon').id === 'soon'",
            DEADLINE,
        )
        .unwrap();
    assert!(
        timeout.contains("waiting for a thing that never comes")
            && timeout.contains("log: page ready"),
        "{timeout}"
    );
    let missing = browser.click("#nothing").unwrap_err().to_string();
    assert!(missing.contains("missing"), "{missing}");
    let covered = browser.click("#covered").unwrap_err().to_string();
    assert!(covered.contains("covered"), "{covered}");
    let disabled = browser.click("#off").unwrap_err().to_string();
    assert!(disabled.contains("disabled"), "{disabled}");
    // Typing goes to the focused element.
    browser.click("#name").unwrap();
    browser.type_text("typed").unwrap();
    assert_eq!(
        browser
            .eval("document.getElementById('name').value")
            .unwrap(),
        "typed"
    );
    let unknown = browser
        .call("No.such", serde_json::json!({}))
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("No.such"), "{unknown}");

    // A call whose reply does not come in time says which call it was; the late reply
    // does not confuse the next one.
    let slow = browser
        .call_within(
            "Runtime.evaluate",
            serde_json::json!({
                "expression": "new Promise(r => setTimeout(() => r('late'), 400))",
                "awaitPromise": true,
                "returnByValue": true,
            }),
            Duration::from_millis(100),
        )
        .unwrap_err()
        .to_string();
    assert!(
        slow.contains("CDP Runtime.evaluate: no reply within 100ms"),
        "{slow}"
    );
    assert_eq!(
        browser
            .eval("new Promise(r => setTimeout(() => r('next'), 600))")
            .unwrap(),
        "next"
    );

    // A port nobody listens on: navigation fails with the network error.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let refused = browser
        .navigate(&format!("http://{closed}/"))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("ERR_CONNECTION_REFUSED"), "{refused}");

    // The client still works after errors.
    browser.navigate(&url).unwrap();
    assert_eq!(
        browser
            .eval("document.getElementById('count').textContent")
            .unwrap(),
        "0"
    );
}

/// Dropping the client ends the browser and every process it started.
#[cfg(target_os = "linux")]
#[test]
fn dropping_the_client_ends_chromium() {
    let Some(chromium) = cdp::chromium("dropping_the_client_ends_chromium") else {
        return;
    };
    let browser = Browser::launch(&chromium).unwrap();
    let pid = browser.pid();
    // Chromium's helpers carry the profile directory on their command line.
    let profile = browser.dir().join("profile");
    let ours = move || -> Vec<u32> {
        let needle = format!("--user-data-dir={}", profile.display());
        fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
            })
            .collect()
    };
    let running = ours();
    assert!(running.contains(&pid) && running.len() > 1, "{running:?}");
    drop(browser);
    // Drop waited for the browser itself: gone, not a zombie.
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "chromium {pid} still running"
    );
    // Its helpers end with it, soon after.
    let deadline = std::time::Instant::now() + DEADLINE;
    while !ours().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "chromium's processes still running: {:?}",
            ours()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A binary that is not Chromium: the launch fails with its output, not after a hang.
#[test]
fn a_browser_that_exits_at_once_is_reported() {
    let err = Browser::launch(std::path::Path::new("/bin/false"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("exited"), "{err}");
}

/// The page shows a file save live, without reloading itself; its rollback button brings
/// the old version back as a local override, which the next save replaces; secrets never
/// reach it.
#[test]
fn page_shows_saves_live_and_rolls_back() {
    let Some(mut f) = Fixture::start("page_shows_saves_live_and_rolls_back", None) else {
        return;
    };
    assert_eq!(f.text("#name"), "app");
    f.wait("the first load in the history", "!!document.querySelector('#history li.attempt[data-outcome=\"loaded\"][data-version=\"1\"]')");
    f.wait(
        "the first load in the events",
        "!!document.querySelector('#events li[data-seq][data-version=\"1\"]')",
    );
    assert_eq!(f.text("#override"), "");
    // The status block: the watcher, the source and its health.
    assert_eq!(f.text("#watcher"), "events");
    assert_eq!(f.text("#enabled"), "on");
    assert_eq!(f.text("#pending"), "none");
    let source = f.text("#sources li");
    assert!(source.starts_with(f.path.to_str().unwrap()), "{source}");
    assert_eq!(f.text("#sources li .ok"), "connected", "{source}");
    f.assert_no_secret();
    // Set before the save: still there after it only if the page did not reload.
    f.browser.eval("window.beforeSave = 'still here'").unwrap();

    save(&f.path, "hello-two", SECRET_2);
    f.wait(
        "the save's event in #events",
        "!!document.querySelector('#events li[data-seq][data-outcome=\"applied\"][data-version=\"2\"]')",
    );
    f.wait_text("#version", "2");
    assert_eq!(
        f.browser.eval("window.beforeSave").unwrap(),
        "still here",
        "the page reloaded"
    );
    let event = f.text("#events li[data-version=\"2\"]");
    assert!(
        event.contains("server.greeting")
            && event.contains("\"hello-one\"")
            && event.contains("\"hello-two\""),
        "{event}"
    );
    assert!(
        event.contains("db.password") && event.contains("***"),
        "{event}"
    );
    assert!(event.contains("watch"), "the trigger is not shown: {event}");
    f.wait(
        "the save in the history with its diff",
        "(() => { const li = document.querySelector('#history li.attempt[data-version=\"2\"]');
                  return !!li && li.querySelector('.old').textContent === '\"hello-one\"'
                              && li.querySelector('.new').textContent === '\"hello-two\"'; })()",
    );
    f.assert_no_secret();

    // Roll back to version 1 with the page's button (a real mouse click).
    f.wait(
        "rollback to v1 enabled",
        "document.querySelector('.rollback[data-version=\"1\"]').disabled === false",
    );
    f.browser.click(".rollback[data-version=\"1\"]").unwrap();
    f.wait_text("#version", "3");
    f.wait(
        "the rollback's event in #events",
        "!!document.querySelector('#events li[data-seq][data-outcome=\"applied\"][data-version=\"3\"]')",
    );
    f.wait(
        "the override banner",
        "document.getElementById('override').dataset.active === 'true'",
    );
    assert_eq!(
        f.browser
            .eval("document.getElementById('override').hidden")
            .unwrap(),
        false
    );
    let banner = f.text("#override");
    assert!(
        banner.contains("version 3") && banner.contains("rollback"),
        "{banner}"
    );
    assert_eq!(
        f.browser.eval("window.beforeSave").unwrap(),
        "still here",
        "the page reloaded"
    );
    let rollback = f.text("#events li[data-version=\"3\"]");
    assert!(
        rollback.contains("rollback by api 127.0.0.1:"),
        "{rollback}"
    );
    assert!(
        rollback.contains("\"hello-two\"") && rollback.contains("\"hello-one\""),
        "{rollback}"
    );
    // The old value is live in the service, the old secret included.
    let live = f.reloader.current();
    assert_eq!(live.version(), 3);
    assert_eq!(live.server.greeting, "hello-one");
    assert_eq!(live.db.password, SECRET);
    // The live version's own button is disabled, the others are not.
    f.wait(
        "rollback to v3 disabled",
        "document.querySelector('.rollback[data-version=\"3\"]').disabled === true",
    );
    assert_eq!(
        f.browser
            .eval("document.querySelector('.rollback[data-version=\"2\"]').disabled")
            .unwrap(),
        false
    );
    f.wait_text("#message", "Rollback to v1: applied (version 3)");

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-page.png");
    let png = f.browser.screenshot(&shot).unwrap();
    let (width, height) = cdp::png_size(&png).unwrap();
    assert!(width >= 800 && height >= 600, "{width}x{height}");
    assert!(
        png.len() > 20_000,
        "a near-empty screenshot: {} bytes",
        png.len()
    );
    println!("screenshot: {}", shot.display());
    f.assert_no_secret();

    // The next save replaces the override: the sources win.
    save(&f.path, "hello-three", SECRET);
    f.wait_text("#version", "4");
    f.wait(
        "the override banner to go",
        "document.getElementById('override').hidden === true",
    );
    assert_eq!(f.reloader.current().server.greeting, "hello-three");
    assert_eq!(
        f.browser.eval("window.beforeSave").unwrap(),
        "still here",
        "the page reloaded"
    );
    f.assert_no_secret();
    assert!(
        f.browser.exceptions().is_empty(),
        "{:?}",
        f.browser.exceptions()
    );
}

/// With a token, the page asks for it when a state change is refused, says when a token is
/// wrong, and then the change goes through; the token is asked for once.
#[test]
fn page_asks_for_the_token() {
    const TOKEN: &str = "tok-7f3a9c1e5b";
    let Some(mut f) = Fixture::start("page_asks_for_the_token", Some(TOKEN)) else {
        return;
    };
    save(&f.path, "hello-two", SECRET_2);
    f.wait_text("#version", "2");
    f.wait(
        "rollback to v1 enabled",
        "document.querySelector('.rollback[data-version=\"1\"]').disabled === false",
    );
    assert_eq!(
        f.browser
            .eval("document.getElementById('auth').hidden")
            .unwrap(),
        true
    );

    // The rollback is refused without a token: the page asks for one.
    f.browser.click(".rollback[data-version=\"1\"]").unwrap();
    f.wait(
        "the token form",
        "document.getElementById('auth').hidden === false",
    );
    assert_eq!(f.text("#auth-note"), "this server needs a token");
    assert_eq!(f.reloader.current().version(), 2, "applied without a token");

    // A wrong token: asked again, and told why.
    f.browser.click("#token").unwrap();
    f.browser.type_text("not-the-token").unwrap();
    f.browser.click("#token-save").unwrap();
    f.wait_text("#auth-note", "that token was refused");
    f.wait(
        "the token form again",
        "document.getElementById('auth').hidden === false",
    );
    assert_eq!(
        f.reloader.current().version(),
        2,
        "applied with a wrong token"
    );

    // The right one: the rollback that waited goes through.
    f.browser.click("#token").unwrap();
    f.browser.type_text(TOKEN).unwrap();
    f.browser.click("#token-save").unwrap();
    f.wait_text("#version", "3");
    f.wait(
        "the token form to go",
        "document.getElementById('auth').hidden === true",
    );
    assert_eq!(f.reloader.current().server.greeting, "hello-one");
    f.wait(
        "the override banner",
        "document.getElementById('override').dataset.active === 'true'",
    );

    // The next state change uses the kept token without asking.
    f.browser.click("#reload").unwrap();
    f.wait(
        "the reload's answer",
        "document.getElementById('message').textContent.startsWith('Reload: ')",
    );
    assert_eq!(
        f.browser
            .eval("document.getElementById('auth').hidden")
            .unwrap(),
        true
    );
    let message = f.text("#message");
    assert!(!message.contains("failed"), "{message}");

    // The token is not shown in the page.
    let page = f
        .browser
        .eval("document.body.innerText + document.documentElement.outerHTML")
        .unwrap();
    assert!(
        !page.as_str().unwrap().contains(TOKEN),
        "the page shows the token"
    );
    f.assert_no_secret();
    assert!(
        f.browser.exceptions().is_empty(),
        "{:?}",
        f.browser.exceptions()
    );
}

/// A save that needs a restart shows as pending; rejected saves show their stage and their
/// located errors, and the live version stays.
#[test]
fn page_shows_pending_restarts_and_rejections() {
    let Some(mut f) = Fixture::start("page_shows_pending_restarts_and_rejections", None) else {
        return;
    };
    save_text(
        &f.path,
        &format!(
            "[server]\ngreeting = \"hello-one\"\nport = 8080\n\n[db]\npassword = \"{SECRET}\"\n"
        ),
    );
    f.wait(
        "the restart-required event",
        "!!document.querySelector('#events li[data-outcome=\"restart_required\"]')",
    );
    f.wait_text("#pending", "server.port");
    f.wait(
        "the pending path in the history",
        "(document.querySelector('#history li.attempt[data-outcome=\"restart_required\"]') || {textContent: ''})
            .textContent.includes('pending restart: server.port')",
    );

    // A syntax error in a secret's line: rejected at the parse stage, at its line, and
    // the secret's text is not quoted in the error.
    save_text(
        &f.path,
        &format!("[server]\ngreeting = \"x\"\n\n[db]\npassword = \"{SECRET_2}\n"),
    );
    f.wait(
        "the syntax error in the history",
        "!!document.querySelector('#history li.attempt[data-outcome=\"rejected\"] .problem')",
    );
    let rejected = f.text("#history li.attempt[data-outcome=\"rejected\"]");
    assert!(rejected.contains("rejected at stage parse"), "{rejected}");
    let problem = f.text("#history li.attempt[data-outcome=\"rejected\"] .problem");
    assert!(problem.contains("app.toml:5:"), "{problem}");
    f.wait_text("#outcome", "rejected");

    // A rule's error: at the validate stage, with the config path and the value's line.
    save(&f.path, "", SECRET_2);
    f.wait(
        "the rule's error in the history",
        "document.querySelectorAll('#history li.attempt[data-outcome=\"rejected\"]').length === 2",
    );
    let rejected = f.text("#history li.attempt[data-outcome=\"rejected\"]");
    assert!(
        rejected.contains("rejected at stage validate"),
        "{rejected}"
    );
    let problem = f.text("#history li.attempt[data-outcome=\"rejected\"] .problem");
    assert!(
        problem.contains("app.toml:2:") && problem.contains("server.greeting: must not be empty"),
        "{problem}"
    );
    let event = f.text("#events li[data-outcome=\"rejected\"]");
    assert!(event.contains("must not be empty"), "{event}");
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-page-rejected.png");
    f.browser.screenshot(&shot).unwrap();
    // Nothing rejected went live (the port waits for a restart); a rejected attempt
    // offers no rollback.
    assert_eq!(f.text("#version"), "1");
    assert_eq!(f.reloader.current().version(), 1);
    assert_eq!(f.reloader.current().server.port, 0);
    assert_eq!(
        f.browser
            .eval("document.querySelectorAll('#history li.attempt[data-outcome=\"rejected\"] .rollback').length")
            .unwrap(),
        0
    );
    f.assert_no_secret();
    assert!(
        f.browser.exceptions().is_empty(),
        "{:?}",
        f.browser.exceptions()
    );
}

/// Bound beyond loopback, every route needs the token: the page asks once, then loads, and
/// its event stream sends the token as a header and shows a save live.
#[test]
fn page_asks_once_for_the_token_of_a_non_loopback_server() {
    const TOKEN: &str = "tok-2b8e6d4a0c";
    let Some(mut f) = Fixture::open(
        "page_asks_once_for_the_token_of_a_non_loopback_server",
        Some(TOKEN),
        "0.0.0.0:0",
    ) else {
        return;
    };
    f.wait(
        "the token form",
        "document.getElementById('auth').hidden === false",
    );
    assert_eq!(f.text("#auth-note"), "this server needs a token");
    assert_eq!(f.text("#version"), "–", "data shown without a token");
    f.browser.click("#token").unwrap();
    f.browser.type_text(TOKEN).unwrap();
    f.browser.click("#token-save").unwrap();
    f.ready();
    assert_eq!(
        f.browser
            .eval("document.getElementById('auth').hidden")
            .unwrap(),
        true
    );
    f.browser.eval("window.beforeSave = 'still here'").unwrap();

    save(&f.path, "hello-two", SECRET_2);
    f.wait(
        "the save's event in #events",
        "!!document.querySelector('#events li[data-seq][data-outcome=\"applied\"][data-version=\"2\"]')",
    );
    f.wait_text("#version", "2");
    assert_eq!(
        f.browser.eval("window.beforeSave").unwrap(),
        "still here",
        "the page reloaded"
    );
    // Asked once: the form never came back.
    assert_eq!(
        f.browser
            .eval("document.getElementById('auth').hidden")
            .unwrap(),
        true
    );
    f.assert_no_secret();
    assert!(
        f.browser.exceptions().is_empty(),
        "{:?}",
        f.browser.exceptions()
    );
}

/// The server goes away and comes back on the same port: the page says so, reconnects its
/// event stream, and catches up with what it missed, without a reload and without showing
/// an event twice.
#[test]
fn page_reconnects_and_catches_up_after_the_server_restarts() {
    let Some(mut f) = Fixture::start(
        "page_reconnects_and_catches_up_after_the_server_restarts",
        None,
    ) else {
        return;
    };
    f.browser.eval("window.beforeSave = 'still here'").unwrap();
    let server = f.server.take().unwrap();
    let addr = server.addr();
    server.stop().unwrap();
    f.wait(
        "the page to see the stream closed",
        "document.getElementById('conn').dataset.state === 'closed'",
    );

    // Missed while the server is down.
    save(&f.path, "hello-two", SECRET_2);
    let deadline = std::time::Instant::now() + DEADLINE;
    while f.reloader.current().version() != 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the save was not applied"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(f.text("#version"), "1");

    f.server = Some(Admin::new(f.reloader.control()).spawn(addr).unwrap());
    f.wait(
        "the missed event in #events",
        "!!document.querySelector('#events li[data-seq][data-outcome=\"applied\"][data-version=\"2\"]')",
    );
    f.wait_text("#version", "2");
    f.wait(
        "the stream to reopen",
        "document.getElementById('conn').dataset.state === 'open'",
    );
    // And it is live again.
    save(&f.path, "hello-three", SECRET);
    f.wait_text("#version", "3");
    assert_eq!(
        f.browser.eval("window.beforeSave").unwrap(),
        "still here",
        "the page reloaded"
    );
    let shown = f
        .browser
        .eval("[...document.querySelectorAll('#events li[data-seq]')].map(li => li.dataset.seq)")
        .unwrap();
    let seqs: Vec<&str> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut unique = seqs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seqs.len(), "an event shown twice: {seqs:?}");
    f.assert_no_secret();
    assert!(
        f.browser.exceptions().is_empty(),
        "{:?}",
        f.browser.exceptions()
    );
}
