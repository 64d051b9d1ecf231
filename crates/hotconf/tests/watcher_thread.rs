//! `unwatch()` returns only once the watcher's thread has ended: alone in its test binary,
//! so that no other test's watcher is counted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use hotconf::Reloader;

/// How many threads of this process have `name`.
fn threads_named(name: &str) -> usize {
    fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == name)
        .count()
}

/// Waits until a thread named `name` runs: a thread names itself once it starts.
fn wait_for_thread(name: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while threads_named(name) != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "no thread named {name}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Waits until no thread named `name` is listed. A joined thread has finished, but the
/// kernel wakes the joiner a moment before it takes the thread out of `/proc/self/task`, so
/// the count is read with a short deadline rather than at once.
fn wait_for_no_thread(name: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while threads_named(name) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a thread named {name} still runs"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn unwatch_joins_the_watcher_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "n = 1\n").unwrap();
    let reloader = Reloader::<serde_json::Value>::builder()
        .file(&path)
        .build()
        .unwrap();
    assert_eq!(threads_named("hotconf-watch"), 0);
    reloader.watch().unwrap();
    wait_for_thread("hotconf-watch");
    reloader.unwatch();
    wait_for_no_thread("hotconf-watch");
    // Shutdown joins the worker the same way.
    wait_for_thread("hotconf-reload");
    reloader.shutdown();
    wait_for_no_thread("hotconf-reload");
}
