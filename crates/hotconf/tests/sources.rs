//! Directory sources as operators use them: every file deleted, a file replaced by a
//! directory, editor lock files, one section per file; and validation rules that name a
//! path the config does not have.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use hotconf::source::Dir;
use hotconf::{Outcome, Reloader, Report, Validate};
use serde::{Deserialize, Serialize};
use serde_json::json;

type Json = serde_json::Value;

#[test]
fn a_directory_whose_files_are_all_gone_is_rejected_and_the_last_config_stays() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf.d");
    fs::create_dir(&conf).unwrap();
    fs::write(conf.join("app.toml"), "rpm = 60\n").unwrap();
    let reloader = Reloader::<Json>::builder()
        .source(Dir::new(&conf).glob("*.toml"))
        .build()
        .unwrap();

    fs::remove_file(conf.join("app.toml")).unwrap();
    let error = reloader.reload().unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("conf.d: no file matching `*.toml` in this directory"),
        "{text}"
    );
    assert_eq!(*reloader.current().config(), json!({"rpm": 60}));

    // The only file replaced by a directory of the same name: still no file.
    fs::create_dir(conf.join("app.toml")).unwrap();
    assert!(reloader.reload().is_err());
    assert_eq!(reloader.current().version(), 1);

    // A file back: applied.
    fs::write(conf.join("b.toml"), "rpm = 70\n").unwrap();
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Applied);
    assert_eq!(*reloader.current().config(), json!({"rpm": 70}));
}

#[test]
fn an_empty_directory_fails_the_first_load_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let error = Reloader::<Json>::builder()
        .source(Dir::new(dir.path()))
        .build()
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no file matching `*.{toml,yaml,yml,json}`"),
        "{error}"
    );
    let reloader = Reloader::<Json>::builder()
        .defaults(hotconf::source::Format::Toml, "rpm = 1")
        .source(Dir::new(dir.path()).allow_no_files(true))
        .build()
        .unwrap();
    assert_eq!(*reloader.current().config(), json!({"rpm": 1}));
}

#[test]
fn lock_files_starting_with_a_tilde_are_litter() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("app.toml"), "rpm = 60\n").unwrap();
    fs::write(dir.path().join("~app.toml"), "rpm = \n").unwrap();
    fs::write(dir.path().join("~$app.toml"), "broken =").unwrap();
    let reloader = Reloader::<Json>::builder()
        .source(Dir::new(dir.path()))
        .build()
        .unwrap();
    assert_eq!(reloader.current().origins().len(), 1);
    assert_eq!(*reloader.current().config(), json!({"rpm": 60}));
}

#[derive(Debug, Deserialize, Serialize)]
struct Sections {
    rate_limits: RateLimits,
    features: serde_json::Map<String, Json>,
}

#[derive(Debug, Deserialize, Serialize)]
struct RateLimits {
    default: Limit,
}

#[derive(Debug, Deserialize, Serialize)]
struct Limit {
    rpm: u32,
}

impl Validate for Sections {
    fn validate(&self, report: &mut Report) {
        if self.rate_limits.default.rpm == 0 {
            report.error("rate_limits.default.rpm", "must be greater than 0");
        }
    }
}

#[test]
fn each_file_can_hold_the_section_named_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let limits = dir.path().join("rate_limits.yaml");
    fs::write(&limits, "default:\n  rpm: 60\n").unwrap();
    fs::write(dir.path().join("features.toml"), "beta = true\n").unwrap();
    let reloader = Reloader::<Sections>::builder()
        .source(Dir::new(dir.path()).sections(true))
        .build()
        .unwrap();
    assert_eq!(reloader.current().rate_limits.default.rpm, 60);
    assert_eq!(reloader.current().features["beta"], json!(true));

    fs::write(&limits, "default:\n  rpm: 0\n").unwrap();
    let error = reloader.reload().unwrap_err();
    assert_eq!(
        error.problems()[0].to_string(),
        format!(
            "{}:2:8: rate_limits.default.rpm: must be greater than 0",
            limits.display()
        )
    );
    fs::write(&limits, "default:\n  rpm: 90\n").unwrap();
    let event = reloader.reload().unwrap();
    assert_eq!(
        event.changes[0].to_string(),
        "~ rate_limits.default.rpm: 60 -> 90"
    );
}

#[derive(Debug, Deserialize, Serialize)]
struct Typo {
    limits: Limit,
}

impl Validate for Typo {
    fn validate(&self, report: &mut Report) {
        // The service's rule names a path the config does not have.
        report.error("limits.rsp", "must be below 1000");
    }
}

#[test]
fn a_rule_about_a_path_the_config_does_not_have_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "[limits]\nrpm = 60\n").unwrap();
    let error = Reloader::<Typo>::builder().file(&path).build().unwrap_err();
    let problem = &error.problems()[0];
    assert_eq!(
        problem.message,
        "must be below 1000 (`limits.rsp` is not set in the config)"
    );
    assert_eq!(problem.path.as_ref().unwrap().to_string(), "limits.rsp");
    // A failed first load does not pretend an earlier config was kept.
    assert!(
        error.to_string().starts_with("config rejected:\n"),
        "{error}"
    );
}

#[test]
fn a_file_that_cannot_be_read_is_named_in_the_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "rpm = 60\n").unwrap();
    let reloader = Reloader::<Json>::builder().file(&path).build().unwrap();
    let mut events = reloader.events();
    fs::remove_file(&path).unwrap();
    let error = reloader.reload().unwrap_err();
    assert_eq!(error.problems()[0].file.as_deref(), path.to_str());
    let rejected = events.try_recv().unwrap();
    assert_eq!(rejected.outcome, Outcome::Rejected);
    assert_eq!(rejected.files, [path.display().to_string()]);
    // A dry run of the same says the same.
    let plan = reloader.plan();
    assert_eq!(plan.outcome, Outcome::Rejected);
    assert_eq!(plan.files, [path.display().to_string()]);
}
