//! [`Pipeline`]: the one pipeline for tools that check configs without a reloader (the
//! command line's `check` and `diff`).

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Effective, Stages, run};
use crate::document::Limits;
use crate::engine::validator::Schema;
use crate::error::Problems;
use crate::event::Outcome;
use crate::plan::Plan;
use crate::policy::Policy;
use crate::validate::Validate;

/// The one pipeline, for tools that check configs without running a reloader (the
/// `hotconf` command line): the same stages a [`Reloader`](crate::Reloader) runs on its
/// first load and on every reload, with the same redaction.
///
/// ```
/// use hotconf::{Outcome, Pipeline, source::{Defaults, Format, Source}};
///
/// let sources: Vec<Box<dyn Source>> = vec![Box::new(Defaults::text(Format::Toml, "[db]\npassword = 3\n"))];
/// let plan = Pipeline::new().check::<serde_json::Value>(&sources);
/// assert_eq!(plan.outcome, Outcome::Loaded);
/// ```
#[derive(Debug)]
pub struct Pipeline {
    limits: Limits,
    policy: Policy,
    schema: Option<Arc<Schema>>,
    settings: Option<String>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            policy: Policy::default(),
            schema: None,
            settings: Some(crate::settings::DEFAULT_TABLE.to_owned()),
        }
    }
}

impl Pipeline {
    /// A pipeline with the default limits and policy (built-in secret names only).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the size and depth limits for every document.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the policy: restart-required, denied and secret paths.
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Names the reloader's settings table, checked and taken out of the config as a
    /// [`Reloader`](crate::Reloader) does (default `hot_reload`); `None` leaves that key to
    /// the config. See [`ReloaderBuilder::settings_table`](crate::ReloaderBuilder::settings_table).
    #[must_use]
    pub fn settings_table(mut self, name: Option<&str>) -> Self {
        self.settings = name.map(str::to_owned);
        self
    }

    /// Validates every config against a JSON Schema.
    #[cfg(feature = "json-schema")]
    #[must_use]
    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = Some(Arc::new(schema));
        self
    }

    fn stages<T>(&self) -> Stages<'_, T> {
        Stages {
            fingerprint: None,
            limits: &self.limits,
            policy: &self.policy,
            schema: self.schema.as_ref(),
            validator: None,
            settings: self.settings.as_deref(),
            parsed: None,
        }
    }

    /// Reads `sources`, and the files their settings table lists in `watch_paths`.
    fn read(
        &self,
        sources: &[Box<dyn crate::source::Source>],
    ) -> Result<crate::layer::Read, Problems> {
        crate::layer::read(sources, &self.limits)
            .and_then(|documents| {
                crate::layer::with_extras(documents, self.settings.as_deref(), &self.limits, None)
            })
            .map_err(|mut problems| {
                for problem in &mut problems.0 {
                    self.policy.secrets().redact_problem(problem);
                }
                problems
            })
    }

    /// Reads `sources` and runs every stage as a first load would: the plan's outcome is
    /// `loaded` or `rejected`, with every problem located and redacted.
    pub fn check<T>(&self, sources: &[Box<dyn crate::source::Source>]) -> Plan
    where
        T: DeserializeOwned + Serialize + Validate + Send + 'static,
    {
        let read = match self.read(sources) {
            Ok(read) => read,
            Err(problems) => {
                return Plan {
                    outcome: Outcome::Rejected,
                    files: sources
                        .iter()
                        .flat_map(|s| s.files())
                        .map(|p| p.display().to_string())
                        .collect(),
                    changes: Vec::new(),
                    pending: Vec::new(),
                    components: Vec::new(),
                    errors: problems.errors().cloned().collect(),
                    warnings: problems.warnings().cloned().collect(),
                };
            }
        };
        let attempt = run::<T>(&self.stages(), None, read.into());
        let mut plan = attempt.to_plan(Vec::new());
        plan.changes.clear();
        if plan.outcome != Outcome::Rejected {
            plan.outcome = Outcome::Loaded;
        }
        plan
    }

    /// Loads `old`, then plans `new` against it as a reload would: every difference with
    /// its rule, the pending restarts, and what the policy refuses (as the plan's errors).
    ///
    /// # Errors
    ///
    /// Every problem of the side that does not load (read, parse, type or validation
    /// errors): there is nothing to compare.
    pub fn diff<T>(
        &self,
        old: &[Box<dyn crate::source::Source>],
        new: &[Box<dyn crate::source::Source>],
    ) -> Result<Plan, Problems>
    where
        T: DeserializeOwned + Serialize + Validate + Send + 'static,
    {
        let old = run::<T>(&self.stages(), None, self.read(old)?.into());
        let old = old.result?;
        let base = match old.tree {
            Some(tree) => Effective::new(tree),
            None => Effective::of(&old.config)?,
        };
        let new = run::<T>(&self.stages(), Some(&base), self.read(new)?.into());
        let plan = new.to_plan(Vec::new());
        match new.result {
            // A side that failed before the diff has nothing to compare; a refusal by
            // policy (or of the mix with restart-required values held back) comes with it.
            Err(problems) if new.classified.is_empty() => Err(problems),
            _ => Ok(plan),
        }
    }
}
