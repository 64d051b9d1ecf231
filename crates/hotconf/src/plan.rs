//! Plans: the dry-run view of what the pipeline would do with a config, as
//! [`Reloader::plan`](crate::Reloader::plan) and the command line report it.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::diff::Change;
use crate::error::Problem;
use crate::event::Outcome;
use crate::path::ConfigPath;
use crate::policy::{Policy, Rule};

/// The dry-run view of a reload: what it would change and how, and what would stop it.
///
/// Serializes as `{"outcome":"applied","files":[…],"changes":[{"path":…,"kind":…,"old":…,
/// "new":…,"rule":"hot"}],"pending":[…],"components":[…],"errors":[…],"warnings":[…]}`;
/// fields may be added, never renamed or removed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Plan {
    /// What the reload would do: applied, unchanged, restart required or rejected.
    pub outcome: Outcome,
    /// The documents read, lowest layer first.
    pub files: Vec<String>,
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

impl Serialize for Plan {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("outcome", self.outcome.as_str())?;
        map.serialize_entry("files", &self.files)?;
        map.serialize_entry("changes", &self.changes)?;
        map.serialize_entry("pending", &self.pending)?;
        map.serialize_entry("components", &self.components)?;
        map.serialize_entry("errors", &self.errors)?;
        map.serialize_entry("warnings", &self.warnings)?;
        map.end()
    }
}
