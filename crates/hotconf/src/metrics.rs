//! Prometheus-style reload metrics through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! [`ReloaderBuilder::metrics`] adds a [`Metrics`] observer that records every reload
//! attempt. hotconf never installs a recorder: the service installs one (for Prometheus,
//! `metrics-exporter-prometheus`'s `PrometheusBuilder`), **before it builds the reloader**,
//! and serves its handle's text (the admin router's `GET /metrics` does). Without a recorder
//! every call is a no-op.
//!
//! ```
//! use hotconf::Reloader;
//! use hotconf::source::Format;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The service installs its recorder first, e.g.
//! // metrics::set_global_recorder(PrometheusBuilder::new().build_recorder())
//! let reloader = Reloader::<serde_json::Value>::builder()
//!     .defaults(Format::Toml, "rpm = 60\n")
//!     .name("gateway") // the `config` label
//!     .metrics()
//!     .build()?;
//! # let _ = reloader;
//! # Ok(())
//! # }
//! ```
//!
//! Every series exists from the moment the observer is made, at zero, so a rule over a
//! rate or an absent series works from the first scrape. Labels are bounded: a config's
//! name, an outcome, a trigger, a stage and a component's name, never a path, a value, a
//! version or an error's text. Every series has a `config` label (the builder's
//! [`name`](crate::ReloaderBuilder::name), `config` by default), so several reloaders in one
//! process stay apart.
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `hotconf_config_reloads_total` | counter | `config`, `outcome`, `trigger` | reload attempts by outcome (`loaded`, `applied`, `rejected`, `unchanged`, `restart_required`, `deferred`) and trigger (`load`, `reload`, `watch`, `signal`, `apply`, `rollback`, `api`, `source`) |
//! | `hotconf_config_reload_failures_total` | counter | `config`, `stage` | rejected attempts by the stage that refused them: `read`, `parse`, `deserialize`, `validate`, `schema`, `policy`, `timeout`, `prepare`, `commit`, `audit`, `source` |
//! | `hotconf_config_last_reload_successful` | gauge | `config` | 1 when the last attempt succeeded (`loaded`, `applied`, `restart_required` and `unchanged` count as success), 0 after a rejection; a `deferred` attempt leaves it as it was |
//! | `hotconf_config_last_reload_success_timestamp_seconds` | gauge | `config` | Unix time of the last successful attempt |
//! | `hotconf_config_reload_duration_seconds` | histogram | `config` | how long each finished attempt took, from reading the sources to the event (deferred attempts are not timed) |
//! | `hotconf_config_version` | gauge | `config` | the version of the live config |
//! | `hotconf_config_hash` | gauge | `config` | the hash of the live config ([`Event::hash`]) truncated to its low 48 bits, so that a float holds it exactly (as Alertmanager does): a changed value means a changed config |
//! | `hotconf_config_restart_pending` | gauge | `config` | how many restart-required paths wait for a restart |
//! | `hotconf_component_apply_failures_total` | counter | `config`, `component` | a component or resource that failed to prepare (the attempt was rejected) or panicked while committing (a warning of the applied attempt); components the builder knew when `metrics()` was called start at zero, others appear at their first failure |
//! | `hotconf_watch_polling` | gauge | `config` | 1 while the file watcher polls instead of receiving the operating system's events |
//! | `hotconf_alerts_dropped_total` | counter | `config` | alerts the alert sender had to drop (queue full, retries spent) |
//! | `hotconf_audit_write_failures_total` | counter | `config` | audit log records that could not be written |
//!
//! The names of the first two gauges are the ones Prometheus and Caddy use for their own
//! config reloads, so existing alert rules carry over. The duration is a histogram through
//! the facade; `PrometheusBuilder` renders it as a summary unless given buckets, which a
//! rule over several instances needs:
//!
//! ```text
//! PrometheusBuilder::new()
//!     .set_buckets_for_metric(
//!         Matcher::Full(hotconf::metrics::RELOAD_DURATION_SECONDS.into()),
//!         &hotconf::metrics::RELOAD_DURATION_BUCKETS,
//!     )?
//!     .build_recorder()
//! ```
//!
//! # Alert rules
//!
//! ```yaml
//! groups:
//!   - name: hotconf
//!     rules:
//!       - alert: ConfigReloadFailing
//!         expr: max_over_time(hotconf_config_last_reload_successful[5m]) == 0
//!         labels: { severity: warning }
//!         annotations:
//!           summary: "{{ $labels.config }}: every config reload for 5 minutes was rejected; the old config is still live"
//!       - alert: ConfigRestartPending
//!         expr: min_over_time(hotconf_config_restart_pending[1h]) > 0
//!         labels: { severity: info }
//!         annotations:
//!           summary: "{{ $labels.config }}: {{ $value }} config change(s) have waited over an hour for a restart"
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::{Observer, ReloaderBuilder};
use crate::error::{Problem, ProblemKind, Stage};
use crate::event::{Event, Outcome, Trigger};
use crate::trigger::WatcherState;
use crate::validate::Validate;

/// `hotconf_config_reloads_total{config,outcome,trigger}`.
pub const RELOADS_TOTAL: &str = "hotconf_config_reloads_total";
/// `hotconf_config_reload_failures_total{config,stage}`.
pub const RELOAD_FAILURES_TOTAL: &str = "hotconf_config_reload_failures_total";
/// `hotconf_config_last_reload_successful{config}`.
pub const LAST_RELOAD_SUCCESSFUL: &str = "hotconf_config_last_reload_successful";
/// `hotconf_config_last_reload_success_timestamp_seconds{config}`.
pub const LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS: &str =
    "hotconf_config_last_reload_success_timestamp_seconds";
/// `hotconf_config_reload_duration_seconds{config}`.
pub const RELOAD_DURATION_SECONDS: &str = "hotconf_config_reload_duration_seconds";
/// Suggested histogram buckets for [`RELOAD_DURATION_SECONDS`], in seconds: a reload
/// takes a millisecond or two, a slow component or validation up to the 10 s timeout.
pub const RELOAD_DURATION_BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];
/// `hotconf_config_version{config}`.
pub const VERSION: &str = "hotconf_config_version";
/// `hotconf_config_hash{config}`.
pub const HASH: &str = "hotconf_config_hash";
/// `hotconf_config_restart_pending{config}`.
pub const RESTART_PENDING: &str = "hotconf_config_restart_pending";
/// `hotconf_component_apply_failures_total{config,component}`.
pub const COMPONENT_APPLY_FAILURES_TOTAL: &str = "hotconf_component_apply_failures_total";
/// `hotconf_watch_polling{config}`.
pub const WATCH_POLLING: &str = "hotconf_watch_polling";
/// `hotconf_alerts_dropped_total{config}`: incremented by the alert sender
/// ([`alert_dropped`]).
pub const ALERTS_DROPPED_TOTAL: &str = "hotconf_alerts_dropped_total";
/// `hotconf_audit_write_failures_total{config}`: incremented by the audit log
/// ([`audit_write_failed`]).
pub const AUDIT_WRITE_FAILURES_TOTAL: &str = "hotconf_audit_write_failures_total";
/// The label every series carries: the reloader's name.
pub const CONFIG_LABEL: &str = "config";

/// The outcomes that are reload attempts, as `hotconf_config_reloads_total` counts them
/// (not `detected`, which announces an attempt, nor `queued`, which is never sent).
pub const OUTCOMES: [Outcome; 6] = [
    Outcome::Loaded,
    Outcome::Applied,
    Outcome::Rejected,
    Outcome::Unchanged,
    Outcome::RestartRequired,
    Outcome::Deferred,
];

/// Every trigger, as the `trigger` label takes it.
pub const TRIGGERS: [Trigger; 8] = [
    Trigger::Load,
    Trigger::Reload,
    Trigger::Watch,
    Trigger::Signal,
    Trigger::Apply,
    Trigger::Rollback,
    Trigger::Api,
    Trigger::Source,
];

/// Counts one alert the alert sender dropped, for the config named `config`.
pub fn alert_dropped(config: &str) {
    counter!(ALERTS_DROPPED_TOTAL, CONFIG_LABEL => config.to_owned()).increment(1);
}

/// Counts one audit record that could not be written, for the config named `config`.
pub fn audit_write_failed(config: &str) {
    counter!(AUDIT_WRITE_FAILURES_TOTAL, CONFIG_LABEL => config.to_owned()).increment(1);
}

/// The observer that records the reload metrics of one config (see the [module
/// docs](self) for the series). Usually added with [`ReloaderBuilder::metrics`].
///
/// Making one describes every series and registers it at zero in the recorder installed
/// at that moment: install the recorder first.
#[derive(Debug)]
pub struct Metrics {
    config: String,
}

impl Metrics {
    /// Metrics labelled `config = config_label`.
    pub fn new(config_label: impl Into<String>) -> Self {
        Self::with_components(config_label, Vec::<String>::new())
    }

    /// Metrics labelled `config = config_label`, with the apply failures of these
    /// components registered at zero.
    pub fn with_components<I, S>(config_label: impl Into<String>, components: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let metrics = Self {
            config: config_label.into(),
        };
        describe();
        metrics.register(components.into_iter().map(Into::into));
        metrics
    }

    /// The `config` label.
    pub fn config(&self) -> &str {
        &self.config
    }

    fn label(&self) -> String {
        self.config.clone()
    }

    /// Every series at zero.
    fn register(&self, components: impl Iterator<Item = String>) {
        for outcome in OUTCOMES {
            for trigger in TRIGGERS {
                counter!(RELOADS_TOTAL, CONFIG_LABEL => self.label(), "outcome" => outcome.as_str(), "trigger" => trigger.as_str()).absolute(0);
            }
        }
        for stage in Stage::ALL {
            counter!(RELOAD_FAILURES_TOTAL, CONFIG_LABEL => self.label(), "stage" => stage.as_str())
                .absolute(0);
        }
        for component in components {
            counter!(COMPONENT_APPLY_FAILURES_TOTAL, CONFIG_LABEL => self.label(), "component" => component)
                .absolute(0);
        }
        for name in [
            LAST_RELOAD_SUCCESSFUL,
            LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS,
            VERSION,
            HASH,
            RESTART_PENDING,
            WATCH_POLLING,
        ] {
            gauge!(name, CONFIG_LABEL => self.label()).set(0.0);
        }
        for name in [ALERTS_DROPPED_TOTAL, AUDIT_WRITE_FAILURES_TOTAL] {
            counter!(name, CONFIG_LABEL => self.label()).absolute(0);
        }
        // Registered without a sample: the exporter shows a count of 0.
        let _ = histogram!(RELOAD_DURATION_SECONDS, CONFIG_LABEL => self.label());
    }
}

/// Describes every series (help text and unit). Describing again is harmless.
fn describe() {
    describe_counter!(
        RELOADS_TOTAL,
        Unit::Count,
        "Config reload attempts, by outcome and by what triggered them."
    );
    describe_counter!(
        RELOAD_FAILURES_TOTAL,
        Unit::Count,
        "Rejected config reload attempts, by the stage that refused them; the old config stayed live."
    );
    describe_gauge!(
        LAST_RELOAD_SUCCESSFUL,
        "Whether the last config reload attempt succeeded (1) or was rejected (0)."
    );
    describe_gauge!(
        LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS,
        Unit::Seconds,
        "Unix time of the last successful config reload attempt."
    );
    describe_histogram!(
        RELOAD_DURATION_SECONDS,
        Unit::Seconds,
        "How long config reload attempts took, from reading the sources to the event."
    );
    describe_gauge!(VERSION, "Version of the live config.");
    describe_gauge!(
        HASH,
        "Hash of the live config, its low 48 bits: a new value means a new config."
    );
    describe_gauge!(
        RESTART_PENDING,
        Unit::Count,
        "Restart-required config paths whose new value waits for a restart."
    );
    describe_counter!(
        COMPONENT_APPLY_FAILURES_TOTAL,
        Unit::Count,
        "Components that failed to prepare or commit a new config, by component."
    );
    describe_gauge!(
        WATCH_POLLING,
        "Whether the config file watcher polls (1) instead of receiving file events (0)."
    );
    describe_counter!(
        ALERTS_DROPPED_TOTAL,
        Unit::Count,
        "Config alerts dropped: the queue was full or the retries were spent."
    );
    describe_counter!(
        AUDIT_WRITE_FAILURES_TOTAL,
        Unit::Count,
        "Config audit log records that could not be written."
    );
}

impl Observer for Metrics {
    fn observe(&self, event: &Event) {
        if !is_attempt(event.outcome) {
            return;
        }
        counter!(RELOADS_TOTAL, CONFIG_LABEL => self.label(), "outcome" => event.outcome.as_str(), "trigger" => event.trigger.as_str())
            .increment(1);
        gauge!(VERSION, CONFIG_LABEL => self.label()).set(event.version as f64);
        gauge!(HASH, CONFIG_LABEL => self.label()).set(hash_value(event.hash));
        if event.outcome != Outcome::Deferred {
            histogram!(RELOAD_DURATION_SECONDS, CONFIG_LABEL => self.label())
                .record(event.elapsed.as_secs_f64());
        }
        match successful(event.outcome) {
            Some(true) => {
                gauge!(LAST_RELOAD_SUCCESSFUL, CONFIG_LABEL => self.label()).set(1.0);
                gauge!(LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS, CONFIG_LABEL => self.label())
                    .set(unix_seconds(event.at));
                // The sources were read and compared: the pending list is current.
                gauge!(RESTART_PENDING, CONFIG_LABEL => self.label())
                    .set(event.pending.len() as f64);
            }
            Some(false) => {
                gauge!(LAST_RELOAD_SUCCESSFUL, CONFIG_LABEL => self.label()).set(0.0);
                if let Some(stage) = failure_stage(event) {
                    counter!(RELOAD_FAILURES_TOTAL, CONFIG_LABEL => self.label(), "stage" => stage.as_str())
                        .increment(1);
                }
            }
            None => {}
        }
        for component in failed_components(event) {
            counter!(COMPONENT_APPLY_FAILURES_TOTAL, CONFIG_LABEL => self.label(), "component" => component.to_owned())
                .increment(1);
        }
    }

    fn watcher(&self, state: &WatcherState) {
        gauge!(WATCH_POLLING, CONFIG_LABEL => self.label()).set(polling_value(state));
    }
}

impl<T> ReloaderBuilder<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    /// Records this config's reload metrics through the `metrics` facade, labelled with its
    /// [`name`](Self::name) (see [`crate::metrics`]). Call it after
    /// [`name`](Self::name) and after adding the components: those known now start at zero.
    /// Install the service's recorder before.
    #[must_use]
    pub fn metrics(self) -> Self {
        let metrics = Metrics::with_components(self.config_name(), self.component_names());
        self.observer(metrics)
    }
}

/// Whether an outcome is a reload attempt that the metrics count.
pub(crate) fn is_attempt(outcome: Outcome) -> bool {
    OUTCOMES.contains(&outcome)
}

/// What an outcome does to `hotconf_config_last_reload_successful`: `Some(true)` sets it
/// to 1, `Some(false)` to 0, `None` leaves it (a deferred attempt has not run yet).
pub(crate) fn successful(outcome: Outcome) -> Option<bool> {
    match outcome {
        Outcome::Loaded | Outcome::Applied | Outcome::RestartRequired | Outcome::Unchanged => {
            Some(true)
        }
        Outcome::Rejected => Some(false),
        Outcome::Deferred | Outcome::Detected | Outcome::Queued => None,
    }
}

/// The stage a rejected event is counted under: the event's own, else its first error's.
pub(crate) fn failure_stage(event: &Event) -> Option<Stage> {
    event
        .stage
        .or_else(|| event.errors.first().map(|problem| problem.kind.stage()))
}

/// The named components a rejected event's errors (prepare failures) or an applied
/// event's warnings (commit panics) blame, once per problem.
pub(crate) fn failed_components(event: &Event) -> impl Iterator<Item = &str> {
    let problems: &[Problem] = match event.outcome {
        Outcome::Rejected => &event.errors,
        Outcome::Applied | Outcome::Loaded => &event.warnings,
        _ => &[],
    };
    problems
        .iter()
        .filter(|problem| problem.kind == ProblemKind::Component)
        .filter_map(|problem| problem.component.as_deref())
}

/// `hotconf_watch_polling`: 1 while a running watcher polls.
pub(crate) fn polling_value(state: &WatcherState) -> f64 {
    if state.watching && state.polling {
        1.0
    } else {
        0.0
    }
}

/// The hash gauge's value: the low 48 bits, which an f64 holds exactly.
pub(crate) fn hash_value(hash: u64) -> f64 {
    (hash & 0xFFFF_FFFF_FFFF) as f64
}

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_set_last_reload_successful() {
        let cases = [
            (Outcome::Loaded, Some(true)),
            (Outcome::Applied, Some(true)),
            (Outcome::RestartRequired, Some(true)),
            (Outcome::Unchanged, Some(true)),
            (Outcome::Rejected, Some(false)),
            (Outcome::Deferred, None),
            (Outcome::Detected, None),
            (Outcome::Queued, None),
        ];
        for (outcome, expected) in cases {
            assert_eq!(successful(outcome), expected, "{outcome}");
        }
    }

    #[test]
    fn only_attempts_are_counted() {
        for outcome in OUTCOMES {
            assert!(is_attempt(outcome), "{outcome}");
        }
        assert!(!is_attempt(Outcome::Detected));
        assert!(!is_attempt(Outcome::Queued));
    }

    #[test]
    fn every_trigger_has_a_label() {
        // A new trigger fails to compile here until it is added to TRIGGERS.
        for trigger in TRIGGERS {
            match trigger {
                Trigger::Load
                | Trigger::Reload
                | Trigger::Watch
                | Trigger::Signal
                | Trigger::Apply
                | Trigger::Rollback
                | Trigger::Api
                | Trigger::Source => {}
            }
        }
        let labels: Vec<&str> = TRIGGERS.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            labels,
            [
                "load", "reload", "watch", "signal", "apply", "rollback", "api", "source"
            ]
        );
    }

    #[test]
    fn stage_labels_are_the_documented_ones() {
        let labels: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            labels,
            [
                "read",
                "parse",
                "deserialize",
                "validate",
                "schema",
                "policy",
                "timeout",
                "prepare",
                "commit",
                "audit",
                "source"
            ]
        );
    }

    #[test]
    fn failure_stage_is_the_event_s_else_its_first_error_s() {
        let mut event = Event::new(Outcome::Rejected, 1, Trigger::Reload, Vec::new());
        assert_eq!(failure_stage(&event), None);
        event.errors = vec![
            Problem::error(ProblemKind::Syntax, "bad"),
            Problem::error(ProblemKind::Validation, "worse"),
        ];
        assert_eq!(failure_stage(&event), Some(Stage::Parse));
        event.stage = Some(Stage::Audit);
        assert_eq!(failure_stage(&event), Some(Stage::Audit));
    }

    #[test]
    fn components_are_blamed_from_errors_of_rejections_and_warnings_of_applies() {
        let named = |name: &str| {
            let mut problem = Problem::error(ProblemKind::Component, "refused");
            problem.component = Some(name.into());
            problem
        };
        let unnamed = Problem::error(ProblemKind::Component, "refused");
        let mut callback = Problem::error(ProblemKind::Callback, "panicked");
        callback.component = Some("not-a-component".into());

        let mut rejected = Event::new(Outcome::Rejected, 1, Trigger::Reload, Vec::new());
        rejected.errors = vec![named("pool"), unnamed.clone(), callback.clone()];
        rejected.warnings = vec![named("ignored")];
        assert_eq!(failed_components(&rejected).collect::<Vec<_>>(), ["pool"]);

        let mut applied = Event::new(Outcome::Applied, 2, Trigger::Reload, Vec::new());
        applied.warnings = vec![named("router"), named("router"), unnamed, callback];
        applied.errors = vec![named("ignored")];
        assert_eq!(
            failed_components(&applied).collect::<Vec<_>>(),
            ["router", "router"]
        );

        let mut unchanged = Event::new(Outcome::Unchanged, 2, Trigger::Reload, Vec::new());
        unchanged.warnings = vec![named("x")];
        assert_eq!(failed_components(&unchanged).count(), 0);
    }

    #[test]
    fn only_a_running_watcher_that_polls_counts_as_polling() {
        let cases = [
            (true, true, 1.0),
            (true, false, 0.0),
            (false, true, 0.0),
            (false, false, 0.0),
        ];
        for (watching, polling, expected) in cases {
            let state = WatcherState::new(watching, polling, None);
            assert_eq!(polling_value(&state), expected, "{watching} {polling}");
        }
    }

    #[test]
    fn hash_keeps_the_low_48_bits_exactly() {
        let cases = [
            (0, 0.0),
            (1, 1.0),
            (0xFFFF_FFFF_FFFF, 281_474_976_710_655.0),
            (0xFFFF_0000_0000_0001, 1.0),
            (0x1234_5678_9ABC_DEF0, 95_075_992_133_360.0),
        ];
        for (hash, expected) in cases {
            assert_eq!(hash_value(hash), expected, "{hash:016x}");
            assert_eq!(hash_value(hash) as u64, hash & 0xFFFF_FFFF_FFFF, "exact");
        }
    }

    #[test]
    fn timestamps_are_unix_seconds() {
        assert_eq!(unix_seconds(UNIX_EPOCH), 0.0);
        let at = UNIX_EPOCH + std::time::Duration::from_millis(1_500);
        assert_eq!(unix_seconds(at), 1.5);
        assert_eq!(
            unix_seconds(UNIX_EPOCH - std::time::Duration::from_secs(1)),
            0.0
        );
    }
}
