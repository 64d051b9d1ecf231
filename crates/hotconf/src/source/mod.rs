//! Sources: where documents come from.
//!
//! A [`Source`] yields [`Document`]s — raw bytes with an origin, a format and a revision —
//! and knows nothing about parsing. Files and directories are sources; so are embedded
//! defaults and environment variables, and anything else that can produce bytes with an
//! origin (an etcd prefix, say). Reading a source is the pipeline's only I/O before the swap.

mod dir;
mod embedded;
mod file;
mod retry;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::document::Limits;
pub use crate::document::{Document, Format, Origin};
use crate::error::Problem;
use crate::trigger::Pusher;
#[cfg(feature = "watch")]
pub(crate) use dir::glob_match;
pub use dir::{DEFAULT_IGNORES, Dir};
pub use embedded::{Defaults, Env};
pub use file::File;
pub use retry::{Decision, RetryPolicy};

/// Something that yields documents. Sources are read in order and their documents layered:
/// later documents override earlier ones.
///
/// Implement it to read config from anywhere; the pipeline only needs the bytes, an origin
/// for error messages and a format.
pub trait Source: fmt::Debug + Send + Sync {
    /// Reads the documents as they are now.
    ///
    /// # Errors
    ///
    /// A [`Problem`] of kind [`ProblemKind::Io`](crate::ProblemKind::Io) when the source cannot be read, or
    /// [`ProblemKind::Limit`](crate::ProblemKind::Limit) when it is too large.
    fn read(&self, limits: &Limits) -> Result<Vec<Document>, Problem>;

    /// The files this source reads, for error rendering and saving. Empty when the source
    /// is not on disk.
    fn files(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    /// What the file watcher must watch to see every change to what [`read`](Self::read)
    /// returns. By default, each of [`files`](Self::files): a source that reads files is
    /// watched without more code. Sources that are not on disk return nothing and are only
    /// re-read when something else triggers a reload.
    fn watch_targets(&self) -> Vec<WatchTarget> {
        self.files().into_iter().map(WatchTarget::File).collect()
    }

    /// The file [`Reloader::save`](crate::Reloader::save) may write the effective config
    /// to, with its format: a single config file returns its own; the default is none.
    fn save_target(&self) -> Option<(PathBuf, Format)> {
        None
    }

    /// Called once, when the reloader is built, with the [`Pusher`] for this source. A
    /// source that can tell when it changes (a store's watch) keeps it and pushes every new
    /// set of documents with its revision: the reloader then applies exactly those, and
    /// uses them instead of [`read`](Self::read) from then on. It should stop when a push
    /// returns `false`. The default does nothing: the source is read on every reload.
    ///
    /// # Errors
    ///
    /// A problem that fails [`build`](crate::ReloaderBuilder::build).
    fn start(&self, pusher: Pusher) -> Result<(), Problem> {
        let _ = pusher;
        Ok(())
    }

    /// Called with the documents the reloader now runs: after the first load (before
    /// [`start`](Self::start)), and on the reload worker after every attempt on the
    /// sources whose outcome was `applied`, `unchanged` or `restart_required` — never
    /// after a `rejected` one, nor after a programmatic change
    /// ([`apply`](crate::Reloader::apply), [`rollback_to`](crate::Reloader::rollback_to)),
    /// whose config is not the sources' documents. `documents` are every source's, lowest
    /// layer first: a source picks its own by [`origin`](Document::origin).
    ///
    /// A source that keeps a last-known-good copy (to start from when its store is
    /// unreachable) writes it here, so that the copy only ever holds documents the service
    /// accepted. It runs on the reload worker, which waits for it: keep it short. The
    /// default does nothing.
    fn accepted(&self, documents: &[Document]) {
        let _ = documents;
    }

    /// Forgets whatever the source remembers of earlier reads, so that the next
    /// [`read`](Self::read) reads everything again. A source that skips what it finds
    /// unchanged (a [`Dir`] skips files whose stamp is unchanged) implements it; the
    /// reloader calls it before a full reload
    /// ([`Reloader::reload_full`](crate::Reloader::reload_full), a reload triggered by a
    /// signal). The default does nothing: a source that keeps nothing reads everything
    /// every time.
    fn invalidate(&self) {}
}

impl<S: Source + ?Sized> Source for Box<S> {
    fn read(&self, limits: &Limits) -> Result<Vec<Document>, Problem> {
        (**self).read(limits)
    }

    fn files(&self) -> Vec<PathBuf> {
        (**self).files()
    }

    fn watch_targets(&self) -> Vec<WatchTarget> {
        (**self).watch_targets()
    }

    fn save_target(&self) -> Option<(PathBuf, Format)> {
        (**self).save_target()
    }

    fn start(&self, pusher: Pusher) -> Result<(), Problem> {
        (**self).start(pusher)
    }

    fn accepted(&self, documents: &[Document]) {
        (**self).accepted(documents);
    }

    fn invalidate(&self) {
        (**self).invalidate();
    }
}

/// Something on disk a [`Source`] reads, as the file watcher needs to know it.
///
/// The watcher never watches a file's inode alone: editors replace files by renaming, and
/// Kubernetes swaps a symlink. It watches the directory that holds each name, follows every
/// symlink on the way (and watches the directories those live in), and waits on the nearest
/// existing ancestor for a path that does not exist yet.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum WatchTarget {
    /// One file, by the path it is read from (it may be a symlink, or missing for now).
    File(PathBuf),
    /// A directory's entries that [`Dir::selects`]: new matching files are picked up and
    /// deleted ones dropped.
    Dir(Dir),
}

impl WatchTarget {
    /// The path as given.
    pub fn path(&self) -> &Path {
        match self {
            Self::File(path) => path,
            Self::Dir(dir) => dir.path(),
        }
    }
}
