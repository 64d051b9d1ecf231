//! Incremental directory reads with a real reloader on real files in temp dirs: a reload
//! reads only the files that may have changed, and still sees every change: a file written
//! with its `mtime` set back, files added and deleted, a full reload and a signal.
//!
//! A directory trusts a file's stamp only once its times lie a second before the read (a
//! write within the same tick of the filesystem clock could leave it unchanged). So each
//! test that shows a file being skipped first waits, with a deadline, until the files it
//! wrote are that old.

#![cfg(all(feature = "toml", feature = "watch"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotconf::source::Dir;
use hotconf::{Event, Outcome, Reloader, Trigger};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(10);

/// How old a file's times must be before a directory trusts its stamp, with a margin.
const SETTLED: Duration = Duration::from_millis(1_100);

/// Waits until every file in `dir` was last changed [`SETTLED`] ago.
fn wait_until_settled(dir: &Path) {
    let newest = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let metadata = entry.unwrap().metadata().unwrap();
            let ctime = Duration::new(
                u64::try_from(metadata.ctime()).unwrap(),
                u32::try_from(metadata.ctime_nsec()).unwrap(),
            );
            let mtime = metadata
                .modified()
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap();
            ctime.max(mtime)
        })
        .max()
        .unwrap_or_default();
    let deadline = Instant::now() + DEADLINE;
    while SystemTime::now().duration_since(UNIX_EPOCH).unwrap() < newest + SETTLED {
        assert!(
            Instant::now() < deadline,
            "the files' times are in the future"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A directory of `count` files `s<i>.toml`, each `n = <i>`, settled.
fn settled_dir(count: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..count {
        fs::write(dir.path().join(format!("s{i}.toml")), format!("n = {i}\n")).unwrap();
    }
    wait_until_settled(dir.path());
    dir
}

fn reloader(source: &Dir) -> Reloader<Value> {
    Reloader::<Value>::builder()
        .source(source.clone())
        .build()
        .unwrap()
}

fn sections(dir: &Path) -> Dir {
    Dir::new(dir).sections(true)
}

#[test]
fn dir_reload_reads_only_the_files_that_changed() {
    let dir = settled_dir(5);
    let source = sections(dir.path());
    let reloader = reloader(&source);
    assert_eq!(source.files_read(), 5, "the first load reads every file");

    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Unchanged, "{}", event.to_json());
    assert_eq!(source.files_read(), 5, "no file changed: none is read");

    fs::write(dir.path().join("s3.toml"), "n = 30\n").unwrap();
    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Applied, "{}", event.to_json());
    assert_eq!(source.files_read(), 6, "only the changed file is read");
    assert_eq!(reloader.current().config()["s3"], json!({"n": 30}));
    assert_eq!(reloader.current().config()["s4"], json!({"n": 4}));
}

#[test]
fn dir_sees_a_change_whose_mtime_was_set_back() {
    let dir = settled_dir(3);
    let path = dir.path().join("s1.toml");
    let before = fs::metadata(&path).unwrap();
    let source = sections(dir.path());
    let reloader = reloader(&source);

    // Same size, same inode, the old mtime restored (what `cp -p` or `rsync -t` leave):
    // only the ctime says the file changed.
    fs::write(&path, "n = 7\n").unwrap();
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(before.modified().unwrap()).unwrap();
    drop(file);
    let after = fs::metadata(&path).unwrap();
    assert_eq!(
        (after.ino(), after.len(), after.mtime(), after.mtime_nsec()),
        (
            before.ino(),
            before.len(),
            before.mtime(),
            before.mtime_nsec()
        )
    );
    // Past the settle time, so that the file is not read only for being recent.
    wait_until_settled(dir.path());

    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Applied, "{}", event.to_json());
    assert_eq!(reloader.current().config()["s1"], json!({"n": 7}));
    assert_eq!(source.files_read(), 4, "the one changed file is read");
}

#[test]
fn dir_sees_added_and_deleted_files() {
    let dir = settled_dir(3);
    let source = sections(dir.path());
    let reloader = reloader(&source);

    fs::write(dir.path().join("s9.toml"), "n = 9\n").unwrap();
    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Applied, "{}", event.to_json());
    assert_eq!(reloader.current().config()["s9"], json!({"n": 9}));
    assert_eq!(source.files_read(), 4, "only the new file is read");

    fs::remove_file(dir.path().join("s0.toml")).unwrap();
    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Applied, "{}", event.to_json());
    let config = reloader.current().config().clone();
    assert_eq!(config.get("s0"), None, "{config}");
    assert_eq!(config["s2"], json!({"n": 2}));
}

#[test]
fn dir_full_reload_and_a_signal_read_every_file() {
    let dir = settled_dir(4);
    let source = sections(dir.path());
    let reloader = reloader(&source);
    reloader.reload().unwrap();
    assert_eq!(source.files_read(), 4);

    let event = reloader.reload_full().unwrap();
    assert_eq!(event.outcome, Outcome::Unchanged, "{}", event.to_json());
    assert_eq!(source.files_read(), 8, "a full reload reads every file");

    let event = reloader.reload_with(Trigger::Signal).unwrap();
    assert_eq!(event.trigger, Trigger::Signal);
    assert_eq!(source.files_read(), 12, "a signal reads every file");

    reloader.reload().unwrap();
    assert_eq!(
        source.files_read(),
        12,
        "the next plain reload skips them again"
    );
}

#[test]
fn dir_watcher_reads_only_the_file_a_save_names() {
    let dir = settled_dir(6);
    let source = sections(dir.path());
    let reloader = Reloader::<Value>::builder()
        .source(source.clone())
        .debounce(Duration::from_millis(30))
        .build()
        .unwrap();
    let (sender, events) = mpsc::channel();
    let sender = Mutex::new(sender);
    reloader.observe(move |event: &Event| {
        if event.outcome != Outcome::Detected {
            let _ = sender.lock().unwrap().send(event.clone());
        }
    });
    reloader.watch().unwrap();

    // An editor's save: write a temporary file, rename it over the config file.
    let temp = dir.path().join(".s2.toml.tmp");
    fs::write(&temp, "n = 20\n").unwrap();
    fs::rename(&temp, dir.path().join("s2.toml")).unwrap();
    let event = events.recv_timeout(DEADLINE).unwrap();
    assert_eq!(event.outcome, Outcome::Applied, "{}", event.to_json());
    assert_eq!(reloader.current().config()["s2"], json!({"n": 20}));
    assert_eq!(source.files_read(), 7, "the saved file alone is read");
    assert!(
        events.recv_timeout(Duration::from_millis(300)).is_err(),
        "one save, one reload"
    );
}
