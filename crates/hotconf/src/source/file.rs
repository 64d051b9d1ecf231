//! A config file.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Source, WatchTarget};
use crate::document::{Document, Format, Limits, Origin};
use crate::error::{Problem, ProblemKind};

/// A config file. The format comes from the extension unless set.
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
}

impl File {
    /// A file whose format is named by its extension.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            format: None,
            optional: false,
            allow_empty: false,
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

    /// The path given.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Source for File {
    fn read(&self, limits: &Limits) -> Result<Vec<Document>, Problem> {
        if self.optional
            && matches!(fs::symlink_metadata(&self.path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
        {
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
        let bytes = read_file(&self.path, limits)?;
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

/// Reads a regular file, refusing directories, devices and FIFOs (reading a FIFO would hang)
/// and anything larger than the size limit.
pub(crate) fn read_file(path: &Path, limits: &Limits) -> Result<Vec<u8>, Problem> {
    let file_name = path.display().to_string();
    let io_problem = |message: String| Problem::error(ProblemKind::Io, message).in_file(&file_name);
    let metadata = fs::metadata(path).map_err(|e| io_problem(describe_io(&e)))?;
    if metadata.is_dir() {
        return Err(io_problem("is a directory, expected a file".into()));
    }
    if !metadata.is_file() {
        return Err(io_problem("is not a regular file".into()));
    }
    let too_large = |size: u64| {
        Problem::error(
            ProblemKind::Limit,
            format!(
                "file is {size} bytes, over the limit of {} bytes (Limits::max_bytes)",
                limits.max_bytes
            ),
        )
        .in_file(&file_name)
    };
    if metadata.len() > limits.max_bytes {
        return Err(too_large(metadata.len()));
    }
    let file = fs::File::open(path).map_err(|e| io_problem(describe_io(&e)))?;
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    // The file may grow between stat and read: never read more than the limit allows.
    file.take(limits.max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io_problem(describe_io(&e)))?;
    if bytes.len() as u64 > limits.max_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
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
        let problem = read_file(dir.path(), &limits).unwrap_err();
        assert_eq!(problem.kind, ProblemKind::Io);
        assert!(problem.message.contains("is a directory"), "{problem}");

        let problem = read_file(&dir.path().join("missing.toml"), &limits).unwrap_err();
        assert_eq!(problem.kind, ProblemKind::Io);
        assert!(problem.message.contains("no such file"), "{problem}");

        let big = dir.path().join("big.toml");
        fs::write(&big, vec![b'#'; 2048]).unwrap();
        let small = Limits {
            max_bytes: 1024,
            ..Limits::default()
        };
        let problem = read_file(&big, &small).unwrap_err();
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
