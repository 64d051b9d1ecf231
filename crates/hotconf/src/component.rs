//! Components: the parts of a service that react to a reload in two phases.
//!
//! Applying a config is a transaction. Every component whose paths changed *prepares*: it
//! builds what the new config needs (a new rate limiter, a new connection pool) without
//! touching what is live, and may fail. If all succeed, the snapshot is swapped and every
//! staged change is *committed*, which cannot fail. If one fails, panics or times out, the
//! ones already prepared are *aborted* and the old config stays, whole.

use std::error::Error as StdError;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::diff::Change;
use crate::path::Pattern;

/// The error a component's prepare returns.
pub type PrepareError = Box<dyn StdError + Send + Sync>;

/// A part of the service that must agree to a new config before it is applied.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use hotconf::{Change, Component, PrepareError, Staged, staged};
///
/// #[derive(Clone)]
/// struct Config { rpm: u32 }
///
/// /// A rate limiter whose bucket is rebuilt when `rpm` changes.
/// struct RateLimiter { rpm: Mutex<u32> }
///
/// impl Component<Config> for Arc<RateLimiter> {
///     fn name(&self) -> &str { "rate-limiter" }
///     fn paths(&self) -> Vec<String> { vec!["rpm".into()] }
///     fn prepare(&self, _old: &Config, new: &Config, _changes: &[Change])
///         -> Result<Box<dyn Staged>, PrepareError>
///     {
///         if new.rpm > 1_000_000 {
///             return Err("rpm above what one bucket can hold".into());
///         }
///         let (limiter, rpm) = (Arc::clone(self), new.rpm);
///         // Nothing live changes until commit.
///         Ok(staged(move || *limiter.rpm.lock().unwrap() = rpm))
///     }
/// }
/// # let _ = RateLimiter { rpm: Mutex::new(1) };
/// ```
pub trait Component<T>: Send + Sync + 'static {
    /// The name used in events and errors.
    fn name(&self) -> &str;

    /// Patterns of the config paths this component depends on (`limits.**`,
    /// `providers.*.url`). It is called only when a change touches one of them. The default
    /// is every path.
    fn paths(&self) -> Vec<String> {
        vec!["**".to_owned()]
    }

    /// Builds what the new config needs without changing anything live.
    ///
    /// # Errors
    ///
    /// Any error rejects the whole reload: the components prepared so far are aborted and the
    /// old config stays active.
    fn prepare(
        &self,
        old: &T,
        new: &T,
        changes: &[Change],
    ) -> Result<Box<dyn Staged>, PrepareError>;
}

/// A prepared change, waiting for the outcome of the transaction.
pub trait Staged: Send {
    /// Makes the change live; called after the snapshot is swapped. Cannot fail: anything
    /// that can fail belongs in prepare.
    fn commit(self: Box<Self>);

    /// Drops the prepared change; called when another component failed. The default does
    /// nothing beyond dropping it.
    fn abort(self: Box<Self>) {}
}

/// A staged change whose commit runs `commit`, and whose abort drops it.
pub fn staged(commit: impl FnOnce() + Send + 'static) -> Box<dyn Staged> {
    Box::new(OnCommit(Some(Box::new(commit))))
}

struct OnCommit(Option<Box<dyn FnOnce() + Send>>);

impl Staged for OnCommit {
    fn commit(mut self: Box<Self>) {
        if let Some(commit) = self.0.take() {
            commit();
        }
    }
}

impl<T, C: Component<T> + ?Sized> Component<T> for Box<C> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn paths(&self) -> Vec<String> {
        (**self).paths()
    }

    fn prepare(
        &self,
        old: &T,
        new: &T,
        changes: &[Change],
    ) -> Result<Box<dyn Staged>, PrepareError> {
        (**self).prepare(old, new, changes)
    }
}

/// A registered component with its parsed path patterns.
pub(crate) struct Registered<T> {
    pub(crate) component: Arc<dyn Component<T>>,
    pub(crate) patterns: Vec<Pattern>,
}

impl<T: 'static> Clone for Registered<T> {
    fn clone(&self) -> Self {
        Self {
            component: Arc::clone(&self.component),
            patterns: self.patterns.clone(),
        }
    }
}

impl<T: 'static> fmt::Debug for Registered<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Component")
            .field("name", &self.component.name())
            .field("paths", &self.patterns)
            .finish()
    }
}

impl<T: 'static> Registered<T> {
    /// Whether a change touches what this component depends on.
    pub(crate) fn interested(&self, changes: &[Change]) -> bool {
        crate::diff::touches(&self.patterns, changes)
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// Runs one component's prepare on its own thread so that a hang becomes a timeout, and a
/// panic becomes an error. A prepare that finishes after its timeout is aborted.
pub(crate) fn prepare<T: Send + Sync + 'static>(
    component: &Arc<dyn Component<T>>,
    old: &Arc<crate::Snapshot<T>>,
    new: &Arc<crate::Snapshot<T>>,
    changes: &Arc<[Change]>,
    timeout: Duration,
) -> Result<Box<dyn Staged>, String> {
    let (tx, rx) = mpsc::sync_channel(1);
    // Set once the caller gives up; checked under the lock, so a late result is either
    // received or aborted, never lost.
    let abandoned = Arc::new(Mutex::new(false));
    let (component_, old_, new_, changes_, abandoned_) = (
        Arc::clone(component),
        Arc::clone(old),
        Arc::clone(new),
        Arc::clone(changes),
        Arc::clone(&abandoned),
    );
    let spawned = std::thread::Builder::new()
        .name(format!("hotconf-prepare-{}", component.name()))
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(|| {
                component_.prepare(old_.config(), new_.config(), &changes_)
            }));
            let result = match result {
                Ok(Ok(staged)) => Ok(staged),
                Ok(Err(error)) => Err(error.to_string()),
                Err(panic) => Err(format!("panicked: {}", panic_message(panic.as_ref()))),
            };
            let gone = abandoned_.lock().unwrap_or_else(PoisonError::into_inner);
            if *gone {
                if let Ok(staged) = result {
                    staged.abort();
                }
            } else {
                let _ = tx.send(result);
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
            if let Ok(Ok(staged)) = rx.try_recv() {
                staged.abort();
            }
            Err(format!(
                "prepare timed out after {} ms",
                timeout.as_millis()
            ))
        }
    }
}
