//! Fleet status with real reloaders reporting to a real etcd: SYNCED, PENDING, NACKED and
//! RESTART; a dropped or killed instance disappears; a duplicate name is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/etcd.rs"]
mod etcd;
#[path = "fleet/prefix_source.rs"]
mod prefix_source;

use std::time::{Duration, Instant};

use etcd::{Etcd, wait_for};
use hotconf::Reloader;
use hotconf_etcd::{Connection, FleetStatus, Prefix, Reporter, State, fleet_status_blocking};
use prefix_source::PrefixSource;

const DEADLINE: Duration = Duration::from_secs(20);

type Config = serde_json::Value;

fn instance(etcd: &Etcd, name: &str, restart_required: &[&str]) -> Reloader<Config> {
    let source = PrefixSource::new(&etcd.endpoint(), "/app/");
    let reporter = Reporter::builder(source.connection(), source.tracker())
        .instance(name)
        .ttl(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut builder = Reloader::<Config>::builder()
        .source(source)
        .observer(reporter);
    for pattern in restart_required {
        builder = builder.restart_required(pattern);
    }
    builder.build().unwrap()
}

fn status(etcd: &Etcd) -> FleetStatus {
    fleet_status_blocking(
        &Connection::new([etcd.endpoint()]),
        &Prefix::new("/app/").unwrap(),
    )
    .unwrap()
}

/// Waits until the fleet is exactly `expected` (instance, state), by name.
fn wait_states(etcd: &Etcd, expected: &[(&str, State)]) -> FleetStatus {
    let what = format!("fleet states {expected:?}");
    wait_for(DEADLINE, &what, || {
        let status = status(etcd);
        let states: Vec<(&str, State)> = status
            .instances
            .iter()
            .map(|i| (i.record.instance.as_str(), i.state))
            .collect();
        (states == expected).then_some(status.clone())
    })
}

#[test]
fn two_instances_report_synced_then_pending_then_synced_again() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "rpm = 60");
    etcd.put("/app/notes.txt", "not a document");
    let loaded_at = etcd.revision();
    let one = instance(&etcd, "web-1", &[]);
    let two = instance(&etcd, "web-2", &[]);
    let status = wait_states(&etcd, &[("web-1", State::Synced), ("web-2", State::Synced)]);
    assert!(status.synced());
    assert_eq!(status.documents, 1);
    for instance in &status.instances {
        let record = &instance.record;
        assert_eq!(
            record.content_hash.as_deref(),
            Some(status.content_hash.as_str())
        );
        assert_eq!(record.revision_applied, Some(loaded_at));
        assert_eq!(record.revision_attempted, Some(loaded_at));
        assert_eq!(record.outcome, "loaded");
        assert_eq!(record.version, 1);
        assert_eq!(record.pid, std::process::id());
        assert!(record.errors.is_empty() && record.pending.is_empty());
    }

    // A new value: nobody has it until they reload.
    etcd.put("/app/a.toml", "rpm = 120");
    let changed_at = etcd.revision();
    let status = wait_states(
        &etcd,
        &[("web-1", State::Pending), ("web-2", State::Pending)],
    );
    assert!(!status.synced());
    one.reload().unwrap();
    let status = wait_states(
        &etcd,
        &[("web-1", State::Synced), ("web-2", State::Pending)],
    );
    assert_eq!(
        status.instances[0].record.revision_applied,
        Some(changed_at)
    );
    assert_eq!(status.instances[0].record.version, 2);
    assert_eq!(status.instances[0].record.outcome, "applied");
    assert_eq!(status.instances[1].record.revision_applied, Some(loaded_at));
    two.reload().unwrap();
    wait_states(&etcd, &[("web-1", State::Synced), ("web-2", State::Synced)]);

    // Back to the first content: the hash matches again whatever the revision.
    etcd.put("/app/a.toml", "rpm = 60");
    one.reload().unwrap();
    two.reload().unwrap();
    let status = wait_states(&etcd, &[("web-1", State::Synced), ("web-2", State::Synced)]);
    assert!(status.synced());
}

#[test]
fn a_rejected_config_is_nacked_with_the_key_and_line() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "rpm = 60\n");
    let good = etcd.revision();
    let one = instance(&etcd, "web-1", &[]);
    let two = instance(&etcd, "web-2", &[]);
    wait_states(&etcd, &[("web-1", State::Synced), ("web-2", State::Synced)]);
    etcd.put(
        "/app/a.toml",
        "rpm = 60\npassword = \"hunter2\"\nlimit = \n",
    );
    let bad = etcd.revision();
    assert!(one.reload().is_err());
    let status = wait_states(
        &etcd,
        &[("web-1", State::Nacked), ("web-2", State::Pending)],
    );
    let record = &status.instances[0].record;
    assert_eq!(record.outcome, "rejected");
    assert_eq!(
        record.revision_applied,
        Some(good),
        "still runs the good one"
    );
    assert_eq!(record.revision_attempted, Some(bad));
    assert_eq!(
        record.hash_attempted.as_deref(),
        Some(status.content_hash.as_str())
    );
    let error = &record.errors[0];
    assert_eq!(error.file.as_deref(), Some("/app/a.toml"));
    assert_eq!(error.line, Some(3), "{error}");
    assert!(error.column.is_some());
    assert!(error.to_string().starts_with("/app/a.toml:3:"), "{error}");
    assert!(!serde_json::to_string(record).unwrap().contains("hunter2"));
    assert!(two.reload().is_err());
    wait_states(&etcd, &[("web-1", State::Nacked), ("web-2", State::Nacked)]);
    // Fixed: both apply it and are synced; the errors are gone.
    etcd.put("/app/a.toml", "rpm = 61\n");
    one.reload().unwrap();
    two.reload().unwrap();
    let status = wait_states(&etcd, &[("web-1", State::Synced), ("web-2", State::Synced)]);
    assert!(status.instances.iter().all(|i| i.record.errors.is_empty()));
}

#[test]
fn a_restart_required_change_shows_restart_until_reverted() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/server.toml", "[server]\nlisten = \"127.0.0.1:80\"\n");
    let one = instance(&etcd, "web-1", &["server.listen"]);
    wait_states(&etcd, &[("web-1", State::Synced)]);
    etcd.put("/app/server.toml", "[server]\nlisten = \"127.0.0.1:81\"\n");
    one.reload().unwrap();
    let status = wait_states(&etcd, &[("web-1", State::Restart)]);
    assert_eq!(status.instances[0].record.pending, ["server.listen"]);
    assert_eq!(status.instances[0].record.outcome, "restart_required");
    assert!(!status.synced());
    etcd.put("/app/server.toml", "[server]\nlisten = \"127.0.0.1:80\"\n");
    one.reload().unwrap();
    let status = wait_states(&etcd, &[("web-1", State::Synced)]);
    assert!(status.instances[0].record.pending.is_empty());
}

#[test]
fn a_dropped_instance_disappears_and_the_status_is_empty() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "rpm = 60");
    let one = instance(&etcd, "web-1", &[]);
    let two = instance(&etcd, "web-2", &[]);
    wait_states(&etcd, &[("web-1", State::Synced), ("web-2", State::Synced)]);
    // The record is bound to a lease with the TTL asked for.
    let ttl = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut client = Connection::new([etcd.endpoint()]).connect().await.unwrap();
            let kv = client.get("/app.status/web-1", None).await.unwrap().kvs()[0].clone();
            assert_ne!(kv.lease(), 0, "the record has a lease");
            client
                .lease_time_to_live(kv.lease(), None)
                .await
                .unwrap()
                .granted_ttl()
        });
    assert_eq!(ttl, 2);
    drop(two);
    let status = wait_states(&etcd, &[("web-1", State::Synced)]);
    assert!(status.synced());
    drop(one);
    let status = wait_states(&etcd, &[]);
    assert!(!status.synced(), "no instance is not synced");
}

/// Run as a child process by the test below: one instance that reports, then waits to be
/// killed.
#[test]
fn child_instance() {
    let Ok(endpoint) = std::env::var("HOTCONF_FLEET_CHILD") else {
        return;
    };
    let source = PrefixSource::new(&endpoint, "/app/");
    let reporter = Reporter::builder(source.connection(), source.tracker())
        .instance("doomed")
        .ttl(Duration::from_secs(2))
        .build()
        .unwrap();
    let _reloader = Reloader::<Config>::builder()
        .source(source)
        .observer(reporter)
        .build()
        .unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn a_killed_instance_disappears_when_its_lease_expires() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "rpm = 60");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["child_instance", "--exact", "--nocapture"])
        .env("HOTCONF_FLEET_CHILD", etcd.endpoint())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_states(&etcd, &[("doomed", State::Synced)]);
    assert_eq!(status.instances[0].record.pid, child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    // The record outlives the process (no revoke) ...
    assert_eq!(status.instances.len(), 1);
    wait_states(&etcd, &[]);
    // ... until the lease expires: at most its TTL (2 s) after the last renewal.
    let gone_after = killed.elapsed();
    assert!(gone_after > Duration::from_millis(500), "{gone_after:?}");
    assert!(gone_after < Duration::from_secs(10), "{gone_after:?}");
}

#[test]
fn a_duplicate_name_is_reported_until_the_other_holder_is_gone() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "rpm = 60");
    let first = instance(&etcd, "web", &[]);
    wait_states(&etcd, &[("web", State::Synced)]);
    let second = instance(&etcd, "web", &[]);
    second.reload().unwrap();
    let error = wait_for(DEADLINE, "the duplicate reported", || {
        second
            .status()
            .observers
            .into_iter()
            .find(|o| o.name == "fleet" && !o.ok)
            .and_then(|o| o.error)
    });
    assert!(
        error.contains("instance name `web` is in use by host"),
        "{error}"
    );
    assert!(
        error.contains(&format!("pid {}", std::process::id())),
        "{error}"
    );
    let health = first
        .status()
        .observers
        .into_iter()
        .find(|o| o.name == "fleet")
        .unwrap();
    assert!(health.ok, "{health:?}");
    // The first holder's record stays: its outcome is the first load's (the second
    // reloaded since: `unchanged`).
    let now = status(&etcd);
    assert_eq!(now.instances.len(), 1);
    assert_eq!(now.instances[0].record.outcome, "loaded");
    // Gone: the second takes the name, and its health clears.
    drop(first);
    wait_for(DEADLINE, "the second instance's record", || {
        let status = status(&etcd);
        (status.instances.len() == 1 && status.instances[0].record.outcome == "unchanged")
            .then_some(())
    });
    wait_for(DEADLINE, "the duplicate cleared", || {
        second
            .status()
            .observers
            .into_iter()
            .find(|o| o.name == "fleet")
            .filter(|o| o.ok)
    });
}

fn lease_of(etcd: &Etcd, key: &str) -> Option<i64> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut client = Connection::new([etcd.endpoint()]).connect().await.unwrap();
            let response = client.get(key, None).await.unwrap();
            response.kvs().first().map(etcd_client::KeyValue::lease)
        })
}

#[test]
fn etcd_trouble_shows_in_the_health_and_the_record_comes_back() {
    if !etcd::available() {
        return;
    }
    let mut etcd = Etcd::start();
    etcd.put("/app/a.toml", "rpm = 60");
    let one = instance(&etcd, "web-1", &[]);
    wait_states(&etcd, &[("web-1", State::Synced)]);
    let lease = lease_of(&etcd, "/app.status/web-1").unwrap();
    etcd.kill();
    let error = wait_for(DEADLINE, "etcd trouble in the health", || {
        one.status()
            .observers
            .into_iter()
            .find(|o| o.name == "fleet" && !o.ok)
            .and_then(|o| o.error)
    });
    assert!(!error.is_empty());
    etcd.restart();
    // Reconnected under a new lease, it takes its own record over at once (not reported
    // as a duplicate of itself until the old lease expires).
    wait_for(DEADLINE, "the record under a new lease", || {
        let health = one
            .status()
            .observers
            .into_iter()
            .find(|o| o.name == "fleet");
        let error = health.and_then(|o| o.error).unwrap_or_default();
        assert!(!error.contains("in use"), "{error}");
        lease_of(&etcd, "/app.status/web-1").filter(|l| *l != lease)
    });
    wait_states(&etcd, &[("web-1", State::Synced)]);
    wait_for(DEADLINE, "the health cleared", || {
        one.status()
            .observers
            .into_iter()
            .find(|o| o.name == "fleet")
            .filter(|o| o.ok)
    });
}

#[test]
fn a_bad_instance_name_is_refused() {
    let tracker = hotconf_etcd::Tracker::new(Prefix::new("/app/").unwrap());
    for name in ["", "a/b", "a b", "tab\t"] {
        let result = Reporter::builder(Connection::new(["http://127.0.0.1:1"]), tracker.clone())
            .instance(name)
            .build();
        assert!(
            matches!(result, Err(hotconf_etcd::Error::Usage(_))),
            "{name:?}"
        );
    }
    let reporter = Reporter::builder(Connection::new(["http://127.0.0.1:1"]), tracker)
        .build()
        .unwrap();
    assert!(
        reporter
            .instance()
            .ends_with(&format!("-{}", std::process::id()))
    );
    assert_eq!(
        reporter.key(),
        format!("/app.status/{}", reporter.instance())
    );
}

#[test]
fn stop_removes_the_record_of_a_reloader_that_is_shut_down_but_kept() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "rpm = 60");
    let source = PrefixSource::new(&etcd.endpoint(), "/app/");
    let reporter = std::sync::Arc::new(
        Reporter::builder(source.connection(), source.tracker())
            .instance("web-1")
            .build()
            .unwrap(),
    );
    let reloader = Reloader::<Config>::builder()
        .source(source)
        .observer_arc(reporter.clone())
        .build()
        .unwrap();
    wait_states(&etcd, &[("web-1", State::Synced)]);
    reloader.shutdown();
    reporter.stop();
    // Gone at once: the TTL here is the default 10 s, longer than the wait.
    wait_for(Duration::from_secs(5), "the record removed", || {
        status(&etcd).instances.is_empty().then_some(())
    });
    reporter.stop();
}

#[test]
fn a_reporter_stops_at_once_while_etcd_does_not_answer() {
    // A socket that accepts connections (the kernel's backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let connection = Connection::new([endpoint])
        .connect_timeout(Duration::from_secs(60))
        .timeout(Duration::from_secs(60));
    let tracker = hotconf_etcd::Tracker::new(Prefix::new("/app/").unwrap());
    let reporter = Reporter::builder(connection, tracker)
        .instance("web-1")
        .build()
        .unwrap();
    let reloader = Reloader::<Config>::builder()
        .defaults(hotconf::source::Format::Toml, "rpm = 60")
        .observer(reporter)
        .build()
        .unwrap();
    // Let the reporter get stuck talking to the silent socket.
    wait_for(DEADLINE, "a connection to the silent socket", || {
        silent.set_nonblocking(true).unwrap();
        silent.accept().ok()
    });
    let started = Instant::now();
    drop(reloader);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
