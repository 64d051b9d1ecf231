//! `--write-to`'s writer with a real reloader over a real etcd prefix: the applied
//! documents as files, written before the event goes out, stale ones removed, escapes
//! refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/etcd.rs"]
mod etcd;
#[path = "fleet/prefix_source.rs"]
mod prefix_source;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use etcd::Etcd;
use hotconf::{Outcome, Reloader};
use hotconf_etcd::{Prefix, Tracker, WriteTo};
use prefix_source::PrefixSource;

fn files(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                found.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    found.sort();
    found
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn health(reloader: &Reloader<serde_json::Value>) -> hotconf::ObserverHealth {
    reloader
        .status()
        .observers
        .into_iter()
        .find(|o| o.name == "write_to")
        .unwrap()
}

#[test]
fn applied_documents_are_files_before_the_event_goes_out() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "rpm = 60\n");
    etcd.put("/app/routes/b.yaml", "routes: []\n");
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("config");
    let source = PrefixSource::new(&etcd.endpoint(), "/app/");
    let writer = WriteTo::new(&dir, source.tracker()).unwrap();
    // An observer registered after the writer sees each event after the files are written
    // (and the event stream, which `--on-apply` reads, comes after every observer).
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let read_dir = dir.clone();
    let reloader = Reloader::<serde_json::Value>::builder()
        .source(source)
        .observer(writer)
        .observer(move |event: &hotconf::Event| {
            if event.outcome != Outcome::Detected {
                record
                    .lock()
                    .unwrap()
                    .push((event.outcome, files(&read_dir)));
            }
        })
        .build()
        .unwrap();
    assert_eq!(seen.lock().unwrap()[0].0, Outcome::Loaded);
    assert_eq!(
        seen.lock().unwrap()[0].1,
        pairs(&[("a.toml", "rpm = 60\n"), ("routes/b.yaml", "routes: []\n")])
    );
    assert_eq!(
        files(&dir),
        pairs(&[("a.toml", "rpm = 60\n"), ("routes/b.yaml", "routes: []\n")])
    );
    let mode = std::fs::metadata(dir.join("a.toml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    std::fs::write(dir.join("mine.txt"), "not written by hotconf").unwrap();

    // A change, a deletion and a new key in one reload.
    // (The instance reads only when asked: three writes, one reload.)
    etcd.put("/app/a.toml", "rpm = 120");
    etcd.del("/app/routes/b.yaml");
    etcd.put("/app/c.json", "{}");
    reloader.reload().unwrap();
    let (outcome, then) = seen.lock().unwrap()[1].clone();
    assert_eq!(outcome, Outcome::Applied);
    let expected = pairs(&[
        ("a.toml", "rpm = 120"),
        ("c.json", "{}"),
        ("mine.txt", "not written by hotconf"),
    ]);
    assert_eq!(then, expected);
    assert_eq!(files(&dir), expected);
    assert!(health(&reloader).ok);

    // A rejected config writes nothing.
    etcd.put("/app/a.toml", "rpm = ");
    assert!(reloader.reload().is_err());
    assert_eq!(seen.lock().unwrap()[2].0, Outcome::Rejected);
    assert_eq!(
        std::fs::read_to_string(dir.join("a.toml")).unwrap(),
        "rpm = 120"
    );
    assert!(health(&reloader).ok);
}

#[test]
fn a_key_that_would_leave_the_directory_is_refused() {
    if !etcd::available() {
        return;
    }
    let etcd = Etcd::start();
    etcd.put("/app/a.toml", "rpm = 60\n");
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("config");
    let source = PrefixSource::new(&etcd.endpoint(), "/app/");
    let writer = WriteTo::new(&dir, source.tracker()).unwrap();
    let reloader = Reloader::<serde_json::Value>::builder()
        .source(source)
        .observer(writer)
        .build()
        .unwrap();
    etcd.put("/app/../escape.toml", "x = 1\n");
    reloader.reload().unwrap();
    let health = health(&reloader);
    assert!(!health.ok);
    let error = health.error.unwrap();
    assert!(error.contains("/app/../escape.toml"), "{error}");
    assert!(!out.path().join("escape.toml").exists());
    // Nothing of that set was written: the old files stay as they were.
    assert_eq!(files(&dir), pairs(&[("a.toml", "rpm = 60\n")]));
}

#[test]
fn the_writer_keeps_identical_files_and_removes_only_its_own() {
    let out = tempfile::tempdir().unwrap();
    let tracker = Tracker::new(Prefix::new("/p/").unwrap());
    let writer = WriteTo::new(out.path(), tracker.clone()).unwrap();
    let doc = |k: &str, v: &str| (k.to_owned(), Arc::<[u8]>::from(v.as_bytes()));
    let first = tracker.record(
        1,
        vec![doc("/p/a.toml", "a = 1"), doc("/p/b.toml", "b = 1")],
    );
    let done = writer.write(&first).unwrap();
    assert_eq!(done.written.len(), 2);
    std::fs::write(out.path().join("c.toml"), "someone else's").unwrap();
    let second = tracker.record(2, vec![doc("/p/a.toml", "a = 1")]);
    let done = writer.write(&second).unwrap();
    assert!(done.written.is_empty());
    assert_eq!(done.kept, [Path::new("a.toml")]);
    assert_eq!(done.removed, [Path::new("b.toml")]);
    assert_eq!(
        files(out.path()),
        pairs(&[("a.toml", "a = 1"), ("c.toml", "someone else's")])
    );
    // No temp file is left behind.
    let names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains("hotconf-tmp")),
        "{names:?}"
    );
    // A hash the tracker does not know is an error, and writes nothing.
    assert!(writer.write("0000000000000000").is_err());
    // Keys outside the prefix are refused.
    assert!(writer.write_documents(&[doc("/q/a.toml", "x")]).is_err());
}

#[test]
fn a_path_that_is_a_file_is_refused() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("file");
    std::fs::write(&file, "").unwrap();
    let tracker = Tracker::new(Prefix::new("/p/").unwrap());
    assert!(matches!(
        WriteTo::new(&file, tracker),
        Err(hotconf_etcd::Error::Io { .. })
    ));
}
