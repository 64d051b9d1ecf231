//! The file watcher, started and stopped from the reloader: one trigger among others.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Reloader, lock};
use crate::error::Result;
use crate::validate::Validate;

impl<T> Reloader<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    /// Starts watching the sources' files on a dedicated thread: from now on every save is
    /// picked up, once. Returns once every watch is armed, so a save made right after it
    /// returns is seen. Calling it again while watching does nothing.
    ///
    /// What is watched: the directory of each file (never only the file's inode, which
    /// editors and `mv` replace), every symlink on the way to it (a Kubernetes ConfigMap's
    /// `..data` swap), the entries of each directory source, and for a path that does not
    /// exist yet its nearest existing ancestor. Editor and tool litter is ignored
    /// ([`DEFAULT_IGNORES`](crate::source::DEFAULT_IGNORES) and
    /// [`ReloaderBuilder::ignore`](crate::ReloaderBuilder::ignore)).
    ///
    /// How saves become reloads: events coalesce until the files have been quiet for the
    /// [debounce](crate::ReloaderBuilder::debounce) time (100 ms by default, or the
    /// config's own `debounce_ms`, see
    /// [`settings_table`](crate::ReloaderBuilder::settings_table)); then the
    /// watcher asks the worker for a reload with [`Trigger::Watch`](crate::Trigger::Watch), through the same seam
    /// as any trigger. Bytes that did not change give no event at all; changed bytes with
    /// the same effective config give `unchanged`. A config that fails to load while its
    /// files are still being written gets more quiet periods to settle before it is
    /// rejected, once.
    ///
    /// When native watching fails (the inotify watch limit, no inotify instance left) the
    /// watcher falls back to polling every second and logs a warning through `tracing`.
    ///
    /// Needs the `watch` feature.
    ///
    /// # Errors
    ///
    /// [`Error::Watch`](crate::Error::Watch) when the working directory cannot be read (relative paths are
    /// resolved against it) or the thread cannot be spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("app.toml");
    /// std::fs::write(&path, "rpm = 60\n")?;
    /// let reloader = hotconf::Reloader::<serde_json::Value>::builder()
    ///     .file(&path)
    ///     .build()?;
    /// reloader.watch()?;
    ///
    /// std::fs::write(&path, "rpm = 120\n")?;
    /// let deadline = Instant::now() + Duration::from_secs(10);
    /// while reloader.current().version() == 1 && Instant::now() < deadline {
    ///     std::thread::sleep(Duration::from_millis(10));
    /// }
    /// assert_eq!(reloader.current().config()["rpm"], 120);
    /// # Ok(())
    /// # }
    /// ```
    pub fn watch(&self) -> Result<()> {
        self.start_watching(None)
    }

    /// Like [`watch`](Self::watch), but looks at the files every `interval` instead of
    /// being told by the operating system: for network filesystems (NFS, SMB, some FUSE and
    /// container mounts) that deliver no events. Each look reads every file of the watched
    /// directories to compare contents.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) when `interval` is below 10 ms; otherwise as
    /// [`watch`](Self::watch).
    pub fn watch_polling(&self, interval: Duration) -> Result<()> {
        crate::watch::check_poll_interval(interval)?;
        self.start_watching(Some(interval))
    }

    fn start_watching(&self, poll: Option<Duration>) -> Result<()> {
        let mut slot = lock(&self.inner.watching);
        if slot.is_some() {
            return Ok(());
        }
        let shared = &self.inner.shared;
        let extras = lock(&shared.extra_files).clone();
        let targets = shared.watch_targets();
        let watching = crate::watch::start(
            targets,
            &self.inner.shared.watch_options,
            Arc::clone(&self.inner.shared.debounce_ms),
            poll,
            self.trigger_handle(),
        )?;
        let retarget = watching.retarget();
        let mut installed = lock(&shared.retarget);
        // The worker may have changed the extra files while the watch was starting: it
        // found no watcher to tell.
        if *lock(&shared.extra_files) != extras {
            retarget(shared.watch_targets());
        }
        *installed = Some(retarget);
        drop(installed);
        *slot = Some(watching);
        Ok(())
    }

    /// Stops watching. Saves are then picked up only by [`reload`](Self::reload). Does
    /// nothing when not watching. Needs the `watch` feature.
    pub fn unwatch(&self) {
        let watching = lock(&self.inner.watching).take();
        // Dropped outside the lock: stopping joins the watcher thread.
        if let Some(watching) = watching {
            drop(watching);
            self.trigger_handle()
                .watcher(crate::trigger::WatcherState::new(false, false, None));
        }
    }
}
