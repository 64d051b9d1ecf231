//! Planning: what applying a config would do — validation, diff, classification, the
//! restart-required part held back — computed with no side effects.
//!
//! The engine applies a [`Draft`]; [`Reloader::plan`](crate::Reloader::plan) only reports it.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::diff::{Change, apply, diff};
use crate::error::{Problem, ProblemKind, Problems};
use crate::event::Outcome;
use crate::layer::Layers;
use crate::path::ConfigPath;
use crate::policy::{Policy, RestartMode, Rule};
use crate::validate::{self, Validate};

/// What applying a config would do, ready to be swapped in.
#[derive(Debug)]
pub(crate) struct Draft<T> {
    /// The config to install: the new one, with restart-required paths kept at their old
    /// values when some changed.
    pub(crate) config: T,
    /// `config` as plain JSON.
    pub(crate) effective: serde_json::Value,
    /// The changes that apply now, not redacted.
    pub(crate) changes: Vec<Change>,
    /// Restart-required changes held back, not redacted.
    pub(crate) held: Vec<Change>,
    /// Warnings of validation.
    pub(crate) warnings: Vec<Problem>,
}

impl<T> Draft<T> {
    /// The restart-required paths whose new value waits for a restart.
    pub(crate) fn pending(&self) -> Vec<ConfigPath> {
        self.held.iter().map(|c| c.path.clone()).collect()
    }
}

/// The dry-run view of a reload: what it would change and how, and what would stop it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Plan {
    /// What the reload would do: applied, unchanged, restart required or rejected.
    pub outcome: Outcome,
    /// Every difference between the effective config and the sources, with its rule;
    /// secrets redacted.
    pub changes: Vec<PlannedChange>,
    /// Restart-required paths that would be pending afterwards.
    pub pending: Vec<ConfigPath>,
    /// The components that would be asked to prepare.
    pub components: Vec<String>,
    /// Why the reload would be rejected.
    pub errors: Vec<Problem>,
    /// Warnings it would report.
    pub warnings: Vec<Problem>,
}

/// One change of a [`Plan`] with the rule that applies to it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PlannedChange {
    /// The change.
    #[serde(flatten)]
    pub change: Change,
    /// What the policy says about it.
    #[serde(serialize_with = "rule_name")]
    pub rule: Rule,
}

fn rule_name<S: serde::Serializer>(rule: &Rule, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(rule.as_str())
}

/// Classifies every change by the policy.
pub(crate) fn classify(policy: &Policy, changes: Vec<Change>) -> Vec<PlannedChange> {
    changes
        .into_iter()
        .map(|change| PlannedChange {
            rule: policy.rule(&change.path),
            change,
        })
        .collect()
}

/// Validates `config` and works out what applying it over `current` would do.
///
/// `extra` holds problems found before (a JSON Schema); `layers` locates problems when the
/// config came from sources.
pub(crate) fn draft<T>(
    current: &serde_json::Value,
    config: T,
    layers: Option<&Layers>,
    policy: &Policy,
    extra: Problems,
) -> Result<Draft<T>, Problems>
where
    T: DeserializeOwned + Serialize + Validate,
{
    let mut problems = extra;
    problems.0.extend(validate::run(&config, layers).0);
    if problems.has_errors() {
        return Err(problems);
    }
    let effective = serde_json::to_value(&config).map_err(|e| {
        Problems::from(Problem::error(
            ProblemKind::Type,
            format!("config does not serialize: {e}"),
        ))
    })?;
    let locate = |problem: Problem, path: &ConfigPath| match layers {
        Some(layers) => layers.locate(problem, path),
        None => problem.at_path(path.clone()),
    };
    let mut changes = Vec::new();
    let mut held = Vec::new();
    let mut refused = Vec::new();
    for planned in classify(policy, diff(current, &effective)) {
        match planned.rule {
            Rule::Hot => changes.push(planned.change),
            Rule::RestartRequired if policy.mode() == RestartMode::Reject => {
                let problem = Problem::error(
                    ProblemKind::Policy,
                    "changing this requires a restart, and the policy rejects such reloads",
                );
                refused.push(locate(problem, &planned.change.path));
            }
            Rule::RestartRequired => held.push(planned.change),
            Rule::Denied => {
                let problem = Problem::error(
                    ProblemKind::Policy,
                    "this must not change while the service runs (denied by policy)",
                );
                refused.push(locate(problem, &planned.change.path));
            }
        }
    }
    if !refused.is_empty() {
        return Err(Problems(refused));
    }
    let warnings: Vec<Problem> = problems.warnings().cloned().collect();
    if held.is_empty() {
        return Ok(Draft {
            config,
            effective,
            changes,
            held,
            warnings,
        });
    }
    // Keep the old values where a restart is needed, and check that the mix is valid too:
    // a new value elsewhere may depend on the held-back one.
    let effective = apply(current, &changes);
    let config: T = serde_json::from_value(effective.clone()).map_err(|e| {
        Problems::from(Problem::error(
            ProblemKind::Type,
            format!("the config with restart-required changes held back does not load: {e}"),
        ))
    })?;
    let mixed = validate::run(&config, layers);
    if mixed.has_errors() {
        let mut problems = mixed;
        for problem in &mut problems.0 {
            problem.message = format!(
                "{} (with the restart-required changes held back)",
                problem.message
            );
        }
        return Err(problems);
    }
    Ok(Draft {
        config,
        effective,
        changes,
        held,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, Serialize)]
    struct Config {
        listen: String,
        rpm: u32,
        workers: u32,
    }

    impl Validate for Config {
        fn validate(&self, report: &mut crate::Report) {
            if self.workers > 8 && self.listen.starts_with("127.") {
                report.error("workers", "more than 8 workers on loopback");
            }
        }
    }

    fn current() -> serde_json::Value {
        json!({"listen": "0.0.0.0:80", "rpm": 60, "workers": 4})
    }

    fn config(listen: &str, rpm: u32, workers: u32) -> Config {
        Config {
            listen: listen.into(),
            rpm,
            workers,
        }
    }

    fn policy() -> Policy {
        Policy::new().restart_required("listen".parse().unwrap())
    }

    #[test]
    fn hot_part_applies_and_restart_part_is_held() {
        let draft = draft(
            &current(),
            config("0.0.0.0:81", 120, 4),
            None,
            &policy(),
            Problems::default(),
        )
        .unwrap();
        assert_eq!(draft.config.listen, "0.0.0.0:80", "old value kept");
        assert_eq!(draft.config.rpm, 120);
        assert_eq!(draft.changes.len(), 1);
        assert_eq!(draft.pending(), ["listen".parse::<ConfigPath>().unwrap()]);
    }

    #[test]
    fn reject_mode_and_denied_paths_refuse_the_whole_config() {
        let strict = policy().restart_mode(RestartMode::Reject);
        let problems = draft(
            &current(),
            config("0.0.0.0:81", 120, 4),
            None,
            &strict,
            Problems::default(),
        )
        .unwrap_err();
        assert_eq!(problems.0[0].kind, ProblemKind::Policy);
        assert!(problems.0[0].message.contains("requires a restart"));

        let deny = Policy::new().deny("rpm".parse().unwrap());
        let problems = draft(
            &current(),
            config("0.0.0.0:80", 1, 4),
            None,
            &deny,
            Problems::default(),
        )
        .unwrap_err();
        assert_eq!(problems.0[0].path.as_ref().unwrap().to_string(), "rpm");
        assert!(problems.0[0].message.contains("denied by policy"));
    }

    #[test]
    fn the_mix_of_old_and_new_is_validated() {
        // New listen (held back) would make 16 workers fine; with the old listen on loopback
        // they are not.
        let current = json!({"listen": "127.0.0.1:80", "rpm": 60, "workers": 4});
        let problems = draft(
            &current,
            config("0.0.0.0:80", 60, 16),
            None,
            &policy(),
            Problems::default(),
        )
        .unwrap_err();
        assert!(problems.0[0].message.contains("held back"), "{problems}");
    }
}
