//! The driver with a real reloader: the polling fallback, polling, stopping.

use super::*;
use crate::Reloader;
use crate::event::{Event, Outcome};
use crate::testing::wait_until;

type Json = serde_json::Value;

/// The reloader's events on a channel that can wait with a deadline.
fn events(reloader: &Reloader<Json>) -> mpsc::Receiver<Event> {
    let mut events = reloader.events();
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        while let Ok(event) = events.blocking_recv() {
            if event.outcome != Outcome::Detected && sender.send(event).is_err() {
                break;
            }
        }
    });
    receiver
}

fn next(events: &mpsc::Receiver<Event>) -> Event {
    events
        .recv_timeout(Duration::from_secs(10))
        .expect("an event within 10 s")
}

fn reloader(path: &std::path::Path) -> Reloader<Json> {
    Reloader::<Json>::builder()
        .file(path)
        .debounce(Duration::from_millis(20))
        .build()
        .unwrap()
}

#[test]
fn a_native_failure_falls_back_to_polling_and_keeps_watching() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "n = 1\n").unwrap();
    let reloader = reloader(&path);
    let events = events(&reloader);
    reloader.watch().unwrap();
    let polling = || reloader.status().polling;
    assert!(!polling(), "native watching on this platform");

    // What inotify reports when the user's watch limit is reached.
    let limit = notify::Error::new(notify::ErrorKind::MaxFilesWatch);
    crate::engine::lock(reloader.watching())
        .as_ref()
        .unwrap()
        .sender()
        .send(Msg::Fs(Err(limit)))
        .unwrap();
    wait_until("the watcher polls", polling);

    // The native watches are gone: only polling can see these (the first might also
    // be caught by the re-read that follows the fallback; the second cannot).
    for n in [2, 3] {
        fs::write(&path, format!("n = {n}\n")).unwrap();
        let event = next(&events);
        assert_eq!(event.outcome, Outcome::Applied, "{event:?}");
        assert_eq!(reloader.current().config()["n"], n);
    }
    assert!(reloader.status().watching);
}

#[test]
fn watching_by_polling_sees_every_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "n = 0\n").unwrap();
    let reloader = reloader(&path);
    let events = events(&reloader);
    reloader.watch_polling(Duration::from_millis(20)).unwrap();
    assert!(reloader.status().polling);
    // Same length, same second: only the contents tell these saves apart.
    for n in 1..=3 {
        fs::write(&path, format!("n = {n}\n")).unwrap();
        let event = next(&events);
        assert_eq!(event.outcome, Outcome::Applied, "{event:?}");
        assert_eq!(reloader.current().config()["n"], n);
    }
    assert!(matches!(
        reloader.watch_polling(Duration::from_millis(1)),
        Err(Error::InvalidOption { .. })
    ));
}

#[test]
fn the_watcher_does_not_keep_the_reloader_alive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "n = 1\n").unwrap();
    let reloader = reloader(&path);
    reloader.watch().unwrap();
    reloader.watch().unwrap(); // idempotent
    let trigger = reloader.trigger_handle();
    assert!(trigger.request(Trigger::Reload));
    // Dropping joins the driver and the worker: a leak or a deadlock hangs here.
    drop(reloader);
    assert!(!trigger.request(Trigger::Reload), "the worker is gone");
}

#[test]
fn unwatch_from_a_callback_on_the_watch_thread_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "n = 1\n").unwrap();
    let reloader = reloader(&path);
    let watching = reloader.clone();
    let (done, stopped) = mpsc::channel();
    reloader.on_change(move |_| {
        watching.unwatch();
        let _ = done.send(());
    });
    let events = events(&reloader);
    reloader.watch().unwrap();
    fs::write(&path, "n = 2\n").unwrap();
    assert_eq!(next(&events).outcome, Outcome::Applied);
    stopped.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!reloader.status().watching);
    reloader.watch().unwrap();
    assert!(reloader.status().watching);
}

#[test]
fn a_lost_event_queue_makes_a_dir_read_every_file_again() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.toml", "b.toml", "c.toml"] {
        fs::write(dir.path().join(name), "n = 1\n").unwrap();
    }
    // Old enough for the directory to trust the stamps (see `source::dir::cache`).
    thread::sleep(Duration::from_millis(1_100));
    let source = crate::source::Dir::new(dir.path()).sections(true);
    let reloader = Reloader::<Json>::builder()
        .source(source.clone())
        .debounce(Duration::from_millis(20))
        .build()
        .unwrap();
    reloader.reload().unwrap();
    assert_eq!(source.files_read(), 3, "unchanged files are not read again");
    reloader.watch().unwrap();

    // What notify reports when the kernel's event queue overflowed.
    let overflow =
        notify::Event::new(notify::EventKind::Other).set_flag(notify::event::Flag::Rescan);
    crate::engine::lock(reloader.watching())
        .as_ref()
        .unwrap()
        .sender()
        .send(Msg::Fs(Ok(overflow)))
        .unwrap();
    wait_until("every file is read again", || source.files_read() == 6);
}
