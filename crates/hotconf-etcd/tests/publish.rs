//! Publishing a directory to a real etcd: checked first, written in one guarded
//! transaction, refused when invalid, on a concurrent change, or over etcd's limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/etcd.rs"]
mod etcd;

use std::path::Path;

use etcd::Etcd;
use hotconf::{Pipeline, Report, Validate};
use hotconf_etcd::{Connection, Prefix, PublishError, Published, publish_blocking};
use serde::{Deserialize, Serialize};

/// Every key under `prefix` with its value and mod revision, read with etcd-client.
fn kvs(etcd: &Etcd, prefix: &str) -> Vec<(String, String, i64)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = Connection::new([etcd.endpoint()]).connect().await.unwrap();
        let options = etcd_client::GetOptions::new().with_prefix();
        let response = client.get(prefix, Some(options)).await.unwrap();
        response
            .kvs()
            .iter()
            .map(|kv| {
                (
                    kv.key_str().unwrap().to_owned(),
                    kv.value_str().unwrap().to_owned(),
                    kv.mod_revision(),
                )
            })
            .collect()
    })
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

fn push(etcd: &Etcd, dir: &Path, prefix: &str, at: Option<i64>) -> Result<Published, PublishError> {
    publish_blocking::<serde_json::Value>(
        &Pipeline::new(),
        dir,
        &Connection::new([etcd.endpoint()]),
        &Prefix::new(prefix).unwrap(),
        at,
    )
}

#[test]
fn a_valid_directory_is_published_in_one_revision_and_stale_keys_go() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "x = 0");
    etcd.put("/app/same.toml", "s = 1");
    etcd.put("/app/stale.toml", "old = true");
    etcd.put("/app.status/web-1", "{}");
    etcd.put("/other/a.toml", "x = 0");
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("a.toml", "x = 1\n"),
            ("b.yaml", "y: 2\n"),
            ("same.toml", "s = 1"),
            ("README", "not a config file"),
            (".hidden.toml", "h = 1"),
            ("a.toml.swp", "litter"),
        ],
    );
    let before = etcd.revision();
    let done = push(&etcd, dir.path(), "/app/", None).unwrap();
    assert!(done.written);
    assert_eq!(done.read_revision, before);
    assert_eq!(done.revision, before + 1, "one transaction, one revision");
    assert_eq!(done.put, ["/app/a.toml", "/app/b.yaml"]);
    assert_eq!(done.deleted, ["/app/stale.toml"]);
    assert_eq!(done.unchanged, ["/app/same.toml"]);
    assert_eq!(done.files.len(), 3, "{:?}", done.files);
    let now = kvs(&etcd, "/app/");
    let keys: Vec<(&str, &str)> = now
        .iter()
        .map(|(k, v, _)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("/app/a.toml", "x = 1\n"),
            ("/app/b.yaml", "y: 2\n"),
            ("/app/same.toml", "s = 1")
        ]
    );
    assert_eq!(now[0].2, before + 1);
    assert_eq!(now[1].2, before + 1);
    assert!(now[2].2 < before, "an identical key is not rewritten");
    assert_eq!(etcd.revision(), before + 1);
    // The status prefix and other prefixes are not touched.
    assert_eq!(kvs(&etcd, "/app.status/").len(), 1);
    assert_eq!(kvs(&etcd, "/other/").len(), 1);
    // The content hash is the one instances report for these values.
    let values: Vec<(String, String)> =
        now.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect();
    assert_eq!(
        done.content_hash,
        hotconf_etcd::content_hash_of_values(
            values.iter().map(|(k, v)| (k.as_str(), v.as_bytes()))
        )
    );

    // The same directory again: nothing written, the revision stays.
    let again = push(&etcd, dir.path(), "/app/", None).unwrap();
    assert!(!again.written);
    assert!(again.put.is_empty() && again.deleted.is_empty());
    assert_eq!(again.revision, before + 1);
    assert_eq!(etcd.revision(), before + 1);
}

#[test]
fn a_prefix_without_a_slash_leaves_its_status_prefix_alone() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app.status/web-1", "{\"instance\":\"web-1\"}");
    etcd.put("/app-stale.toml", "x = 0");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("a.toml", "x = 1")]);
    let done = push(&etcd, dir.path(), "/app", None).unwrap();
    assert_eq!(done.put, ["/appa.toml"]);
    assert_eq!(done.deleted, ["/app-stale.toml"]);
    assert_eq!(
        kvs(&etcd, "/app.status/").len(),
        1,
        "the status record stays"
    );
}

#[test]
fn an_invalid_directory_is_refused_with_the_file_and_line_and_nothing_is_written() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "x = 0");
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("a.toml", "x = 1\ny = [\n"),
            ("b.toml", "password = \"hunter2\"\nz = \n"),
        ],
    );
    let before = etcd.revision();
    let error = push(&etcd, dir.path(), "/app/", None).unwrap_err();
    let PublishError::Invalid { problems, files } = &error else {
        panic!("not invalid: {error}");
    };
    assert_eq!(files.len(), 2);
    let first = problems.errors().next().unwrap();
    assert!(
        first.file.as_deref().unwrap().ends_with("a.toml"),
        "{first}"
    );
    assert!(first.line.is_some() && first.column.is_some(), "{first}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert_eq!(etcd.revision(), before, "nothing written");
    assert_eq!(kvs(&etcd, "/app/")[0].1, "x = 0");

    // An empty directory would remove every key: refused as well.
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        push(&etcd, empty.path(), "/app/", None),
        Err(PublishError::Invalid { .. })
    ));
    assert_eq!(etcd.revision(), before);
}

#[derive(Debug, Deserialize, Serialize)]
struct Limits {
    rpm: u32,
}

impl Validate for Limits {
    fn validate(&self, report: &mut Report) {
        if self.rpm == 0 {
            report.error("rpm", "must be greater than 0");
        }
    }
}

#[test]
fn the_library_runs_the_services_typed_validation() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("limits.toml", "rpm = 0\n")]);
    let connection = Connection::new([etcd.endpoint()]);
    let prefix = Prefix::new("/app/").unwrap();
    let before = etcd.revision();
    // As untyped JSON it loads; as the service's type it does not.
    let error =
        publish_blocking::<Limits>(&Pipeline::new(), dir.path(), &connection, &prefix, None)
            .unwrap_err();
    let PublishError::Invalid { problems, .. } = &error else {
        panic!("not invalid: {error}");
    };
    let problem = problems.errors().next().unwrap();
    assert_eq!(problem.message, "must be greater than 0");
    assert_eq!(
        (problem.line, problem.column),
        (Some(1), Some(7)),
        "{problem}"
    );
    assert_eq!(etcd.revision(), before);
    write(dir.path(), &[("limits.toml", "rpm = 60\n")]);
    let done = publish_blocking::<Limits>(&Pipeline::new(), dir.path(), &connection, &prefix, None)
        .unwrap();
    assert_eq!(done.put, ["/app/limits.toml"]);
}

#[test]
fn a_change_since_the_expected_revision_is_a_conflict_and_nothing_is_written() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "x = 0");
    etcd.put("/app/b.toml", "y = 0");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("a.toml", "x = 1")]);
    let read = etcd.revision();
    // Someone else adds a key after the read.
    etcd.put("/app/new.toml", "n = 1");
    let error = push(&etcd, dir.path(), "/app/", Some(read)).unwrap_err();
    assert!(
        matches!(error, PublishError::Conflict { read_revision, .. } if read_revision == read),
        "{error}"
    );
    let after = etcd.revision();
    // ... or deletes one, or changes one.
    etcd.del("/app/b.toml");
    assert!(matches!(
        push(&etcd, dir.path(), "/app/", Some(after)),
        Err(PublishError::Conflict { .. })
    ));
    let after = etcd.revision();
    etcd.put("/app/a.toml", "x = 2");
    assert!(matches!(
        push(&etcd, dir.path(), "/app/", Some(after)),
        Err(PublishError::Conflict { .. })
    ));
    // Even when the directory equals what was read, a change since is a conflict.
    let same = tempfile::tempdir().unwrap();
    write(same.path(), &[("a.toml", "x = 2"), ("new.toml", "n = 1")]);
    let read = etcd.revision();
    etcd.put("/app/other.toml", "o = 1");
    assert!(matches!(
        push(&etcd, same.path(), "/app/", Some(read)),
        Err(PublishError::Conflict { .. })
    ));
    let values: Vec<(String, String)> = kvs(&etcd, "/app/")
        .into_iter()
        .map(|(k, v, _)| (k, v))
        .collect();
    assert_eq!(
        values,
        [
            ("/app/a.toml".to_owned(), "x = 2".to_owned()),
            ("/app/new.toml".to_owned(), "n = 1".to_owned()),
            ("/app/other.toml".to_owned(), "o = 1".to_owned()),
        ],
        "nothing written by the refused pushes"
    );
    // A change elsewhere is no conflict: a push at the current revision goes through.
    let read = etcd.revision();
    etcd.put("/elsewhere", "1");
    etcd.put("/app.status/web-1", "{}");
    let done = push(&etcd, dir.path(), "/app/", Some(read)).unwrap();
    assert_eq!(done.read_revision, read);
    assert_eq!(done.put, ["/app/a.toml"]);
    assert_eq!(done.deleted, ["/app/new.toml", "/app/other.toml"]);
}

#[test]
fn pushes_over_etcds_limits_are_refused_before_sending() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    let before = etcd.revision();
    let many = tempfile::tempdir().unwrap();
    for i in 0..=hotconf_etcd::MAX_TXN_OPS {
        write(
            many.path(),
            &[(&format!("{i:03}.toml"), &format!("n = {i}"))],
        );
    }
    let error = push(&etcd, many.path(), "/app/", None).unwrap_err();
    assert!(matches!(error, PublishError::TooLarge(_)), "{error}");
    assert!(error.to_string().contains("129 operations"), "{error}");

    let big = tempfile::tempdir().unwrap();
    let value = "v".repeat(hotconf_etcd::MAX_REQUEST_BYTES);
    write(
        big.path(),
        &[("big.json", &format!("{{\"blob\":\"{value}\"}}"))],
    );
    let error = push(&etcd, big.path(), "/app/", None).unwrap_err();
    assert!(matches!(error, PublishError::TooLarge(_)), "{error}");
    assert!(error.to_string().contains("1.5 MiB"), "{error}");
    assert!(!error.to_string().contains("vvvv"), "{error}");
    assert_eq!(etcd.revision(), before, "nothing sent");

    // Just under the size limit: etcd takes it (the estimate is not far over).
    let value = "v".repeat(hotconf_etcd::MAX_REQUEST_BYTES - 200);
    write(
        big.path(),
        &[("big.json", &format!("{{\"blob\":\"{value}\"}}"))],
    );
    let done = push(&etcd, big.path(), "/big/", None).unwrap();
    assert_eq!(done.revision, before + 1);
    let before = done.revision;

    // Just under the limit of operations goes through in one revision.
    std::fs::remove_file(many.path().join("000.toml")).unwrap();
    let done = push(&etcd, many.path(), "/app/", None).unwrap();
    assert_eq!(done.put.len(), hotconf_etcd::MAX_TXN_OPS);
    assert_eq!(done.revision, before + 1);
}

#[test]
fn an_unreachable_etcd_is_trouble_after_the_check() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("a.toml", "x = 1")]);
    let connection = Connection::new([format!("http://127.0.0.1:{}", etcd::free_port())])
        .connect_timeout(std::time::Duration::from_millis(300));
    let error = publish_blocking::<serde_json::Value>(
        &Pipeline::new(),
        dir.path(),
        &connection,
        &Prefix::new("/app/").unwrap(),
        None,
    )
    .unwrap_err();
    assert!(matches!(error, PublishError::Etcd(_)), "{error}");
    // An invalid directory is reported as invalid without asking etcd.
    write(dir.path(), &[("a.toml", "x = ")]);
    let error = publish_blocking::<serde_json::Value>(
        &Pipeline::new(),
        dir.path(),
        &connection,
        &Prefix::new("/app/").unwrap(),
        None,
    )
    .unwrap_err();
    assert!(matches!(error, PublishError::Invalid { .. }), "{error}");
}

#[test]
fn the_policy_is_applied_against_what_the_prefix_holds() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put(
        "/app/a.toml",
        "[server]\nlisten = \":80\"\n[tenants.a]\nid = 1\n",
    );
    let pipeline = Pipeline::new().policy(
        hotconf::Policy::new()
            .restart_required("server.listen".parse().unwrap())
            .deny("tenants.*.id".parse().unwrap()),
    );
    let connection = Connection::new([etcd.endpoint()]);
    let prefix = Prefix::new("/app/").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let before = etcd.revision();
    // Every instance would reject a denied change: refused, located in the file.
    write(
        dir.path(),
        &[(
            "a.toml",
            "[server]\nlisten = \":80\"\n[tenants.a]\nid = 2\n",
        )],
    );
    let error =
        publish_blocking::<serde_json::Value>(&pipeline, dir.path(), &connection, &prefix, None)
            .unwrap_err();
    let PublishError::Invalid { problems, .. } = &error else {
        panic!("not invalid: {error}");
    };
    let problem = problems.errors().next().unwrap();
    assert_eq!(
        problem.path.as_ref().unwrap().to_string(),
        "tenants.a.id",
        "{problem}"
    );
    assert!(
        problem.file.as_deref().unwrap().ends_with("a.toml"),
        "{problem}"
    );
    assert_eq!(problem.line, Some(4), "{problem}");
    assert_eq!(etcd.revision(), before);
    // A restart-required change is published and named.
    write(
        dir.path(),
        &[(
            "a.toml",
            "[server]\nlisten = \":81\"\n[tenants.a]\nid = 1\n",
        )],
    );
    let done =
        publish_blocking::<serde_json::Value>(&pipeline, dir.path(), &connection, &prefix, None)
            .unwrap();
    assert_eq!(done.pending, ["server.listen"]);
    assert_eq!(done.revision, before + 1);
    // What is there now does not load: nothing to compare, the push fixes it.
    etcd.put("/app/a.toml", "broken = ");
    write(
        dir.path(),
        &[(
            "a.toml",
            "[server]\nlisten = \":82\"\n[tenants.a]\nid = 3\n",
        )],
    );
    let done =
        publish_blocking::<serde_json::Value>(&pipeline, dir.path(), &connection, &prefix, None)
            .unwrap();
    assert!(done.written && done.pending.is_empty());
}
