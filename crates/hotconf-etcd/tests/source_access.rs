//! EtcdSource's ways in: the last-known-good cache when etcd is down at start (holding only
//! what the service accepted), a user and password, and TLS with a client certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/etcd.rs"]
mod etcd;
#[path = "source/support.rs"]
mod support;

use etcd::Etcd;
use hotconf::{Outcome, ProblemKind, SourceHealth};
use hotconf_etcd::{Connection, EtcdSource, Prefix};
use serde_json::json;
use support::{Instance, counter, record_metrics, source};

/// The cache file's documents as `key → text`, its revision, its content hash and its
/// cluster id.
fn cached(path: &std::path::Path) -> (serde_json::Value, i64, String, u64) {
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let documents = file["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["key"].as_str().unwrap().to_owned(),
                entry["text"].clone(),
            )
        })
        .collect();
    (
        serde_json::Value::Object(documents),
        file["revision"].as_i64().unwrap(),
        file["hash"].as_str().unwrap().to_owned(),
        file["cluster_id"].as_u64().unwrap(),
    )
}

#[test]
fn only_what_the_service_accepted_reaches_the_cache_and_a_restart_starts_from_it() {
    if !etcd::available() {
        return;
    }
    let mut etcd = Etcd::start();
    let cache = etcd.dir().join("lkg.json");
    // A first load that is rejected caches nothing.
    etcd.put("/good/a.toml", "a = ");
    assert!(Instance::try_start(source(&etcd.endpoint(), "/good/").cache(&cache)).is_err());
    assert!(!cache.exists());

    etcd.put("/good/a.toml", "a = 1");
    etcd.put("/good/b.toml", "token = \"t0ps3cret\"");
    etcd.put("/good/notes.txt", "not a document");
    let first = Instance::start(source(&etcd.endpoint(), "/good/").cache(&cache));
    first.expect(Outcome::Loaded);
    let (documents, revision, _, cluster) = cached(&cache);
    assert_ne!(cluster, 0);
    assert_eq!(
        documents,
        json!({"/good/a.toml": "a = 1", "/good/b.toml": "token = \"t0ps3cret\""})
    );
    assert_eq!(revision, etcd.revision());

    // Applied: cached before the event goes out.
    etcd.put("/good/a.toml", "a = 2");
    first.expect(Outcome::Applied);
    let (documents, revision, _, _) = cached(&cache);
    assert_eq!(documents["/good/a.toml"], json!("a = 2"));
    assert_eq!(revision, etcd.revision());

    // Other bytes, the same config: unchanged, and accepted all the same.
    etcd.put("/good/a.toml", "a = 2 # same");
    first.expect(Outcome::Unchanged);
    let (documents, good_revision, good_hash, _) = cached(&cache);
    assert_eq!(documents["/good/a.toml"], json!("a = 2 # same"));
    assert_eq!(good_revision, etcd.revision());
    assert_eq!(
        first.tracker.get(&good_hash).unwrap().revision,
        good_revision
    );

    // An invalid value, put behind the service's back: rejected, and not cached.
    etcd.put("/good/a.toml", "a = [unclosed");
    first.expect(Outcome::Rejected);
    assert_eq!(first.config(), json!({"a": 2, "token": "t0ps3cret"}));
    let (documents, revision, hash, _) = cached(&cache);
    assert_eq!(documents["/good/a.toml"], json!("a = 2 # same"));
    assert_eq!((revision, hash), (good_revision, good_hash.clone()));
    drop(first);

    // etcd goes down still holding the invalid value; an instance restarts from the cache
    // alone and runs the last good config.
    etcd.kill();
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(&cache).unwrap().ino();
    let app = Instance::start(source(&etcd.endpoint(), "/good/").cache(&cache));
    let loaded = app.expect(Outcome::Loaded);
    assert_eq!(loaded.files, ["/good/a.toml", "/good/b.toml"]);
    // Loading the cache is accepting what it holds already: not written again.
    assert_eq!(std::fs::metadata(&cache).unwrap().ino(), inode);
    assert_eq!(app.config(), json!({"a": 2, "token": "t0ps3cret"}));
    let health = app.wait_health("degraded health", |h| {
        matches!(h, SourceHealth::Degraded(_))
    });
    let SourceHealth::Degraded(message) = health else {
        unreachable!()
    };
    assert!(message.contains("lkg.json"), "{message}");
    assert!(
        message.contains(&format!("etcd revision {good_revision}")),
        "{message}"
    );

    // etcd is back with the invalid value: the reconnect's read is rejected, the instance
    // keeps the good config, and so does the cache.
    etcd.restart();
    app.expect(Outcome::Rejected);
    app.wait_health("connected", |h| *h == SourceHealth::Connected);
    assert_eq!(app.config(), json!({"a": 2, "token": "t0ps3cret"}));
    assert_eq!(cached(&cache).2, good_hash);
    // A fix reaches the service and the cache.
    etcd.put("/good/a.toml", "a = 3");
    app.expect(Outcome::Applied);
    let (documents, _, _, cluster_after) = cached(&cache);
    assert_eq!(documents["/good/a.toml"], json!("a = 3"));
    // The cluster id comes from the reconnect's read (this instance never read etcd at
    // start).
    assert_eq!(cluster_after, cluster);
}

#[test]
fn an_instance_starts_from_the_cache_while_etcd_is_down_and_catches_up() {
    if !etcd::available() {
        return;
    }
    record_metrics();
    let mut etcd = Etcd::start();
    let cache = etcd.dir().join("lkg.json");
    etcd.put("/lkg/a.toml", "a = 1");
    etcd.put("/lkg/b.toml", "token = \"t0ps3cret\"");
    {
        let first = Instance::start(source(&etcd.endpoint(), "/lkg/").cache(&cache));
        first.expect(Outcome::Loaded);
        // The first load is cached (nothing was pushed yet).
        assert!(std::fs::read_to_string(&cache).unwrap().contains("a = 1"));
        // Every accepted push is cached too, before its event goes out.
        etcd.put("/lkg/a.toml", "a = 2");
        first.expect(Outcome::Applied);
        assert!(std::fs::read_to_string(&cache).unwrap().contains("a = 2"));
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let cached_revision = etcd.revision();

    etcd.kill();
    let app = Instance::start(source(&etcd.endpoint(), "/lkg/").cache(&cache));
    let loaded = app.expect(Outcome::Loaded);
    assert_eq!(loaded.files, ["/lkg/a.toml", "/lkg/b.toml"]);
    assert_eq!(app.config(), json!({"a": 2, "token": "t0ps3cret"}));
    assert_eq!(app.tracker.latest().unwrap().revision, cached_revision);
    let health = app.wait_health("degraded health", |h| {
        matches!(h, SourceHealth::Degraded(_))
    });
    let SourceHealth::Degraded(message) = health else {
        unreachable!()
    };
    assert!(message.contains("lkg.json"), "{message}");
    assert!(!message.contains("t0ps3cret"), "{message}");

    // etcd is back, with a change the cache does not have.
    etcd.restart();
    etcd.put("/lkg/a.toml", "a = 3");
    etcd::wait_for(
        support::DEADLINE,
        "the change made after the restart",
        || (app.config() == json!({"a": 3, "token": "t0ps3cret"})).then_some(()),
    );
    app.wait_health("connected", |h| *h == SourceHealth::Connected);
    assert_eq!(
        counter("hotconf_etcd_resyncs_total{prefix=/lkg/,reason=reconnect}"),
        1
    );
    // And it watches from there.
    etcd.put("/lkg/a.toml", "a = 4");
    etcd::wait_for(support::DEADLINE, "the next change", || {
        (app.config()["a"] == json!(4)).then_some(())
    });
}

#[test]
fn a_damaged_or_missing_cache_is_an_error_not_an_empty_config() {
    if !etcd::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://127.0.0.1:{}", etcd::free_port());
    let cache = dir.path().join("lkg.json");

    let error = Instance::try_start(source(&endpoint, "/app/").cache(&cache))
        .err()
        .expect("built with neither etcd nor a cache");
    let message = error.to_string();
    assert!(message.contains(&endpoint), "{message}");
    assert!(message.contains("lkg.json"), "{message}");

    std::fs::write(&cache, "{\"hotconf_etcd_cache\":1,\"prefix\":\"/app/\"").unwrap();
    let error = Instance::try_start(source(&endpoint, "/app/").cache(&cache))
        .err()
        .expect("built from a truncated cache");
    assert_eq!(error.problems()[0].kind, ProblemKind::Io);
    let message = error.to_string();
    assert!(
        message.contains("lkg.json") && message.contains("unusable"),
        "{message}"
    );
}

#[test]
fn a_user_and_password_read_and_watch_and_a_wrong_password_is_not_served_from_cache() {
    if !etcd::available() {
        return;
    }
    let mut etcd = Etcd::start();
    etcd.enable_auth("rootpw");
    etcd.add_user("app", "apppw", "/app/");
    etcd.put("/app/a.toml", "a = 1");
    let user = |password: &str| {
        EtcdSource::new(
            Connection::new([etcd.endpoint()]).user("app", password),
            Prefix::new("/app/").unwrap(),
        )
    };
    let cache = etcd.dir().join("lkg.json");
    let app = Instance::start(user("apppw").cache(&cache));
    app.expect(Outcome::Loaded);
    etcd.put("/app/a.toml", "a = 2");
    app.expect(Outcome::Applied);
    assert_eq!(app.config(), json!({"a": 2}));
    assert!(cache.exists());

    // A wrong password is refused, even with a cache: etcd answered, and said no.
    let error = Instance::try_start(user("wrong-pw").cache(&cache))
        .err()
        .expect("a wrong password was served");
    let message = error.to_string();
    assert!(
        !message.contains("wrong-pw") && !message.contains("apppw"),
        "{message}"
    );
    assert!(message.contains(&etcd.endpoint()), "{message}");
}

#[cfg(feature = "tls")]
#[test]
fn tls_with_a_client_certificate_reads_and_watches() {
    use hotconf_etcd::Tls;
    if !etcd::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = etcd::TlsFiles::generate(dir.path());
    let etcd = Etcd::start_with(etcd::Options {
        tls: Some(files.clone()),
        client_cert_auth: true,
    });
    etcd.put("/app/a.toml", "a = 1");
    let tls = Tls {
        ca: Some(files.ca.clone()),
        cert: Some(files.client_cert.clone()),
        key: Some(files.client_key.clone()),
        domain: None,
    };
    let app = Instance::start(EtcdSource::new(
        Connection::new([etcd.endpoint()]).tls(tls),
        Prefix::new("/app/").unwrap(),
    ));
    app.expect(Outcome::Loaded);
    etcd.put("/app/a.toml", "a = 2");
    app.expect(Outcome::Applied);
    assert_eq!(app.config(), json!({"a": 2}));
    assert_eq!(app.health(), SourceHealth::Connected);
}
