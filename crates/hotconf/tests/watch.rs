//! The file watcher with a real reloader on real files in temp dirs: directories gaining and
//! losing files, files and directories deleted and recreated, paths that appear later,
//! half-written files, invalid saves, slow reloads, and the reloader's own `save()`.
//!
//! Every wait is for an expected event, with a deadline. "Nothing else happened" is shown
//! with a marker: a later save or explicit reload whose event must be the very next one.
//! "A no-op starts no reload" is shown by waiting well past the quiet window with no event
//! at all, then making a real change in a window of its own, whose event must be the next.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use hotconf::source::{Dir, File, Format};
use hotconf::{Event, Outcome, Reloader, Trigger};
use serde_json::{Value, json};

const DEBOUNCE: Duration = Duration::from_millis(30);
const DEADLINE: Duration = Duration::from_secs(10);
/// Long enough for any quiet window opened before it to have closed and its reload to
/// have been reported: "nothing happened" is checked over this period.
const QUIET: Duration = Duration::from_millis(300);

/// Every event of the reloader from now on, through an observer (lossless, in order), on a
/// channel that waits with a deadline.
struct Events(mpsc::Receiver<Event>);

impl Events {
    fn new(reloader: &Reloader<Value>) -> Self {
        let (sender, receiver) = mpsc::channel();
        let sender = Mutex::new(sender);
        reloader.observe(move |event: &Event| {
            let _ = sender.lock().unwrap().send(event.clone());
        });
        Self(receiver)
    }

    /// The next event, `detected` included, which must arrive before the deadline.
    fn next_any(&self) -> Event {
        self.0
            .recv_timeout(DEADLINE)
            .expect("an event before the deadline")
    }

    /// The next attempt's event, which must arrive before the deadline; the `detected`
    /// event that announces it must name a changed file.
    fn next(&self) -> Event {
        loop {
            let event = self.next_any();
            if event.outcome != Outcome::Detected {
                return event;
            }
            assert!(!event.changed.is_empty(), "{}", event.to_json());
        }
    }

    /// The next event, which must be `outcome`.
    fn expect(&self, outcome: Outcome) -> Event {
        let event = self.next();
        assert_eq!(event.outcome, outcome, "{}", event.to_json());
        assert_eq!(event.trigger, Trigger::Watch, "{}", event.to_json());
        event
    }

    /// Asserts that no event at all, `detected` included, arrives for [`QUIET`].
    fn none_for_a_while(&self) {
        match self.0.recv_timeout(QUIET) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(event) => panic!("no event expected, got {}", event.to_json()),
            Err(RecvTimeoutError::Disconnected) => panic!("the reloader is gone"),
        }
    }

    /// The marker that ends a test: an explicit reload of unchanged files, whose
    /// `unchanged` event must be the very next one (no `detected`, nothing from the
    /// watcher before it).
    fn marker(&self, reloader: &Reloader<Value>, version: u64) {
        let answer = reloader.reload().unwrap();
        let event = self.next_any();
        assert_eq!(
            (event.outcome, event.trigger, event.version, event.seq),
            (Outcome::Unchanged, Trigger::Reload, version, answer.seq),
            "{}",
            event.to_json()
        );
    }
}

/// The documents an event says changed, as JSON.
fn changed(event: &Event) -> Value {
    serde_json::to_value(&event.changed).unwrap()
}

fn builder() -> hotconf::ReloaderBuilder<Value> {
    Reloader::<Value>::builder().debounce(DEBOUNCE)
}

/// Writes in place, the way most programs do.
fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
}

#[test]
fn a_directory_source_picks_up_new_files_and_drops_deleted_ones() {
    let root = tempfile::tempdir().unwrap();
    let conf = root.path().join("conf.d");
    fs::create_dir(&conf).unwrap();
    write(&conf.join("10-base.yaml"), "base: 1\n");
    let reloader = builder()
        .source(Dir::new(&conf).glob("*.yaml"))
        .build()
        .unwrap();
    let events = Events::new(&reloader);
    reloader.watch().unwrap();

    let extra = conf.join("20-extra.yaml");
    write(&extra, "extra: 2\n");
    let event = events.expect(Outcome::Applied);
    assert_eq!(event.files.len(), 2, "{}", event.to_json());
    assert_eq!(
        changed(&event),
        json!([{"file": extra.to_str().unwrap(), "kind": "created"}])
    );
    assert_eq!(*reloader.current().config(), json!({"base": 1, "extra": 2}));

    // Litter and files the glob does not select start no reload at all, not even an
    // Office-style lock file whose name the glob matches...
    write(&conf.join(".20-extra.yaml.swp"), "x");
    write(&conf.join("20-extra.yaml~"), "x");
    write(&conf.join("~20-extra.yaml"), "x");
    write(&conf.join("4913"), "");
    write(&conf.join("notes.txt"), "x");
    events.none_for_a_while();
    // ...and are not read by the next one: this deletion's.
    fs::remove_file(&extra).unwrap();
    let event = events.expect(Outcome::Applied);
    assert_eq!(
        changed(&event),
        json!([{"file": extra.to_str().unwrap(), "kind": "removed"}])
    );
    assert_eq!(*reloader.current().config(), json!({"base": 1}));
    assert_eq!(reloader.current().version(), 3);
    events.marker(&reloader, 3);
}

#[test]
fn a_file_deleted_and_recreated_stays_watched() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("app.toml");
    write(&path, "n = 0\n");
    let reloader = builder().file(&path).build().unwrap();
    let events = Events::new(&reloader);
    reloader.watch().unwrap();

    for n in 1..=3 {
        // Deleted and recreated at once: one save.
        fs::remove_file(&path).unwrap();
        write(&path, &format!("n = {n}\n"));
        events.expect(Outcome::Applied);
        assert_eq!(reloader.current().config()["n"], n);
    }
    // Deleted and left deleted: rejected once, old config kept; recreated: applied.
    fs::remove_file(&path).unwrap();
    let event = events.expect(Outcome::Rejected);
    assert!(
        event.errors[0].message.contains("no such file"),
        "{}",
        event.to_json()
    );
    assert_eq!(reloader.current().config()["n"], 3);
    write(&path, "n = 4\n");
    events.expect(Outcome::Applied);
    assert_eq!(reloader.current().config()["n"], 4);
}

#[test]
fn a_watched_directory_deleted_and_recreated_stays_watched() {
    let root = tempfile::tempdir().unwrap();
    let conf = root.path().join("conf");
    fs::create_dir(&conf).unwrap();
    write(&conf.join("app.toml"), "n = 0\n");
    let reloader = builder().file(conf.join("app.toml")).build().unwrap();
    let events = Events::new(&reloader);
    reloader.watch().unwrap();

    for n in 1..=3 {
        fs::remove_dir_all(&conf).unwrap();
        events.expect(Outcome::Rejected);
        fs::create_dir(&conf).unwrap();
        write(&conf.join("app.toml"), &format!("n = {n}\n"));
        events.expect(Outcome::Applied);
        assert_eq!(reloader.current().config()["n"], n);
    }
    // Deleted and recreated at once, in one quiet window: the new directory (which ext4
    // often gives the same inode number) is watched, as the save after it shows.
    fs::remove_dir_all(&conf).unwrap();
    fs::create_dir(&conf).unwrap();
    write(&conf.join("app.toml"), "n = 4\n");
    events.expect(Outcome::Applied);
    write(&conf.join("app.toml"), "n = 5\n");
    events.expect(Outcome::Applied);
    assert_eq!(reloader.current().config()["n"], 5);
    // Renamed away and replaced by a new directory: the watch follows the name.
    fs::rename(&conf, root.path().join("conf.old")).unwrap();
    fs::create_dir(&conf).unwrap();
    write(&conf.join("app.toml"), "n = 10\n");
    events.expect(Outcome::Applied);
    assert_eq!(reloader.current().config()["n"], 10);
    write(&conf.join("app.toml"), "n = 11\n");
    events.expect(Outcome::Applied);
    assert_eq!(reloader.current().config()["n"], 11);
}

#[test]
fn a_path_that_does_not_exist_yet_is_waited_for() {
    let root = tempfile::tempdir().unwrap();
    let nested = root.path().join("a/b");
    let path = nested.join("local.toml");
    let reloader = builder()
        .defaults(Format::Toml, "n = 0\n")
        .source(File::new(&path).optional(true))
        .build()
        .unwrap();
    let events = Events::new(&reloader);
    reloader.watch().unwrap();

    fs::create_dir_all(&nested).unwrap();
    write(&path, "n = 1\n");
    events.expect(Outcome::Applied);
    assert_eq!(reloader.current().config()["n"], 1);

    // Gone with its directories: the optional file contributes nothing again.
    fs::remove_dir_all(root.path().join("a")).unwrap();
    events.expect(Outcome::Applied);
    assert_eq!(reloader.current().config()["n"], 0);
    fs::create_dir_all(&nested).unwrap();
    write(&path, "n = 2\n");
    events.expect(Outcome::Applied);
    assert_eq!(reloader.current().config()["n"], 2);
}

#[test]
fn a_directory_source_removed_and_created_again_is_picked_up() {
    let root = tempfile::tempdir().unwrap();
    let conf = root.path().join("conf.d");
    write(&root.path().join("app.toml"), "n = 1\n");
    fs::create_dir(&conf).unwrap();
    let reloader = builder()
        .file(root.path().join("app.toml"))
        .source(Dir::new(&conf).allow_no_files(true))
        .build()
        .unwrap();
    let events = Events::new(&reloader);
    reloader.watch().unwrap();

    // A directory source is required: while it is gone, reloads are rejected.
    fs::remove_dir(&conf).unwrap();
    events.expect(Outcome::Rejected);
    fs::create_dir(&conf).unwrap();
    write(&conf.join("extra.json"), r#"{"extra": true}"#);
    events.expect(Outcome::Applied);
    assert_eq!(*reloader.current().config(), json!({"n": 1, "extra": true}));
}

#[test]
fn files_saved_together_give_one_reload() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a.toml"), root.path().join("b.yaml"));
    write(&a, "a = 0\n");
    write(&b, "b: 0\n");
    let reloader = builder().file(&a).file(&b).build().unwrap();
    let events = Events::new(&reloader);
    reloader.watch().unwrap();
    for n in 1..=5 {
        write(&a, &format!("a = {n}\n"));
        write(&b, &format!("b: {n}\n"));
        let event = events.expect(Outcome::Applied);
        assert_eq!(event.changes.len(), 2, "{}", event.to_json());
        assert_eq!(*reloader.current().config(), json!({"a": n, "b": n}));
        assert_eq!(reloader.current().version(), n + 1);
    }
}

#[test]
fn an_invalid_save_is_rejected_once_and_the_next_valid_one_applies() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("app.toml");
    write(&path, "[limits]\nrpm = 60\n");
    let reloader = builder().file(&path).build().unwrap();
    let events = Events::new(&reloader);
    reloader.watch().unwrap();

    write(&path, "[limits]\nrpm = = 120\n");
    let event = events.expect(Outcome::Rejected);
    let error = &event.errors[0];
    assert_eq!(error.file.as_deref(), Some(path.to_str().unwrap()));
    assert_eq!(error.line, Some(2), "{}", event.to_json());
    assert!(error.column.is_some(), "{}", event.to_json());
    assert_eq!(reloader.current().version(), 1);

    // The same bytes again (a touch, a rewrite) are not reported again: no event at all,
    // however long we wait...
    fs::File::options()
        .append(true)
        .open(&path)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    write(&path, "[limits]\nrpm = = 120\n");
    events.none_for_a_while();
    // ...while a real change, in a window of its own, is.
    write(&path, "[limits]\nrpm = 120\n");
    let event = events.expect(Outcome::Applied);
    assert_eq!(
        changed(&event),
        json!([{"file": path.to_str().unwrap(), "kind": "modified"}])
    );
    assert_eq!(event.version, 2);
    assert_eq!(reloader.current().config()["limits"]["rpm"], 120);
    events.marker(&reloader, 2);
}

#[test]
fn a_file_still_being_written_is_not_rejected_while_it_grows() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("app.json");
    write(&path, r#"{"items": []}"#);
    // 100 ms of quiet closes a window; a window still busy closes after 1 s.
    let reloader = Reloader::<Value>::builder()
        .debounce(Duration::from_millis(100))
        .file(&path)
        .build()
        .unwrap();
    let events = Events::new(&reloader);
    reloader.watch().unwrap();

    // A slow writer: the JSON is invalid until the last write, about 1.5 s after the
    // first, so windows close while it is still writing.
    let mut file = fs::File::create(&path).unwrap();
    file.write_all(br#"{"items": ["#).unwrap();
    for i in 0..300 {
        if i > 0 {
            file.write_all(b",").unwrap();
        }
        write!(file, "{i}").unwrap();
        thread::sleep(Duration::from_millis(5));
    }
    file.write_all(b"]}").unwrap();
    drop(file);

    let event = events.next();
    assert_eq!(event.outcome, Outcome::Applied, "{}", event.to_json());
    assert_eq!(
        reloader.current().config()["items"]
            .as_array()
            .unwrap()
            .len(),
        300
    );
}

#[test]
fn saves_during_a_slow_reload_make_the_next_reload() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("app.toml");
    write(&path, "n = 0\n");
    let reloader = builder().file(&path).build().unwrap();
    // The first applied reload blocks in its callback until the test lets it go.
    let (entered, in_callback) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    reloader.on_change(move |update| {
        if update.new.version() == 2 {
            entered.send(()).unwrap();
            released.lock().unwrap().recv().unwrap();
        }
    });
    let events = Events::new(&reloader);
    reloader.watch().unwrap();

    write(&path, "n = 1\n");
    in_callback.recv_timeout(DEADLINE).unwrap();
    // Two saves while the reload of the first one is still running.
    write(&path, "n = 2\n");
    write(&path, "n = 3\n");
    release.send(()).unwrap();

    let first = events.expect(Outcome::Applied);
    assert_eq!(first.version, 2);
    let second = events.expect(Outcome::Applied);
    assert_eq!(second.version, 3, "the two saves made one reload");
    assert_eq!(reloader.current().config()["n"], 3);
    write(&path, "n = 4\n");
    assert_eq!(events.expect(Outcome::Applied).version, 4);
}

#[test]
fn the_reloaders_own_save_is_not_a_new_change() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("app.toml");
    write(&path, "# tuned by hand\nn = 1\n");
    let reloader = builder().file(&path).build().unwrap();
    let events = Events::new(&reloader);
    reloader.watch().unwrap();

    let applied = reloader.update(|config| config["n"] = json!(2)).unwrap();
    assert_eq!(applied.trigger, Trigger::Apply);
    assert_eq!(events.next().trigger, Trigger::Apply);
    reloader.save().unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "# tuned by hand\nn = 2\n"
    );

    // The file's bytes changed, so the watcher reloads it once, and finds the config it
    // already runs: `unchanged`, no new version...
    let event = events.expect(Outcome::Unchanged);
    assert_eq!(event.version, 2, "{}", event.to_json());
    assert_eq!(
        changed(&event),
        json!([{"file": path.to_str().unwrap(), "kind": "modified"}])
    );
    // ...and nothing more, however long we wait.
    events.none_for_a_while();
    write(&path, "n = 3\n");
    let event = events.expect(Outcome::Applied);
    assert_eq!(event.version, 3, "save() caused no reload of its own");
    assert_eq!(reloader.current().config()["n"], 3);
    events.marker(&reloader, 3);
}

#[test]
fn unwatch_stops_picking_up_saves() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("app.toml");
    write(&path, "n = 1\n");
    let reloader = builder().file(&path).build().unwrap();
    let events = Events::new(&reloader);
    reloader.watch().unwrap();
    assert!(reloader.status().watching);
    // The positive control: while watching, this kind of save is picked up.
    write(&path, "n = 2\n");
    assert_eq!(events.expect(Outcome::Applied).version, 2);

    reloader.unwatch();
    assert!(!reloader.status().watching);
    write(&path, "n = 3\n");
    // A watcher still running would have reported the save by now.
    events.none_for_a_while();
    assert_eq!(reloader.current().version(), 2);
    // The marker: the explicit reload's events are the very next ones.
    let answer = reloader.reload().unwrap();
    let detected = events.next_any();
    assert_eq!(
        (detected.outcome, detected.trigger),
        (Outcome::Detected, Trigger::Reload),
        "{}",
        detected.to_json()
    );
    let event = events.next_any();
    assert_eq!(
        (event.outcome, event.trigger, event.version, event.seq),
        (Outcome::Applied, Trigger::Reload, 3, answer.seq),
        "{}",
        event.to_json()
    );
    assert!(!reloader.status().watching);
}
