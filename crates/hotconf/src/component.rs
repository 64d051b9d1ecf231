//! Components: the parts of a service that react to a reload in two phases.
//!
//! Applying a config is a transaction. Every component whose paths changed *prepares*: it
//! builds what the new config needs (a new rate limiter, a new connection pool) without
//! touching what is live, and may fail. If all succeed, the snapshot is swapped and every
//! staged change is *committed*, which cannot fail. If one fails, panics or times out, the
//! ones already prepared are *aborted* and the old config stays, whole.
//!
//! The order, on the first load as on every reload: components prepare (in the order they
//! were added), resources build, the snapshot with the config and the resources swaps in,
//! components commit, the history records the version, then the event goes out.

use std::error::Error as StdError;

use crate::diff::Change;

/// The error a component's prepare returns.
pub type PrepareError = Box<dyn StdError + Send + Sync>;

/// A part of the service that must agree to a new config before it is applied.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use hotconf::{Change, Component, PrepareError, Reloader, Staged, Validate, staged};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Deserialize, Serialize)]
/// struct Config { rpm: u32 }
/// impl Validate for Config {}
///
/// /// A rate limiter whose bucket is rebuilt when `rpm` changes.
/// struct RateLimiter { rpm: Mutex<u32> }
///
/// impl Component<Config> for Arc<RateLimiter> {
///     fn name(&self) -> &str { "rate-limiter" }
///     fn paths(&self) -> Vec<String> { vec!["rpm".into()] }
///     fn prepare(&self, _old: Option<&Config>, new: &Config, _changes: &[Change])
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
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let limiter = Arc::new(RateLimiter { rpm: Mutex::new(0) });
/// let reloader = Reloader::<Config>::builder()
///     .defaults(hotconf::source::Format::Toml, "rpm = 60\n")
///     .component(Arc::clone(&limiter))
///     .build()?; // the first load prepares and commits too
/// assert_eq!(*limiter.rpm.lock().unwrap(), 60);
///
/// // A refused prepare rejects the change: the old config and bucket stay.
/// assert!(reloader.apply(Config { rpm: 2_000_000 }).is_err());
/// assert_eq!((reloader.current().rpm, *limiter.rpm.lock().unwrap()), (60, 60));
/// reloader.apply(Config { rpm: 120 })?;
/// assert_eq!(*limiter.rpm.lock().unwrap(), 120);
/// # Ok(())
/// # }
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

    /// The names of the components this one is built on (a template cache on the limits it
    /// reads, a router on its upstreams): it prepares after them, and prepares again
    /// whenever any of them does, even when its own paths did not change. Unknown names
    /// and cycles fail [`build`](crate::ReloaderBuilder::build). The default is none.
    fn depends_on(&self) -> Vec<String> {
        Vec::new()
    }

    /// Builds what the new config needs without changing anything live. `old` is the
    /// config live now; `None` on the first load, where every component prepares and
    /// `changes` is empty.
    ///
    /// # Errors
    ///
    /// Any error rejects the whole reload: the components prepared so far are aborted and the
    /// old config stays active.
    fn prepare(
        &self,
        old: Option<&T>,
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

    fn depends_on(&self) -> Vec<String> {
        (**self).depends_on()
    }

    fn prepare(
        &self,
        old: Option<&T>,
        new: &T,
        changes: &[Change],
    ) -> Result<Box<dyn Staged>, PrepareError> {
        (**self).prepare(old, new, changes)
    }
}

/// A part of the service built from the config and published with it: a connection pool,
/// a compiled route table, a client whose settings follow the config.
///
/// What [`build`](Self::build) returns lives in the [`Snapshot`](crate::Snapshot) next to
/// the config it was built from, swapped in together: `snapshot.resource(&key)` gives it
/// to a reader with no downcast and no lock, and a reader never sees a config with the
/// resource of another. A resource whose paths did not change is carried forward as it
/// is. Stateful parts that must survive a reload (a token bucket's current tokens) should
/// keep that state outside and read their parameters from the snapshot.
///
/// ```
/// use hotconf::{PrepareError, Reloader, Resource, source::{Defaults, Format}};
///
/// #[derive(serde::Deserialize, serde::Serialize)]
/// struct Config { pool_size: usize }
/// impl hotconf::Validate for Config {}
///
/// struct Pool;
/// impl Resource<Config> for Pool {
///     type Output = Vec<String>;
///     fn name(&self) -> &str { "pool" }
///     fn paths(&self) -> Vec<String> { vec!["pool_size".into()] }
///     fn build(&self, config: &Config, _live: Option<&Vec<String>>) -> Result<Vec<String>, PrepareError> {
///         Ok((0..config.pool_size).map(|i| format!("conn-{i}")).collect())
///     }
/// }
///
/// let (builder, pool) = Reloader::<Config>::builder()
///     .defaults(Format::Toml, "pool_size = 2")
///     .resource(Pool);
/// let reloader = builder.build().unwrap();
/// let snapshot = reloader.handle().load();
/// assert_eq!(snapshot.resource(&pool).len(), snapshot.pool_size);
/// ```
pub trait Resource<T>: Send + Sync + 'static {
    /// What is built: shared by every reader of the snapshot.
    type Output: Send + Sync + 'static;

    /// The name used in events and errors.
    fn name(&self) -> &str;

    /// Patterns of the config paths the resource is built from; it is rebuilt only when a
    /// change touches one of them. The default is every path.
    fn paths(&self) -> Vec<String> {
        vec!["**".to_owned()]
    }

    /// Builds the resource for `config`; `live` is the one in use now (`None` on the first
    /// load), to reuse what can be reused.
    ///
    /// # Errors
    ///
    /// Any error rejects the whole reload, like a component's prepare: the old config and
    /// the old resources stay.
    fn build(&self, config: &T, live: Option<&Self::Output>) -> Result<Self::Output, PrepareError>;
}

/// The message of a caught panic.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}
