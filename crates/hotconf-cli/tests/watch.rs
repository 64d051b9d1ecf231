//! The real `hotconf watch` binary on real files, saved by the real tools: vim (three ways),
//! sed, cp, mv, ln, python, git, the shell, and a Kubernetes ConfigMap update. Each tool
//! saves 20 times; each save must give exactly one `applied` event with the saved value.
//!
//! The event stream is read line by line on a thread. Every wait is for an expected line,
//! with a deadline. The next save starts only after the previous one's event arrived, so
//! saves are distinct; an extra or early event (a `rejected` half-written file, a partial
//! `applied`) would be the event read for the next save, and fail it.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(15);
/// Five times the default debounce: a quiet window opened before it has surely closed.
const QUIET: Duration = Duration::from_millis(500);
const SAVES: u64 = 20;

/// A running `hotconf watch`, killed when dropped.
struct Watch {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Watch {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("hotconf"))
            .arg("watch")
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        thread::spawn(move || {
            for line in stdout.lines() {
                if sender.send(line.unwrap()).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let collected = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        Self {
            child,
            lines,
            stderr,
        }
    }

    /// Starts `hotconf watch --json ARGS` and waits for its `loaded` event.
    fn json(args: &[&str]) -> Self {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let watch = Self::start(&all);
        let loaded = watch.event();
        assert_eq!(loaded["event"], "loaded", "{loaded}");
        assert_eq!(loaded["version"], 1, "{loaded}");
        watch
    }

    /// The next line of output, which must come before the deadline.
    fn line(&self) -> String {
        match self.lines.recv_timeout(DEADLINE) {
            Ok(line) => line,
            Err(e) => panic!(
                "no output line within {DEADLINE:?} ({e}); stderr:\n{}",
                self.stderr.lock().unwrap()
            ),
        }
    }

    /// Asserts that nothing is printed for `period`: a no-op left no event behind.
    fn silent_for(&self, period: Duration) {
        match self.lines.recv_timeout(period) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(line) => panic!("expected no output, got: {line}"),
            Err(e) => panic!(
                "the watch stopped ({e}); stderr:\n{}",
                self.stderr.lock().unwrap()
            ),
        }
    }

    fn event(&self) -> Value {
        let line = self.line();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, with a deadline; its exit code.
    fn exit_code(mut self) -> Option<i32> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "hotconf watch did not exit");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs a tool; it must succeed.
fn run(program: &str, args: &[&str], dir: &Path) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (scripts/test.sh installs it): {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn config(n: u64) -> String {
    format!("# saved by a tool\nname = \"svc\"\nn = {n}\n")
}

/// The config directory `conf/` holding `app.toml` with n = 0, and its temp dir.
fn conf() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let conf = root.path().join("conf");
    fs::create_dir(&conf).unwrap();
    fs::write(conf.join("app.toml"), config(0)).unwrap();
    (root, conf)
}

/// Watches `watched`, saves 20 times with `save` (it gets n, and writes `config(n)`), and
/// checks that each save gave exactly one `applied` event carrying n. A 21st save is the
/// marker that the 20th left nothing behind.
fn each_save_applies_once(watched: &Path, save: impl Fn(u64)) {
    let watch = Watch::json(&[path_str(watched)]);
    for n in 1..=SAVES + 1 {
        save(n);
        let event = watch.event();
        assert_eq!(event["event"], "applied", "save {n}: {event}");
        assert_eq!(event["trigger"], "watch", "save {n}: {event}");
        assert_eq!(event["version"], n + 1, "save {n}: {event}");
        assert_eq!(
            event["changes"],
            json!([{"path": "n", "kind": "modified", "old": n - 1, "new": n}]),
            "save {n}: {event}"
        );
    }
}

/// Saves with vim in batch mode, with Vim's defaults (`-N`: `-u NONE` alone would start
/// Vi-compatible) or `backupcopy` set. `backupskip` is emptied because its default skips
/// backups under /tmp, where the test files live, and vim would then always write in place.
fn vim_saves(backupcopy: Option<&str>) {
    let (_root, conf) = conf();
    let file = conf.join("app.toml");
    let set = match backupcopy {
        Some(mode) => format!("set backupskip= backupcopy={mode}"),
        None => "set backupskip=".to_owned(),
    };
    each_save_applies_once(&file, |n| {
        let substitute = format!("%s/^n = .*/n = {n}/");
        run(
            "vim",
            &[
                "-Es",
                "-u",
                "NONE",
                "-N",
                "-c",
                &set,
                "-c",
                &substitute,
                "-c",
                "wq",
                "app.toml",
            ],
            &conf,
        );
    });
}

/// Default (`backupcopy=auto`): probe file `4913`, rename to `app.toml~`, write a new file.
#[test]
fn vim_default_renames_and_is_seen_once_per_save() {
    vim_saves(None);
}

/// Copy to `app.toml~`, then truncate and write the file in place.
#[test]
fn vim_backupcopy_yes_writes_in_place_and_is_seen_once_per_save() {
    vim_saves(Some("yes"));
}

/// Rename to `app.toml~`, then write a new file.
#[test]
fn vim_backupcopy_no_renames_and_is_seen_once_per_save() {
    vim_saves(Some("no"));
}

#[test]
fn sed_in_place_is_seen_once_per_save() {
    let (_root, conf) = conf();
    each_save_applies_once(&conf.join("app.toml"), |n| {
        run(
            "sed",
            &["-i", &format!("s/^n = .*/n = {n}/"), "app.toml"],
            &conf,
        );
    });
}

#[test]
fn cp_over_is_seen_once_per_save() {
    let (root, conf) = conf();
    let staging = root.path().join("next.toml");
    each_save_applies_once(&conf.join("app.toml"), |n| {
        fs::write(&staging, config(n)).unwrap();
        run("cp", &[path_str(&staging), "app.toml"], &conf);
    });
}

#[test]
fn mv_over_is_seen_once_per_save() {
    let (root, conf) = conf();
    let staging = root.path().join("next.toml");
    each_save_applies_once(&conf.join("app.toml"), |n| {
        fs::write(&staging, config(n)).unwrap();
        run("mv", &[path_str(&staging), "app.toml"], &conf);
    });
}

#[test]
fn python_os_replace_is_seen_once_per_save() {
    let (_root, conf) = conf();
    let script = "import os, sys\n\
                  path, text = sys.argv[1], sys.argv[2]\n\
                  with open(path + '.tmp', 'w') as f:\n    f.write(text)\n\
                  os.replace(path + '.tmp', path)\n";
    each_save_applies_once(&conf.join("app.toml"), |n| {
        run("python3", &["-c", script, "app.toml", &config(n)], &conf);
    });
}

#[test]
fn ln_sfn_retargeting_a_symlink_is_seen_once_per_save() {
    let root = tempfile::tempdir().unwrap();
    let conf = root.path().join("conf");
    let version = |n: u64| {
        let dir = conf.join(format!("versions/v{n}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("app.toml"), config(n)).unwrap();
        format!("versions/v{n}/app.toml")
    };
    fs::create_dir(&conf).unwrap();
    symlink(version(0), conf.join("app.toml")).unwrap();
    each_save_applies_once(&conf.join("app.toml"), |n| {
        let target = version(n);
        run("ln", &["-sfn", &target, "app.toml"], &conf);
    });
}

#[test]
fn git_checkout_is_seen_once_per_save() {
    let (_root, conf) = conf();
    let git = |args: &[&str]| {
        let mut all = vec![
            "-c",
            "user.name=hotconf",
            "-c",
            "user.email=hotconf@example.com",
            "-c",
            "init.defaultBranch=main",
        ];
        all.extend_from_slice(args);
        run("git", &all, &conf);
    };
    git(&["init", "-q"]);
    for n in 0..=SAVES + 1 {
        fs::write(conf.join("app.toml"), config(n)).unwrap();
        git(&["add", "app.toml"]);
        git(&["commit", "-qm", &format!("n = {n}")]);
        git(&["tag", &format!("v{n}")]);
    }
    git(&["checkout", "-q", "v0"]);
    each_save_applies_once(&conf.join("app.toml"), |n| {
        git(&["checkout", "-q", &format!("v{n}")]);
    });
}

#[test]
fn truncate_then_write_is_seen_once_per_save() {
    let (_root, conf) = conf();
    each_save_applies_once(&conf.join("app.toml"), |n| {
        let script = format!(": > app.toml; printf '%s' '{}' >> app.toml", config(n));
        run("sh", &["-c", &script], &conf);
    });
}

#[test]
fn delete_then_create_is_seen_once_per_save() {
    let (_root, conf) = conf();
    each_save_applies_once(&conf.join("app.toml"), |n| {
        let script = format!("rm app.toml && printf '%s' '{}' > app.toml", config(n));
        run("sh", &["-c", &script], &conf);
    });
}

/// A ConfigMap volume as kubelet's AtomicWriter lays it out: `app.toml -> ..data/app.toml`,
/// `..data -> ..<timestamp>`.
fn configmap() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let volume = root.path().join("config");
    fs::create_dir(&volume).unwrap();
    let first = "..2026_11_22_10_00_00.0000";
    fs::create_dir(volume.join(first)).unwrap();
    fs::write(volume.join(first).join("app.toml"), config(0)).unwrap();
    symlink(first, volume.join("..data")).unwrap();
    symlink("..data/app.toml", volume.join("app.toml")).unwrap();
    (root, volume)
}

/// AtomicWriter's update: a new timestamped directory, `..data_tmp` pointing at it, renamed
/// over `..data`, then the old directory removed.
fn configmap_update(volume: &Path, n: u64) {
    let stamp = format!("..2026_11_22_10_00_{n:02}.{n:04}");
    fs::create_dir(volume.join(&stamp)).unwrap();
    fs::write(volume.join(&stamp).join("app.toml"), config(n)).unwrap();
    let old = fs::read_link(volume.join("..data")).unwrap();
    symlink(&stamp, volume.join("..data_tmp")).unwrap();
    fs::rename(volume.join("..data_tmp"), volume.join("..data")).unwrap();
    fs::remove_dir_all(volume.join(old)).unwrap();
}

#[test]
fn a_kubernetes_configmap_update_is_seen_once_per_save_watching_the_file() {
    let (_root, volume) = configmap();
    each_save_applies_once(&volume.join("app.toml"), |n| configmap_update(&volume, n));
}

#[test]
fn a_kubernetes_configmap_update_is_seen_once_per_save_watching_the_directory() {
    let (_root, volume) = configmap();
    each_save_applies_once(&volume, |n| configmap_update(&volume, n));
}

#[test]
fn two_files_saved_together_give_one_event() {
    let (_root, conf) = conf();
    fs::write(conf.join("db.yaml"), "pool: 0\n").unwrap();
    let watch = Watch::json(&[
        path_str(&conf.join("app.toml")),
        path_str(&conf.join("db.yaml")),
    ]);
    for n in 1..=SAVES + 1 {
        let script = format!(
            "printf '%s' '{}' > app.toml && printf 'pool: {n}\\n' > db.yaml",
            config(n)
        );
        run("sh", &["-c", &script], &conf);
        let event = watch.event();
        assert_eq!(event["event"], "applied", "save {n}: {event}");
        assert_eq!(event["version"], n + 1, "save {n}: {event}");
        let paths: Vec<&str> = event["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, ["n", "pool"], "save {n}: {event}");
    }
}

#[test]
fn a_directory_picks_up_new_files_and_ignores_litter() {
    let (_root, conf) = conf();
    let watch = Watch::json(&[path_str(&conf)]);
    fs::write(conf.join(".app.toml.swp"), "litter").unwrap();
    fs::write(conf.join("app.toml~"), "litter").unwrap();
    fs::write(conf.join("4913"), "").unwrap();
    fs::write(conf.join("~lock.toml"), "litter = = 1").unwrap();
    // Litter alone is no change: nothing at all is printed, not even `unchanged`.
    watch.silent_for(QUIET);
    fs::write(conf.join("extra.json"), r#"{"extra": 1}"#).unwrap();
    let event = watch.event();
    assert_eq!(event["event"], "applied", "{event}");
    assert_eq!(
        event["changes"],
        json!([{"path": "extra", "kind": "added", "new": 1}])
    );
    fs::remove_file(conf.join("extra.json")).unwrap();
    let event = watch.event();
    assert_eq!(event["event"], "applied", "{event}");
    assert_eq!(
        event["changes"],
        json!([{"path": "extra", "kind": "removed", "old": 1}])
    );
}

#[test]
fn an_invalid_save_is_rejected_once_with_its_location_then_the_next_applies() {
    let (_root, conf) = conf();
    let file = conf.join("app.toml");
    let watch = Watch::json(&[path_str(&file)]);
    fs::write(&file, "name = \"svc\"\nn = = 1\n").unwrap();
    let event = watch.event();
    assert_eq!(event["event"], "rejected", "{event}");
    assert_eq!(event["version"], 1);
    let error = &event["errors"][0];
    assert_eq!(error["file"], path_str(&file), "{event}");
    assert_eq!(error["line"], 2, "{event}");
    assert!(error["column"].as_u64().is_some(), "{event}");
    // Rewriting the same bytes reports nothing again...
    fs::write(&file, "name = \"svc\"\nn = = 1\n").unwrap();
    watch.silent_for(QUIET);
    // ...and the next event is the fix's.
    fs::write(&file, config(1)).unwrap();
    let event = watch.event();
    assert_eq!(event["event"], "applied", "{event}");
    assert_eq!(event["version"], 2, "{event}");
}

#[test]
fn same_bytes_give_no_event_and_sighup_forces_a_reload() {
    let (_root, conf) = conf();
    let file = conf.join("app.toml");
    let watch = Watch::json(&[path_str(&file)]);
    // A touch and a rewrite of the same content: no event...
    run("touch", &["app.toml"], &conf);
    fs::write(&file, config(0)).unwrap();
    watch.silent_for(QUIET);
    // ...so the next one is the forced reload's.
    watch.signal("HUP");
    let event = watch.event();
    assert_eq!(event["event"], "unchanged", "{event}");
    assert_eq!(event["trigger"], "signal", "{event}");
    assert_eq!(event["version"], 1, "{event}");
    // Changed bytes with the same effective config: one `unchanged`.
    fs::write(&file, "name = 'svc'\nn = 0 # same value, other bytes\n").unwrap();
    let event = watch.event();
    assert_eq!(event["event"], "unchanged", "{event}");
    assert_eq!(event["trigger"], "watch", "{event}");
}

#[test]
fn sigterm_and_sigint_exit_cleanly() {
    for signal in ["TERM", "INT"] {
        let (_root, conf) = conf();
        let watch = Watch::json(&[path_str(&conf.join("app.toml"))]);
        watch.signal(signal);
        assert_eq!(watch.exit_code(), Some(0), "SIG{signal}");
    }
}

#[test]
fn on_apply_gets_the_event_on_stdin_and_a_failure_is_reported_without_stopping() {
    let (root, conf) = conf();
    let file = conf.join("app.toml");
    let received = root.path().join("received.json");
    // The command keeps the event, then fails on the second reload.
    let command = format!(
        "cat > {0}.part && mv {0}.part {0} && grep -q '\"version\":2' {0}",
        path_str(&received)
    );
    let watch = Watch::json(&["--on-apply", &command, path_str(&file)]);

    fs::write(&file, config(1)).unwrap();
    let applied = watch.event();
    assert_eq!(applied["event"], "applied", "{applied}");
    let deadline = Instant::now() + DEADLINE;
    let stdin = loop {
        if let Ok(text) = fs::read_to_string(&received) {
            break text;
        }
        assert!(Instant::now() < deadline, "the command never ran");
        thread::sleep(Duration::from_millis(10));
    };
    let stdin: Value = serde_json::from_str(&stdin).unwrap();
    assert_eq!(stdin, applied, "the command got the event's JSON");

    fs::write(&file, config(2)).unwrap();
    assert_eq!(watch.event()["event"], "applied");
    let failed = watch.event();
    assert_eq!(failed["event"], "on_apply_failed", "{failed}");
    assert_eq!(failed["version"], 3, "{failed}");
    assert_eq!(failed["status"], 1, "{failed}");
    assert_eq!(failed["command"], command.as_str(), "{failed}");

    // The watch goes on.
    fs::write(&file, config(3)).unwrap();
    let event = watch.event();
    assert_eq!(event["event"], "applied", "{event}");
    assert_eq!(event["version"], 4, "{event}");
}

#[test]
fn restart_required_and_secret_paths_follow_the_policy() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("app.toml");
    fs::write(&file, "listen = ':80'\nrpm = 1\ndsn = 'postgres://a'\n").unwrap();
    let watch = Watch::json(&[
        "--restart-required",
        "listen",
        "--secret",
        "dsn",
        path_str(&file),
    ]);
    fs::write(&file, "listen = ':81'\nrpm = 1\ndsn = 'postgres://a'\n").unwrap();
    let event = watch.event();
    assert_eq!(event["event"], "restart_required", "{event}");
    assert_eq!(event["pending"], json!(["listen"]), "{event}");

    fs::write(&file, "listen = ':81'\nrpm = 2\ndsn = 'postgres://b'\n").unwrap();
    let event = watch.event();
    assert_eq!(event["event"], "applied", "{event}");
    assert_eq!(event["pending"], json!(["listen"]), "{event}");
    assert_eq!(
        event["changes"],
        json!([
            {"path": "rpm", "kind": "modified", "old": 1, "new": 2},
            {"path": "dsn", "kind": "modified", "old": "***", "new": "***"},
        ]),
        "{event}"
    );
}

#[test]
fn human_output_has_one_headline_per_event_and_the_changes() {
    let (_root, conf) = conf();
    let file = conf.join("app.toml");
    let watch = Watch::start(&[path_str(&file)]);
    let loaded = watch.line();
    assert!(loaded.contains(" loaded: version 1 from "), "{loaded}");
    assert!(loaded.ends_with("app.toml"), "{loaded}");

    fs::write(&file, config(5)).unwrap();
    let applied = watch.line();
    assert!(
        applied.contains(" applied: version 2 (watch, 1 change)"),
        "{applied}"
    );
    assert_eq!(watch.line(), "  ~ n: 0 -> 5");

    fs::write(&file, "n = = 1\n").unwrap();
    let rejected = watch.line();
    assert!(
        rejected.contains(" rejected: version 2 kept (watch, 1 error)"),
        "{rejected}"
    );
    let error = watch.line();
    assert!(
        error.starts_with(&format!("  {}:1:", path_str(&file))),
        "{error}"
    );
}

#[test]
fn a_config_that_does_not_load_is_not_watched() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("app.toml");
    fs::write(&file, "n = = 1\n").unwrap();
    assert_eq!(Watch::start(&[path_str(&file)]).exit_code(), Some(1));
    let missing = root.path().join("missing.toml");
    assert_eq!(Watch::start(&[path_str(&missing)]).exit_code(), Some(2));
}

/// The keys of a JSON object, in order.
fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// Waits until `file` holds a line containing `marker`; its lines then.
fn wait_for_line(file: &Path, marker: &str) -> Vec<String> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = fs::read_to_string(file).unwrap_or_default();
        if text.ends_with('\n') && text.lines().any(|line| line.contains(marker)) {
            return text.lines().map(str::to_owned).collect();
        }
        assert!(
            Instant::now() < deadline,
            "no line with {marker} in {}: {text:?}",
            file.display()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_denied_change_is_rejected_with_its_location_and_the_old_config_kept() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("app.toml");
    fs::write(&file, "rpm = 1\n[tenants.acme]\nid = 7\n").unwrap();
    let watch = Watch::json(&["--deny", "tenants.*.id", path_str(&file)]);

    fs::write(&file, "rpm = 2\n[tenants.acme]\nid = 8\n").unwrap();
    let event = watch.event();
    assert_eq!(event["event"], "rejected", "{event}");
    assert_eq!(event["version"], 1, "{event}");
    let errors = event["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{event}");
    assert_eq!(
        keys(&errors[0]),
        ["file", "line", "column", "path", "message"]
    );
    assert_eq!(
        (&errors[0]["file"], &errors[0]["line"], &errors[0]["column"]),
        (&json!(path_str(&file)), &json!(3), &json!(6)),
        "{event}"
    );
    assert_eq!(errors[0]["path"], "tenants.acme.id", "{event}");

    // The rejected rpm = 2 never applied: the next change starts from rpm = 1.
    fs::write(&file, "rpm = 3\n[tenants.acme]\nid = 7\n").unwrap();
    let event = watch.event();
    assert_eq!(event["event"], "applied", "{event}");
    assert_eq!(event["version"], 2, "{event}");
    assert_eq!(
        event["changes"],
        json!([{"path": "rpm", "kind": "modified", "old": 1, "new": 3}])
    );
}

#[test]
fn restart_mode_reject_rejects_a_restart_required_change_whole() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("app.toml");
    fs::write(&file, "listen = ':80'\nrpm = 1\n").unwrap();
    let watch = Watch::json(&[
        "--restart-required",
        "listen",
        "--restart-mode",
        "reject",
        path_str(&file),
    ]);

    fs::write(&file, "listen = ':81'\nrpm = 2\n").unwrap();
    let event = watch.event();
    assert_eq!(event["event"], "rejected", "{event}");
    assert_eq!(event["version"], 1, "{event}");
    assert!(event.get("pending").is_none(), "{event}");
    let errors = event["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{event}");
    assert_eq!(errors[0]["path"], "listen", "{event}");
    assert_eq!(errors[0]["line"], 1, "{event}");

    // Nothing of it applied, not even the hot rpm.
    fs::write(&file, "listen = ':80'\nrpm = 3\n").unwrap();
    let event = watch.event();
    assert_eq!(event["event"], "applied", "{event}");
    assert_eq!(
        event["changes"],
        json!([{"path": "rpm", "kind": "modified", "old": 1, "new": 3}])
    );
    assert!(event.get("pending").is_none(), "{event}");
}

#[test]
fn a_save_that_violates_the_schema_is_rejected_with_its_location() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("app.toml");
    fs::write(&file, "name = 'svc'\nrpm = 1\n").unwrap();
    let schema = root.path().join("schema.json");
    fs::write(
        &schema,
        r#"{"properties": {"rpm": {"type": "integer", "minimum": 1}}}"#,
    )
    .unwrap();
    let watch = Watch::json(&["--schema", path_str(&schema), path_str(&file)]);

    fs::write(&file, "name = 'svc'\nrpm = 0\n").unwrap();
    let event = watch.event();
    assert_eq!(event["event"], "rejected", "{event}");
    assert_eq!(event["version"], 1, "{event}");
    let error = &event["errors"][0];
    assert_eq!(
        (
            &error["file"],
            &error["line"],
            &error["column"],
            &error["path"]
        ),
        (&json!(path_str(&file)), &json!(2), &json!(7), &json!("rpm")),
        "{event}"
    );
    assert!(
        error["message"].as_str().unwrap().contains("minimum"),
        "{event}"
    );

    fs::write(&file, "name = 'svc'\nrpm = 5\n").unwrap();
    let event = watch.event();
    assert_eq!(event["event"], "applied", "{event}");
    assert_eq!(event["version"], 2, "{event}");
    assert_eq!(
        event["changes"],
        json!([{"path": "rpm", "kind": "modified", "old": 1, "new": 5}])
    );
}

/// The config's own `[hot_reload] debounce_ms` would hold a save for a minute; the
/// explicit `--debounce` beats it, so the watcher applies the save at once.
#[test]
fn an_explicit_debounce_flag_beats_the_configs_own_settings() {
    let (_root, conf) = conf();
    let file = conf.join("app.toml");
    let settings = "[hot_reload]\ndebounce_ms = 60000\n";
    fs::write(&file, format!("{}{settings}", config(0))).unwrap();
    let watch = Watch::json(&["--debounce", "20", path_str(&file)]);
    // Saved whole, by a rename: `fs::write` truncates first, and on a loaded machine the
    // empty file can stand for longer than this short window (it is then rejected, rightly,
    // but this test is about the window's length, not about truncation).
    let saved = conf.join("app.toml.tmp");
    fs::write(&saved, format!("{}{settings}", config(1))).unwrap();
    fs::rename(&saved, &file).unwrap();
    let event = watch.event();
    assert_eq!(event["event"], "applied", "{event}");
    assert_eq!(event["trigger"], "watch", "{event}");
    assert_eq!(
        event["changes"],
        json!([{"path": "n", "kind": "modified", "old": 0, "new": 1}]),
        "the settings table is not part of the config"
    );
}

/// A long debounce keeps the watcher from reloading on its own: each reload here is the
/// signal's.
#[test]
fn sighup_applies_a_changed_file_and_rejects_an_invalid_one() {
    let (_root, conf) = conf();
    let file = conf.join("app.toml");
    let watch = Watch::json(&["--debounce", "60000", path_str(&file)]);

    fs::write(&file, config(1)).unwrap();
    watch.signal("HUP");
    let event = watch.event();
    assert_eq!(event["event"], "applied", "{event}");
    assert_eq!(event["trigger"], "signal", "{event}");
    assert_eq!(event["version"], 2, "{event}");
    assert_eq!(
        event["changes"],
        json!([{"path": "n", "kind": "modified", "old": 0, "new": 1}])
    );

    fs::write(&file, "name = \"svc\"\nn = = 2\n").unwrap();
    watch.signal("HUP");
    let event = watch.event();
    assert_eq!(event["event"], "rejected", "{event}");
    assert_eq!(event["trigger"], "signal", "{event}");
    assert_eq!(event["version"], 2, "{event}");
    assert_eq!(event["errors"][0]["line"], 2, "{event}");

    // Still running, still on n = 1.
    fs::write(&file, config(3)).unwrap();
    watch.signal("HUP");
    let event = watch.event();
    assert_eq!(event["event"], "applied", "{event}");
    assert_eq!(event["version"], 3, "{event}");
    assert_eq!(
        event["changes"],
        json!([{"path": "n", "kind": "modified", "old": 1, "new": 3}])
    );
}

#[test]
fn on_apply_that_cannot_start_or_is_killed_is_reported() {
    let cases = [
        (
            "hotconf-no-such-program-anywhere",
            json!(127),
            "the command exited with status 127",
        ),
        (
            "kill -KILL $$",
            Value::Null,
            "the command was killed by signal 9",
        ),
    ];
    for (command, status, message) in cases {
        let (_root, conf) = conf();
        let file = conf.join("app.toml");
        let watch = Watch::json(&["--on-apply", command, path_str(&file)]);
        fs::write(&file, config(1)).unwrap();
        let applied = watch.event();
        assert_eq!(applied["event"], "applied", "{applied}");
        let failed = watch.event();
        assert_eq!(
            keys(&failed),
            ["event", "version", "at", "command", "status", "message"],
            "{failed}"
        );
        assert_eq!(failed["event"], "on_apply_failed", "{failed}");
        assert_eq!(failed["version"], 2, "{failed}");
        assert_eq!(failed["command"], command, "{failed}");
        assert_eq!(failed["status"], status, "{failed}");
        assert_eq!(failed["message"], message, "{failed}");
        // The watch goes on.
        fs::write(&file, config(2)).unwrap();
        let event = watch.event();
        assert_eq!(event["event"], "applied", "{command}: {event}");
        assert_eq!(event["version"], 3, "{command}: {event}");
    }
}

#[test]
fn on_apply_never_runs_after_a_rejection() {
    let (root, conf) = conf();
    let file = conf.join("app.toml");
    let ran = root.path().join("ran.jsonl");
    let command = format!("cat >> {}", path_str(&ran));
    let watch = Watch::json(&["--on-apply", &command, path_str(&file)]);

    fs::write(&file, config(1)).unwrap();
    let first = watch.event();
    assert_eq!(first["event"], "applied", "{first}");
    fs::write(&file, "n = = 2\n").unwrap();
    assert_eq!(watch.event()["event"], "rejected");
    // The marker: commands run in the order of the reloads, so once its event is in the
    // file, a command for the rejection would be there too.
    fs::write(&file, config(3)).unwrap();
    let marker = watch.event();
    assert_eq!(marker["event"], "applied", "{marker}");
    assert_eq!(marker["version"], 3, "{marker}");

    let lines = wait_for_line(&ran, "\"version\":3");
    let ran: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(ran, [first, marker]);
}

#[test]
fn event_json_shapes() {
    let (root, conf) = conf();
    let file = conf.join("app.toml");
    let schema = root.path().join("schema.json");
    fs::write(
        &schema,
        r#"{"properties": {"name": {"type": "string"}, "n": {"type": "integer", "minimum": 0}}}"#,
    )
    .unwrap();
    let watch = Watch::json(&[
        "--restart-required",
        "name",
        "--schema",
        path_str(&schema),
        path_str(&file),
    ]);
    let mut seqs = Vec::new();

    // Other bytes, the same effective config.
    fs::write(&file, "name = 'svc'\nn = 0 # same value, other bytes\n").unwrap();
    let event = watch.event();
    assert_eq!(
        keys(&event),
        [
            "event", "seq", "version", "at", "trigger", "hash", "files", "changed"
        ],
        "{event}"
    );
    assert_eq!(event["event"], "unchanged", "{event}");
    assert_eq!(event["files"], json!([path_str(&file)]), "{event}");
    assert_eq!(
        event["changed"],
        json!([{"file": path_str(&file), "kind": "modified"}]),
        "{event}"
    );
    seqs.push(event["seq"].as_u64().unwrap());

    fs::write(&file, "name = 'other'\nn = 0\n").unwrap();
    let event = watch.event();
    assert_eq!(
        keys(&event),
        [
            "event", "seq", "version", "at", "trigger", "hash", "files", "changed", "changes",
            "pending"
        ],
        "{event}"
    );
    assert_eq!(event["event"], "restart_required", "{event}");
    assert_eq!(event["version"], 1, "{event}");
    assert_eq!(
        event["changes"],
        json!([{"path": "name", "kind": "modified", "old": "svc", "new": "other"}])
    );
    assert_eq!(event["pending"], json!(["name"]), "{event}");
    seqs.push(event["seq"].as_u64().unwrap());

    // Two schema errors, each located and with its config path.
    fs::write(&file, "name = 5\nn = -1\n").unwrap();
    let event = watch.event();
    assert_eq!(
        keys(&event),
        [
            "event", "seq", "version", "at", "trigger", "hash", "files", "changed", "stage",
            "errors"
        ],
        "{event}"
    );
    assert_eq!(event["event"], "rejected", "{event}");
    let mut errors = event["errors"].as_array().unwrap().clone();
    errors.sort_by_key(|error| error["line"].as_u64());
    assert_eq!(errors.len(), 2, "{event}");
    for (error, (line, column, path)) in errors.iter().zip([(1, 8, "name"), (2, 5, "n")]) {
        assert_eq!(
            keys(error),
            ["file", "line", "column", "path", "message"],
            "{event}"
        );
        assert_eq!(
            (
                &error["file"],
                &error["line"],
                &error["column"],
                &error["path"]
            ),
            (
                &json!(path_str(&file)),
                &json!(line),
                &json!(column),
                &json!(path)
            ),
            "{event}"
        );
    }
    seqs.push(event["seq"].as_u64().unwrap());

    fs::write(&file, "name = 'other'\nn = 1\n").unwrap();
    let event = watch.event();
    assert_eq!(
        keys(&event),
        [
            "event",
            "seq",
            "version",
            "at",
            "trigger",
            "hash",
            "files",
            "changed",
            "changes",
            "warnings",
            "pending",
            "elapsed_us"
        ],
        "{event}"
    );
    assert_eq!(event["event"], "applied", "{event}");
    seqs.push(event["seq"].as_u64().unwrap());
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

#[test]
fn events_all_adds_the_detected_event_before_each_attempt() {
    let (_root, conf) = conf();
    let file = conf.join("app.toml");
    let watch = Watch::json(&["--events", "all", path_str(&file)]);
    fs::write(&file, "name = 'svc'\nn = 7\n").unwrap();
    let detected = watch.event();
    assert_eq!(detected["event"], "detected", "{detected}");
    assert_eq!(
        detected["changed"],
        json!([{"file": path_str(&file), "kind": "modified"}]),
        "{detected}"
    );
    let applied = watch.event();
    assert_eq!(applied["event"], "applied", "{applied}");
    assert_eq!(
        applied["seq"].as_u64().unwrap(),
        detected["seq"].as_u64().unwrap() + 1
    );
}

#[test]
fn usage_errors_exit_2() {
    let (_root, conf) = conf();
    let file = conf.join("app.toml");
    for args in [
        &["--bogus", path_str(&file)][..],
        &[],
        &["--debounce", "5", path_str(&file)],
        &["--restart-mode", "later", path_str(&file)],
    ] {
        let watch = Watch::start(args);
        assert_eq!(watch.exit_code(), Some(2), "{args:?}");
    }
}
