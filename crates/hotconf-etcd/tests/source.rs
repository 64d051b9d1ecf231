//! EtcdSource against a real etcd, under a real `hotconf::Reloader`: puts, updates,
//! deletes, transactions, located errors, the tracker, the status and the watch thread.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/etcd.rs"]
mod etcd;
#[path = "source/support.rs"]
mod support;

use etcd::Etcd;
use hotconf::{Outcome, SourceHealth, Trigger};
use hotconf_etcd::content_hash_of_event;
use serde_json::json;
use support::{Instance, source};

#[test]
fn puts_updates_and_deletes_reach_the_config_one_event_each() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "x = 1");
    etcd.put("/app/notes.txt", "not a document");
    etcd.put("/application.toml", "outside = true");
    let r0 = etcd.revision();
    let app = Instance::start(source(&etcd.endpoint(), "/app/"));
    let loaded = app.expect(Outcome::Loaded);
    assert_eq!(loaded.files, ["/app/a.toml"]);
    assert_eq!(app.config(), json!({"x": 1}));
    assert_eq!(app.tracker.latest().unwrap().revision, r0);
    assert_eq!(app.health(), SourceHealth::Connected);

    // A put of a new key.
    etcd.put("/app/b.yaml", "y: 2");
    let added = app.expect(Outcome::Applied);
    assert_eq!(added.trigger, Trigger::Source);
    assert_eq!(added.files, ["/app/a.toml", "/app/b.yaml"]);
    assert_eq!(app.config(), json!({"x": 1, "y": 2}));
    let r1 = etcd.revision();
    assert_eq!(app.revision(), Some(r1 as u64));
    // The tracker knows the pushed documents by the event's content hash, at their revision.
    let hash = content_hash_of_event(app.tracker.prefix(), &added);
    assert_eq!(app.tracker.get(&hash).unwrap().revision, r1);

    // An update.
    etcd.put("/app/a.toml", "x = 10");
    app.expect(Outcome::Applied);
    assert_eq!(app.config(), json!({"x": 10, "y": 2}));

    // Keys that are no documents, and keys outside the prefix, make no event: the next
    // event is the delete's.
    etcd.put("/app/notes.txt", "still not a document");
    etcd.put("/application.toml", "outside = false");
    etcd.del("/app/b.yaml");
    let deleted = app.expect(Outcome::Applied);
    assert_eq!(deleted.files, ["/app/a.toml"]);
    assert_eq!(app.config(), json!({"x": 10}));
    assert_eq!(app.revision(), Some(etcd.revision() as u64));
}

#[test]
fn a_transaction_of_several_keys_is_one_reload() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "a = 1");
    etcd.put("/app/b.toml", "b = 1");
    let app = Instance::start(source(&etcd.endpoint(), "/app/"));
    app.expect(Outcome::Loaded);

    // One revision: an update, a delete and two new keys.
    etcd.txn(&[
        "put /app/a.toml \"a = 2\"",
        "del /app/b.toml",
        "put /app/c.toml \"c = 3\"",
        "put /app/d.yaml \"d: 4\"",
    ]);
    let event = app.expect(Outcome::Applied);
    assert_eq!(event.files, ["/app/a.toml", "/app/c.toml", "/app/d.yaml"]);
    assert_eq!(app.config(), json!({"a": 2, "c": 3, "d": 4}));
    let txn = etcd.revision();
    assert_eq!(app.revision(), Some(txn as u64));

    // Nothing else came of the transaction: the next event is the marker's.
    etcd.put("/app/marker.toml", "m = 1");
    let marker = app.expect(Outcome::Applied);
    assert!(marker.files.contains(&"/app/marker.toml".to_owned()));
    assert_eq!(marker.version, event.version + 1);
}

#[test]
fn a_bad_value_is_rejected_with_its_key_line_and_column_and_the_config_stays() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "x = 1");
    etcd.put("/app/b.toml", "password = \"hunter2\"");
    let app = Instance::start(source(&etcd.endpoint(), "/app/"));
    app.expect(Outcome::Loaded);

    // Line 3, column 5: the second `=`.
    etcd.put("/app/a.toml", "x = 2\n# fine\ny = = 3\n");
    let rejected = app.expect(Outcome::Rejected);
    let error = &rejected.errors[0];
    assert_eq!(error.file.as_deref(), Some("/app/a.toml"), "{error}");
    assert_eq!((error.line, error.column), (Some(3), Some(5)), "{error}");
    assert!(
        error.to_string().starts_with("/app/a.toml:3:5: "),
        "{error}"
    );
    assert_eq!(app.config(), json!({"x": 1, "password": "hunter2"}));

    // YAML too, through etcdctl like an operator would.
    etcd.put("/app/a.toml", "x = 3");
    app.expect(Outcome::Applied);
    etcd.put("/app/c.yaml", "list:\n  - 1\n  - [2\n");
    let rejected = app.expect(Outcome::Rejected);
    let error = &rejected.errors[0];
    assert_eq!(error.file.as_deref(), Some("/app/c.yaml"), "{error}");
    assert!(error.line.is_some_and(|l| l >= 3), "{error}");
    // Never the secret of another key in any error.
    assert!(!format!("{:?}", rejected.errors).contains("hunter2"));
    assert_eq!(app.config(), json!({"x": 3, "password": "hunter2"}));

    // Fixing it applies.
    etcd.put("/app/c.yaml", "list: [1, 2]");
    app.expect(Outcome::Applied);
    assert_eq!(app.config()["list"], json!([1, 2]));
}

#[test]
fn the_watch_thread_is_named_and_ends_with_the_reloader() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "x = 1");
    let app = Instance::start(source(&etcd.endpoint(), "/app/"));
    app.expect(Outcome::Loaded);
    etcd::wait_for(support::DEADLINE, "the watch thread", || {
        support::has_thread("hotconf-etcd-watch").then_some(())
    });
    // The status names the source by its endpoint and prefix, never a password.
    let name = app.reloader.status().sources[0].name.clone();
    assert_eq!(name, format!("etcd {} /app/", etcd.endpoint()));
    drop(app);
    // Idle (no change to push), the thread still ends: the source's drop stops it.
    etcd::wait_for(support::DEADLINE, "the watch thread to end", || {
        (!support::has_thread("hotconf-etcd-watch")).then_some(())
    });
}

#[test]
fn an_unreachable_etcd_without_cache_fails_the_build_naming_the_endpoint() {
    if !etcd::available() {
        return;
    }
    let port = etcd::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let connection = hotconf_etcd::Connection::new([endpoint.clone()]).user("app", "s3cret");
    let source =
        hotconf_etcd::EtcdSource::new(connection, hotconf_etcd::Prefix::new("/app/").unwrap());
    let Err(error) = Instance::try_start(source) else {
        panic!("built without etcd");
    };
    let problem = &error.problems()[0];
    assert_eq!(problem.kind, hotconf::ProblemKind::Io);
    let message = error.to_string();
    assert!(message.contains(&endpoint), "{message}");
    assert!(message.contains("/app/"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}

#[test]
fn a_reloader_built_inside_a_tokio_runtime_reads_and_watches() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "x = 1");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // As a service's async main would: the source must not block or nest runtimes.
    let app = runtime.block_on(async { Instance::start(source(&etcd.endpoint(), "/app/")) });
    app.expect(Outcome::Loaded);
    etcd.put("/app/a.toml", "x = 2");
    app.expect(Outcome::Applied);
    assert_eq!(app.config(), json!({"x": 2}));
    runtime.block_on(async { drop(app) });
}

#[test]
fn a_value_over_the_size_limit_fails_the_read_naming_its_key() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "x = 1");
    etcd.put("/app/big.toml", &format!("blob = \"{}\"", "z".repeat(200)));
    let mut limits = hotconf::Limits::default();
    limits.max_bytes = 100;
    let built = hotconf::Reloader::<serde_json::Value>::builder()
        .limits(limits)
        .source(source(&etcd.endpoint(), "/app/"))
        .build();
    let Err(error) = built else {
        panic!("a value over the limit was read");
    };
    let problem = &error.problems()[0];
    assert_eq!(problem.kind, hotconf::ProblemKind::Limit);
    assert_eq!(problem.file.as_deref(), Some("/app/big.toml"));
    assert!(!error.to_string().contains("zzz"), "{error}");
}
