//! Component dependencies (seed 001: a change to the loops also re-prepares limits and
//! templates): a component prepares after those it depends on and again whenever they do;
//! and what a failed abort makes of a rejection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use hotconf::source::{Defaults, Format};
use hotconf::{Change, Component, Error, PrepareError, Reloader, Staged, staged};

type Json = serde_json::Value;

/// Records the order components prepare and commit in.
struct Recorder {
    name: &'static str,
    paths: Vec<String>,
    depends_on: Vec<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Component<Json> for Recorder {
    fn name(&self) -> &str {
        self.name
    }

    fn paths(&self) -> Vec<String> {
        self.paths.clone()
    }

    fn depends_on(&self) -> Vec<String> {
        self.depends_on.clone()
    }

    fn prepare(
        &self,
        _old: Option<&Json>,
        _new: &Json,
        _changes: &[Change],
    ) -> Result<Box<dyn Staged>, PrepareError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("prepare {}", self.name));
        let (log, name) = (Arc::clone(&self.log), self.name);
        Ok(staged(move || {
            log.lock().unwrap().push(format!("commit {name}"))
        }))
    }
}

fn recorder(
    name: &'static str,
    paths: &[&str],
    depends_on: &[&str],
    log: &Arc<Mutex<Vec<String>>>,
) -> Recorder {
    Recorder {
        name,
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
        log: Arc::clone(log),
    }
}

#[test]
fn dependents_prepare_after_and_again_with_what_they_depend_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    std::fs::write(
        &path,
        "[loops]\nn = 1\n[limits]\nrpm = 1\n[templates]\nt = 1\n[other]\nx = 1\n",
    )
    .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    // Registered before what they depend on: the order comes from the dependencies.
    let reloader = Reloader::<Json>::builder()
        .file(&path)
        .component(recorder("templates", &["templates.**"], &["limits"], &log))
        .component(recorder("limits", &["limits.**"], &["loops"], &log))
        .component(recorder("loops", &["loops.**"], &[], &log))
        .component(recorder("other", &["other.**"], &[], &log))
        .build()
        .unwrap();
    let first: Vec<String> = log.lock().unwrap().drain(..).collect();
    assert_eq!(
        first,
        [
            "prepare loops",
            "prepare limits",
            "prepare templates",
            "prepare other",
            "commit loops",
            "commit limits",
            "commit templates",
            "commit other",
        ]
    );

    // A change to the loops re-prepares limits and templates, not the unrelated one.
    std::fs::write(
        &path,
        "[loops]\nn = 2\n[limits]\nrpm = 1\n[templates]\nt = 1\n[other]\nx = 1\n",
    )
    .unwrap();
    assert_eq!(reloader.plan().components, ["loops", "limits", "templates"]);
    reloader.reload().unwrap();
    let second: Vec<String> = log.lock().unwrap().drain(..).collect();
    assert_eq!(
        second,
        [
            "prepare loops",
            "prepare limits",
            "prepare templates",
            "commit loops",
            "commit limits",
            "commit templates",
        ]
    );

    // A change to templates alone prepares templates alone.
    std::fs::write(
        &path,
        "[loops]\nn = 2\n[limits]\nrpm = 1\n[templates]\nt = 2\n[other]\nx = 1\n",
    )
    .unwrap();
    reloader.reload().unwrap();
    let third: Vec<String> = log.lock().unwrap().drain(..).collect();
    assert_eq!(third, ["prepare templates", "commit templates"]);
    assert_eq!(reloader.plan().components, Vec::<String>::new());
}

#[test]
fn the_builders_debug_lists_components_with_their_paths() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let builder = Reloader::<Json>::builder()
        .defaults(Format::Toml, "a = 1")
        .component(recorder("limits", &["limits.**"], &[], &log));
    let text = format!("{builder:?}");
    assert!(
        text.contains(r#"components: [("limits", [Pattern"#),
        "{text}"
    );
}

#[test]
fn unknown_dependencies_and_cycles_fail_the_build() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let error = Reloader::<Json>::builder()
        .defaults(Format::Toml, "a = 1")
        .component(recorder("a", &["**"], &["missing"], &log))
        .build()
        .unwrap_err();
    assert!(matches!(error, Error::InvalidOption { .. }));
    assert!(
        error
            .to_string()
            .contains("component 'a' depends on 'missing', which is not registered"),
        "{error}"
    );
    let error = Reloader::<Json>::builder()
        .source(Defaults::text(Format::Toml, "a = 1"))
        .component(recorder("a", &["**"], &["b"], &log))
        .component(recorder("b", &["**"], &["a"], &log))
        .build()
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("components depend on each other: a -> b -> a"),
        "{error}"
    );
    assert!(log.lock().unwrap().is_empty(), "nothing prepared");
}

/// Prepares, then panics when told to abort.
struct BadAbort;

struct PanicsOnAbort;

impl Staged for PanicsOnAbort {
    fn commit(self: Box<Self>) {}

    fn abort(self: Box<Self>) {
        panic!("abort bug");
    }
}

impl Component<Json> for BadAbort {
    fn name(&self) -> &str {
        "bad-abort"
    }

    fn prepare(
        &self,
        _old: Option<&Json>,
        _new: &Json,
        _changes: &[Change],
    ) -> Result<Box<dyn Staged>, PrepareError> {
        Ok(Box::new(PanicsOnAbort))
    }
}

/// Refuses any config whose `ok` is false.
struct Refuser;

impl Component<Json> for Refuser {
    fn name(&self) -> &str {
        "refuser"
    }

    fn prepare(
        &self,
        _old: Option<&Json>,
        new: &Json,
        _changes: &[Change],
    ) -> Result<Box<dyn Staged>, PrepareError> {
        if new["ok"] == false {
            return Err("not ok".into());
        }
        Ok(staged(|| {}))
    }
}

#[test]
fn an_abort_that_panics_is_a_rollback_failure_not_a_plain_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    std::fs::write(&path, "ok = true\n").unwrap();
    let reloader = Reloader::<Json>::builder()
        .file(&path)
        .component(BadAbort)
        .component(Refuser)
        .build()
        .unwrap();
    std::fs::write(&path, "ok = false\n").unwrap();
    match reloader.reload().unwrap_err() {
        Error::RollbackFailed { problems, failures } => {
            assert_eq!(
                problems.0[0].message,
                "component 'refuser' refused the config: not ok"
            );
            assert_eq!(
                failures,
                ["component 'bad-abort' panicked while aborting: abort bug"]
            );
        }
        other => panic!("expected a rollback failure: {other}"),
    }
    assert_eq!(reloader.current().version(), 1, "the old config stays");
    // Without a failing abort the same refusal is a plain rejection.
    std::fs::write(&path, "ok = true\n").unwrap();
    let plain = Reloader::<Json>::builder()
        .file(&path)
        .component(Refuser)
        .build()
        .unwrap();
    std::fs::write(&path, "ok = false\n").unwrap();
    assert!(matches!(plain.reload().unwrap_err(), Error::Invalid(_)));
}
