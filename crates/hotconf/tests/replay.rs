//! An explicit reload of bytes already applied repeats the last clean outcome without
//! running the pipeline, and runs it whenever that outcome may no longer hold.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hotconf::{
    Change, Component, Outcome, PrepareError, Reloader, Report, Staged, Validate, staged,
};
use serde::{Deserialize, Serialize};

/// How many times each `rpm` was validated. Every test uses rpm values of its own, so the
/// counts stay apart when tests run on threads of one process.
static VALIDATED: Mutex<BTreeMap<u32, usize>> = Mutex::new(BTreeMap::new());

fn validated(rpm: u32) -> usize {
    VALIDATED.lock().unwrap().get(&rpm).copied().unwrap_or(0)
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
struct Config {
    rpm: u32,
    #[serde(default)]
    listen: String,
}

impl Validate for Config {
    fn validate(&self, report: &mut Report) {
        *VALIDATED.lock().unwrap().entry(self.rpm).or_default() += 1;
        if self.rpm > 1000 {
            report.warning("rpm", "more than 1000 requests a minute");
        }
        if self.rpm == 0 {
            report.error("rpm", "must be positive");
        }
    }
}

/// Refuses to prepare an rpm of 13, and counts its prepares.
struct Picky(Arc<AtomicUsize>);

impl Component<Config> for Picky {
    fn name(&self) -> &str {
        "picky"
    }

    fn prepare(
        &self,
        _old: Option<&Config>,
        new: &Config,
        _changes: &[Change],
    ) -> Result<Box<dyn Staged>, PrepareError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if new.rpm == 13 {
            return Err("13 is unlucky".into());
        }
        Ok(staged(|| {}))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    prepares: Arc<AtomicUsize>,
    reloader: Reloader<Config>,
}

impl Fixture {
    fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.toml");
        fs::write(&path, text).unwrap();
        let prepares = Arc::new(AtomicUsize::new(0));
        let reloader = Reloader::<Config>::builder()
            .file(&path)
            .restart_required("listen")
            .component(Picky(Arc::clone(&prepares)))
            .build()
            .unwrap();
        Self {
            _dir: dir,
            path,
            prepares,
            reloader,
        }
    }

    fn write(&self, text: &str) {
        fs::write(&self.path, text).unwrap();
    }

    /// The rpm in the file.
    fn rpm(&self) -> u32 {
        let text = fs::read_to_string(&self.path).unwrap();
        let line = text.lines().find(|l| l.starts_with("rpm")).unwrap();
        line.split('=').nth(1).unwrap().trim().parse().unwrap()
    }

    /// Reloads; returns the outcome, whether the file's config was validated, and how many
    /// prepares ran.
    fn reload(&self) -> (Outcome, bool, usize) {
        let before = validated(self.rpm());
        let prepares = self.prepares.load(Ordering::SeqCst);
        let outcome = match self.reloader.reload() {
            Ok(event) => event.outcome,
            Err(_) => Outcome::Rejected,
        };
        (
            outcome,
            validated(self.rpm()) != before,
            self.prepares.load(Ordering::SeqCst) - prepares,
        )
    }
}

#[test]
fn same_bytes_after_a_clean_attempt_repeat_its_outcome_without_the_pipeline() {
    let fixture = Fixture::new("rpm = 1200\n");
    // The first reload after the load runs the pipeline: unchanged, with the warning.
    let event = fixture.reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Unchanged);
    assert_eq!(event.warnings.len(), 1);
    // The same bytes again: the same outcome and warning, and validation did not run.
    let before = validated(1200);
    let again = fixture.reloader.reload().unwrap();
    assert_eq!(validated(1200), before, "the pipeline ran");
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert_eq!(again.version, 1);
    assert_eq!(again.warnings, event.warnings);
    assert_eq!(again.files, event.files);
    assert_eq!(again.revisions, event.revisions);
    assert!(again.seq > event.seq);
    // New bytes run it.
    fixture.write("rpm = 1300\n");
    assert_eq!(fixture.reload(), (Outcome::Applied, true, 1));
    assert_eq!(fixture.reload(), (Outcome::Unchanged, false, 0));
}

#[test]
fn held_restart_changes_are_reported_again_as_pending() {
    let fixture = Fixture::new("rpm = 10\nlisten = \"a\"\n");
    fixture.write("rpm = 20\nlisten = \"b\"\n");
    let applied = fixture.reloader.reload().unwrap();
    assert_eq!(applied.outcome, Outcome::Applied);
    assert_eq!(applied.pending.len(), 1);
    let before = validated(20);
    let again = fixture.reloader.reload().unwrap();
    assert_eq!(validated(20), before, "the pipeline ran");
    assert_eq!(again.outcome, Outcome::RestartRequired);
    assert_eq!(again.pending, applied.pending);
    let changes: Vec<String> = again.changes.iter().map(ToString::to_string).collect();
    assert_eq!(changes, ["~ listen: \"a\" -> \"b\""]);
    assert_eq!(fixture.reloader.current().rpm, 20);
}

#[test]
fn a_rejected_attempt_runs_again() {
    let fixture = Fixture::new("rpm = 30\n");
    assert_eq!(fixture.reload(), (Outcome::Unchanged, true, 0));
    fixture.write("rpm = 0\n");
    assert_eq!(fixture.reload(), (Outcome::Rejected, true, 0));
    assert_eq!(fixture.reload(), (Outcome::Rejected, true, 0));
    // A component's refusal too.
    fixture.write("rpm = 13\n");
    assert_eq!(fixture.reload(), (Outcome::Rejected, true, 1));
    assert_eq!(fixture.reload(), (Outcome::Rejected, true, 1));
    assert_eq!(fixture.reloader.current().rpm, 30);
}

#[test]
fn after_a_programmatic_change_the_sources_win_again() {
    let fixture = Fixture::new("rpm = 40\n");
    assert_eq!(fixture.reload(), (Outcome::Unchanged, true, 0));
    fixture
        .reloader
        .apply(Config {
            rpm: 41,
            listen: String::new(),
        })
        .unwrap();
    assert_eq!(fixture.reload(), (Outcome::Applied, true, 1));
    assert_eq!(fixture.reloader.current().rpm, 40);
    // A rollback moves away from the files too.
    fixture.reloader.rollback_to(2).unwrap();
    assert_eq!(fixture.reloader.current().rpm, 41);
    assert_eq!(fixture.reload(), (Outcome::Applied, true, 1));
    assert_eq!(fixture.reloader.current().rpm, 40);
    assert_eq!(fixture.reload(), (Outcome::Unchanged, false, 0));
}
