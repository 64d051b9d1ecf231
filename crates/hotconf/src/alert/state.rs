//! Which alerts fire, update, repeat and resolve: a pure state machine. It is given what
//! happened and the time; it owns no thread, clock or socket, so every decision is tested
//! with data.

use std::time::{Duration, SystemTime};

/// How many errors an alert's description lists before "and N more".
const LISTED_ERRORS: usize = 3;
/// Longest line kept from one error message, in characters.
const LINE_CHARS: usize = 300;

/// What an alert is about: the `kind` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AlertKind {
    /// The last reload was rejected; the old config is still live.
    Reload,
    /// A component failed to prepare (the reload was rejected) or to commit (the reload
    /// applied and the component may not have taken it).
    Component,
    /// The file watcher failed, or fell back to polling.
    Watcher,
}

impl AlertKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Reload => "reload",
            Self::Component => "component",
            Self::Watcher => "watcher",
        }
    }

    /// The `alertname` label, what Alertmanager routes and silences on.
    pub(crate) fn alertname(self) -> &'static str {
        match self {
            Self::Reload => "HotconfReloadRejected",
            Self::Component => "HotconfComponentFailed",
            Self::Watcher => "HotconfWatcherDegraded",
        }
    }
}

/// One alert, as both payload shapes need it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Alert {
    pub(crate) kind: AlertKind,
    /// The component's name, on component alerts: part of the alert's identity.
    pub(crate) component: Option<String>,
    pub(crate) severity: &'static str,
    pub(crate) summary: String,
    pub(crate) description: String,
    pub(crate) starts_at: SystemTime,
    /// Set once resolved.
    pub(crate) ends_at: Option<SystemTime>,
}

impl Alert {
    fn same(&self, kind: AlertKind, component: Option<&str>) -> bool {
        self.kind == kind && self.component.as_deref() == component
    }
}

/// The phase a component failed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Prepare,
    Commit,
}

/// A component that failed in one event.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ComponentFailure {
    pub(crate) name: String,
    pub(crate) phase: Phase,
    /// The problem as the engine wrote it (redacted there).
    pub(crate) message: String,
}

/// What happened, reduced to what alerting needs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Input {
    /// A reload was refused at `stage`; `errors` are its located problems, redacted.
    Rejected {
        stage: String,
        errors: Vec<String>,
        failed: Vec<ComponentFailure>,
        at: SystemTime,
    },
    /// A reload went through (applied, unchanged, restart required, the first load);
    /// `failed` are components that panicked while committing.
    Succeeded {
        failed: Vec<ComponentFailure>,
        at: SystemTime,
    },
    /// The watcher reported its state: `error` when it failed or fell back to polling,
    /// `None` when it is healthy (or was stopped on purpose).
    Watcher {
        error: Option<String>,
        at: SystemTime,
    },
}

/// A change to one alert, for the senders.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Notice {
    /// It starts firing: every sink posts it.
    Firing(Alert),
    /// Still firing, with a new summary or description: Alertmanager gets it now.
    Updated(Alert),
    /// It is over (`ends_at` set): every sink posts it.
    Resolved(Alert),
}

struct Active {
    alert: Alert,
    /// When it is re-posted next, on the driver's monotonic clock.
    due: Duration,
}

/// The firing alerts and when each is re-posted.
pub(crate) struct Tracker {
    config: String,
    repeat: Duration,
    active: Vec<Active>,
}

impl Tracker {
    pub(crate) fn new(config: impl Into<String>, repeat: Duration) -> Self {
        Self {
            config: config.into(),
            repeat,
            active: Vec::new(),
        }
    }

    /// Names the config in the summaries of alerts that fire from now on.
    pub(crate) fn set_config(&mut self, name: &str) {
        name.clone_into(&mut self.config);
    }

    /// How many alerts are firing.
    pub(crate) fn active(&self) -> usize {
        self.active.len()
    }

    /// Takes one input at `now` (the driver's monotonic clock) and says what changed.
    pub(crate) fn input(&mut self, input: Input, now: Duration) -> Vec<Notice> {
        let mut notices = Vec::new();
        match input {
            Input::Rejected {
                stage,
                errors,
                failed,
                at,
            } => {
                let alert = Alert {
                    kind: AlertKind::Reload,
                    component: None,
                    severity: "warning",
                    summary: format!("config {} reload rejected at stage {stage}", self.config),
                    description: describe(&errors),
                    starts_at: at,
                    ends_at: None,
                };
                notices.extend(self.raise(alert, now));
                for failure in failed {
                    notices.extend(self.raise(self.component_alert(failure, at), now));
                }
            }
            Input::Succeeded { failed, at } => {
                notices.extend(self.resolve(|alert| alert.kind == AlertKind::Reload, at));
                let names: Vec<String> = failed.iter().map(|f| f.name.clone()).collect();
                notices.extend(self.resolve(
                    |alert| {
                        alert.kind == AlertKind::Component
                            && !names.iter().any(|n| alert.component.as_deref() == Some(n))
                    },
                    at,
                ));
                for failure in failed {
                    notices.extend(self.raise(self.component_alert(failure, at), now));
                }
            }
            Input::Watcher {
                error: Some(error),
                at,
            } => {
                let alert = Alert {
                    kind: AlertKind::Watcher,
                    component: None,
                    severity: "warning",
                    summary: format!("config {} file watcher degraded", self.config),
                    description: line(&error),
                    starts_at: at,
                    ends_at: None,
                };
                notices.extend(self.raise(alert, now));
            }
            Input::Watcher { error: None, at } => {
                notices.extend(self.resolve(|alert| alert.kind == AlertKind::Watcher, at));
            }
        }
        notices
    }

    /// The firing alerts whose repeat time has come at `now`, each rescheduled one repeat
    /// interval later.
    pub(crate) fn due(&mut self, now: Duration) -> Vec<Alert> {
        let repeat = self.repeat;
        self.active
            .iter_mut()
            .filter(|active| active.due <= now)
            .map(|active| {
                active.due = now + repeat;
                active.alert.clone()
            })
            .collect()
    }

    /// When the next repeat is due, if anything fires.
    pub(crate) fn next_due(&self) -> Option<Duration> {
        self.active.iter().map(|active| active.due).min()
    }

    fn component_alert(&self, failure: ComponentFailure, at: SystemTime) -> Alert {
        let (verb, severity) = match failure.phase {
            // The reload was rejected and rolled back: the old config is still whole.
            Phase::Prepare => ("prepare", "warning"),
            // The new config is live but this component may not have taken it.
            Phase::Commit => ("commit", "critical"),
        };
        Alert {
            kind: AlertKind::Component,
            severity,
            summary: format!(
                "config {} component {} failed to {verb}",
                self.config, failure.name
            ),
            description: line(&failure.message),
            component: Some(failure.name),
            starts_at: at,
            ends_at: None,
        }
    }

    /// Fires `alert`, or updates it when it already fires with other words.
    fn raise(&mut self, alert: Alert, now: Duration) -> Option<Notice> {
        let due = now + self.repeat;
        let existing = self
            .active
            .iter_mut()
            .find(|active| active.alert.same(alert.kind, alert.component.as_deref()));
        match existing {
            None => {
                self.active.push(Active {
                    alert: alert.clone(),
                    due,
                });
                Some(Notice::Firing(alert))
            }
            Some(active)
                if active.alert.summary != alert.summary
                    || active.alert.description != alert.description
                    || active.alert.severity != alert.severity =>
            {
                active.alert = Alert {
                    starts_at: active.alert.starts_at,
                    ..alert
                };
                active.due = due;
                Some(Notice::Updated(active.alert.clone()))
            }
            Some(_) => None,
        }
    }

    /// Resolves every firing alert that `which` picks, as of `at`.
    fn resolve(&mut self, which: impl Fn(&Alert) -> bool, at: SystemTime) -> Vec<Notice> {
        let mut resolved = Vec::new();
        self.active.retain(|active| {
            if which(&active.alert) {
                resolved.push(Notice::Resolved(Alert {
                    ends_at: Some(at),
                    ..active.alert.clone()
                }));
                false
            } else {
                true
            }
        });
        resolved
    }
}

/// The first few errors, one per line, and how many more there were.
fn describe(errors: &[String]) -> String {
    let mut lines: Vec<String> = errors.iter().take(LISTED_ERRORS).map(|e| line(e)).collect();
    if errors.len() > LISTED_ERRORS {
        lines.push(format!("and {} more", errors.len() - LISTED_ERRORS));
    }
    lines.join("\n")
}

/// One message on one line, cut at a bounded length.
fn line(message: &str) -> String {
    let flat = message.replace(['\n', '\r'], " ");
    match flat.char_indices().nth(LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
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
}
