//! The transaction: every interested component prepares and every interested resource
//! builds; only if all succeed does the snapshot (config and resources together) swap in,
//! after which the components commit. A failure aborts what was prepared, last first.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::component::{Component, PrepareError, Resource, Staged, panic_message};
use crate::diff::{Change, touches};
use crate::error::{Problem, ProblemKind};
use crate::path::Pattern;
use crate::snapshot::{Resources, Snapshot};

/// A resource with its output type erased, so resources of any type sit in one list.
trait Build<T>: Send + Sync {
    fn build(
        &self,
        config: &T,
        live: Option<&(dyn Any + Send + Sync)>,
    ) -> Result<Arc<dyn Any + Send + Sync>, PrepareError>;
}

struct Erased<R>(R);

impl<T, R: Resource<T>> Build<T> for Erased<R> {
    fn build(
        &self,
        config: &T,
        live: Option<&(dyn Any + Send + Sync)>,
    ) -> Result<Arc<dyn Any + Send + Sync>, PrepareError> {
        let live = live.and_then(|live| live.downcast_ref::<R::Output>());
        let built = self.0.build(config, live)?;
        Ok(Arc::new(built))
    }
}

enum Kind<T> {
    Component(Arc<dyn Component<T>>),
    /// Builds the resource in slot `slot` of every snapshot.
    Resource {
        slot: usize,
        build: Arc<dyn Build<T>>,
    },
}

/// A registered component or resource with its parsed path patterns.
pub(crate) struct Part<T> {
    name: String,
    patterns: Vec<Pattern>,
    /// The names of the parts it is built on.
    depends_on: Vec<String>,
    kind: Kind<T>,
}

/// Every registered part, in registration order.
pub(crate) struct Parts<T> {
    parts: Vec<Part<T>>,
    /// Indexes into `parts`, each after those it depends on: set by [`Parts::resolve`],
    /// which `build` calls before any part prepares.
    order: Vec<usize>,
    resources: usize,
    timeout: Duration,
}

/// What a successful prepare leaves: the components' staged changes and every resource
/// of the new snapshot.
pub(crate) struct Prepared {
    staged: Vec<(String, Box<dyn Staged>)>,
    resources: Resources,
}

/// Why a prepare failed, and any abort that panicked on the way back.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) problem: Box<Problem>,
    pub(crate) failures: Vec<String>,
}

impl<T: Send + Sync + 'static> Parts<T> {
    pub(crate) fn new() -> Self {
        Self {
            parts: Vec::new(),
            order: Vec::new(),
            resources: 0,
            timeout: Duration::from_secs(10),
        }
    }

    /// How long one part may take to prepare.
    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    fn patterns(paths: Vec<String>) -> crate::Result<Vec<Pattern>> {
        paths.iter().map(|p| p.parse::<Pattern>()).collect()
    }

    /// Adds a component.
    pub(crate) fn component(&mut self, component: impl Component<T>) -> crate::Result<()> {
        let patterns = Self::patterns(component.paths())?;
        self.parts.push(Part {
            name: component.name().to_owned(),
            patterns,
            depends_on: component.depends_on(),
            kind: Kind::Component(Arc::new(component)),
        });
        Ok(())
    }

    /// Adds a resource; returns its slot in every snapshot.
    pub(crate) fn resource<R: Resource<T>>(&mut self, resource: R) -> crate::Result<usize> {
        let patterns = Self::patterns(resource.paths())?;
        let slot = self.resources;
        self.parts.push(Part {
            name: resource.name().to_owned(),
            patterns,
            depends_on: Vec::new(),
            kind: Kind::Resource {
                slot,
                build: Arc::new(Erased(resource)),
            },
        });
        self.resources += 1;
        Ok(slot)
    }

    /// Orders the parts so that each comes after the ones it depends on, keeping the order
    /// of registration otherwise.
    ///
    /// # Errors
    ///
    /// A dependency on a name no part has, or a cycle.
    pub(crate) fn resolve(&mut self) -> crate::Result<()> {
        let invalid = |reason: String| crate::Error::InvalidOption {
            option: "component",
            reason,
        };
        let index_of = |name: &str| self.parts.iter().position(|part| part.name == name);
        let mut order = Vec::with_capacity(self.parts.len());
        // 0: not visited, 1: on the current path, 2: placed.
        let mut state = vec![0u8; self.parts.len()];
        fn visit<T>(
            at: usize,
            parts: &[Part<T>],
            index_of: &dyn Fn(&str) -> Option<usize>,
            state: &mut [u8],
            order: &mut Vec<usize>,
            path: &mut Vec<String>,
        ) -> Result<(), String> {
            match state[at] {
                2 => return Ok(()),
                1 => {
                    path.push(parts[at].name.clone());
                    return Err(format!(
                        "components depend on each other: {}",
                        path.join(" -> ")
                    ));
                }
                _ => {}
            }
            state[at] = 1;
            path.push(parts[at].name.clone());
            for dependency in &parts[at].depends_on {
                let Some(next) = index_of(dependency) else {
                    return Err(format!(
                        "component '{}' depends on '{dependency}', which is not registered",
                        parts[at].name
                    ));
                };
                visit(next, parts, index_of, state, order, path)?;
            }
            path.pop();
            state[at] = 2;
            order.push(at);
            Ok(())
        }
        for at in 0..self.parts.len() {
            visit(
                at,
                &self.parts,
                &index_of,
                &mut state,
                &mut order,
                &mut Vec::new(),
            )
            .map_err(invalid)?;
        }
        self.order = order;
        Ok(())
    }

    /// The names of every component and resource, in registration order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.parts.iter().map(|part| part.name.clone()).collect()
    }

    /// The parts a change to `changes` would prepare: all of them on a first load.
    pub(crate) fn interested(&self, changes: &[Change], first_load: bool) -> Vec<String> {
        let mut interested: Vec<String> = Vec::new();
        for part in self.order.iter().map(|&at| &self.parts[at]) {
            if first_load
                || touches(&part.patterns, changes)
                || part.depends_on.iter().any(|d| interested.contains(d))
            {
                interested.push(part.name.clone());
            }
        }
        interested
    }

    /// Prepares every interested part in registration order. On the first failure the
    /// components prepared so far are aborted, last first. `old` is `None` on the first
    /// load, where every part prepares.
    pub(crate) fn prepare(
        &self,
        old: Option<&Arc<Snapshot<T>>>,
        new: &Arc<Snapshot<T>>,
        changes: &Arc<[Change]>,
    ) -> Result<Prepared, Failed> {
        let mut staged: Vec<(String, Box<dyn Staged>)> = Vec::new();
        let mut resources: Vec<Option<Arc<dyn Any + Send + Sync>>> = vec![None; self.resources];
        let mut prepared: Vec<&str> = Vec::new();
        for part in self.order.iter().map(|&at| &self.parts[at]) {
            let interested = old.is_none()
                || touches(&part.patterns, changes)
                || part
                    .depends_on
                    .iter()
                    .any(|d| prepared.contains(&d.as_str()));
            if let (false, Kind::Resource { slot, .. }) = (interested, &part.kind) {
                // Unchanged paths: the resource carries forward as it is.
                resources[*slot] = old.and_then(|old| old.resources().get(*slot).cloned());
            }
            if !interested {
                continue;
            }
            let started = Instant::now();
            let result = match &part.kind {
                Kind::Component(component) => {
                    prepare_component(component, old, new, changes, self.timeout, &part.name)
                        .map(|prepared| staged.push((part.name.clone(), prepared)))
                }
                Kind::Resource { slot, build } => {
                    build_resource(build, *slot, old, new, self.timeout, &part.name)
                        .map(|built| resources[*slot] = Some(built))
                }
            };
            match result {
                Ok(()) => {
                    prepared.push(&part.name);
                    tracing::debug!(target: "hotconf", part = %part.name, elapsed_us = started.elapsed().as_micros() as u64, "prepared");
                }
                Err(reason) => {
                    let mut problem = Problem::error(
                        ProblemKind::Component,
                        format!("component '{}' refused the config: {reason}", part.name),
                    );
                    problem.component = Some(part.name.clone());
                    return Err(Failed {
                        problem: Box::new(problem),
                        failures: abort(staged),
                    });
                }
            }
        }
        // Every slot is filled: a resource either prepared or carried forward (a snapshot
        // always holds all of them, since the first load builds every one).
        let resources = resources.into_iter().flatten().collect();
        Ok(Prepared { staged, resources })
    }
}

impl Prepared {
    /// Publishes the resources in `snapshot`, before it is swapped in.
    pub(crate) fn publish<T>(&mut self, snapshot: &Snapshot<T>) {
        snapshot.publish(std::mem::take(&mut self.resources));
    }

    /// Aborts every staged change, last first: a later step of the transaction failed.
    /// Returns the aborts that panicked.
    pub(crate) fn abort(self) -> Vec<String> {
        abort(self.staged)
    }

    /// Commits every staged change, in order; a panic becomes a warning.
    pub(crate) fn commit(self) -> Vec<Problem> {
        let mut warnings = Vec::new();
        for (name, staged) in self.staged {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| staged.commit())) {
                let message = panic_message(panic.as_ref());
                tracing::error!(target: "hotconf", component = %name, %message, "component commit panicked");
                let mut warning = Problem::warning(
                    ProblemKind::Component,
                    format!("component '{name}' panicked while committing: {message}"),
                );
                warning.component = Some(name);
                warnings.push(warning);
            }
        }
        warnings
    }
}

/// Aborts what was prepared, last first; returns the aborts that panicked.
fn abort(staged: Vec<(String, Box<dyn Staged>)>) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, prepared) in staged.into_iter().rev() {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| prepared.abort())) {
            let message = panic_message(panic.as_ref());
            failures.push(format!(
                "component '{name}' panicked while aborting: {message}"
            ));
        }
    }
    failures
}

fn prepare_component<T: Send + Sync + 'static>(
    component: &Arc<dyn Component<T>>,
    old: Option<&Arc<Snapshot<T>>>,
    new: &Arc<Snapshot<T>>,
    changes: &Arc<[Change]>,
    timeout: Duration,
    name: &str,
) -> Result<Box<dyn Staged>, String> {
    let (component, old, new, changes) = (
        Arc::clone(component),
        old.cloned(),
        Arc::clone(new),
        Arc::clone(changes),
    );
    timed(
        name,
        timeout,
        move || {
            component
                .prepare(old.as_deref().map(Snapshot::config), new.config(), &changes)
                .map_err(|e| e.to_string())
        },
        |late: Box<dyn Staged>| late.abort(),
    )
}

fn build_resource<T: Send + Sync + 'static>(
    build: &Arc<dyn Build<T>>,
    slot: usize,
    old: Option<&Arc<Snapshot<T>>>,
    new: &Arc<Snapshot<T>>,
    timeout: Duration,
    name: &str,
) -> Result<Arc<dyn Any + Send + Sync>, String> {
    let (build, old, new) = (Arc::clone(build), old.cloned(), Arc::clone(new));
    timed(
        name,
        timeout,
        move || {
            let live = old.as_ref().and_then(|old| old.resources().get(slot));
            build
                .build(new.config(), live.map(|live| &**live))
                .map_err(|e| e.to_string())
        },
        drop,
    )
}

/// Runs `job` on its own thread so that a hang becomes a timeout and a panic an error. A
/// result that arrives after the timeout is handed to `late` (a staged change is aborted).
fn timed<R: Send + 'static>(
    name: &str,
    timeout: Duration,
    job: impl FnOnce() -> Result<R, String> + Send + 'static,
    late: impl FnOnce(R) + Send + 'static,
) -> Result<R, String> {
    let (tx, rx) = mpsc::sync_channel(1);
    // Set once the caller gives up; checked under the lock, so a late result is either
    // received or handed to `late`, never lost.
    let abandoned = Arc::new(Mutex::new(false));
    let gone = Arc::clone(&abandoned);
    let spawned = std::thread::Builder::new()
        .name(format!("hotconf-prepare-{name}"))
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(job)).unwrap_or_else(|panic| {
                Err(format!("panicked: {}", panic_message(panic.as_ref())))
            });
            let gone = gone.lock().unwrap_or_else(PoisonError::into_inner);
            match (*gone, result) {
                (true, Ok(done)) => late(done),
                (true, Err(_)) => {}
                (false, result) => {
                    let _ = tx.send(result);
                }
            }
        });
    if let Err(error) = spawned {
        return Err(format!("cannot start a thread to prepare: {error}"));
    }
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(_) => {
            let mut gone = abandoned.lock().unwrap_or_else(PoisonError::into_inner);
            *gone = true;
            // It may have finished between the timeout and the lock.
            if let Ok(result) = rx.try_recv() {
                return result;
            }
            Err(format!(
                "prepare timed out after {} ms",
                timeout.as_millis()
            ))
        }
    }
}

impl<T> fmt::Debug for Parts<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.parts.iter().map(|part| (&part.name, &part.patterns)))
            .finish()
    }
}
