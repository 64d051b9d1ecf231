use super::*;

const T0: SystemTime = SystemTime::UNIX_EPOCH;
const REPEAT: Duration = Duration::from_secs(60);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn at(s: u64) -> SystemTime {
    T0 + secs(s)
}

fn rejected(stage: &str, errors: &[&str], s: u64) -> Input {
    Input::Rejected {
        stage: stage.into(),
        errors: errors.iter().map(|e| (*e).to_owned()).collect(),
        failed: Vec::new(),
        at: at(s),
    }
}

fn succeeded(s: u64) -> Input {
    Input::Succeeded {
        failed: Vec::new(),
        at: at(s),
    }
}

fn failure(name: &str, phase: Phase) -> ComponentFailure {
    ComponentFailure {
        name: name.into(),
        phase,
        message: format!("component {name} failed"),
    }
}

fn kinds(notices: &[Notice]) -> Vec<(&'static str, &'static str, Option<&str>)> {
    notices
        .iter()
        .map(|n| {
            let (what, alert) = match n {
                Notice::Firing(a) => ("firing", a),
                Notice::Updated(a) => ("updated", a),
                Notice::Resolved(a) => ("resolved", a),
            };
            (what, alert.kind.as_str(), alert.component.as_deref())
        })
        .collect()
}

#[test]
fn a_rejection_fires_once_and_the_next_success_resolves_it_at_its_time() {
    let mut tracker = Tracker::new("app", REPEAT);
    let notices = tracker.input(rejected("validate", &["a.toml:1:1: x: bad"], 10), secs(0));
    assert_eq!(kinds(&notices), [("firing", "reload", None)]);
    let Notice::Firing(alert) = &notices[0] else {
        unreachable!()
    };
    assert_eq!(
        alert.summary,
        "config app reload rejected at stage validate"
    );
    assert_eq!(alert.description, "a.toml:1:1: x: bad");
    assert_eq!(alert.starts_at, at(10));
    assert_eq!(alert.ends_at, None);
    assert_eq!(tracker.active(), 1);

    // The same rejection again says nothing new.
    let again = tracker.input(rejected("validate", &["a.toml:1:1: x: bad"], 20), secs(5));
    assert!(again.is_empty());

    let notices = tracker.input(succeeded(30), secs(6));
    assert_eq!(kinds(&notices), [("resolved", "reload", None)]);
    let Notice::Resolved(alert) = &notices[0] else {
        unreachable!()
    };
    assert_eq!(alert.starts_at, at(10), "the start is kept");
    assert_eq!(alert.ends_at, Some(at(30)));
    assert_eq!(tracker.active(), 0);
    assert_eq!(tracker.next_due(), None);
    assert!(tracker.input(succeeded(40), secs(7)).is_empty());
}

#[test]
fn another_rejection_while_firing_updates_the_words_and_keeps_the_start() {
    let mut tracker = Tracker::new("app", REPEAT);
    tracker.input(rejected("parse", &["e1"], 10), secs(0));
    let notices = tracker.input(rejected("validate", &["e2"], 20), secs(30));
    assert_eq!(kinds(&notices), [("updated", "reload", None)]);
    let Notice::Updated(alert) = &notices[0] else {
        unreachable!()
    };
    assert_eq!(
        alert.summary,
        "config app reload rejected at stage validate"
    );
    assert_eq!(alert.description, "e2");
    assert_eq!(alert.starts_at, at(10));
    assert_eq!(
        tracker.next_due(),
        Some(secs(90)),
        "an update was just posted"
    );
}

#[test]
fn other_errors_at_the_same_stage_update_the_description_alone() {
    let mut tracker = Tracker::new("app", REPEAT);
    tracker.input(rejected("validate", &["e1"], 10), secs(0));
    let notices = tracker.input(rejected("validate", &["e2"], 20), secs(1));
    assert_eq!(kinds(&notices), [("updated", "reload", None)]);
    let Notice::Updated(alert) = &notices[0] else {
        unreachable!()
    };
    assert_eq!(alert.description, "e2");
    assert_eq!(
        alert.summary,
        "config app reload rejected at stage validate"
    );
}

#[test]
fn firing_alerts_repeat_every_interval_until_resolved() {
    let mut tracker = Tracker::new("app", REPEAT);
    assert_eq!(tracker.next_due(), None);
    tracker.input(rejected("parse", &["e"], 0), secs(100));
    assert_eq!(tracker.next_due(), Some(secs(160)));
    assert!(tracker.due(secs(159)).is_empty());
    let due = tracker.due(secs(160));
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].kind, AlertKind::Reload);
    assert_eq!(due[0].ends_at, None);
    assert_eq!(tracker.next_due(), Some(secs(220)));
    // A late wake-up reschedules from when it happened.
    assert_eq!(tracker.due(secs(300)).len(), 1);
    assert_eq!(tracker.next_due(), Some(secs(360)));
    tracker.input(succeeded(1), secs(301));
    assert!(tracker.due(secs(1000)).is_empty());
}

#[test]
fn each_firing_alert_keeps_its_own_schedule() {
    let mut tracker = Tracker::new("app", REPEAT);
    tracker.input(rejected("parse", &["e"], 0), secs(0));
    tracker.input(
        Input::Watcher {
            error: Some("inotify limit".into()),
            at: at(1),
        },
        secs(30),
    );
    assert_eq!(tracker.next_due(), Some(secs(60)));
    let due = tracker.due(secs(60));
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].kind, AlertKind::Reload);
    assert_eq!(tracker.next_due(), Some(secs(90)));
    let due = tracker.due(secs(90));
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].kind, AlertKind::Watcher);
}

#[test]
fn the_description_lists_the_first_three_errors_on_single_bounded_lines() {
    let long = "y".repeat(400);
    let errors = ["one\ntwo", "e2", long.as_str(), "e4", "e5"];
    let mut tracker = Tracker::new("app", REPEAT);
    let notices = tracker.input(rejected("validate", &errors, 0), secs(0));
    let Notice::Firing(alert) = &notices[0] else {
        unreachable!()
    };
    let lines: Vec<&str> = alert.description.lines().collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0], "one two");
    assert_eq!(lines[1], "e2");
    assert_eq!(lines[2], format!("{}…", "y".repeat(300)));
    assert_eq!(lines[3], "and 2 more");
    assert_eq!(describe(&["a".into(), "b".into(), "c".into()]), "a\nb\nc");
    assert_eq!(line("ééé"), "ééé");
}

#[test]
fn a_prepare_failure_fires_a_component_alert_beside_the_reload_alert() {
    let mut tracker = Tracker::new("app", REPEAT);
    let notices = tracker.input(
        Input::Rejected {
            stage: "prepare".into(),
            errors: vec!["component pool refused".into()],
            failed: vec![failure("pool", Phase::Prepare)],
            at: at(0),
        },
        secs(0),
    );
    assert_eq!(
        kinds(&notices),
        [
            ("firing", "reload", None),
            ("firing", "component", Some("pool"))
        ]
    );
    let Notice::Firing(alert) = &notices[1] else {
        unreachable!()
    };
    assert_eq!(alert.summary, "config app component pool failed to prepare");
    assert_eq!(alert.severity, "warning");
    assert_eq!(tracker.active(), 2);
    // A later rejection at another stage leaves the component alert as it was.
    let notices = tracker.input(rejected("parse", &["e"], 1), secs(1));
    assert_eq!(kinds(&notices), [("updated", "reload", None)]);
    let notices = tracker.input(succeeded(2), secs(2));
    assert_eq!(
        kinds(&notices),
        [
            ("resolved", "reload", None),
            ("resolved", "component", Some("pool"))
        ]
    );
}

#[test]
fn a_commit_panic_fires_while_the_reload_succeeds_and_resolves_when_it_stops() {
    let mut tracker = Tracker::new("app", REPEAT);
    tracker.input(rejected("validate", &["e"], 0), secs(0));
    let notices = tracker.input(
        Input::Succeeded {
            failed: vec![failure("cache", Phase::Commit)],
            at: at(1),
        },
        secs(1),
    );
    assert_eq!(
        kinds(&notices),
        [
            ("resolved", "reload", None),
            ("firing", "component", Some("cache"))
        ]
    );
    let Notice::Firing(alert) = &notices[1] else {
        unreachable!()
    };
    assert_eq!(alert.severity, "critical");
    assert_eq!(alert.summary, "config app component cache failed to commit");
    // Failing again in the next applied reload: still the same alert.
    let notices = tracker.input(
        Input::Succeeded {
            failed: vec![
                failure("cache", Phase::Commit),
                failure("db", Phase::Commit),
            ],
            at: at(2),
        },
        secs(2),
    );
    assert_eq!(kinds(&notices), [("firing", "component", Some("db"))]);
    let notices = tracker.input(
        Input::Succeeded {
            failed: vec![failure("db", Phase::Commit)],
            at: at(3),
        },
        secs(3),
    );
    assert_eq!(kinds(&notices), [("resolved", "component", Some("cache"))]);
    assert_eq!(tracker.active(), 1);
}

#[test]
fn the_watcher_alert_fires_on_an_error_and_resolves_when_healthy() {
    let mut tracker = Tracker::new("svc", REPEAT);
    assert!(
        tracker
            .input(
                Input::Watcher {
                    error: None,
                    at: at(0)
                },
                secs(0)
            )
            .is_empty(),
        "healthy and nothing firing: nothing to say"
    );
    let notices = tracker.input(
        Input::Watcher {
            error: Some("inotify watch limit reached; polling every 1s".into()),
            at: at(1),
        },
        secs(1),
    );
    assert_eq!(kinds(&notices), [("firing", "watcher", None)]);
    let Notice::Firing(alert) = &notices[0] else {
        unreachable!()
    };
    assert_eq!(alert.summary, "config svc file watcher degraded");
    assert_eq!(
        alert.description,
        "inotify watch limit reached; polling every 1s"
    );
    // A successful reload does not mean the watcher is back.
    assert!(tracker.input(succeeded(2), secs(2)).is_empty());
    let notices = tracker.input(
        Input::Watcher {
            error: None,
            at: at(3),
        },
        secs(3),
    );
    assert_eq!(kinds(&notices), [("resolved", "watcher", None)]);
}
