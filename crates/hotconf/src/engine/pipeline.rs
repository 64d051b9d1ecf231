//! The one pipeline: documents (or a config given whole) to a planned change.
//!
//! parse → merge → deserialize → schema and validate (under a timeout when a [`Validator`]
//! runs them) → diff against the effective config → classify by policy → hold back
//! restart-required changes (and validate the mix) → redact.
//!
//! The first load, [`Reloader::plan`](crate::Reloader::plan), every reload and the
//! command line's `check` and `diff` call [`run`]. Nothing here touches the live config:
//! applying the result is the transaction's job. Everything that leaves is redacted.

use std::sync::{Arc, LazyLock};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::validator::{Schema, Validator, checks};
use crate::diff::{Change, patched};
use crate::document::Limits;
use crate::error::{Problem, ProblemKind, Problems};
use crate::event::Outcome;
use crate::layer::{Layers, ParseCache};
use crate::path::ConfigPath;
use crate::plan::{Plan, PlannedChange, classify};
use crate::policy::{Fingerprint, Policy, RestartMode, Rule, Secrets};
use crate::settings::FileSettings;
use crate::snapshot::Snapshot;
use crate::source::{Document, Origin};
use crate::tree::{Node, Span, Value};
use crate::validate::Validate;

mod tools;

pub use tools::Pipeline;

/// What the pipeline is given.
pub(crate) enum Input<T> {
    /// Documents read from the sources, lowest layer first.
    Documents(Vec<Document>),
    /// Documents read from the sources, already parsed and merged (to find the settings
    /// table): not parsed again.
    Parsed(Layers),
    /// A whole config ([`Reloader::apply`](crate::Reloader::apply), rollback).
    Config(T),
    /// A whole config submitted as a document (the admin API's `PUT /config`): validated
    /// like a file save, and a secret sent back as `***` keeps its live value.
    Submitted(Document),
}

/// The settings every stage reads.
pub(crate) struct Stages<'a, T> {
    pub(crate) limits: &'a Limits,
    pub(crate) policy: &'a Policy,
    pub(crate) schema: Option<&'a Arc<Schema>>,
    /// Runs schema and validation under a timeout; inline when `None`.
    pub(crate) validator: Option<&'a Validator<T>>,
    /// Fills the changes' HMAC form for the audit log, when set.
    pub(crate) fingerprint: Option<&'a Fingerprint>,
    /// The name of the reloader's settings table, taken out of the tree before the config
    /// is deserialized; `None` leaves the key to the config.
    pub(crate) settings: Option<&'a str>,
    /// The trees of the last attempt's documents, to skip parsing unchanged ones.
    pub(crate) parsed: Option<&'a ParseCache>,
}

/// The effective config as the engine keeps it: a tree, which holds every value the
/// formats can (`inf`, `nan`), and which the next attempt is diffed against.
///
/// A reload's tree is built when it is first asked for: the worker builds it right after
/// its callers have their answer (see [`Effective::applied`]).
#[derive(Debug)]
pub(crate) struct Effective {
    tree: LazyLock<Node, Box<dyn FnOnce() -> Node + Send>>,
}

impl Effective {
    pub(crate) fn new(tree: Node) -> Self {
        Self {
            tree: LazyLock::new(Box::new(move || tree)),
        }
    }

    /// The effective config of an applied plan: the tree the pipeline built, or else one
    /// serialized from the config `snapshot` holds when it is first asked for.
    pub(crate) fn applied<T>(tree: Option<Node>, snapshot: &Arc<Snapshot<T>>) -> Self
    where
        T: Serialize + Send + Sync + 'static,
    {
        if let Some(tree) = tree {
            return Self::new(tree);
        }
        let snapshot = Arc::clone(snapshot);
        Self {
            tree: LazyLock::new(Box::new(move || {
                // The pipeline serialized this config once already, to diff it; a
                // `Serialize` that fails only the second time leaves an empty tree, and
                // the next attempt shows every value as added.
                crate::serialize::to_node(&**snapshot)
                    .unwrap_or_else(|_| Node::new(Value::Table(Box::default()), Span::default()))
            })),
        }
    }

    /// The config as a tree, not redacted.
    pub(crate) fn tree(&self) -> &Node {
        &self.tree
    }

    fn of<T: Serialize>(config: &T) -> Result<Self, Problems> {
        crate::serialize::to_node(config)
            .map(Self::new)
            .map_err(unserializable)
    }
}

fn unserializable(error: crate::serialize::Error) -> Problems {
    Problems::from(Problem::error(
        ProblemKind::Type,
        format!("config does not serialize: {error}"),
    ))
}

/// A config that passed every stage, ready to be applied.
#[derive(Debug)]
pub(crate) struct Planned<T> {
    /// The config to install: restart-required paths keep their old values.
    pub(crate) config: T,
    /// `config` as a tree, not redacted, when the pipeline built one: a first load, or
    /// restart-required changes held back. Else it is built once applied
    /// ([`Effective::applied`]).
    pub(crate) tree: Option<Node>,
    /// The config hash of `config`'s tree.
    pub(crate) hash: u64,
    /// The changes that apply now, redacted.
    pub(crate) changes: Vec<Change>,
    /// Restart-required changes held back, redacted.
    pub(crate) held: Vec<Change>,
    /// Warnings of validation, redacted.
    pub(crate) warnings: Vec<Problem>,
    /// `changes` and `held` with secret values as their fingerprint, when the stages have
    /// a fingerprint; else empty.
    pub(crate) hmac_changes: Vec<Change>,
    pub(crate) hmac_held: Vec<Change>,
}

impl<T> Planned<T> {
    /// The restart-required paths whose new value waits for a restart.
    pub(crate) fn pending(&self) -> Vec<ConfigPath> {
        self.held.iter().map(|c| c.path.clone()).collect()
    }

    /// What applying it would report.
    pub(crate) fn outcome(&self) -> Outcome {
        match (self.changes.is_empty(), self.held.is_empty()) {
            (false, _) => Outcome::Applied,
            (true, false) => Outcome::RestartRequired,
            (true, true) => Outcome::Unchanged,
        }
    }
}

/// One run of the pipeline.
#[derive(Debug)]
pub(crate) struct Attempt<T> {
    /// The documents read, lowest layer first, as origins for events.
    pub(crate) files: Vec<String>,
    /// The documents with their revisions; empty for a config given whole.
    pub(crate) origins: Vec<(Origin, u64)>,
    /// Every difference from the effective config with its rule, redacted; empty when the
    /// config did not get as far as the diff.
    pub(crate) classified: Vec<PlannedChange>,
    /// The planned change, or every problem that rejects it (redacted).
    pub(crate) result: Result<Planned<T>, Problems>,
    /// What the sources' settings table says (all unset when there is none); `None` when
    /// no sources were read (a config given whole, a submitted document) or the table is
    /// not in use.
    pub(crate) settings: Option<FileSettings>,
}

/// Runs every stage on `input` against the effective config `base` (`None` for a first
/// load, where nothing is held back). The trees the parse cache lent go back before it
/// returns.
pub(crate) fn run<T>(
    stages: &Stages<'_, T>,
    base: Option<&Effective>,
    input: Input<T>,
) -> Attempt<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + 'static,
{
    let (attempt, spent) = run_leaving(stages, base, input);
    // Unless a validation that overran still holds them, the layers are done with.
    if let Some(layers) = spent.and_then(|layers| Arc::try_unwrap(layers).ok()) {
        layers.give_back(stages.parsed);
    }
    attempt
}

/// [`run`], leaving the layers of an attempt that got past the load to the caller, to give
/// back with [`Layers::give_back`] once no validation that overran holds them: the reload
/// worker does it once its callers have their answer, so freeing the merged tree is not in
/// their wait. The layers hold the documents the attempt was made of.
pub(crate) fn run_leaving<T>(
    stages: &Stages<'_, T>,
    base: Option<&Effective>,
    input: Input<T>,
) -> (Attempt<T>, Option<Arc<Layers>>)
where
    T: DeserializeOwned + Serialize + Validate + Send + 'static,
{
    let mut settings = None;
    let mut load = |mut layers: Layers| {
        let found = take_settings(stages, &mut layers);
        let config = layers.deserialize::<T>();
        let found = match both(found, config.as_ref().map(|_| ())) {
            Ok(found) => found,
            Err(problems) => {
                layers.give_back(stages.parsed);
                return Err(problems);
            }
        };
        if stages.settings.is_some() {
            settings = Some(found.unwrap_or_default());
        }
        Ok((config?, Some(Arc::new(layers))))
    };
    let (files, origins, loaded) = match input {
        Input::Documents(documents) => {
            let (files, origins) = provenance(&documents);
            let loaded = Layers::from_documents_cached(documents, stages.limits, stages.parsed)
                .and_then(&mut load);
            (files, origins, loaded)
        }
        Input::Parsed(layers) => {
            let (files, origins) = provenance(layers.documents());
            (files, origins, load(layers))
        }
        Input::Config(config) => (Vec::new(), Vec::new(), Ok((config, None))),
        Input::Submitted(document) => {
            let files = vec![document.origin.to_string()];
            let loaded =
                Layers::from_documents(vec![document], stages.limits).and_then(|mut layers| {
                    if let Some(base) = base {
                        layers.keep_secrets(stages.policy.secrets(), base.tree())?;
                    }
                    // Checked and taken out, but not applied: the settings live in the files.
                    let found = take_settings(stages, &mut layers);
                    let config = layers.deserialize::<T>();
                    both(found, config.as_ref().map(|_| ()))?;
                    Ok((config?, Some(Arc::new(layers))))
                });
            (files, Vec::new(), loaded)
        }
    };
    let mut attempt = Attempt {
        files,
        origins,
        classified: Vec::new(),
        result: Err(Problems::default()),
        settings: None,
    };
    let mut spent = None;
    attempt.result = loaded.and_then(|(config, layers)| {
        let planned = plan(
            stages,
            base,
            config,
            layers.as_ref(),
            &mut attempt.classified,
        );
        spent = layers;
        planned
    });
    redact(stages.policy.secrets(), stages.fingerprint, &mut attempt);
    if attempt.result.is_ok() {
        attempt.settings = settings;
    }
    (attempt, spent)
}

/// The documents' origins for events, and with their revisions.
fn provenance(documents: &[Document]) -> (Vec<String>, Vec<(Origin, u64)>) {
    let origins: Vec<(Origin, u64)> = documents
        .iter()
        .map(|d| (d.origin.clone(), d.revision))
        .collect();
    let files = origins.iter().map(|(o, _)| o.to_string()).collect();
    (files, origins)
}

impl<T> From<crate::layer::Read> for Input<T> {
    fn from(read: crate::layer::Read) -> Self {
        match read.parsed {
            Some(layers) => Self::Parsed(layers),
            None => Self::Documents(read.documents),
        }
    }
}

fn take_settings<T>(
    stages: &Stages<'_, T>,
    layers: &mut Layers,
) -> Result<Option<FileSettings>, Problems> {
    match stages.settings {
        Some(name) => layers.take_settings(name),
        None => Ok(None),
    }
}

/// The settings' problems and the config's together, the settings' first.
fn both<S>(settings: Result<S, Problems>, config: Result<(), &Problems>) -> Result<S, Problems> {
    match (settings, config) {
        (Ok(settings), Ok(())) => Ok(settings),
        (Ok(_), Err(problems)) => Err(problems.clone()),
        (Err(problems), Ok(())) => Err(problems),
        (Err(mut problems), Err(more)) => {
            problems.0.extend(more.0.iter().cloned());
            Err(problems)
        }
    }
}

/// Checks, diffs and classifies a loaded config.
fn plan<T>(
    stages: &Stages<'_, T>,
    base: Option<&Effective>,
    config: T,
    layers: Option<&Arc<Layers>>,
    classified: &mut Vec<PlannedChange>,
) -> Result<Planned<T>, Problems>
where
    T: DeserializeOwned + Serialize + Validate + Send + 'static,
{
    let (config, problems) = check(stages, config, layers)?;
    if problems.has_errors() {
        return Err(problems);
    }
    let warnings: Vec<Problem> = problems.warnings().cloned().collect();
    let locate = |problem: Problem, path: &ConfigPath| match layers {
        Some(layers) => layers.locate(problem, path),
        None => problem.at_path(path.clone()),
    };
    let (tree, hash) = match base {
        // A first load has nothing to compare with: its callers report no changes, and a
        // diff from nothing would be one change holding a copy of the whole config.
        None => {
            let tree = crate::serialize::to_node(&config).map_err(unserializable)?;
            let hash = crate::event::config_hash(&tree);
            (Some(tree), hash)
        }
        // Diffed as it serializes: the tree is built after the callers have their answer.
        Some(base) => {
            let diffed =
                crate::serialize::diff_against(base.tree(), &config).map_err(unserializable)?;
            *classified = classify(stages.policy, diffed.changes);
            (diffed.tree, diffed.hash)
        }
    };
    let policy = stages.policy;
    let (mut changes, mut held, mut refused) = (Vec::new(), Vec::new(), Vec::new());
    for planned in classified.iter() {
        let change = planned.change.clone();
        match planned.rule {
            Rule::Hot => changes.push(change),
            Rule::RestartRequired if policy.mode() == RestartMode::Reject => {
                let problem = Problem::error(
                    ProblemKind::Policy,
                    "changing this requires a restart, and the policy rejects such reloads",
                );
                refused.push(locate(problem, &change.path));
            }
            Rule::RestartRequired => held.push(change),
            Rule::Denied => {
                let problem = Problem::error(
                    ProblemKind::Policy,
                    "this must not change while the service runs (denied by policy)",
                );
                refused.push(locate(problem, &change.path));
            }
        }
    }
    if !refused.is_empty() {
        return Err(Problems(refused));
    }
    let Some(base) = base.filter(|_| !held.is_empty()) else {
        return Ok(Planned {
            config,
            tree,
            hash,
            changes,
            held,
            warnings,
            hmac_changes: Vec::new(),
            hmac_held: Vec::new(),
        });
    };
    // Keep the old values where a restart is needed, and check that the mix is valid too:
    // a new value elsewhere may depend on the held-back one.
    let tree = match tree {
        Some(tree) => tree,
        None => crate::serialize::to_node(&config).map_err(unserializable)?,
    };
    let mixed = patched(base.tree(), &changes, &tree);
    let config: T = crate::deserialize::from_node(&mixed).map_err(|mut problem| {
        problem.message = format!(
            "the config with restart-required changes held back does not load: {}",
            problem.message
        );
        Problems::from(problem)
    })?;
    let hash = crate::event::config_hash(&mixed);
    let tree = Some(mixed);
    let (config, mixed) = check(stages, config, layers)?;
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
    Ok(Planned {
        config,
        tree,
        hash,
        changes,
        held,
        warnings,
        hmac_changes: Vec::new(),
        hmac_held: Vec::new(),
    })
}

/// Schema, then the service's own rules: under the validator's timeout when there is one.
fn check<T>(
    stages: &Stages<'_, T>,
    config: T,
    layers: Option<&Arc<Layers>>,
) -> Result<(T, Problems), Problems>
where
    T: Serialize + Validate + Send + 'static,
{
    match stages.validator {
        Some(validator) => validator
            .check(config, layers.cloned())
            .map_err(Problems::from),
        None => {
            let ran = checks(stages.schema.map(|s| &**s), &config, layers.map(|l| &**l));
            Ok((config, ran.problems))
        }
    }
}

/// Replaces every secret value in what leaves the pipeline. The one place that redacts.
fn redact<T>(secrets: &Secrets, fingerprint: Option<&Fingerprint>, attempt: &mut Attempt<T>) {
    for planned in &mut attempt.classified {
        secrets.redact(std::slice::from_mut(&mut planned.change));
    }
    match &mut attempt.result {
        Ok(planned) => {
            if let Some(fingerprint) = fingerprint {
                planned.hmac_changes.clone_from(&planned.changes);
                planned.hmac_held.clone_from(&planned.held);
                secrets.fingerprint(&mut planned.hmac_changes, fingerprint);
                secrets.fingerprint(&mut planned.hmac_held, fingerprint);
            }
            secrets.redact(&mut planned.changes);
            secrets.redact(&mut planned.held);
            for problem in &mut planned.warnings {
                secrets.redact_problem(problem);
            }
        }
        Err(problems) => {
            for problem in &mut problems.0 {
                secrets.redact_problem(problem);
            }
        }
    }
}

impl<T> Attempt<T> {
    /// The dry-run view of this attempt; `components` would be asked to prepare.
    pub(crate) fn to_plan(&self, components: Vec<String>) -> Plan {
        let mut plan = Plan {
            outcome: Outcome::Rejected,
            files: self.files.clone(),
            changes: self.classified.clone(),
            pending: Vec::new(),
            components: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        match &self.result {
            Ok(planned) => {
                plan.outcome = planned.outcome();
                plan.pending = planned.pending();
                plan.warnings = planned.warnings.clone();
                plan.components = components;
            }
            Err(problems) => {
                plan.errors = problems.errors().cloned().collect();
                plan.warnings = problems.warnings().cloned().collect();
            }
        }
        plan
    }
}
