//! Alerts against a real local HTTP server (std::net, in this file): what is posted for a
//! rejected reload, its resolution and repeats, that no secret leaves, and that a server
//! that is down or hangs never holds up a reload.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hotconf::alert::Alerts;
use hotconf::{
    Change, Component, Error, ObserverHealth, Outcome, PrepareError, Reloader, ReloaderBuilder,
    Report, Staged, Validate, staged,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(10);
const SECRET: &str = "XYZZY";

#[derive(Debug, Clone, Deserialize, Serialize)]
struct App {
    rpm: u32,
    db: Db,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Db {
    password: String,
}

impl Validate for App {
    fn validate(&self, report: &mut Report) {
        if self.rpm == 0 {
            report.error("rpm", "must be greater than 0");
        }
        if self.db.password.contains(' ') {
            report.error("db.password", "must not contain spaces");
        }
    }
}

/// One request as the server read it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the server answers the next request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Status(u16),
    /// Read the request, record it, then hold the connection without answering.
    Hang,
}

/// A tiny HTTP/1.1 server on 127.0.0.1: records every request in order and answers from a
/// script (200 once the script is used up).
struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    then: Arc<Mutex<Reply>>,
}

impl Server {
    fn start(script: impl IntoIterator<Item = Reply>) -> Self {
        Self::start_with(script, Reply::Status(200))
    }

    fn start_with(script: impl IntoIterator<Item = Reply>, then: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let held = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter().collect::<VecDeque<_>>()));
        let then = Arc::new(Mutex::new(then));
        {
            let (requests, held, then) =
                (Arc::clone(&requests), Arc::clone(&held), Arc::clone(&then));
            thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let (requests, held, script, then) = (
                        Arc::clone(&requests),
                        Arc::clone(&held),
                        Arc::clone(&script),
                        Arc::clone(&then),
                    );
                    thread::spawn(move || serve(stream, &requests, &held, &script, &then));
                }
            });
        }
        Self {
            addr,
            requests,
            held,
            then,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn held(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// Answers 200 from now on and closes the connections held unanswered.
    fn release(&self) {
        *self.then.lock().unwrap() = Reply::Status(200);
        for stream in self.held.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Waits until `pick` finds what it wants among the requests so far.
    fn wait_for<T>(&self, what: &str, pick: impl Fn(&[Request]) -> Option<T>) -> T {
        wait_until(what, || pick(&self.requests()))
    }
}

/// Serves one connection: each request on it (keep-alive) is read, recorded and answered.
fn serve(
    stream: TcpStream,
    requests: &Mutex<Vec<Request>>,
    held: &Mutex<Vec<TcpStream>>,
    script: &Mutex<VecDeque<Reply>>,
    then: &Mutex<Reply>,
) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_owned(),
            parts.next().unwrap_or_default().to_owned(),
        );
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let reply = script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(*then.lock().unwrap());
        requests.lock().unwrap().push(Request {
            method,
            path,
            headers,
            body: String::from_utf8(body).unwrap(),
        });
        match reply {
            Reply::Status(status) => {
                let response = format!("HTTP/1.1 {status} Whatever\r\ncontent-length: 0\r\n\r\n");
                if writer.write_all(response.as_bytes()).is_err() {
                    return;
                }
            }
            Reply::Hang => {
                held.lock().unwrap().push(writer);
                return;
            }
        }
    }
}

fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

const GOOD: &str = "rpm = 60\n[db]\npassword = \"hunter2-XYZZY-original\"\n";
const BROKEN: &str = "rpm = 0\n[db]\npassword = \"hunter2-XYZZY-original\"\n";
const FIXED: &str = "rpm = 120\n[db]\npassword = \"hunter2-XYZZY-original\"\n";

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.toml");
        fs::write(&path, GOOD).unwrap();
        Self { _dir: dir, path }
    }

    fn builder(&self) -> ReloaderBuilder<App> {
        Reloader::<App>::builder()
            .file(&self.path)
            .secret("db.password")
    }

    fn reloader(&self, alerts: &Alerts) -> Reloader<App> {
        self.builder().alerts(alerts.clone()).build().unwrap()
    }

    fn write(&self, text: &str) {
        fs::write(&self.path, text).unwrap();
    }
}

fn rejected(reloader: &Reloader<App>) {
    match reloader.reload() {
        Err(Error::Invalid(_)) => {}
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn applied(reloader: &Reloader<App>) {
    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Applied);
}

/// Applied, or unchanged when the file holds the live config again: both resolve.
fn accepted(reloader: &Reloader<App>) {
    let event = reloader.reload().unwrap();
    assert!(
        matches!(event.outcome, Outcome::Applied | Outcome::Unchanged),
        "{event:?}"
    );
}

fn posts_to<'a>(requests: &'a [Request], path: &str) -> Vec<&'a Request> {
    requests.iter().filter(|r| r.path == path).collect()
}

fn ends_at(request: &Request) -> Option<Value> {
    request.json()[0].get("endsAt").cloned()
}

#[test]
fn a_rejected_reload_alerts_both_sinks_and_the_next_good_reload_resolves_it() {
    let server = Server::start([]);
    let alerts = Alerts::builder()
        .config_name("app")
        .slack(server.url("/hooks/chat"))
        .alertmanager(server.url(""))
        .build()
        .unwrap();
    let fixture = Fixture::new();
    let reloader = fixture.reloader(&alerts);

    fixture.write(BROKEN);
    rejected(&reloader);
    let (slack, am) = server.wait_for("the firing posts", |requests| {
        let slack = posts_to(requests, "/hooks/chat");
        let am = posts_to(requests, "/api/v2/alerts");
        (!slack.is_empty() && !am.is_empty()).then(|| (slack[0].clone(), am[0].clone()))
    });
    assert_eq!(slack.method, "POST");
    assert_eq!(slack.header("content-type"), Some("application/json"));
    let text = slack.json()["text"].as_str().unwrap().to_owned();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("[FIRING] config app reload rejected at stage validate")
    );
    let error = lines.next().unwrap();
    assert!(
        error.ends_with("app.toml:1:7: rpm: must be greater than 0"),
        "{error}"
    );
    assert_eq!(lines.next(), None);

    assert_eq!(am.method, "POST");
    let body = am.json();
    let alerts_posted = body.as_array().unwrap();
    assert_eq!(alerts_posted.len(), 1);
    let alert = &alerts_posted[0];
    assert_eq!(
        alert["labels"],
        json!({"alertname": "HotconfReloadRejected", "config": "app", "severity": "warning", "kind": "reload"})
    );
    assert_eq!(
        alert["annotations"]["summary"],
        "config app reload rejected at stage validate"
    );
    assert_eq!(alert["annotations"]["description"], error);
    let starts_at = alert["startsAt"].as_str().unwrap().to_owned();
    assert!(starts_at.ends_with('Z'), "{starts_at}");
    assert_eq!(alert.get("endsAt"), None, "firing: no endsAt");
    assert_eq!(alerts.active(), 1);

    fixture.write(FIXED);
    applied(&reloader);
    let requests = server.wait_for("the resolved posts", |requests| {
        (posts_to(requests, "/hooks/chat").len() == 2
            && posts_to(requests, "/api/v2/alerts").len() == 2)
            .then(|| requests.to_vec())
    });
    let slack = posts_to(&requests, "/hooks/chat");
    assert_eq!(
        slack[1].json(),
        json!({"text": "[RESOLVED] config app reload rejected at stage validate"})
    );
    let am = posts_to(&requests, "/api/v2/alerts");
    let resolved = &am[1].json()[0];
    assert_eq!(resolved["labels"], alert["labels"], "the same alert");
    assert_eq!(resolved["startsAt"], starts_at.as_str());
    let ends = resolved["endsAt"].as_str().unwrap();
    assert!(ends >= starts_at.as_str(), "{ends} after {starts_at}");
    assert_eq!(alerts.active(), 0);
    wait_until("all four counted as sent", || {
        (alerts.sent() == 4).then_some(())
    });
    assert_eq!(alerts.dropped(), 0);
    assert_eq!(alerts.last_error(), None);
    let health = health(&reloader);
    assert!(health.ok);
    assert_eq!(health.error, None);
    assert_eq!(health.detail, json!({"sent": 4, "dropped": 0, "active": 0}));
}

/// The alerts' entry in the reloader's status.
fn health(reloader: &Reloader<App>) -> ObserverHealth {
    let status = reloader.status();
    let mut found = status.observers.into_iter().filter(|h| h.name == "alerts");
    let health = found.next().expect("alerts report their health");
    assert!(found.next().is_none());
    health
}

#[test]
fn a_firing_alert_is_posted_to_alertmanager_again_until_it_resolves() {
    let server = Server::start([]);
    let alerts = Alerts::builder()
        .alertmanager(server.url("/"))
        .repeat_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let fixture = Fixture::new();
    let reloader = fixture
        .builder()
        .name("svc")
        .alerts(alerts.clone())
        .build()
        .unwrap();

    fixture.write(BROKEN);
    rejected(&reloader);
    let posts = server.wait_for("three posts of the firing alert", |requests| {
        (requests.len() >= 3).then(|| requests.to_vec())
    });
    let first = posts[0].json();
    for post in &posts {
        assert_eq!(post.path, "/api/v2/alerts");
        let body = post.json();
        assert_eq!(body, first, "the same alert, the same start, no endsAt");
        assert_eq!(ends_at(post), None);
    }
    assert_eq!(first[0]["labels"]["config"], "svc", "the reloader's name");
    assert_eq!(
        first[0]["annotations"]["summary"],
        "config svc reload rejected at stage validate"
    );
    assert_eq!(health(&reloader).detail["active"], 1);

    fixture.write(FIXED);
    applied(&reloader);
    let resolved = server.wait_for("the resolution", |requests| {
        requests.iter().find_map(ends_at)
    });
    assert!(resolved.is_string());
    assert_eq!(alerts.active(), 0);
}

#[test]
fn no_secret_value_reaches_any_alert() {
    let server = Server::start([]);
    let alerts = Alerts::builder()
        .slack(server.url("/hook"))
        .alertmanager(server.url(""))
        .build()
        .unwrap();
    let fixture = Fixture::new();
    let reloader = fixture.reloader(&alerts);

    let edits = [
        // A validation error on the secret itself.
        "rpm = 60\n[db]\npassword = \"XYZZY with spaces\"\n",
        // A syntax error on the secret's line.
        "rpm = 60\n[db]\npassword = \"XYZZY-unterminated\n",
        // A type error on the secret.
        "rpm = 60\n[db]\npassword = [\"XYZZY-in-an-array\"]\n",
    ];
    for edit in edits {
        fixture.write(edit);
        rejected(&reloader);
        // A new secret value resolves it; then back to the first one.
        fixture.write("rpm = 60\n[db]\npassword = \"hunter2-XYZZY-changed\"\n");
        accepted(&reloader);
        fixture.write(GOOD);
        accepted(&reloader);
    }
    // Each edit fired once and resolved once, on both sinks.
    let requests = server.wait_for("every post", |requests| {
        (requests.len() == 4 * edits.len()).then(|| requests.to_vec())
    });
    for request in &requests {
        assert!(
            !request.body.contains(SECRET) && !request.path.contains(SECRET),
            "a secret value in an alert: {request:?}"
        );
        assert!(!request.body.contains("hunter2"), "{request:?}");
    }
    // The alerts said what was wrong, just not with the value.
    let texts: Vec<String> = requests
        .iter()
        .filter(|r| r.path == "/hook")
        .map(|r| r.json()["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("db.password: must not contain spaces")),
        "{texts:#?}"
    );
}

#[test]
fn a_server_that_is_down_costs_bounded_retries_then_counts_the_alert_as_dropped() {
    // The only test here with a recorder: what is dropped is counted in the metrics too.
    #[cfg(feature = "metrics")]
    let recorder = {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).unwrap();
        handle
    };
    // A port that was bound and closed: connections are refused.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let alerts = Alerts::builder()
        .slack(url)
        .retries(2)
        .backoff(Duration::from_millis(10))
        .build()
        .unwrap();
    let fixture = Fixture::new();
    let reloader = fixture.reloader(&alerts);

    fixture.write(BROKEN);
    rejected(&reloader);
    wait_until("the firing post dropped", || {
        (alerts.dropped() == 1).then_some(())
    });
    let error = alerts.last_error().unwrap();
    assert!(
        error.starts_with("slack webhook http://127.0.0.1:"),
        "{error}"
    );
    assert!(error.ends_with("(gave up after 3 tries)"), "{error}");
    assert!(
        !error.contains("/hook"),
        "the webhook's path is its secret: {error}"
    );
    let health = health(&reloader);
    assert!(!health.ok);
    assert_eq!(health.error.as_deref(), Some(error.as_str()));
    assert_eq!(health.detail["dropped"], 1);

    // Reloads go on as if nothing happened.
    fixture.write(FIXED);
    applied(&reloader);
    assert_eq!(reloader.handle().load().rpm, 120);
    wait_until("the resolved post dropped", || {
        (alerts.dropped() == 2).then_some(())
    });
    assert_eq!(alerts.sent(), 0);
    #[cfg(feature = "metrics")]
    {
        let text = recorder.render();
        assert!(
            text.lines()
                .any(|line| line == r#"hotconf_alerts_dropped_total{config="config"} 2"#),
            "{text}"
        );
    }
}

#[test]
fn server_errors_are_retried_until_answered_and_a_refusal_is_not() {
    let server = Server::start([Reply::Status(503), Reply::Status(500), Reply::Status(404)]);
    let alerts = Alerts::builder()
        .slack(server.url("/hook"))
        .retries(3)
        .backoff(Duration::from_millis(10))
        .build()
        .unwrap();
    let fixture = Fixture::new();
    let reloader = fixture.reloader(&alerts);

    // 503, 500, then 404: a client error is not retried, the post is dropped.
    fixture.write(BROKEN);
    rejected(&reloader);
    wait_until("the refused post dropped", || {
        (alerts.dropped() == 1).then_some(())
    });
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "two retries, then the 404 ends it");
    assert!(requests.iter().all(|r| r.body == requests[0].body));
    assert!(
        alerts
            .last_error()
            .unwrap()
            .contains("HTTP status 404 (gave up after 3 tries)")
    );

    // The script is used up: 200 from now on.
    fixture.write(FIXED);
    applied(&reloader);
    wait_until("the resolved post sent", || {
        (alerts.sent() == 1).then_some(())
    });
    assert_eq!(alerts.last_error(), None, "a delivery clears the error");
    assert_eq!(server.requests().len(), 4);
}

/// Whether a thread named `hotconf-alerts` runs in this process (each test is a process of
/// its own under nextest).
fn alerts_thread_running() -> bool {
    fs::read_dir("/proc/self/task").unwrap().any(|task| {
        let comm = task.unwrap().path().join("comm");
        fs::read_to_string(comm).is_ok_and(|name| name.trim() == "hotconf-alerts")
    })
}

#[test]
fn a_hanging_server_never_holds_up_a_reload_and_overflow_is_counted_exactly() {
    let server = Server::start_with([], Reply::Hang);
    let alerts = Alerts::builder()
        .slack(server.url("/hook"))
        .queue(2)
        .retries(0)
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let fixture = Fixture::new();
    let reloader = fixture.reloader(&alerts);

    fixture.write(BROKEN);
    rejected(&reloader);
    // The sender has taken the post from the queue and waits on the server.
    wait_until("the post held by the server", || {
        (server.held() == 1).then_some(())
    });

    // Each of these reloads returns while that post is stuck, and queues one message
    // (resolved, firing, resolved, firing) into a queue of two. On a thread of its own, so
    // that a reload that waited on the post fails the test instead of hanging it.
    let (done, finished) = mpsc::channel();
    let counter = alerts.clone();
    thread::spawn(move || {
        let mut dropped = Vec::new();
        for i in 0..4 {
            if i % 2 == 0 {
                fixture.write(FIXED);
                accepted(&reloader);
            } else {
                fixture.write(BROKEN);
                rejected(&reloader);
            }
            dropped.push(counter.dropped());
        }
        done.send((dropped, reloader, fixture)).unwrap();
    });
    let (dropped, reloader, _fixture) = finished
        .recv_timeout(DEADLINE)
        .expect("reloads return while an alert post hangs");
    assert_eq!(
        dropped,
        [0, 0, 1, 2],
        "dropped exactly when the queue was full"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "the first post is still in flight"
    );
    assert_eq!(server.held(), 1);
    assert!(
        alerts
            .last_error()
            .unwrap()
            .contains("the alert queue is full")
    );

    // Stop: the thread ends once the held post fails, and drops what was queued.
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        drop(reloader);
        drop(alerts);
        done.send(()).unwrap();
    });
    server.release();
    finished.recv_timeout(DEADLINE).unwrap();
    // Joined; the kernel unlists a joined thread a moment after waking the joiner.
    wait_until("the joined alerts thread to be unlisted", || {
        (!alerts_thread_running()).then_some(())
    });
}

#[test]
fn dropping_alerts_while_a_post_hangs_ends_within_the_timeout() {
    let server = Server::start_with([], Reply::Hang);
    let alerts = Alerts::builder()
        .slack(server.url("/hook"))
        .timeout(Duration::from_secs(2))
        .retries(5)
        .build()
        .unwrap();
    let fixture = Fixture::new();
    let reloader = fixture.reloader(&alerts);
    // A thread names itself once it starts.
    wait_until("the alerts thread to start", || {
        alerts_thread_running().then_some(())
    });

    fixture.write(BROKEN);
    rejected(&reloader);
    wait_until("the post held by the server", || {
        (server.held() == 1).then_some(())
    });
    // Two more wait in the queue behind it.
    fixture.write(FIXED);
    applied(&reloader);
    fixture.write(BROKEN);
    rejected(&reloader);
    // The server never answers nor closes: only the timeout ends the post, and the stop
    // forbids the retries and the queued posts.
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        drop(reloader);
        drop(alerts);
        done.send(()).unwrap();
    });
    finished.recv_timeout(DEADLINE).unwrap();
    // Joined; the kernel unlists a joined thread a moment after waking the joiner.
    wait_until("the joined alerts thread to be unlisted", || {
        (!alerts_thread_running()).then_some(())
    });
    assert_eq!(
        server.requests().len(),
        1,
        "no retry and no queued post after the stop"
    );
}

/// Refuses `rpm` above 1000 in prepare, and panics committing `rpm = 500`.
struct Pool;

impl Component<App> for Pool {
    fn name(&self) -> &str {
        "pool"
    }

    fn paths(&self) -> Vec<String> {
        vec!["rpm".into()]
    }

    fn prepare(
        &self,
        _old: Option<&App>,
        new: &App,
        _changes: &[Change],
    ) -> Result<Box<dyn Staged>, PrepareError> {
        if new.rpm > 1000 {
            return Err("more than the pool can hold".into());
        }
        let rpm = new.rpm;
        Ok(staged(move || assert_ne!(rpm, 500, "pool commit failed")))
    }
}

#[test]
fn a_component_that_fails_to_prepare_or_commit_has_an_alert_of_its_own() {
    let server = Server::start([]);
    let alerts = Alerts::builder()
        .config_name("app")
        .slack(server.url("/hook"))
        .alertmanager(server.url(""))
        .build()
        .unwrap();
    let fixture = Fixture::new();
    let reloader = fixture
        .builder()
        .component(Pool)
        .alerts(alerts.clone())
        .build()
        .unwrap();
    let am = |requests: &[Request]| -> Vec<Value> {
        posts_to(requests, "/api/v2/alerts")
            .iter()
            .map(|r| r.json()[0].clone())
            .collect()
    };
    let texts = |requests: &[Request]| -> Vec<String> {
        posts_to(requests, "/hook")
            .iter()
            .map(|r| r.json()["text"].as_str().unwrap().to_owned())
            .collect()
    };

    // Refused in prepare: the reload is rejected at stage prepare, and the pool fires.
    fixture.write("rpm = 2000\n[db]\npassword = \"p\"\n");
    rejected(&reloader);
    let requests = server.wait_for("two alerts on each sink", |requests| {
        (requests.len() == 4).then(|| requests.to_vec())
    });
    let texts_now = texts(&requests);
    assert!(
        texts_now[0].starts_with("[FIRING] config app reload rejected at stage prepare\n"),
        "{texts_now:?}"
    );
    assert_eq!(
        texts_now[1],
        "[FIRING] config app component pool failed to prepare\ncomponent 'pool' refused the config: more than the pool can hold"
    );
    let posted = am(&requests);
    assert_eq!(
        posted[1]["labels"],
        json!({"alertname": "HotconfComponentFailed", "config": "app", "severity": "warning", "kind": "component", "component": "pool"})
    );
    assert_eq!(alerts.active(), 2);

    // Applied, but the pool panics committing: the reload alert resolves, the pool's turns
    // critical (an update: Alertmanager only).
    fixture.write("rpm = 500\n[db]\npassword = \"p\"\n");
    applied(&reloader);
    let requests = server.wait_for("the resolution and the update", |requests| {
        (requests.len() == 7).then(|| requests.to_vec())
    });
    assert_eq!(
        texts(&requests)[2],
        "[RESOLVED] config app reload rejected at stage prepare"
    );
    let posted = am(&requests);
    assert_eq!(posted[2]["labels"]["kind"], "reload");
    assert!(posted[2]["endsAt"].is_string());
    assert_eq!(posted[3]["labels"]["component"], "pool");
    assert_eq!(posted[3]["labels"]["severity"], "critical");
    assert_eq!(
        posted[3]["annotations"]["summary"],
        "config app component pool failed to commit"
    );
    assert_eq!(
        posted[3]["startsAt"], posted[1]["startsAt"],
        "the same alert"
    );
    assert!(posted[3].get("endsAt").is_none());
    assert_eq!(alerts.active(), 1);

    // A reload the pool takes resolves it.
    fixture.write("rpm = 100\n[db]\npassword = \"p\"\n");
    applied(&reloader);
    let requests = server.wait_for("the pool's resolution", |requests| {
        (requests.len() == 9).then(|| requests.to_vec())
    });
    assert_eq!(
        texts(&requests)[3],
        "[RESOLVED] config app component pool failed to commit"
    );
    assert_eq!(am(&requests)[4]["labels"]["component"], "pool");
    assert!(am(&requests)[4]["endsAt"].is_string());
    assert_eq!(alerts.active(), 0);
}
