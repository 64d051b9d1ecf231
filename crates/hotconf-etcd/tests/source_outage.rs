//! EtcdSource when etcd misbehaves: killed and restarted, compacted while an instance is
//! cut off, restored from an older snapshot; and the periodic resync.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/etcd.rs"]
mod etcd;
#[path = "source/support.rs"]
mod support;

use std::time::Duration;

use etcd::Etcd;
use hotconf::{Outcome, SourceHealth};
use serde_json::json;
use support::{DEADLINE, Instance, Proxy, counter, gauge, record_metrics, source, troubled};

fn series(name: &str, prefix: &str) -> String {
    format!("{name}{{prefix={prefix}}}")
}

fn resyncs(prefix: &str, reason: &str) -> u64 {
    counter(&format!(
        "hotconf_etcd_resyncs_total{{prefix={prefix},reason={reason}}}"
    ))
}

#[test]
fn killed_and_restarted_etcd_keeps_the_config_then_applies_every_later_change() {
    if !etcd::available() {
        return;
    }
    record_metrics();
    let mut etcd = Etcd::start();
    etcd.put("/kill/a.toml", "a = 1");
    let app = Instance::start(source(&etcd.endpoint(), "/kill/"));
    app.expect(Outcome::Loaded);
    etcd.put("/kill/a.toml", "a = 2");
    app.expect(Outcome::Applied);
    etcd::wait_for(DEADLINE, "connected gauge 1", || {
        (gauge(&series("hotconf_etcd_connected", "/kill/")) == Some(1.0)).then_some(())
    });

    etcd.kill();
    let health = app.wait_health("the status to show the outage", troubled);
    let SourceHealth::Error(message) = &health else {
        panic!("{health:?}");
    };
    assert!(message.contains("the last good config stays"), "{message}");
    assert_eq!(app.config(), json!({"a": 2}), "the last good config stays");
    // The retries back off, doubling from 50 ms, but never wait over the 300 ms bound.
    etcd::wait_for(DEADLINE, "the backoff to grow to its bound", || {
        let SourceHealth::Error(message) = app.health() else {
            return None;
        };
        let wait: u64 = message
            .split("retrying in ")
            .nth(1)?
            .split(" ms")
            .next()?
            .parse()
            .ok()?;
        assert!(wait <= 300, "{message}");
        (wait >= 200).then_some(())
    });
    assert_eq!(
        gauge(&series("hotconf_etcd_connected", "/kill/")),
        Some(0.0)
    );
    assert!(counter(&series("hotconf_etcd_disconnects_total", "/kill/")) >= 1);

    // Back, and written to at once, one revision per key: every one must arrive.
    etcd.restart();
    for i in 1..=5 {
        etcd.put(&format!("/kill/k{i}.toml"), &format!("k{i} = {i}"));
    }
    etcd.del("/kill/a.toml");
    let want = json!({"k1": 1, "k2": 2, "k3": 3, "k4": 4, "k5": 5});
    etcd::wait_for(DEADLINE, "every change made after the restart", || {
        (app.config() == want).then_some(())
    });
    app.wait_health("connected again", |h| *h == SourceHealth::Connected);
    assert_eq!(
        gauge(&series("hotconf_etcd_connected", "/kill/")),
        Some(1.0)
    );
    let revision = etcd.revision();
    etcd::wait_for(DEADLINE, "the last revision in the status", || {
        (app.revision() == Some(revision as u64)).then_some(())
    });
    assert_eq!(app.tracker.latest().unwrap().revision, revision);
    // Resumed, not re-read: etcd came back with its history.
    for reason in ["compacted", "restored", "reconnect"] {
        assert_eq!(resyncs("/kill/", reason), 0, "{reason}");
    }
}

#[test]
fn compaction_while_cut_off_resyncs_and_misses_no_deletion() {
    if !etcd::available() {
        return;
    }
    record_metrics();
    let etcd = Etcd::start();
    etcd.put("/cmp/a.toml", "a = 1");
    etcd.put("/cmp/b.toml", "b = 1");
    let proxy = Proxy::start(etcd.client_port());
    let app = Instance::start(source(&proxy.endpoint(), "/cmp/"));
    app.expect(Outcome::Loaded);
    assert_eq!(app.config(), json!({"a": 1, "b": 1}));

    proxy.cut();
    app.wait_health("the cut to show", troubled);
    etcd.put("/cmp/a.toml", "a = 2");
    etcd.del("/cmp/b.toml");
    etcd.put("/cmp/c.toml", "c = 3");
    etcd.put("/other/x.toml", "x = 1");
    let revision = etcd.revision();
    etcd.compact(revision);
    proxy.mend();

    let applied = app.expect(Outcome::Applied);
    assert_eq!(applied.files, ["/cmp/a.toml", "/cmp/c.toml"]);
    assert_eq!(app.config(), json!({"a": 2, "c": 3}));
    app.wait_health("connected again", |h| *h == SourceHealth::Connected);
    assert_eq!(resyncs("/cmp/", "compacted"), 1);
    assert_eq!(resyncs("/cmp/", "restored"), 0);
    assert_eq!(app.revision(), Some(revision as u64));

    // The new watch runs: the next change arrives, and it is the next event.
    etcd.put("/cmp/a.toml", "a = 4");
    let next = app.expect(Outcome::Applied);
    assert_eq!(next.version, applied.version + 1);
    assert_eq!(app.config(), json!({"a": 4, "c": 3}));
}

#[test]
fn a_restore_to_an_older_snapshot_is_read_again_and_later_changes_arrive() {
    if !etcd::available() {
        return;
    }
    record_metrics();
    let mut etcd = Etcd::start();
    etcd.put("/rst/a.toml", "a = 1");
    let snapshot = etcd.dir().join("snap.db");
    etcd.snapshot(&snapshot);
    let app = Instance::start(source(&etcd.endpoint(), "/rst/"));
    app.expect(Outcome::Loaded);
    for i in 2..=4 {
        etcd.put("/rst/a.toml", &format!("a = {i}"));
        app.expect(Outcome::Applied);
    }
    etcd.put("/rst/b.toml", "b = 1");
    app.expect(Outcome::Applied);
    assert_eq!(app.config(), json!({"a": 4, "b": 1}));

    // Back to the snapshot: etcd's revision goes back, a watch from the instance's next
    // revision would wait silently.
    etcd.restore(&snapshot);
    let restored = app.expect(Outcome::Applied);
    assert_eq!(restored.files, ["/rst/a.toml"]);
    assert_eq!(app.config(), json!({"a": 1}));
    assert_eq!(resyncs("/rst/", "restored"), 1);

    // The next change reaches the instance.
    etcd.put("/rst/a.toml", "a = 5");
    app.expect(Outcome::Applied);
    assert_eq!(app.config(), json!({"a": 5}));
    app.wait_health("connected", |h| *h == SourceHealth::Connected);
}

#[test]
fn the_periodic_resync_reads_again_without_an_event_when_nothing_changed() {
    if !etcd::available() {
        return;
    }
    record_metrics();
    let etcd = Etcd::start();
    etcd.put("/per/a.toml", "a = 1");
    let app =
        Instance::start(source(&etcd.endpoint(), "/per/").resync_every(Duration::from_millis(100)));
    let loaded = app.expect(Outcome::Loaded);
    etcd::wait_for(DEADLINE, "three periodic resyncs", || {
        (resyncs("/per/", "periodic") >= 3).then_some(())
    });
    // No event came of them: the next one is the change's.
    etcd.put("/per/a.toml", "a = 2");
    let applied = app.expect(Outcome::Applied);
    assert_eq!(applied.version, loaded.version + 1);
    assert_eq!(app.config(), json!({"a": 2}));
}

#[test]
fn a_restore_that_the_revision_hides_is_caught_by_the_periodic_resync() {
    if !etcd::available() {
        return;
    }
    record_metrics();
    let mut etcd = Etcd::start();
    etcd.put("/hid/a.toml", "a = 1");
    let snapshot = etcd.dir().join("snap.db");
    etcd.snapshot(&snapshot);
    let proxy = Proxy::start(etcd.client_port());
    let app =
        Instance::start(source(&proxy.endpoint(), "/hid/").resync_every(Duration::from_secs(2)));
    app.expect(Outcome::Loaded);
    etcd.put("/hid/b.toml", "b = 1");
    app.expect(Outcome::Applied);
    let seen = etcd.revision();

    // Cut off, etcd goes back to the snapshot and then past the revision the instance saw,
    // with other keys: when it reconnects nothing looks wrong.
    proxy.cut();
    app.wait_health("the cut to show", troubled);
    etcd.restore(&snapshot);
    while etcd.revision() <= seen + 1 {
        etcd.put("/elsewhere/x", "1");
    }
    proxy.mend();
    etcd::wait_for(DEADLINE, "the periodic resync to drop b", || {
        (app.config() == json!({"a": 1})).then_some(())
    });
    // The restore kept the cluster id (same member, same token) and the revision went on:
    // only the timer could tell.
    assert_eq!(resyncs("/hid/", "restored"), 0);
    assert!(resyncs("/hid/", "periodic") >= 1);
}

#[test]
fn progress_notifications_move_the_revision_so_a_reconnect_needs_no_resync() {
    if !etcd::available() {
        return;
    }
    record_metrics();
    let etcd = Etcd::start();
    etcd.put("/prg/a.toml", "a = 1");
    let proxy = Proxy::start(etcd.client_port());
    let app = Instance::start(source(&proxy.endpoint(), "/prg/"));
    app.expect(Outcome::Loaded);

    // Writes elsewhere: nothing to push, but the known revision follows etcd's.
    for i in 0..5 {
        etcd.put("/elsewhere/x", &i.to_string());
    }
    let revision = etcd.revision();
    etcd::wait_for(DEADLINE, "the revision gauge to follow etcd", || {
        (gauge(&series("hotconf_etcd_revision", "/prg/")) == Some(revision as f64)).then_some(())
    });
    assert_eq!(app.revision(), None, "nothing was pushed");

    // Everything before that revision is compacted away while the instance is cut off: it
    // resumes after it, no re-read needed.
    proxy.cut();
    app.wait_health("the cut to show", troubled);
    etcd.compact(revision);
    proxy.mend();
    app.wait_health("connected again", |h| *h == SourceHealth::Connected);
    etcd.put("/prg/a.toml", "a = 2");
    let applied = app.expect(Outcome::Applied);
    assert_eq!(app.config(), json!({"a": 2}));
    assert_eq!(applied.files, ["/prg/a.toml"]);
    for reason in ["compacted", "restored", "reconnect", "periodic"] {
        assert_eq!(resyncs("/prg/", reason), 0, "{reason}");
    }
}

#[test]
fn changes_made_while_cut_off_arrive_on_reconnect_without_a_resync() {
    if !etcd::available() {
        return;
    }
    record_metrics();
    let etcd = Etcd::start();
    etcd.put("/cut/a.toml", "a = 1");
    etcd.put("/cut/b.toml", "b = 1");
    let proxy = Proxy::start(etcd.client_port());
    let app = Instance::start(source(&proxy.endpoint(), "/cut/"));
    app.expect(Outcome::Loaded);

    proxy.cut();
    app.wait_health("the cut to show", troubled);
    etcd.put("/cut/a.toml", "a = 2");
    etcd.del("/cut/b.toml");
    etcd.put("/cut/c.toml", "c = 3");
    let revision = etcd.revision();
    proxy.mend();

    // The watch resumes after the last revision the instance saw: etcd replays the missed
    // revisions (the watch's creation already names a later revision: that is no
    // progress report).
    etcd::wait_for(DEADLINE, "the missed changes", || {
        (app.config() == json!({"a": 2, "c": 3})).then_some(())
    });
    etcd::wait_for(DEADLINE, "the last revision in the status", || {
        (app.revision() == Some(revision as u64)).then_some(())
    });
    app.wait_health("connected again", |h| *h == SourceHealth::Connected);
    for reason in ["compacted", "restored", "reconnect", "periodic"] {
        assert_eq!(resyncs("/cut/", reason), 0, "{reason}");
    }
}
