//! The admin web page in a real headless Chromium, driven over the DevTools protocol.
//!
//! Skipped with a line that says so when Chromium is missing, unless `CI` is set
//! (`scripts/test.sh` installs Debian's `chromium`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cdp;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use cdp::Browser;

const DEADLINE: Duration = Duration::from_secs(10);

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

/// The DevTools client itself, against a static page: navigation, evaluation, waits, a real
/// mouse click, a screenshot, and the errors each one gives when things go wrong.
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

    // A real click runs the page's handler.
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
    assert!(
        timeout.contains("waiting for a thing that never comes")
            && timeout.contains("log: page ready"),
        "{timeout}"
    );
    let missing = browser.click("#nothing").unwrap_err().to_string();
    assert!(missing.contains("missing"), "{missing}");
    let covered = browser.click("#covered").unwrap_err().to_string();
    assert!(covered.contains("covered"), "{covered}");
    let unknown = browser
        .call("No.such", serde_json::json!({}))
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("No.such"), "{unknown}");

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

/// Dropping the client ends the browser process.
#[cfg(target_os = "linux")]
#[test]
fn dropping_the_client_kills_chromium() {
    let Some(chromium) = cdp::chromium("dropping_the_client_kills_chromium") else {
        return;
    };
    let browser = Browser::launch(&chromium).unwrap();
    let pid = browser.pid();
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists());
    drop(browser);
    // Drop waited for it: the process is gone, not a zombie.
    assert!(!proc_dir.exists(), "chromium {pid} still running");
}

/// A binary that is not Chromium: the launch fails with its output, not after a hang.
#[test]
fn a_browser_that_exits_at_once_is_reported() {
    let err = Browser::launch(std::path::Path::new("/bin/false"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("exited"), "{err}");
}
