//! `hotconf fleet status` against a real etcd with real reloaders reporting through the
//! fleet reporter: the table, the JSON, the exit status and `--wait`.
#![cfg(feature = "etcd")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../hotconf-etcd/tests/common/etcd.rs"]
mod etcd;

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd::{Etcd, wait_for};
use hotconf::source::{Document, Origin, Source};
use hotconf::{Limits, Problem, Reloader};
use hotconf_etcd::{
    Connection, FleetStatus, Prefix, Reporter, State, Tracker, fleet_status_blocking, format_of,
};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(20);

/// What the test put under the prefix and at which revision: the instances' source yields
/// exactly that, with `Origin::Key` documents, and records it in its tracker, as the etcd
/// source does (the test keeps it in step with etcd).
#[derive(Debug, Default)]
struct Store {
    values: Mutex<Vec<(String, String)>>,
    revision: AtomicI64,
}

impl Store {
    fn put(&self, etcd: &Etcd, key: &str, value: &str) {
        etcd.put(key, value);
        let mut values = self.values.lock().unwrap();
        values.retain(|(k, _)| k != key);
        values.push((key.to_owned(), value.to_owned()));
        values.sort();
        self.revision.store(etcd.revision(), Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct Mirror {
    store: Arc<Store>,
    tracker: Tracker,
}

impl Source for Mirror {
    fn read(&self, _limits: &Limits) -> Result<Vec<Document>, Problem> {
        let values = self.store.values.lock().unwrap().clone();
        self.tracker.record(
            self.store.revision.load(Ordering::SeqCst),
            values
                .iter()
                .map(|(k, v)| (k.clone(), Arc::from(v.as_bytes())))
                .collect(),
        );
        Ok(values
            .into_iter()
            .map(|(k, v)| {
                Document::new(
                    Origin::Key(k.clone()),
                    format_of(&k).unwrap(),
                    v.into_bytes(),
                )
            })
            .collect())
    }
}

fn instance(etcd: &Etcd, store: &Arc<Store>, name: &str) -> Reloader<Value> {
    let tracker = Tracker::new(Prefix::new("/app/").unwrap());
    let reporter = Reporter::builder(Connection::new([etcd.endpoint()]), tracker.clone())
        .instance(name)
        .ttl(Duration::from_secs(2))
        .build()
        .unwrap();
    Reloader::<Value>::builder()
        .source(Mirror {
            store: Arc::clone(store),
            tracker,
        })
        .observer(reporter)
        .build()
        .unwrap()
}

fn wait_states(etcd: &Etcd, expected: &[(&str, State)]) -> FleetStatus {
    let connection = Connection::new([etcd.endpoint()]);
    let prefix = Prefix::new("/app/").unwrap();
    wait_for(DEADLINE, &format!("{expected:?}"), || {
        let status = fleet_status_blocking(&connection, &prefix).unwrap();
        let states: Vec<(&str, State)> = status
            .instances
            .iter()
            .map(|i| (i.record.instance.as_str(), i.state))
            .collect();
        (states == expected).then_some(status.clone())
    })
}

fn fleet(etcd: &Etcd, more: &[&str]) -> Output {
    let endpoint = etcd.endpoint();
    let mut args = vec!["fleet", "status", "--etcd", &endpoint, "--prefix", "/app/"];
    args.extend(more);
    Command::new(env!("CARGO_BIN_EXE_hotconf"))
        .args(&args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(output: &Output) -> (i32, String) {
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

/// The cells of the table row of `instance`.
fn row_of<'a>(out: &'a str, instance: &str) -> Vec<&'a str> {
    out.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&instance))
        .unwrap_or_default()
}

fn json_of(output: &Output) -> (i32, Value) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    (output.status.code().unwrap(), value)
}

#[test]
fn fleet_status_exits_0_only_when_every_live_instance_is_synced() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    let store = Arc::new(Store::default());
    store.put(&etcd, "/app/a.toml", "rpm = 60\n");
    let (code, out) = text(&fleet(&etcd, &[]));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no live instance reports under /app.status/"),
        "{out}"
    );

    let one = instance(&etcd, &store, "web-1");
    let two = instance(&etcd, &store, "web-2");
    let status = wait_states(&etcd, &[("web-1", State::Synced), ("web-2", State::Synced)]);
    let (code, out) = text(&fleet(&etcd, &[]));
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "INSTANCE  STATE   VERSION  APPLIED REV  ATTEMPTED REV  HASH{}  AGE",
            " ".repeat(12)
        ),
        "{out}"
    );
    // The revision of the put (the records written since are in the status prefix).
    let revision = store.revision.load(Ordering::SeqCst).to_string();
    assert!(status.revision > store.revision.load(Ordering::SeqCst));
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row[..6],
        [
            "web-1",
            "SYNCED",
            "1",
            &revision,
            &revision,
            &status.content_hash
        ],
        "{out}"
    );
    assert!(
        row_of(&out, "web-2").starts_with(&["web-2", "SYNCED"]),
        "{out}"
    );
    assert!(out.contains("2 of 2 instances synced"), "{out}");

    let (code, report) = json_of(&fleet(&etcd, &["--json"]));
    assert_eq!(code, 0);
    assert_eq!(report["synced"], json!(true));
    assert_eq!(report["prefix"], json!("/app/"));
    assert_eq!(report["content_hash"], json!(status.content_hash));
    assert_eq!(report["documents"], json!(1));
    assert_eq!(report["unreadable"], json!([]));
    let first = &report["instances"][0];
    let mut fields: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "age_ms",
            "at",
            "at_ms",
            "content_hash",
            "errors",
            "hash_attempted",
            "host",
            "instance",
            "outcome",
            "pending",
            "pid",
            "revision_applied",
            "revision_attempted",
            "state",
            "version"
        ]
    );
    assert_eq!(first["state"], json!("SYNCED"));
    assert_eq!(first["instance"], json!("web-1"));
    assert_eq!(first["pid"], json!(std::process::id()));

    // A change one instance has applied and the other not yet.
    store.put(&etcd, "/app/a.toml", "rpm = 120\n");
    one.reload().unwrap();
    wait_states(
        &etcd,
        &[("web-1", State::Synced), ("web-2", State::Pending)],
    );
    let (code, out) = text(&fleet(&etcd, &[]));
    assert_eq!(code, 1, "{out}");
    assert!(
        row_of(&out, "web-2").starts_with(&["web-2", "PENDING"]),
        "{out}"
    );
    assert!(out.contains("1 of 2 instances synced"), "{out}");
    two.reload().unwrap();
    wait_states(&etcd, &[("web-1", State::Synced), ("web-2", State::Synced)]);
    assert_eq!(fleet(&etcd, &[]).status.code(), Some(0));
}

#[test]
fn fleet_status_shows_a_nack_with_the_key_and_line() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    let store = Arc::new(Store::default());
    store.put(&etcd, "/app/a.toml", "rpm = 60\n");
    let one = instance(&etcd, &store, "web-1");
    wait_states(&etcd, &[("web-1", State::Synced)]);
    store.put(
        &etcd,
        "/app/a.toml",
        "rpm = 60\napi_key = \"k-123\"\nburst = [\n",
    );
    assert!(one.reload().is_err());
    wait_states(&etcd, &[("web-1", State::Nacked)]);
    let (code, out) = text(&fleet(&etcd, &[]));
    assert_eq!(code, 1, "{out}");
    assert!(
        row_of(&out, "web-1").starts_with(&["web-1", "NACKED"]),
        "{out}"
    );
    assert!(
        out.contains("web-1 rejected the config:\n  /app/a.toml:3:"),
        "{out}"
    );
    assert!(!out.contains("k-123"), "{out}");
    let (code, report) = json_of(&fleet(&etcd, &["--json"]));
    assert_eq!(code, 1);
    assert_eq!(report["synced"], json!(false));
    let nacked = &report["instances"][0];
    assert_eq!(nacked["state"], json!("NACKED"));
    assert_eq!(nacked["outcome"], json!("rejected"));
    assert_eq!(nacked["errors"][0]["file"], json!("/app/a.toml"));
    assert_eq!(nacked["errors"][0]["line"], json!(3));
}

#[test]
fn fleet_status_wait_exits_0_once_synced_and_1_at_the_deadline() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    let store = Arc::new(Store::default());
    store.put(&etcd, "/app/a.toml", "rpm = 60\n");
    let one = instance(&etcd, &store, "web-1");
    wait_states(&etcd, &[("web-1", State::Synced)]);
    store.put(&etcd, "/app/a.toml", "rpm = 61\n");
    wait_states(&etcd, &[("web-1", State::Pending)]);

    // Not synced by the deadline: exit 1, after waiting for it.
    let started = Instant::now();
    let (code, out) = text(&fleet(&etcd, &["--wait", "1"]));
    assert_eq!(code, 1, "{out}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        row_of(&out, "web-1").starts_with(&["web-1", "PENDING"]),
        "{out}"
    );

    // Synced while it waits: exit 0.
    let endpoint = etcd.endpoint();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotconf"))
        .args([
            "fleet", "status", "--etcd", &endpoint, "--prefix", "/app/", "--wait", "30", "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It keeps waiting while the instance is pending (whenever this looks).
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "exited while pending");
    one.reload().unwrap();
    let output = child.wait_with_output().unwrap();
    let (code, report) = json_of(&output);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["instances"][0]["state"], json!("SYNCED"));
    assert_eq!(report["instances"][0]["version"], json!(2));
}

#[test]
fn fleet_status_trouble_is_exit_2() {
    let nowhere = format!("http://127.0.0.1:{}", etcd::free_port());
    let output = Command::new(env!("CARGO_BIN_EXE_hotconf"))
        .args([
            "fleet", "status", "--etcd", &nowhere, "--prefix", "/app/", "--json",
        ])
        .output()
        .unwrap();
    let (code, report) = json_of(&output);
    assert_eq!(code, 2);
    assert_eq!(report["error"]["kind"], json!("io"));
}
