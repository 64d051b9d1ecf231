//! The reloader's own settings in the watched config (seeds 002 and 003): the `[hot_reload]`
//! table, taken out before the typed config sees it, checked, and hot-reloaded itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hotconf::{Error, Event, Outcome, Reloader, ReloaderBuilder, SettingSource, Validate};
use serde::{Deserialize, Serialize};

const DEADLINE: Duration = Duration::from_secs(10);

/// A config that refuses any key it does not know.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Strict {
    rpm: u32,
    #[serde(default)]
    size: u32,
}

impl Validate for Strict {}

/// Every log line of the process: the worker logs on its own thread, so the subscriber is
/// global, installed once and shared by the tests of this file.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        captured
    })
}

/// How many log lines hold every one of `needles`.
fn lines_with(needles: &[&str]) -> usize {
    let text = String::from_utf8_lossy(&logs().0.lock().unwrap()).into_owned();
    text.lines()
        .filter(|line| needles.iter().all(|n| line.contains(n)))
        .count()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, text).unwrap();
        path
    }
}

fn observed(builder: ReloaderBuilder<Strict>) -> (Reloader<Strict>, Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let reloader = builder
        .observer(move |event: &Event| {
            let _ = tx.lock().unwrap().send(event.clone());
        })
        .build()
        .unwrap();
    (reloader, rx)
}

/// The next attempt's event (`detected` announcements skipped).
fn next(events: &Receiver<Event>) -> Event {
    loop {
        let event = events.recv_timeout(DEADLINE).expect("an event within 10 s");
        if event.outcome != Outcome::Detected {
            return event;
        }
    }
}

fn drain(events: &Receiver<Event>) -> Vec<Outcome> {
    events.try_iter().map(|e| e.outcome).collect()
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn the_table_is_taken_out_so_a_strict_config_loads_and_never_sees_it() {
    let files = Files::new();
    let toml = files.write(
        "app.toml",
        "rpm = 60\n\n[hot_reload]\nenabled = true\ndebounce_ms = 500\n",
    );
    let reloader = Reloader::<Strict>::builder().file(&toml).build().unwrap();
    assert_eq!(reloader.current().config().rpm, 60);
    let settings = reloader.status().settings;
    assert_eq!(settings.debounce_ms.value, 500);
    assert_eq!(settings.debounce_ms.from, SettingSource::File);
    assert_eq!(settings.enabled.from, SettingSource::File);
    assert_eq!(settings.file.as_deref(), Some(shown(&toml).as_str()));
    let view = reloader.control().config();
    assert_eq!(view.json, serde_json::json!({"rpm": 60, "size": 0}));
    let status = serde_json::to_value(reloader.status()).unwrap();
    assert_eq!(
        status["settings"]["debounce_ms"],
        serde_json::json!({"value": 500, "from": "file"})
    );
    // A change to the table alone: `unchanged` for the config, and no trace of it anywhere.
    fs::write(&toml, "rpm = 60\n\n[hot_reload]\ndebounce_ms = 700\n").unwrap();
    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Unchanged);
    assert!(event.changes.is_empty());
    assert_eq!(reloader.status().settings.debounce_ms.value, 700);
    assert_eq!(
        reloader.status().settings.enabled.from,
        SettingSource::Default
    );

    // YAML and JSON: a `hot_reload` key at the top level.
    let yaml = files.write("app.yaml", "rpm: 61\nhot_reload:\n  debounce_ms: 250\n");
    let reloader = Reloader::<Strict>::builder().file(&yaml).build().unwrap();
    assert_eq!(reloader.status().settings.debounce_ms.value, 250);
    let json = files.write(
        "app.json",
        r#"{"rpm": 62, "hot_reload": {"enabled": false}}"#,
    );
    let reloader = Reloader::<Strict>::builder().file(&json).build().unwrap();
    assert!(!reloader.status().settings.enabled.value);
    assert_eq!(reloader.current().config().rpm, 62);
}

#[test]
fn the_table_can_be_renamed_or_left_to_the_config() {
    let files = Files::new();
    let path = files.write("app.toml", "rpm = 60\n[ops]\ndebounce_ms = 300\n");
    let reloader = Reloader::<Strict>::builder()
        .file(&path)
        .settings_table(Some("ops"))
        .build()
        .unwrap();
    assert_eq!(reloader.status().settings.debounce_ms.value, 300);

    files.write("app.toml", "rpm = 60\n[hot_reload]\ndebounce_ms = 300\n");
    let error = Reloader::<Strict>::builder()
        .file(&path)
        .settings_table(None)
        .build()
        .unwrap_err();
    assert!(
        error.to_string().contains("hot_reload"),
        "the strict config is given the key: {error}"
    );
    let reloader = Reloader::<serde_json::Value>::builder()
        .file(&path)
        .settings_table(None)
        .build()
        .unwrap();
    assert_eq!(
        reloader.current().config()["hot_reload"]["debounce_ms"],
        300
    );
    assert_eq!(
        reloader.status().settings.debounce_ms.from,
        SettingSource::Default
    );
}

#[test]
fn out_of_range_settings_are_rejected_at_their_line_and_the_old_ones_stay() {
    logs();
    let files = Files::new();
    let path = files.write("app.toml", "rpm = 60\n[hot_reload]\ndebounce_ms = 500\n");
    let (reloader, events) = observed(Reloader::<Strict>::builder().file(&path));
    events.recv_timeout(DEADLINE).unwrap();
    files.write(
        "app.toml",
        "rpm = 61\n[hot_reload]\nenabled = true\ndebounce_ms = 5\n",
    );
    let Err(Error::Invalid(problems)) = reloader.reload() else {
        panic!("an out-of-range debounce is rejected");
    };
    let problem = &problems.0[0];
    assert_eq!(problems.0.len(), 1, "{problems}");
    assert_eq!(problem.file.as_deref(), Some(shown(&path).as_str()));
    assert_eq!((problem.line, problem.column), (Some(4), Some(15)));
    assert_eq!(
        problem.path.as_ref().unwrap().to_string(),
        "hot_reload.debounce_ms"
    );
    assert!(problem.message.contains("10 to 60000"), "{problem}");
    let event = next(&events);
    assert_eq!(event.outcome, Outcome::Rejected);
    assert_eq!(event.stage, Some(hotconf::Stage::Validate));
    assert_eq!(reloader.current().version(), 1);
    assert_eq!(reloader.current().config().rpm, 60, "the old config stays");
    assert_eq!(
        reloader.status().settings.debounce_ms.value,
        500,
        "and the old settings"
    );

    // A mistyped setting, a wrong path and an unknown one, all at once, with the config's
    // own type errors; a secret-looking value never shows.
    files.write(
        "app.toml",
        "rpm = \"x\"\n[hot_reload]\nenabled = \"yes\"\nwatch_paths = [\"b.toml\", 3]\ntoken = \"sekrit-7f3a\"\n",
    );
    let Err(Error::Invalid(problems)) = reloader.reload() else {
        panic!("mistyped settings are rejected");
    };
    let found: Vec<(String, Option<u32>)> = problems
        .0
        .iter()
        .map(|p| (p.path.as_ref().unwrap().to_string(), p.line))
        .collect();
    assert_eq!(
        found,
        [
            ("hot_reload.enabled".into(), Some(3)),
            ("hot_reload.watch_paths[1]".into(), Some(4)),
            ("hot_reload.token".into(), Some(5)),
            ("rpm".into(), Some(1)),
        ]
    );
    assert_eq!(problems.0[1].column, Some(26));
    assert!(problems.0[1].message.contains("expected a file path"));
    assert!(!problems.to_string().contains("sekrit-7f3a"));
    assert_eq!(lines_with(&["sekrit-7f3a"]), 0);

    // At the first load, the same rejection stops the build.
    let error = Reloader::<Strict>::builder()
        .file(&path)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("app.toml:3:11"), "{error}");
}

#[test]
fn a_new_debounce_applies_to_the_watchers_next_batch() {
    let files = Files::new();
    let path = files.write("app.toml", "rpm = 60\n");
    let reloader = Reloader::<Strict>::builder()
        .file(&path)
        .debounce(Duration::from_millis(20))
        .build()
        .unwrap();
    assert_eq!(
        reloader.status().settings.debounce_ms.from,
        SettingSource::Builder
    );
    reloader.watch().unwrap();
    // Saved through the watcher, with the builder's short debounce.
    fs::write(&path, "rpm = 61\n[hot_reload]\ndebounce_ms = 1500\n").unwrap();
    wait_for("the table read from the watcher's batch", || {
        reloader.status().settings.debounce_ms.value == 1500
    });
    assert_eq!(reloader.current().config().rpm, 61);
    assert_eq!(
        reloader.status().settings.debounce_ms.from,
        SettingSource::File
    );
    // The next save waits the new quiet time: it cannot be applied sooner.
    let saved = Instant::now();
    fs::write(&path, "rpm = 62\n[hot_reload]\ndebounce_ms = 30\n").unwrap();
    wait_for("the watcher applies the next save", || {
        reloader.current().config().rpm == 62
    });
    assert!(
        saved.elapsed() >= Duration::from_millis(1500),
        "applied after {:?}, before the file's debounce",
        saved.elapsed()
    );
    assert_eq!(reloader.status().settings.debounce_ms.value, 30);
    // And the watcher keeps applying saves with the shorter one.
    fs::write(&path, "rpm = 63\n[hot_reload]\ndebounce_ms = 30\n").unwrap();
    wait_for("the watcher still applies saves", || {
        reloader.current().config().rpm == 63
    });
}

/// A reloader over `main.toml` (which holds the table) and `extra.toml`, watching.
fn two_files(files: &Files, main: &str) -> (Reloader<Strict>, Receiver<Event>, PathBuf) {
    let main = files.write("main.toml", main);
    let extra = files.write("extra.toml", "size = 1\n");
    let (reloader, events) = observed(
        Reloader::<Strict>::builder()
            .file(&main)
            .file(&extra)
            .debounce(Duration::from_millis(20)),
    );
    assert_eq!(
        events.recv_timeout(DEADLINE).unwrap().outcome,
        Outcome::Loaded
    );
    reloader.watch().unwrap();
    (reloader, events, main)
}

const PAUSED: &str = "not applied: reloading from the watcher is paused by the settings table";

#[test]
fn enabled_false_pauses_the_other_files_and_true_applies_what_was_saved_meanwhile() {
    logs();
    let files = Files::new();
    let (reloader, events, main) = two_files(&files, "rpm = 60\n");
    fs::write(&main, "rpm = 60\n[hot_reload]\nenabled = false\n").unwrap();
    wait_for("the table pauses the watcher", || {
        !reloader.status().settings.enabled.value
    });
    assert!(reloader.status().enabled, "the runtime switch is apart");
    wait_for("the table's own reload reported", || {
        drain(&events).contains(&Outcome::Unchanged)
    });

    files.write("extra.toml", "size = 2\n");
    let file = shown(&main);
    wait_for(
        "the watcher's batch reaches the worker and is skipped",
        || lines_with(&[PAUSED, &file]) >= 1,
    );
    assert_eq!(reloader.current().version(), 1);
    assert_eq!(reloader.current().config().size, 1);
    assert_eq!(drain(&events), [], "no event while paused");

    // A save of the table's file while paused reads only its table.
    fs::write(
        &main,
        "rpm = 99\n[hot_reload]\nenabled = false\ndebounce_ms = 40\n",
    )
    .unwrap();
    wait_for("the paused table is read", || {
        reloader.status().settings.debounce_ms.value == 40
    });
    assert_eq!(reloader.current().version(), 1, "no config applied");
    assert_eq!(reloader.current().config().rpm, 60);
    assert_eq!(drain(&events), []);

    // Back on: one full reload at once applies both files' saves.
    fs::write(&main, "rpm = 70\n[hot_reload]\nenabled = true\n").unwrap();
    wait_for("the saves made while paused are applied", || {
        reloader.current().config().size == 2
    });
    assert_eq!(reloader.current().config().rpm, 70);
    assert_eq!(reloader.current().version(), 2);
    assert!(reloader.status().settings.enabled.value);
    files.write("extra.toml", "size = 3\n");
    wait_for("the watcher applies saves again", || {
        reloader.current().config().size == 3
    });
}

#[test]
fn a_broken_table_saved_while_paused_is_rejected_and_keeps_the_pause() {
    let files = Files::new();
    let (reloader, events, main) = two_files(&files, "rpm = 60\n[hot_reload]\nenabled = false\n");
    assert!(!reloader.status().settings.enabled.value);
    fs::write(&main, "rpm = 60\n[hot_reload]\nenabled = 3\n").unwrap();
    let event = next(&events);
    assert_eq!(event.outcome, Outcome::Rejected);
    assert_eq!(event.errors[0].line, Some(3));
    assert!(!reloader.status().settings.enabled.value, "still paused");
    assert_eq!(reloader.current().version(), 1);
}

#[test]
fn manual_reloads_apply_everything_while_paused() {
    let files = Files::new();
    let (reloader, _events, _main) = two_files(&files, "rpm = 60\n[hot_reload]\nenabled = false\n");
    files.write("extra.toml", "size = 5\n");
    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Applied);
    assert_eq!(reloader.current().config().size, 5);
    assert!(!reloader.status().settings.enabled.value, "still paused");
    reloader.update(|c| c.size = 6).unwrap();
    assert_eq!(reloader.current().config().size, 6);
}

#[test]
fn an_explicit_debounce_beats_the_file_which_beats_the_builder() {
    let files = Files::new();
    let path = files.write("app.toml", "rpm = 60\n[hot_reload]\ndebounce_ms = 40\n");
    let status = |builder: ReloaderBuilder<Strict>| builder.build().unwrap().status().settings;
    let explicit = status(
        Reloader::<Strict>::builder()
            .file(&path)
            .debounce(Duration::from_millis(300))
            .debounce_explicit(Duration::from_millis(250)),
    );
    assert_eq!(explicit.debounce_ms.value, 250);
    assert_eq!(explicit.debounce_ms.from, SettingSource::Explicit);
    let file = status(
        Reloader::<Strict>::builder()
            .file(&path)
            .debounce(Duration::from_millis(300)),
    );
    assert_eq!(file.debounce_ms.value, 40);
    assert_eq!(file.debounce_ms.from, SettingSource::File);

    // The explicit value holds across reloads that change the file's.
    let reloader = Reloader::<Strict>::builder()
        .file(&path)
        .debounce_explicit(Duration::from_millis(250))
        .build()
        .unwrap();
    files.write("app.toml", "rpm = 60\n[hot_reload]\ndebounce_ms = 900\n");
    reloader.reload().unwrap();
    let settings = reloader.status().settings;
    assert_eq!(
        (settings.debounce_ms.value, settings.debounce_ms.from),
        (250, SettingSource::Explicit)
    );
    // Out of range, it is refused like the builder's.
    let error = Reloader::<Strict>::builder()
        .file(&path)
        .debounce_explicit(Duration::from_millis(5))
        .build()
        .unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidOption {
            option: "debounce",
            ..
        }
    ));
}

#[test]
fn the_runtime_switch_still_pauses_when_the_file_says_enabled() {
    logs();
    let files = Files::new();
    let (reloader, events, main) = two_files(&files, "rpm = 60\n[hot_reload]\nenabled = true\n");
    reloader.disable();
    let disabled = "not applied: reloading from the watcher is disabled until enable()";
    let before = lines_with(&[disabled]);
    fs::write(&main, "rpm = 61\n[hot_reload]\nenabled = true\n").unwrap();
    wait_for(
        "the watcher's batch reaches the worker and is skipped",
        || lines_with(&[disabled]) > before,
    );
    assert_eq!(reloader.current().version(), 1);
    assert_eq!(drain(&events), []);
    let status = reloader.status();
    assert!(!status.enabled && status.settings.enabled.value);
    reloader.enable();
    wait_for("enable() applies the save", || {
        reloader.current().config().rpm == 61
    });
}

#[test]
fn watch_paths_layer_files_right_after_the_tables_file_and_watch_them() {
    let files = Files::new();
    fs::create_dir(files.path("models")).unwrap();
    let main = files.write(
        "main.toml",
        "rpm = 60\n[hot_reload]\nwatch_paths = [\"models/a.toml\", \"b.yaml\", \"main.toml\"]\n",
    );
    files.write("models/a.toml", "rpm = 70\nsize = 2\n");
    files.write("b.yaml", "size: 3\n");
    let late = files.write("late.toml", "size = 9\n");
    let (reloader, events) = observed(
        Reloader::<Strict>::builder()
            .file(&main)
            .file(&late)
            .debounce(Duration::from_millis(20)),
    );
    let loaded = next(&events);
    let names: Vec<&str> = loaded
        .files
        .iter()
        .map(|f| Path::new(f).file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["main.toml", "a.toml", "b.yaml", "late.toml"],
        "right after the table's file, in order, the table's own file not twice"
    );
    assert_eq!(*reloader.current().config(), Strict { rpm: 70, size: 9 });
    let settings = reloader.status().settings;
    assert_eq!(
        settings.watch_paths.value,
        ["models/a.toml", "b.yaml", "main.toml"]
    );
    assert_eq!(settings.watch_paths.from, SettingSource::File);

    // Watched like the table's file, in a directory of their own.
    reloader.watch().unwrap();
    files.write("models/a.toml", "rpm = 71\n");
    wait_for("a save of a listed file is applied", || {
        reloader.current().config().rpm == 71
    });
    let event = next(&events);
    assert_eq!(event.outcome, Outcome::Applied);
    assert_eq!(event.trigger, hotconf::Trigger::Watch);
}

#[test]
fn watch_paths_spelled_with_escapes_are_found_too() {
    let files = Files::new();
    files.write("extra.toml", "size = 5\n");
    // JSON and YAML escapes spell the key without its letters in a row.
    let json = files.write(
        "main.json",
        "{\"rpm\": 60, \"hot_reload\": {\"watch\\u005fpaths\": [\"extra.toml\"]}}",
    );
    let reloader = Reloader::<Strict>::builder().file(&json).build().unwrap();
    assert_eq!(*reloader.current().config(), Strict { rpm: 60, size: 5 });
    let yaml = files.write(
        "main.yaml",
        "rpm: 61\nhot_reload:\n  ? \"watch_\\\n    paths\"\n  : [extra.toml]\n",
    );
    let reloader = Reloader::<Strict>::builder().file(&yaml).build().unwrap();
    assert_eq!(*reloader.current().config(), Strict { rpm: 61, size: 5 });
}

#[test]
fn a_new_watch_path_is_layered_and_watched_from_the_reload_that_adds_it() {
    let files = Files::new();
    let main = files.write("main.toml", "rpm = 60\n");
    fs::create_dir(files.path("sub")).unwrap();
    files.write("sub/c.toml", "size = 4\n");
    let (reloader, events) = observed(
        Reloader::<Strict>::builder()
            .file(&main)
            .debounce(Duration::from_millis(20)),
    );
    next(&events);
    reloader.watch().unwrap();
    fs::write(
        &main,
        "rpm = 60\n[hot_reload]\nwatch_paths = [\"sub/c.toml\"]\n",
    )
    .unwrap();
    wait_for("the listed file is layered", || {
        reloader.current().config().size == 4
    });
    // `sub/` was not watched before: the running watcher was told to watch it.
    files.write("sub/c.toml", "size = 5\n");
    wait_for("a save of the new file is applied", || {
        reloader.current().config().size == 5
    });
    // Taken off the list, it no longer counts.
    fs::write(&main, "rpm = 61\n").unwrap();
    wait_for("the list is empty again", || {
        reloader.current().config().rpm == 61
    });
    assert_eq!(reloader.current().config().size, 0);
    assert!(reloader.status().settings.watch_paths.value.is_empty());
}

#[test]
fn a_missing_or_nesting_watch_path_is_rejected_with_its_file() {
    let files = Files::new();
    let main = files.write("main.toml", "rpm = 60\n");
    let reloader = Reloader::<Strict>::builder().file(&main).build().unwrap();
    fs::write(
        &main,
        "rpm = 61\n[hot_reload]\nwatch_paths = [\"gone.toml\"]\n",
    )
    .unwrap();
    let Err(Error::Invalid(problems)) = reloader.reload() else {
        panic!("a missing listed file is rejected");
    };
    assert!(
        problems.0[0]
            .file
            .as_deref()
            .unwrap()
            .ends_with("gone.toml"),
        "{problems}"
    );
    assert_eq!(reloader.current().config().rpm, 60);
    assert!(reloader.status().settings.watch_paths.value.is_empty());

    files.write(
        "more.toml",
        "size = 1\n[hot_reload]\nwatch_paths = [\"x.toml\"]\n",
    );
    fs::write(
        &main,
        "rpm = 61\n[hot_reload]\nwatch_paths = [\"more.toml\"]\n",
    )
    .unwrap();
    let Err(Error::Invalid(problems)) = reloader.reload() else {
        panic!("a listed file cannot list more");
    };
    let problem = &problems.0[0];
    assert!(
        problem.file.as_deref().unwrap().ends_with("more.toml"),
        "{problem}"
    );
    assert_eq!(problem.line, Some(3));
    assert_eq!(
        problem.path.as_ref().unwrap().to_string(),
        "hot_reload.watch_paths"
    );
}

/// Defaults may carry part of the table: the file that wrote `enabled` is the one that
/// stays watched while paused.
#[test]
fn a_table_split_across_layers_is_held_by_the_file_that_wrote_enabled() {
    let files = Files::new();
    let main = files.write("main.toml", "rpm = 60\n[hot_reload]\nenabled = false\n");
    let (reloader, events) = observed(
        Reloader::<Strict>::builder()
            .defaults(
                hotconf::source::Format::Toml,
                "size = 1\n[hot_reload]\ndebounce_ms = 30\n",
            )
            .file(&main),
    );
    next(&events);
    let settings = reloader.status().settings;
    assert_eq!(settings.file.as_deref(), Some(shown(&main).as_str()));
    assert!(!settings.enabled.value);
    assert_eq!(settings.debounce_ms.value, 30);
    reloader.watch().unwrap();
    fs::write(&main, "rpm = 61\n[hot_reload]\nenabled = true\n").unwrap();
    wait_for("the file that wrote enabled resumes the watcher", || {
        reloader.current().config().rpm == 61
    });
    assert!(reloader.status().settings.enabled.value);
}

/// `save()` writes the effective config, which never holds the table: the file keeps its
/// own table (in TOML with its comments), so the settings survive a save.
#[test]
fn save_keeps_the_files_own_table() {
    let files = Files::new();
    let cases = [
        (
            "app.toml",
            "rpm = 60\n\n# ours\n[hot_reload]\nenabled = false # paused\n",
        ),
        (
            "app.json",
            r#"{"rpm": 60, "hot_reload": {"enabled": false}}"#,
        ),
        ("app.yaml", "rpm: 60\nhot_reload:\n  enabled: false\n"),
    ];
    for (name, text) in cases {
        let path = files.write(name, text);
        let reloader = Reloader::<Strict>::builder().file(&path).build().unwrap();
        reloader.update(|c| c.rpm = 75).unwrap();
        reloader.save().unwrap();
        let saved = fs::read_to_string(&path).unwrap();
        if name.ends_with(".toml") {
            assert!(
                saved.contains("# ours\n[hot_reload]\nenabled = false # paused\n"),
                "{saved}"
            );
        }
        let event = reloader.reload().unwrap();
        assert_eq!(event.outcome, Outcome::Unchanged, "{name}: {saved}");
        assert_eq!(reloader.current().config().rpm, 75, "{name}: {saved}");
        assert!(!reloader.status().settings.enabled.value, "{name}: {saved}");
    }
}
