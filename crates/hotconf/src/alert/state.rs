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
mod tests;
