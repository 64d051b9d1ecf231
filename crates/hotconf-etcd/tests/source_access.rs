//! EtcdSource's ways in: the last-known-good cache when etcd is down at start, a user
//! and password, and TLS with a client certificate.
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
        // The first read is cached (nothing was pushed yet).
        assert!(std::fs::read_to_string(&cache).unwrap().contains("a = 1"));
        // Every push is cached too.
        etcd.put("/lkg/a.toml", "a = 2");
        first.expect(Outcome::Applied);
        etcd::wait_for(support::DEADLINE, "the cache to hold the push", || {
            std::fs::read_to_string(&cache)
                .is_ok_and(|text| text.contains("a = 2"))
                .then_some(())
        });
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
