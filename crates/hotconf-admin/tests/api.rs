//! The admin API over real HTTP: a real reloader over temp TOML files, the server on a free
//! loopback port, requests with ureq.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hotconf::{Reloader, Report, Validate};
use hotconf_admin::{Admin, AdminError, AdminServer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A secret no response may ever contain.
const SECRET: &str = "Zq9-distinctive-s3cret-VALUE";
/// The secret after a rotation.
const SECRET2: &str = "Kx7-rotated-s3cret-OTHER";
const TOKEN: &str = "t0ken-for-tests";

#[derive(Debug, Clone, Deserialize, Serialize)]
struct App {
    limits: Limits,
    db: Db,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Limits {
    rpm: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Db {
    url: String,
    password: String,
}

impl Validate for App {
    fn validate(&self, report: &mut Report) {
        if self.limits.rpm == 0 {
            report.error("limits.rpm", "must be greater than 0");
        }
    }
}

fn config(rpm: u32, password: &str) -> String {
    format!(
        "[limits]\nrpm = {rpm}\n\n[db]\nurl = \"postgres://db/app\"\npassword = \"{password}\"\n"
    )
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The JSON error object's kind, asserting the shape.
    fn error_kind(&self) -> String {
        let json = self.json();
        assert!(json["error"]["message"].is_string(), "{}", self.body);
        json["error"]["kind"].as_str().unwrap().to_string()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    reloader: Reloader<App>,
    server: Option<AdminServer>,
    addr: SocketAddr,
    agent: ureq::Agent,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

impl Fixture {
    fn new() -> Self {
        Self::with(|admin| admin)
    }

    fn with(configure: impl FnOnce(Admin) -> Admin) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.toml");
        std::fs::write(&path, config(60, SECRET)).unwrap();
        let reloader = Reloader::<App>::builder().file(&path).build().unwrap();
        let admin = configure(Admin::new(reloader.control()));
        let server = admin.spawn("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = server.addr();
        Self {
            _dir: dir,
            path,
            reloader,
            server: Some(server),
            addr,
            agent: agent(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let url = self.url(path);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(body.to_string()).unwrap();
        let mut response = self
            .agent
            .run(request)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        Answer {
            status,
            headers,
            body,
        }
    }

    fn get(&self, path: &str) -> Answer {
        self.request("GET", path, &[], "")
    }

    fn post(&self, path: &str) -> Answer {
        self.request("POST", path, &[], "")
    }

    fn put_toml(&self, body: &str, extra: &[(&str, &str)]) -> Answer {
        let mut headers = vec![("content-type", "application/toml")];
        headers.extend_from_slice(extra);
        self.request("PUT", "/config", &headers, body)
    }

    fn status(&self) -> Value {
        let answer = self.get("/status");
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()
    }

    fn version(&self) -> u64 {
        self.reloader.current().version()
    }

    fn save(&self, rpm: u32, password: &str) {
        std::fs::write(&self.path, config(rpm, password)).unwrap();
    }
}

/// Polls `check` every 15 ms until it holds, for up to 10 s.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(15));
    }
}

#[test]
fn read_routes_answer_their_json_shapes() {
    let fx = Fixture::new();

    let config = fx.get("/config");
    assert_eq!(config.status, 200);
    assert_eq!(config.header("content-type"), Some("application/json"));
    let json = config.json();
    assert_eq!(json["limits"]["rpm"], 60);
    assert_eq!(json["db"]["password"], "***");
    let view = fx.reloader.control().config();
    assert_eq!(
        config.header("etag"),
        Some(hotconf::etag(view.version, view.hash).as_str())
    );

    let status = fx.status();
    assert_eq!(status["version"], 1);
    assert_eq!(status["local_override"], Value::Null);
    assert_eq!(status["last_attempt"]["event"], "loaded");

    let history = fx.get("/history").json();
    let attempts = history.as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["event"], "loaded");
    let seq = attempts[0]["seq"].as_u64().unwrap();
    let one = fx.get(&format!("/history/{seq}"));
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["seq"], seq);

    let unknown = fx.get("/history/99999");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.error_kind(), "not_found");
    let malformed = fx.get("/history/abc");
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.error_kind(), "usage");

    let health = fx.get("/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));

    let metrics = fx.get("/metrics");
    assert_eq!(metrics.status, 404, "no handle given");
    assert_eq!(metrics.error_kind(), "not_found");

    let missing = fx.get("/no/such/route");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_kind(), "not_found");
}

#[test]
fn config_etag_answers_304_when_unchanged() {
    let fx = Fixture::new();
    let first = fx.get("/config");
    let tag = first.header("etag").unwrap().to_string();
    let again = fx.request("GET", "/config", &[("if-none-match", &tag)], "");
    assert_eq!(again.status, 304);
    assert_eq!(again.header("etag"), Some(tag.as_str()));
    assert!(again.body.is_empty());

    fx.save(61, SECRET);
    fx.reloader.reload().unwrap();
    let changed = fx.request("GET", "/config", &[("if-none-match", &tag)], "");
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), Some(tag.as_str()));
    assert_eq!(changed.json()["limits"]["rpm"], 61);
}

#[test]
fn the_page_is_served_with_its_stable_ids() {
    let fx = Fixture::new();
    let page = fx.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    for id in [
        "id=\"version\"",
        "id=\"events\"",
        "id=\"history\"",
        "id=\"status\"",
        "id=\"override\"",
        "id=\"reload\"",
    ] {
        assert!(page.body.contains(id), "{id}");
    }
    assert!(
        !page.body.contains("innerHTML"),
        "data goes in as text only"
    );
    assert!(
        !page.body.contains("EventSource("),
        "a fetch-based reader sends the token"
    );
}

#[test]
fn reload_rollback_and_plan() {
    let fx = Fixture::new();
    fx.save(120, SECRET);
    let reload = fx.post("/reload");
    assert_eq!(reload.status, 200, "{}", reload.body);
    let event = reload.json();
    assert_eq!(event["event"], "applied");
    assert_eq!(event["version"], 2);
    assert_eq!(event["trigger"], "api");
    assert!(
        event["by"].as_str().unwrap().starts_with("api 127.0.0.1:"),
        "{event}"
    );
    assert_eq!(event["changes"][0]["path"], "limits.rpm");
    assert_eq!(fx.reloader.current().config().limits.rpm, 120);
    assert!(reload.header("etag").unwrap().starts_with("\"v2-"));

    // A dry run of the files on disk: nothing to do, then a change it would apply.
    let plan = fx.post("/plan");
    assert_eq!(plan.status, 200, "{}", plan.body);
    assert_eq!(plan.json()["outcome"], "unchanged");
    fx.save(130, SECRET);
    let plan = fx.post("/plan").json();
    assert_eq!(plan["outcome"], "applied");
    assert_eq!(plan["changes"][0]["new"], 130);
    assert_eq!(fx.version(), 2, "a plan applies nothing");

    // A dry run of a submitted config, in each format.
    let submitted = fx.request(
        "POST",
        "/plan",
        &[("content-type", "application/toml")],
        &config(7, "***"),
    );
    assert_eq!(submitted.status, 200, "{}", submitted.body);
    assert_eq!(submitted.json()["changes"][0]["new"], 7);
    let as_json = fx.request(
        "POST",
        "/plan",
        &[("content-type", "application/json")],
        r#"{"limits":{"rpm":0},"db":{"url":"u","password":"***"}}"#,
    );
    assert_eq!(as_json.json()["outcome"], "rejected");
    let as_yaml = fx.request(
        "POST",
        "/plan",
        &[("content-type", "text/yaml")],
        "limits:\n  rpm: 9\ndb:\n  url: u\n  password: '***'\n",
    );
    assert_eq!(as_yaml.status, 200, "{}", as_yaml.body);
    let unsupported = fx.request("POST", "/plan", &[("content-type", "text/plain")], "x");
    assert_eq!(unsupported.status, 415);
    assert_eq!(unsupported.error_kind(), "unsupported_media_type");

    // Back to version 1: a new version with its content, a local override.
    let rollback = fx.post("/rollback/1");
    assert_eq!(rollback.status, 200, "{}", rollback.body);
    let event = rollback.json();
    assert_eq!(event["version"], 3);
    assert_eq!(event["trigger"], "rollback");
    assert_eq!(fx.reloader.current().config().limits.rpm, 60);
    assert_eq!(fx.status()["local_override"]["version"], 3);

    let unknown = fx.post("/rollback/99");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.error_kind(), "not_found");
    let malformed = fx.post("/rollback/one");
    assert_eq!(malformed.status, 400);
    assert_eq!(fx.version(), 3);
}

#[test]
fn state_changes_are_post_or_put_only() {
    let fx = Fixture::new();
    for (method, path) in [
        ("GET", "/reload"),
        ("GET", "/rollback/1"),
        ("GET", "/plan"),
        ("DELETE", "/config"),
        ("POST", "/config"),
        ("POST", "/status"),
    ] {
        let answer = fx.request(method, path, &[], "");
        assert_eq!(answer.status, 405, "{method} {path}");
        assert_eq!(answer.error_kind(), "method_not_allowed");
        assert!(answer.header("allow").is_some(), "{method} {path}");
    }
    assert_eq!(fx.version(), 1);
    assert_eq!(fx.reloader.attempts().len(), 1, "nothing was attempted");
}

#[test]
fn a_token_on_loopback_guards_state_changes() {
    let fx = Fixture::with(|admin| admin.token(TOKEN));
    // Reads need no token on loopback.
    assert_eq!(fx.get("/config").status, 200);
    assert_eq!(fx.get("/status").status, 200);

    let missing = fx.post("/reload");
    assert_eq!(missing.status, 401);
    assert_eq!(missing.error_kind(), "unauthorized");
    assert!(
        missing
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = fx.request("POST", "/reload", &[("authorization", "Bearer nope")], "");
    assert_eq!(wrong.status, 401);
    let put = fx.put_toml(&config(5, "***"), &[]);
    assert_eq!(put.status, 401);
    assert_eq!(fx.reloader.attempts().len(), 1, "nothing was attempted");

    let bearer = format!("Bearer {TOKEN}");
    let right = fx.request("POST", "/reload", &[("authorization", &bearer)], "");
    assert_eq!(right.status, 200, "{}", right.body);
    assert_eq!(right.json()["event"], "unchanged");
}

#[test]
fn tokens_are_checked_and_never_shown() {
    let fx = Fixture::new();
    let loopback: SocketAddr = "127.0.0.1:9".parse().unwrap();
    for bad in ["", "with space", "tab\t"] {
        let refused = Admin::new(fx.reloader.control())
            .token(bad)
            .router(loopback);
        assert!(
            matches!(refused, Err(AdminError::InvalidToken(_))),
            "{bad:?}"
        );
    }
    let admin = Admin::new(fx.reloader.control()).token(TOKEN);
    let debug = format!("{admin:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    let error = Admin::new(fx.reloader.control())
        .spawn("0.0.0.0:0".parse().unwrap())
        .unwrap_err();
    assert!(error.to_string().contains("without a token"), "{error}");
}

/// Serves `admin.router(bound)` on a free loopback port whose number `bound` takes: how a
/// non-loopback bind is tested without listening beyond this machine.
fn serve_as(admin: Admin, ip: &str) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let bound: SocketAddr = format!("{ip}:{}", addr.port()).parse().unwrap();
    let router = admin.router(bound).unwrap();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = axum::serve(listener, router).await;
        });
    });
    (addr, thread)
}

#[test]
fn a_non_loopback_bind_needs_a_token_for_every_route() {
    let fx = Fixture::new();
    let refused = Admin::new(fx.reloader.control()).spawn("0.0.0.0:0".parse().unwrap());
    assert!(
        matches!(refused, Err(AdminError::TokenRequired(_))),
        "{refused:?}"
    );
    let refused = Admin::new(fx.reloader.control()).router("192.0.2.7:8080".parse().unwrap());
    assert!(matches!(refused, Err(AdminError::TokenRequired(_))));

    let (addr, _thread) = serve_as(Admin::new(fx.reloader.control()).token(TOKEN), "192.0.2.7");
    let host = format!("192.0.2.7:{}", addr.port());
    let client = agent();
    let call = |method: &str, path: &str, token: Option<&str>| {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .header("host", &host);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let mut response = client.run(builder.body(String::new()).unwrap()).unwrap();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        (response.status().as_u16(), body)
    };
    for path in [
        "/config", "/status", "/history", "/healthz", "/metrics", "/events",
    ] {
        assert_eq!(call("GET", path, None).0, 401, "{path} without a token");
        assert_eq!(
            call("GET", path, Some("wrong")).0,
            401,
            "{path} with a wrong token"
        );
    }
    for path in ["/config", "/status", "/history", "/healthz"] {
        let (status, body) = call("GET", path, Some(TOKEN));
        assert_eq!(status, 200, "{path}: {body}");
    }
    assert_eq!(call("POST", "/reload", None).0, 401);
    assert_eq!(call("POST", "/reload", Some(TOKEN)).0, 200);
    // The page holds no data; it asks for the token when the API answers 401.
    assert_eq!(call("GET", "/", None).0, 200);
}

#[test]
fn cross_site_requests_and_foreign_hosts_are_refused() {
    let fx = Fixture::new();
    fx.save(99, SECRET);
    let port = fx.addr.port();
    let foreign_host = format!("evil.example:{port}");
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("origin", "http://evil.example")],
        vec![("origin", "null")],
        vec![("origin", "http://127.0.0.1:1")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("host", foreign_host.as_str())],
    ];
    for headers in &cases {
        let reload = fx.request("POST", "/reload", headers, "");
        assert_eq!(reload.status, 403, "reload {headers:?}");
        assert_eq!(reload.error_kind(), "forbidden");
        let put = fx.request(
            "PUT",
            "/config",
            &[headers.as_slice(), &[("content-type", "application/toml")]].concat(),
            &config(5, "***"),
        );
        assert_eq!(put.status, 403, "put {headers:?}");
        let rollback = fx.request("POST", "/rollback/1", headers, "");
        assert_eq!(rollback.status, 403, "rollback {headers:?}");
    }
    assert_eq!(fx.version(), 1, "nothing changed");
    assert_eq!(fx.reloader.attempts().len(), 1, "nothing was attempted");
    assert_eq!(fx.reloader.current().config().limits.rpm, 60);

    // DNS rebinding: reads are refused under a foreign Host too.
    for path in ["/config", "/status", "/events", "/"] {
        let read = fx.request("GET", path, &[("host", foreign_host.as_str())], "");
        assert_eq!(read.status, 403, "{path}");
        assert!(!read.body.contains("postgres://"), "{path}");
    }
    // The same origin is fine, by either loopback name.
    let origin = format!("http://localhost:{port}");
    let same = fx.request("POST", "/reload", &[("origin", &origin)], "");
    assert_eq!(same.status, 200, "{}", same.body);
    assert_eq!(fx.version(), 2);
}

#[test]
fn put_with_a_stale_if_match_is_412_and_changes_nothing() {
    let fx = Fixture::new();
    let tag = fx.get("/config").header("etag").unwrap().to_string();
    let put = fx.put_toml(&config(70, "***"), &[("if-match", &tag)]);
    assert_eq!(put.status, 200, "{}", put.body);
    let new_tag = put.header("etag").unwrap().to_string();
    assert_ne!(new_tag, tag);
    assert_eq!(fx.get("/config").header("etag"), Some(new_tag.as_str()));
    assert_eq!(fx.reloader.current().config().limits.rpm, 70);

    let stale = fx.put_toml(&config(80, "***"), &[("if-match", &tag)]);
    assert_eq!(stale.status, 412, "{}", stale.body);
    assert_eq!(stale.error_kind(), "conflict");
    assert_eq!(stale.json()["error"]["actual"], new_tag.as_str());
    let malformed = fx.put_toml(&config(80, "***"), &[("if-match", "\"v1\"")]);
    assert_eq!(malformed.status, 412);
    assert_eq!(fx.reloader.current().config().limits.rpm, 70);
    assert_eq!(fx.get("/config").header("etag"), Some(new_tag.as_str()));

    let any = fx.put_toml(&config(90, "***"), &[("if-match", "*")]);
    assert_eq!(any.status, 200, "{}", any.body);
    assert_eq!(fx.reloader.current().config().limits.rpm, 90);

    let empty = fx.put_toml("", &[]);
    assert_eq!(empty.status, 400);
    assert_eq!(empty.error_kind(), "usage");
    let unsupported = fx.request("PUT", "/config", &[("content-type", "text/plain")], "x = 1");
    assert_eq!(unsupported.status, 415);
}

#[test]
fn a_secret_sent_back_masked_keeps_its_value() {
    let fx = Fixture::new();
    let mut json = fx.get("/config").json();
    assert_eq!(json["db"]["password"], "***");
    json["limits"]["rpm"] = 75.into();
    let put = fx.request(
        "PUT",
        "/config",
        &[("content-type", "application/json")],
        &json.to_string(),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    let live = fx.reloader.current();
    assert_eq!(live.config().limits.rpm, 75);
    assert_eq!(live.config().db.password, SECRET);
    assert!(!put.body.contains(SECRET));
}

#[test]
fn a_local_override_shows_until_a_file_save_replaces_it() {
    let fx = Fixture::new();
    let put = fx.put_toml(&config(500, "***"), &[]);
    assert_eq!(put.status, 200, "{}", put.body);
    let status = fx.status();
    let local = &status["local_override"];
    assert_eq!(local["version"], 2, "{status}");
    assert_eq!(local["trigger"], "api");
    assert!(local["by"].as_str().unwrap().starts_with("api 127.0.0.1:"));
    assert_eq!(fx.reloader.current().config().limits.rpm, 500);

    // The sources win when they next change.
    fx.reloader.watch().unwrap();
    fx.save(77, SECRET);
    wait_for("the file save to apply", || {
        fx.reloader.current().config().limits.rpm == 77
    });
    wait_for("the override to clear", || {
        fx.status()["local_override"].is_null()
    });

    // A rollback is one too.
    let rollback = fx.post("/rollback/2");
    assert_eq!(rollback.status, 200, "{}", rollback.body);
    assert_eq!(fx.status()["local_override"]["trigger"], "rollback");
    fx.save(78, SECRET);
    wait_for("the second save to apply", || {
        fx.reloader.current().config().limits.rpm == 78
    });
    wait_for("the rollback override to clear", || {
        fx.status()["local_override"].is_null()
    });
}

#[test]
fn an_invalid_put_is_422_with_located_errors() {
    let fx = Fixture::new();
    let invalid = fx.put_toml(&config(0, "***"), &[]);
    assert_eq!(invalid.status, 422, "{}", invalid.body);
    assert_eq!(invalid.error_kind(), "invalid");
    let error = &invalid.json()["error"]["errors"][0];
    assert_eq!(error["file"], "api");
    assert_eq!(error["line"], 2);
    assert_eq!(error["column"], 7);
    assert_eq!(error["path"], "limits.rpm");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("greater than 0")
    );

    let syntax = fx.put_toml("[limits]\nrpm = = 3\n", &[]);
    assert_eq!(syntax.status, 422);
    let error = &syntax.json()["error"]["errors"][0];
    assert_eq!(error["line"], 2, "{error}");

    assert_eq!(fx.version(), 1);
    assert_eq!(fx.reloader.current().config().limits.rpm, 60);
    // Both are in the history, with their errors.
    let history = fx.get("/history").json();
    let rejected: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "rejected")
        .collect();
    assert_eq!(rejected.len(), 2);
    let seq = rejected[0]["seq"].as_u64().unwrap();
    let one = fx.get(&format!("/history/{seq}")).json();
    assert_eq!(one["errors"][0]["path"], "limits.rpm");
}

#[test]
fn a_stopped_reloader_answers_503() {
    let fx = Fixture::new();
    assert_eq!(fx.get("/healthz").status, 200);
    fx.reloader.shutdown();
    assert_eq!(fx.get("/healthz").status, 503);
    let reload = fx.post("/reload");
    assert_eq!(reload.status, 503, "{}", reload.body);
    assert_eq!(reload.error_kind(), "stopped");
    // What is live can still be read.
    assert_eq!(fx.get("/config").status, 200);
}

#[test]
fn metrics_render_the_services_own_handle() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("hotconf_admin_test_total").increment(3);
    });
    let fx = Fixture::with(|admin| admin.metrics(handle));
    let metrics = fx.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        metrics.body.contains("hotconf_admin_test_total 3"),
        "{}",
        metrics.body
    );
}

/// An open event stream, read line by line.
struct Stream {
    lines: BufReader<Box<dyn Read + Send>>,
}

/// One server-sent event.
#[derive(Debug)]
struct Sse {
    id: u64,
    event: String,
    data: Value,
}

impl Stream {
    fn open(fx: &Fixture, last_event_id: Option<u64>) -> Self {
        Self::open_path(fx, "/events", last_event_id)
    }

    fn open_path(fx: &Fixture, path: &str, last_event_id: Option<u64>) -> Self {
        let mut builder = ureq::http::Request::builder()
            .method("GET")
            .uri(fx.url(path));
        if let Some(id) = last_event_id {
            builder = builder.header("last-event-id", id.to_string());
        }
        let client: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        let response = client.run(builder.body(()).unwrap()).unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let reader: Box<dyn Read + Send> = Box::new(response.into_body().into_reader());
        let mut stream = Self {
            lines: BufReader::new(reader),
        };
        // The first thing sent is a comment saying the subscription is in place.
        let mut line = String::new();
        stream.lines.read_line(&mut line).unwrap();
        assert!(
            line.starts_with(':') && line.contains("connected"),
            "{line:?}"
        );
        stream
    }

    /// The next event, skipping comments (keep-alives).
    fn next(&mut self) -> Sse {
        let (mut id, mut event, mut data) = (None, None, None);
        loop {
            let mut line = String::new();
            let read = self.lines.read_line(&mut line).unwrap();
            assert!(read > 0, "the stream ended");
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if let Some(data) = data.take() {
                    return Sse {
                        id: id.expect("an id"),
                        event: event.expect("an event name"),
                        data,
                    };
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(": ").unwrap_or((line, ""));
            match field {
                "id" => id = Some(value.parse().unwrap()),
                "event" => event = Some(value.to_string()),
                "data" => data = Some(serde_json::from_str(value).unwrap()),
                other => panic!("unexpected field {other}"),
            }
        }
    }
}

#[test]
fn events_stream_live_and_resume_from_last_event_id() {
    let fx = Fixture::new();
    let mut stream = Stream::open(&fx, None);
    fx.save(61, SECRET);
    fx.reloader.reload().unwrap();
    let first = stream.next();
    assert_eq!(first.event, "applied");
    assert_eq!(first.data["event"], "applied");
    assert_eq!(first.data["seq"], first.id);
    assert_eq!(first.data["version"], 2);
    // An API call's event names its caller.
    let rejected = fx.put_toml(&config(0, "***"), &[]);
    assert_eq!(rejected.status, 422);
    let second = stream.next();
    assert_eq!(second.event, "rejected");
    assert!(second.id > first.id);
    assert!(second.data["by"].as_str().unwrap().starts_with("api "));
    drop(stream);

    // Missed while disconnected: two saves.
    fx.save(62, SECRET);
    fx.reloader.reload().unwrap();
    fx.save(63, SECRET);
    fx.reloader.reload().unwrap();
    let missed: Vec<u64> = fx
        .reloader
        .events_since(second.id)
        .iter()
        .filter(|e| e.outcome != hotconf::Outcome::Detected)
        .map(|e| e.seq)
        .collect();
    assert_eq!(missed.len(), 2, "{missed:?}");

    let mut resumed = Stream::open(&fx, Some(second.id));
    let got: Vec<Sse> = (0..missed.len()).map(|_| resumed.next()).collect();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), missed);
    assert_eq!(got[1].data["version"], 4);
    // Then live, with no duplicate in between.
    fx.save(64, SECRET);
    fx.reloader.reload().unwrap();
    let live = resumed.next();
    assert!(live.id > missed[1], "{live:?}");
    assert_eq!(live.data["version"], 5);
    assert_eq!(live.event, "applied");
}

#[test]
fn a_resumed_stream_has_no_gap_and_no_duplicate_while_reloads_run() {
    let fx = Fixture::new();
    let start = fx.reloader.attempts().last().unwrap().seq;
    let reloader = fx.reloader.clone();
    let path = fx.path.clone();
    let writer = std::thread::spawn(move || {
        for rpm in 100..130 {
            std::fs::write(&path, config(rpm, SECRET)).unwrap();
            reloader.reload().unwrap();
        }
    });
    // Opened while the reloads run: some are in the backlog, some arrive live, some may be
    // in both.
    std::thread::sleep(Duration::from_millis(5));
    let mut stream = Stream::open(&fx, Some(start));
    writer.join().unwrap();
    let expected: Vec<u64> = fx
        .reloader
        .events_since(start)
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(expected.len(), 30);
    let got: Vec<u64> = (0..expected.len()).map(|_| stream.next().id).collect();
    assert_eq!(got, expected);
    // Nothing is sent twice: the next event is the next attempt.
    fx.save(1, SECRET);
    let next = fx.reloader.reload().unwrap();
    assert_eq!(stream.next().id, next.seq);
}

#[test]
fn idle_streams_send_keep_alive_comments() {
    let fx = Fixture::with(|admin| admin.keep_alive(Duration::from_millis(50)));
    let mut stream = Stream::open(&fx, None);
    let mut line = String::new();
    while line.trim().is_empty() {
        line.clear();
        stream.lines.read_line(&mut line).unwrap();
    }
    assert!(line.starts_with(':'), "{line:?}");
}

#[test]
fn events_all_adds_detected() {
    let fx = Fixture::new();
    let mut stream = Stream::open_path(&fx, "/events?events=all", None);
    fx.save(61, SECRET);
    fx.reloader.reload().unwrap();
    let mut names = Vec::new();
    while names.last().map(String::as_str) != Some("applied") {
        names.push(stream.next().event);
    }
    assert_eq!(names, ["detected", "applied"]);
}

#[test]
fn dropping_the_server_ends_open_streams_and_stops() {
    let mut fx = Fixture::new();
    let stream = Stream::open(&fx, None);
    let server = fx.server.take().unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(server);
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(10))
        .expect("the server stopped despite an open event stream");
    drop(stream);
    assert!(
        std::net::TcpStream::connect(fx.addr).is_err(),
        "nothing listens any more"
    );
}

#[test]
fn no_secret_value_appears_in_any_response() {
    let fx = Fixture::new();
    // Rotate the secret through the file, then through the API; reject one too.
    fx.save(61, SECRET2);
    let reload = fx.post("/reload");
    assert_eq!(reload.status, 200, "{}", reload.body);
    assert_eq!(reload.json()["changes"].as_array().unwrap().len(), 2);
    let mut bodies = vec![reload.body];
    let put = fx.put_toml(&config(62, SECRET), &[]);
    assert_eq!(put.status, 200, "{}", put.body);
    bodies.push(put.body);
    bodies.push(fx.put_toml(&config(0, SECRET2), &[]).body);
    bodies.push(
        fx.request(
            "POST",
            "/plan",
            &[("content-type", "application/toml")],
            &config(63, SECRET2),
        )
        .body,
    );
    fx.save(64, SECRET2);
    bodies.push(fx.post("/plan").body);
    for path in ["/config", "/status", "/history", "/", "/healthz"] {
        bodies.push(fx.get(path).body);
    }
    for event in fx.reloader.attempts() {
        bodies.push(fx.get(&format!("/history/{}", event.seq)).body);
    }
    // Every event again, over the stream.
    let mut stream = Stream::open_path(&fx, "/events?events=all", Some(0));
    for _ in fx.reloader.events_since(0) {
        bodies.push(stream.next().data.to_string());
    }
    assert!(
        bodies.iter().any(|b| b.contains("***")),
        "redacted values are shown"
    );
    for body in &bodies {
        assert!(!body.contains(SECRET), "{body}");
        assert!(!body.contains(SECRET2), "{body}");
    }
    // The secrets did reach the reloader.
    assert_eq!(fx.reloader.current().config().db.password, SECRET);
}
