//! A config file.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::retry::{self, Failed, RetryPolicy};
use super::{Source, WatchTarget};
use crate::document::{Document, Format, Limits, Origin};
use crate::error::{Problem, ProblemKind};

/// A config file. The format comes from the extension unless set.
///
/// A read that fails with a transient error (the file briefly missing while it is replaced,
/// `EAGAIN`, `EINTR`) is tried again under the file's [`RetryPolicy`] before the reload is
/// rejected; see there for when a missing file counts as transient.
///
/// ```
/// use hotconf::Reloader;
/// use hotconf::source::{File, Format};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("app.conf");
/// let reloader = Reloader::<serde_json::Value>::builder()
///     .defaults(Format::Toml, "rpm = 60\n")
///     .source(File::new(&path).format(Format::Toml).optional(true))
///     .build()?;
/// // Missing and optional: it adds nothing, the defaults apply.
/// assert_eq!(reloader.current().config()["rpm"], 60);
///
/// // Once it exists it is read as TOML, whatever its extension.
/// std::fs::write(&path, "rpm = 120\n")?;
/// reloader.reload()?;
/// assert_eq!(reloader.current().config()["rpm"], 120);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct File {
    path: PathBuf,
    format: Option<Format>,
    optional: bool,
    allow_empty: bool,
    retry: RetryPolicy,
    /// Whether the last read found the file: an optional file that was there and is now
    /// missing is waited for, one that never was is not.
    seen: Arc<AtomicBool>,
}

impl File {
    /// A file whose format is named by its extension.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            format: None,
            optional: false,
            allow_empty: false,
            retry: RetryPolicy::default(),
            seen: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sets the format, whatever the extension says.
    #[must_use]
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// An optional file that is missing contributes nothing instead of an error.
    #[must_use]
    pub fn optional(mut self, optional: bool) -> Self {
        self.optional = optional;
        self
    }

    /// Accept an empty file as an empty table. Off by default: a zero-byte file is most
    /// often a save in progress or a mistaken truncation, and applying it would remove
    /// every key.
    #[must_use]
    pub fn allow_empty(mut self, allow: bool) -> Self {
        self.allow_empty = allow;
        self
    }

    /// How failed reads are retried. Default: [`RetryPolicy::default`].
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The path given.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Source for File {
    fn read(&self, limits: &Limits) -> Result<Vec<Document>, Problem> {
        if self.optional && !self.seen.load(Ordering::Relaxed) && absent(&self.path) {
            return Ok(Vec::new());
        }
        let format = match self.format.or_else(|| Format::from_path(&self.path)) {
            Some(format) => format,
            None => {
                return Err(Problem::error(
                    ProblemKind::Io,
                    "unknown config format: name the file .toml, .yaml, .yml or .json, or set the format",
                )
                .in_file(self.path.display().to_string()));
            }
        };
        // A required file is configured by name, an optional one was here a moment ago:
        // missing is most likely a replacement in progress.
        let bytes = match read_file(&self.path, limits, &self.retry, true) {
            Ok(bytes) => bytes,
            // Gone, not a dangling link (that stays an error, as a typo in a link would).
            Err(failed)
                if self.optional
                    && failed.kind == Some(std::io::ErrorKind::NotFound)
                    && absent(&self.path) =>
            {
                self.seen.store(false, Ordering::Relaxed);
                return Ok(Vec::new());
            }
            Err(failed) => return Err(*failed.problem),
        };
        self.seen.store(true, Ordering::Relaxed);
        let mut document = Document::new(Origin::File(self.path.clone()), format, bytes);
        document.allow_empty = self.allow_empty;
        Ok(vec![document])
    }

    fn files(&self) -> Vec<PathBuf> {
        vec![self.path.clone()]
    }

    fn watch_targets(&self) -> Vec<WatchTarget> {
        vec![WatchTarget::File(self.path.clone())]
    }

    fn save_target(&self) -> Option<(PathBuf, Format)> {
        let format = self.format.or_else(|| Format::from_path(&self.path))?;
        Some((self.path.clone(), format))
    }
}

/// Reads a regular file under `policy`, refusing directories, devices and FIFOs (reading a
/// FIFO would hang) and anything larger than the size limit. `missing_is_transient`: a
/// missing file is retried.
pub(crate) fn read_file(
    path: &Path,
    limits: &Limits,
    policy: &RetryPolicy,
    missing_is_transient: bool,
) -> Result<Vec<u8>, Failed> {
    retry::run(policy, missing_is_transient, std::thread::sleep, || {
        read_once(path, limits)
    })
}

fn read_once(path: &Path, limits: &Limits) -> Result<Vec<u8>, Failed> {
    // Named only in a problem: a read that succeeds builds no text.
    let file_name = || path.display().to_string();
    let io_failed = |e: std::io::Error| {
        Failed::io(
            e.kind(),
            Problem::error(ProblemKind::Io, describe_io(&e)).in_file(file_name()),
        )
    };
    let fatal = |message: &str| {
        Failed::fatal(Problem::error(ProblemKind::Io, message).in_file(file_name()))
    };
    let metadata = fs::metadata(path).map_err(io_failed)?;
    if metadata.is_dir() {
        return Err(fatal("is a directory, expected a file"));
    }
    if !metadata.is_file() {
        return Err(fatal("is not a regular file"));
    }
    let too_large = |size: u64| {
        Failed::fatal(
            Problem::error(
                ProblemKind::Limit,
                format!(
                    "file is {size} bytes, over the limit of {} bytes (Limits::max_bytes)",
                    limits.max_bytes
                ),
            )
            .in_file(file_name()),
        )
    };
    if metadata.len() > limits.max_bytes {
        return Err(too_large(metadata.len()));
    }
    let file = fs::File::open(path).map_err(io_failed)?;
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    // The file may grow between stat and read: never read more than the limit allows.
    file.take(limits.max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_failed)?;
    if bytes.len() as u64 > limits.max_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Nothing, not even a dangling symlink, has this name.
fn absent(path: &Path) -> bool {
    matches!(fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

pub(super) fn describe_io(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_refuses_directories_missing_and_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits::default();
        let once = RetryPolicy::none();
        let read = |path: &Path, limits: &Limits| {
            read_file(path, limits, &once, true).map_err(|f| *f.problem)
        };
        let problem = read(dir.path(), &limits).unwrap_err();
        assert_eq!(problem.kind, ProblemKind::Io);
        assert!(problem.message.contains("is a directory"), "{problem}");

        let problem = read(&dir.path().join("missing.toml"), &limits).unwrap_err();
        assert_eq!(problem.kind, ProblemKind::Io);
        assert!(problem.message.contains("no such file"), "{problem}");

        let big = dir.path().join("big.toml");
        fs::write(&big, vec![b'#'; 2048]).unwrap();
        let small = Limits {
            max_bytes: 1024,
            ..Limits::default()
        };
        let problem = read(&big, &small).unwrap_err();
        assert_eq!(problem.kind, ProblemKind::Limit);
        assert!(problem.message.contains("over the limit"), "{problem}");
    }

    #[test]
    fn optional_missing_file_gives_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::new(dir.path().join("local.toml")).optional(true);
        assert!(file.read(&Limits::default()).unwrap().is_empty());
    }
}
