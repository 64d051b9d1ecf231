//! Snapshots and the lock-free reader side.
//!
//! A [`Snapshot`] is one immutable, validated, versioned config. The [`Handle`] is what the
//! service's code holds: `load()` is a pointer read with no lock (arc-swap), so a reload
//! never makes a reader wait, and one `load()` gives one consistent config for a whole
//! request or job.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use arc_swap::access::Access;
use arc_swap::{ArcSwap, Cache};

use crate::source::Origin;

/// One validated config with its version, the time it became active and where it came from.
///
/// Derefs to the config, so `snapshot.limits.rpm` works. It also carries what the
/// reloader's [resources](crate::Resource) built for this config, published in the same
/// swap: [`resource`](Self::resource).
pub struct Snapshot<T> {
    config: T,
    version: u64,
    loaded_at: SystemTime,
    origins: Vec<(Origin, u64)>,
    /// Set once, before the snapshot is published.
    resources: OnceLock<Resources>,
}

/// What the resources built, in registration order.
pub(crate) type Resources = Box<[Arc<dyn Any + Send + Sync>]>;

/// A typed key to a resource in every [`Snapshot`], returned when the resource is
/// registered with [`ReloaderBuilder::resource`](crate::ReloaderBuilder::resource).
///
/// A key belongs to the reloader that returned it.
pub struct ResourceKey<R> {
    index: usize,
    resource: PhantomData<fn() -> R>,
}

impl<R> ResourceKey<R> {
    pub(crate) fn new(index: usize) -> Self {
        Self {
            index,
            resource: PhantomData,
        }
    }
}

impl<R> Clone for ResourceKey<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for ResourceKey<R> {}

impl<R> fmt::Debug for ResourceKey<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ResourceKey").field(&self.index).finish()
    }
}

impl<T> Snapshot<T> {
    pub(crate) fn new(config: T, version: u64, origins: Vec<(Origin, u64)>) -> Self {
        Self {
            config,
            version,
            loaded_at: SystemTime::now(),
            origins,
            resources: OnceLock::new(),
        }
    }

    /// Attaches what the resources built; called once, before the snapshot is published.
    pub(crate) fn publish(&self, resources: Resources) {
        let _ = self.resources.set(resources);
    }

    /// Every resource of this snapshot, to carry forward the unchanged ones.
    pub(crate) fn resources(&self) -> &[Arc<dyn Any + Send + Sync>] {
        self.resources.get().map_or(&[], |r| r)
    }

    /// What the resource behind `key` built for this config: the resource and the config
    /// come from one swap, so a reader never sees one without the other.
    ///
    /// # Panics
    ///
    /// When `key` comes from another reloader (a key is only valid for the reloader whose
    /// builder returned it).
    pub fn resource<R: Send + Sync + 'static>(&self, key: &ResourceKey<R>) -> &R {
        self.resources()
            .get(key.index)
            .and_then(|resource| resource.downcast_ref::<R>())
            .unwrap_or_else(|| {
                panic!(
                    "resource key #{} does not belong to this reloader",
                    key.index
                )
            })
    }

    /// The config.
    pub fn config(&self) -> &T {
        &self.config
    }

    /// The version: 1 for the first load, one more for each applied reload. Never goes back.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When this snapshot became active.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// The documents this config was built from, with their revisions (content hashes).
    /// Empty for a config set by [`Reloader::apply`](crate::Reloader::apply).
    pub fn origins(&self) -> &[(Origin, u64)] {
        &self.origins
    }
}

impl<T> fmt::Debug for Snapshot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config may hold secrets: print `snapshot.config()` to see it.
        f.debug_struct("Snapshot")
            .field("version", &self.version)
            .field("loaded_at", &self.loaded_at)
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl<T> Deref for Snapshot<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.config
    }
}

/// The reader side: cheap to clone, `Send + Sync`, and never blocks.
///
/// ```
/// # use hotconf::{Reloader, Validate, source::{Defaults, Format}};
/// # #[derive(serde::Deserialize, serde::Serialize)]
/// # struct Config { rpm: u32 }
/// # impl Validate for Config {}
/// # let reloader = Reloader::<Config>::builder()
/// #     .source(Defaults::text(Format::Toml, "rpm = 60"))
/// #     .build()
/// #     .unwrap();
/// let handle = reloader.handle();
/// // One load per unit of work: the whole request sees one version.
/// let config = handle.load();
/// assert_eq!(config.rpm, 60);
/// assert_eq!(config.version(), 1);
/// ```
pub struct Handle<T> {
    current: Arc<ArcSwap<Snapshot<T>>>,
}

impl<T> Handle<T> {
    pub(crate) fn new(current: Arc<ArcSwap<Snapshot<T>>>) -> Self {
        Self { current }
    }

    /// The current snapshot: a lock-free read.
    ///
    /// The guard is meant for one unit of work; to keep a snapshot for long (across an
    /// `.await` in a long task, or stored in a struct), use [`Handle::load_full`] or
    /// [`Guard::into_arc`].
    pub fn load(&self) -> Guard<T> {
        Guard(ArcSwap::load(&self.current))
    }

    /// The current snapshot as an owned `Arc`.
    pub fn load_full(&self) -> Arc<Snapshot<T>> {
        self.current.load_full()
    }

    /// A reader for one thread's hot loop: [`Cached::load`] costs one atomic load while
    /// the config has not changed (no guard, no reference count), and takes the new
    /// snapshot when it has.
    ///
    /// Which to use:
    /// - [`load`](Self::load) — the default: a few nanoseconds, nothing to keep, any thread.
    /// - `cached()` — a loop that reads the config millions of times per second on one
    ///   thread (a packet path, a tight worker loop), where even a guard counts. The reader
    ///   is `&mut` and keeps the last snapshot it saw alive (with its resources) until its
    ///   next `load`, so keep it in the loop's own state, not in a shared struct that is
    ///   rarely read.
    /// - [`load_full`](Self::load_full) — a snapshot to keep across `.await`s or store.
    ///
    /// ```
    /// # use hotconf::{Reloader, Validate, source::{Defaults, Format}};
    /// # #[derive(serde::Deserialize, serde::Serialize)]
    /// # struct Config { rpm: u32 }
    /// # impl Validate for Config {}
    /// # let reloader = Reloader::<Config>::builder()
    /// #     .source(Defaults::text(Format::Toml, "rpm = 60"))
    /// #     .build()
    /// #     .unwrap();
    /// let mut reader = reloader.handle().cached();
    /// let mut allowed = 0;
    /// for _ in 0..1_000 {
    ///     // One atomic load per iteration while nothing changes.
    ///     let config = reader.load();
    ///     allowed += config.rpm;
    /// }
    /// assert_eq!(allowed, 60_000);
    /// ```
    pub fn cached(&self) -> Cached<T> {
        Cached {
            cache: Cache::new(Arc::clone(&self.current)),
        }
    }

    /// A view of one part of the config, so that a component sees only what it needs.
    ///
    /// ```
    /// # use hotconf::{Reloader, Validate, source::{Defaults, Format}};
    /// # #[derive(serde::Deserialize, serde::Serialize)]
    /// # struct Limits { rpm: u32 }
    /// # #[derive(serde::Deserialize, serde::Serialize)]
    /// # struct Config { limits: Limits }
    /// # impl Validate for Config {}
    /// # let reloader = Reloader::<Config>::builder()
    /// #     .source(Defaults::text(Format::Toml, "[limits]\nrpm = 60"))
    /// #     .build()
    /// #     .unwrap();
    /// let limits = reloader.handle().map(|config: &Config| &config.limits);
    /// assert_eq!(limits.load().rpm, 60);
    /// ```
    pub fn map<U: ?Sized, F>(&self, project: F) -> Projection<T, U, F>
    where
        F: Fn(&T) -> &U,
    {
        Projection {
            handle: self.clone(),
            project: Arc::new(project),
            part: PhantomData,
        }
    }
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Self {
            current: Arc::clone(&self.current),
        }
    }
}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("version", &ArcSwap::load(&self.current).version)
            .finish()
    }
}

/// A per-thread reader from [`Handle::cached`]: `load(&mut self)` is one atomic load while
/// the config has not changed.
pub struct Cached<T> {
    cache: Cache<Arc<ArcSwap<Snapshot<T>>>, Arc<Snapshot<T>>>,
}

impl<T> Cached<T> {
    /// The current snapshot. Checks the live pointer with one atomic load and takes the
    /// new snapshot only when a reload swapped one in.
    pub fn load(&mut self) -> &Arc<Snapshot<T>> {
        self.cache.load()
    }
}

impl<T> Clone for Cached<T> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
        }
    }
}

impl<T> fmt::Debug for Cached<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached").finish_non_exhaustive()
    }
}

/// A loaded snapshot; derefs to [`Snapshot`] and through it to the config.
pub struct Guard<T>(arc_swap::Guard<Arc<Snapshot<T>>>);

impl<T> Guard<T> {
    /// The snapshot as an owned `Arc`, to keep beyond one unit of work.
    pub fn into_arc(self) -> Arc<Snapshot<T>> {
        arc_swap::Guard::into_inner(self.0)
    }
}

impl<T> Deref for Guard<T> {
    type Target = Snapshot<T>;

    fn deref(&self) -> &Snapshot<T> {
        &self.0
    }
}

impl<T> fmt::Debug for Guard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// arc-swap's [`Access`]: code written against `impl Access<Snapshot<T>>` takes a handle.
impl<T> Access<Snapshot<T>> for Handle<T> {
    type Guard = Guard<T>;

    fn load(&self) -> Guard<T> {
        Handle::load(self)
    }
}

/// A [`Handle`] narrowed to one part of the config by [`Handle::map`].
pub struct Projection<T, U: ?Sized, F> {
    handle: Handle<T>,
    project: Arc<F>,
    part: PhantomData<fn() -> *const U>,
}

impl<T, U: ?Sized, F: Fn(&T) -> &U> Projection<T, U, F> {
    /// The part, from the current snapshot: a lock-free read, like [`Handle::load`]; the
    /// projection is borrowed, so no reference count is touched.
    pub fn load(&self) -> Projected<'_, T, U, F> {
        Projected {
            guard: self.handle.load(),
            project: &self.project,
            part: PhantomData,
        }
    }
}

/// arc-swap's [`Access`] for a projection: the guard owns a reference to the projection.
impl<T, U, F: Fn(&T) -> &U> Access<U> for Projection<T, U, F> {
    type Guard = OwnedProjected<T, U, F>;

    fn load(&self) -> Self::Guard {
        OwnedProjected {
            guard: self.handle.load(),
            project: Arc::clone(&self.project),
            part: PhantomData,
        }
    }
}

/// One part of a loaded snapshot, from [`Access::load`] on a [`Projection`].
pub struct OwnedProjected<T, U: ?Sized, F> {
    guard: Guard<T>,
    project: Arc<F>,
    part: PhantomData<fn() -> *const U>,
}

impl<T, U: ?Sized, F: Fn(&T) -> &U> Deref for OwnedProjected<T, U, F> {
    type Target = U;

    fn deref(&self) -> &U {
        (self.project)(&self.guard.config)
    }
}

impl<T, U: ?Sized, F> fmt::Debug for OwnedProjected<T, U, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedProjected")
            .field("version", &self.guard.version)
            .finish_non_exhaustive()
    }
}

impl<T, U: ?Sized, F> Clone for Projection<T, U, F> {
    fn clone(&self) -> Self {
        Self {
            handle: self.handle.clone(),
            project: Arc::clone(&self.project),
            part: PhantomData,
        }
    }
}

impl<T, U: ?Sized, F> fmt::Debug for Projection<T, U, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Projection")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

/// One part of a loaded snapshot; derefs to the part.
pub struct Projected<'a, T, U: ?Sized, F> {
    guard: Guard<T>,
    project: &'a F,
    part: PhantomData<fn() -> *const U>,
}

impl<T, U: ?Sized, F> Projected<'_, T, U, F> {
    /// The version of the snapshot the part comes from.
    pub fn version(&self) -> u64 {
        self.guard.version
    }
}

impl<T, U: ?Sized, F> Deref for Projected<'_, T, U, F>
where
    F: Fn(&T) -> &U,
{
    type Target = U;

    fn deref(&self) -> &U {
        (self.project)(&self.guard.config)
    }
}

impl<T, U: ?Sized, F> fmt::Debug for Projected<'_, T, U, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Projected")
            .field("version", &self.guard.version)
            .finish_non_exhaustive()
    }
}
