//! `--write-to DIR`: the applied documents as files, so a program driven by `--on-apply`
//! (or one that reads files at start) has them to read, as confd is used for.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use hotconf::{Event, Observer, ObserverHealth, Outcome};

use crate::{Error, Tracker, content_hash_of_event};

/// Writes the documents of each loaded, applied or unchanged attempt into a directory: the
/// file name is the key relative to the prefix (`/app/server.toml` → `DIR/server.toml`,
/// `/app/routes/a.yaml` → `DIR/routes/a.yaml`). Each file is written atomically (a hidden
/// temp file in the same directory, flushed to disk, renamed over the old one) with mode
/// 0600, since configs hold secrets; files it wrote before that are no longer among the
/// documents are removed. Files it did not write are left alone, files from an earlier run
/// included. A key with a `..` segment, or one that would leave the directory, is refused.
///
/// As an [`Observer`] it writes in [`observe`](Observer::observe), on the reload worker,
/// before the event reaches the event stream: a command run on an `applied` event (like
/// `--on-apply`) finds the files written. An attempt that changes only restart-required
/// paths (`restart_required`) is not written; an `applied` one with pending paths is
/// written whole (the files are then what a restart would load). Failures show in
/// [`health`](Observer::health) and in the log; the next attempt writes everything again.
///
/// ```no_run
/// use hotconf_etcd::{Prefix, Tracker, WriteTo};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // In a service, the tracker is the EtcdSource's (`source.tracker()`).
/// let tracker = Tracker::new(Prefix::new("/app/")?);
/// let files = WriteTo::new("/run/app/config", tracker)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct WriteTo {
    dir: PathBuf,
    tracker: Tracker,
    written: Mutex<BTreeSet<PathBuf>>,
    health: Mutex<Option<String>>,
}

/// What one write did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Written {
    /// Files written (new or changed), relative to the directory.
    pub written: Vec<PathBuf>,
    /// Files already holding these bytes.
    pub kept: Vec<PathBuf>,
    /// Files removed: written before, no longer among the documents.
    pub removed: Vec<PathBuf>,
}

/// Names temp files apart within one process.
static TEMP: AtomicU64 = AtomicU64::new(0);

impl WriteTo {
    /// Writes into `dir` (created, mode 0700, if missing) the documents `tracker` recorded.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory cannot be created or is not a directory.
    pub fn new(dir: impl Into<PathBuf>, tracker: Tracker) -> Result<Self, Error> {
        let dir = dir.into();
        create_dir(&dir)?;
        if !dir.is_dir() {
            return Err(Error::io(
                format!("--write-to {}", dir.display()),
                std::io::Error::other("not a directory"),
            ));
        }
        Ok(Self {
            dir,
            tracker,
            written: Mutex::default(),
            health: Mutex::default(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the documents whose [content hash](crate::content_hash) is `hash`, as the
    /// tracker remembers them.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] when the tracker no longer has them or a key cannot be a file name
    /// here (nothing is written then); [`Error::Io`] when a file cannot be written (the
    /// files written before it stay; the next write redoes them all).
    pub fn write(&self, hash: &str) -> Result<Written, Error> {
        let snapshot = self.tracker.get(hash).ok_or_else(|| {
            Error::Usage(format!(
                "the documents of content hash {hash} are no longer tracked"
            ))
        })?;
        self.write_documents(&snapshot.documents)
    }

    /// Writes `documents` (keys under the tracker's prefix, and their values).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub fn write_documents(&self, documents: &[(String, Arc<[u8]>)]) -> Result<Written, Error> {
        let prefix = self.tracker.prefix();
        let files: Vec<(PathBuf, &[u8])> = documents
            .iter()
            .map(|(key, value)| {
                let relative = key
                    .strip_prefix(prefix.as_str())
                    .and_then(file_name)
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "key {key} cannot be written under {}: not a plain relative name \
                             under {prefix}",
                            self.dir.display()
                        ))
                    })?;
                Ok((relative, &value[..]))
            })
            .collect::<Result<_, Error>>()?;
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        let mut done = Written::default();
        for (relative, bytes) in &files {
            let path = self.dir.join(relative);
            if fs::read(&path).is_ok_and(|old| old == *bytes) {
                done.kept.push(relative.clone());
            } else {
                write_atomically(&path, bytes)?;
                done.written.push(relative.clone());
            }
            written.insert(relative.clone());
        }
        let now: BTreeSet<&PathBuf> = files.iter().map(|(relative, _)| relative).collect();
        let stale: Vec<PathBuf> = written
            .iter()
            .filter(|relative| !now.contains(relative))
            .cloned()
            .collect();
        for relative in stale {
            let path = self.dir.join(&relative);
            match fs::remove_file(&path) {
                Ok(()) => done.removed.push(relative.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("cannot remove {}", path.display()), e)),
            }
            written.remove(&relative);
        }
        if !done.removed.is_empty() {
            sync_dir(&self.dir);
        }
        Ok(done)
    }
}

impl Observer for WriteTo {
    fn observe(&self, event: &Event) {
        if !matches!(
            event.outcome,
            Outcome::Loaded | Outcome::Applied | Outcome::Unchanged
        ) {
            return;
        }
        let hash = content_hash_of_event(self.tracker.prefix(), event);
        let result = self.write(&hash);
        let error = result.err().map(|e| e.to_string());
        if let Some(error) = &error {
            tracing::warn!(dir = %self.dir.display(), "--write-to: {error}");
        }
        *self.health.lock().unwrap_or_else(PoisonError::into_inner) = error;
    }

    fn health(&self) -> Option<ObserverHealth> {
        let error = self
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Some(
            ObserverHealth::new("write_to", error.is_none(), error)
                .with_detail(serde_json::json!({ "dir": self.dir.display().to_string() })),
        )
    }
}

/// A key's rest after the prefix as a relative path of plain segments: no `..`, `.`, root
/// or empty segment.
fn file_name(rest: &str) -> Option<PathBuf> {
    if rest.is_empty() || rest.contains('\0') || rest.split('/').any(str::is_empty) {
        return None;
    }
    let path = Path::new(rest);
    path.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| path.to_path_buf())
}

fn create_dir(dir: &Path) -> Result<(), Error> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))
}

/// Temp file beside `path`, flushed, renamed over it, the directory flushed.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let parent = path.parent().unwrap_or(Path::new("."));
    create_dir(parent)?;
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    // Hidden, so a directory source watching DIR skips it.
    let temp = parent.join(format!(
        ".{name}.{}-{}.hotconf-tmp",
        std::process::id(),
        TEMP.fetch_add(1, Ordering::Relaxed)
    ));
    let context = || format!("cannot write {}", path.display());
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(Error::io(context(), e));
    }
    sync_dir(parent);
    Ok(())
}

/// Flushes a directory's entries (the rename) to disk; best effort.
fn sync_dir(dir: &Path) {
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_relative_paths() {
        let cases = [
            ("a.toml", Some("a.toml")),
            ("routes/a.yaml", Some("routes/a.yaml")),
            ("", None),
            ("../a.toml", None),
            ("x/../../a.toml", None),
            ("./a.toml", None),
            ("/a.toml", None),
            ("x//a.toml", None),
            ("x/", None),
            ("a\0b", None),
            ("..", None),
        ];
        for (rest, expected) in cases {
            assert_eq!(file_name(rest), expected.map(PathBuf::from), "{rest:?}");
        }
    }
}
