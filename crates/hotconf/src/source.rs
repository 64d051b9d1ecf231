//! Sources: where documents come from.
//!
//! A [`Source`] yields [`Document`]s — raw bytes with an origin, a format and a revision —
//! and knows nothing about parsing. Files and directories are sources; so are embedded
//! defaults and environment variables, and anything else that can produce bytes with an
//! origin (an etcd prefix, say). Reading a source is the pipeline's only I/O before the swap.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::document::Limits;
pub use crate::document::{Document, Format, Origin};
use crate::error::{Problem, ProblemKind};
use crate::trigger::Pusher;

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
    /// A [`Problem`] of kind [`ProblemKind::Io`] when the source cannot be read, or
    /// [`ProblemKind::Limit`] when it is too large.
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

    fn start(&self, pusher: Pusher) -> Result<(), Problem> {
        (**self).start(pusher)
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

/// A config file. The format comes from the extension unless set.
///
/// ```
/// use hotconf::source::{File, Format};
///
/// let file = File::new("config/app.conf").format(Format::Toml).optional(true);
/// # let _ = file;
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

fn describe_io(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => error.to_string(),
    }
}

/// The file names a directory source skips: editor swap and backup files, temp files,
/// vim's probe file and Kubernetes' staging link.
pub const DEFAULT_IGNORES: &[&str] = &[
    "*.swp",
    "*.swx",
    "*~",
    ".#*",
    "#*#",
    "*.tmp",
    "4913",
    "..data_tmp",
];

/// Whether a file name is editor or tool litter by [`DEFAULT_IGNORES`].
pub(crate) fn is_litter(name: &str) -> bool {
    DEFAULT_IGNORES
        .iter()
        .any(|pattern| glob_match(pattern, name))
}

/// The config files of a directory, in sorted name order, matching a glob; subdirectories,
/// hidden entries and litter ([`DEFAULT_IGNORES`]) are skipped. The default glob takes every
/// `.toml`, `.yaml`, `.yml` and `.json` file whose format is compiled in (each is a cargo
/// feature).
///
/// ```
/// use hotconf::source::Dir;
///
/// let routes = Dir::new("config/routes.d").glob("*.yaml");
/// # let _ = routes;
/// ```
#[derive(Clone, Debug)]
pub struct Dir {
    path: PathBuf,
    glob: Option<String>,
    allow_empty: bool,
}

impl Dir {
    /// Every config file of `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            glob: None,
            allow_empty: false,
        }
    }

    /// Only the files whose name matches `glob` (`*`, `?`, `{a,b}`).
    #[must_use]
    pub fn glob(mut self, glob: impl Into<String>) -> Self {
        self.glob = Some(glob.into());
        self
    }

    /// Accept empty files as empty tables.
    #[must_use]
    pub fn allow_empty(mut self, allow: bool) -> Self {
        self.allow_empty = allow;
        self
    }

    /// The directory given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a file name belongs to this source (ignoring whether it exists).
    pub fn selects(&self, name: &str) -> bool {
        if name.starts_with('.') || is_litter(name) {
            return false;
        }
        match &self.glob {
            Some(glob) => glob_match(glob, name),
            None => Format::from_path(Path::new(name)).is_some_and(Format::is_compiled_in),
        }
    }

    /// The selected files as they are now, sorted by name.
    pub fn list(&self) -> Result<Vec<PathBuf>, Problem> {
        let dir_name = self.path.display().to_string();
        let entries = fs::read_dir(&self.path).map_err(|e| {
            let message = if e.raw_os_error() == Some(20) {
                "is not a directory".to_owned()
            } else {
                describe_io(&e)
            };
            Problem::error(ProblemKind::Io, message).in_file(&dir_name)
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| Problem::error(ProblemKind::Io, describe_io(&e)).in_file(&dir_name))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            // Follow symlinks: a Kubernetes ConfigMap's files are links into `..data`.
            let is_dir = fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
            if !is_dir && self.selects(&name) {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }
}

impl Source for Dir {
    fn read(&self, limits: &Limits) -> Result<Vec<Document>, Problem> {
        self.list()?
            .into_iter()
            .map(|path| {
                let bytes = read_file(&path, limits)?;
                let format = Format::from_path(&path).unwrap_or(Format::Yaml);
                let mut document = Document::new(Origin::File(path), format, bytes);
                document.allow_empty = self.allow_empty;
                Ok(document)
            })
            .collect()
    }

    fn files(&self) -> Vec<PathBuf> {
        self.list().unwrap_or_default()
    }

    fn watch_targets(&self) -> Vec<WatchTarget> {
        vec![WatchTarget::Dir(self.clone())]
    }
}

/// Defaults embedded in the program: the lowest layer, so that files only need to say what
/// differs.
///
/// ```
/// use hotconf::source::{Defaults, Format};
///
/// let defaults = Defaults::text(Format::Toml, "[limits]\nrpm = 60\n");
/// # let _ = defaults;
/// ```
#[derive(Clone, Debug)]
pub struct Defaults {
    document: Document,
}

impl Defaults {
    /// Defaults written in a config format.
    pub fn text(format: Format, text: impl Into<String>) -> Self {
        let mut document = Document::new(Origin::Defaults, format, text.into().into_bytes());
        document.allow_empty = true;
        Self { document }
    }

    /// Defaults from a value, such as `T::default()`. The value is layered as JSON text,
    /// so this needs the `json` feature (which adds no dependency).
    ///
    /// # Errors
    ///
    /// [`Error::Unsaveable`](crate::Error::Unsaveable) when the value does not serialize to
    /// a table.
    #[cfg(feature = "json")]
    pub fn value<V: serde::Serialize>(value: &V) -> crate::Result<Self> {
        let json = serde_json::to_vec_pretty(value)
            .map_err(|e| crate::Error::Unsaveable(format!("defaults do not serialize: {e}")))?;
        Ok(Self::text(Format::Json, String::from_utf8_lossy(&json)))
    }
}

impl Source for Defaults {
    fn read(&self, _limits: &Limits) -> Result<Vec<Document>, Problem> {
        Ok(vec![self.document.clone()])
    }
}

/// Environment variable overrides: `APP__LIMITS__RPM=120` sets `limits.rpm` with prefix
/// `APP` and separator `__`. Names are lowercased to give the config keys. A value that
/// reads as JSON (`120`, `true`, `[1,2]`, `"quoted"`) takes that type; anything else is a
/// string.
///
/// The variables are read once, when the `Env` is created: a process's environment cannot
/// change from outside, so changing an override takes a restart.
#[derive(Clone, Debug)]
pub struct Env {
    document: Document,
}

impl Env {
    /// The process's variables that start with `prefix` followed by `separator`.
    pub fn new(prefix: &str, separator: &str) -> Self {
        Self::from_vars(prefix, separator, std::env::vars())
    }

    /// Like [`Env::new`] over given variables (for tests and for embedding).
    pub fn from_vars(
        prefix: &str,
        separator: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let lead = format!("{prefix}{separator}");
        let mut lines: Vec<String> = vars
            .into_iter()
            .filter(|(name, _)| name.starts_with(&lead) && name.len() > lead.len())
            // One variable per line: a value with a newline cannot be represented.
            .filter(|(_, value)| !value.contains('\n'))
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        lines.sort();
        let mut text = String::new();
        for line in lines {
            text.push_str(&line);
            text.push('\n');
        }
        let mut document = Document::new(
            Origin::Env {
                prefix: prefix.to_owned(),
                separator: separator.to_owned(),
            },
            Format::Env,
            text.into_bytes(),
        );
        document.allow_empty = true;
        Self { document }
    }
}

impl Source for Env {
    fn read(&self, _limits: &Limits) -> Result<Vec<Document>, Problem> {
        Ok(vec![self.document.clone()])
    }
}

/// A minimal glob over file names: `*` (any run), `?` (one character) and `{a,b}`
/// alternatives.
pub(crate) fn glob_match(glob: &str, name: &str) -> bool {
    if let Some(open) = glob.find('{')
        && let Some(close) = glob[open..].find('}').map(|c| open + c)
    {
        let (head, tail) = (&glob[..open], &glob[close + 1..]);
        return glob[open + 1..close]
            .split(',')
            .any(|alt| glob_match(&format!("{head}{alt}{tail}"), name));
    }
    let pattern: Vec<char> = glob.chars().collect();
    let text: Vec<char> = name.chars().collect();
    // Iterative wildcard matching with one backtrack point.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::revision;

    #[test]
    fn globs() {
        let cases = [
            ("*.yaml", "a.yaml", true),
            ("*.yaml", "a.yml", false),
            ("*.{yaml,yml}", "a.yml", true),
            ("app-?.toml", "app-1.toml", true),
            ("app-?.toml", "app-12.toml", false),
            ("*", "", true),
            ("#*#", "#notes#", true),
            ("*~", "app.toml~", true),
        ];
        for (glob, name, expected) in cases {
            assert_eq!(glob_match(glob, name), expected, "{glob} vs {name}");
        }
    }

    #[test]
    fn litter_is_recognised() {
        for name in [
            ".app.toml.swp",
            "app.toml~",
            "4913",
            "..data_tmp",
            ".#app.toml",
            "x.tmp",
        ] {
            assert!(is_litter(name), "{name}");
        }
        assert!(!is_litter("app.toml"));
    }

    #[cfg(all(feature = "yaml", feature = "json"))]
    #[test]
    fn dir_lists_config_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.yaml",
            "a.toml",
            "c.json",
            "notes.txt",
            "a.toml~",
            ".hidden.yaml",
        ] {
            fs::write(dir.path().join(name), "x = 1").unwrap();
        }
        fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        let names: Vec<_> = Dir::new(dir.path())
            .list()
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.toml", "b.yaml", "c.json"]);
        let yaml_only = Dir::new(dir.path()).glob("*.yaml").list().unwrap();
        assert_eq!(yaml_only.len(), 1);
    }

    #[cfg(all(feature = "toml", not(feature = "yaml"), not(feature = "json")))]
    #[test]
    fn dir_default_glob_takes_only_compiled_in_formats() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.yaml", "a.toml", "c.json", "d.yml"] {
            fs::write(dir.path().join(name), "x = 1").unwrap();
        }
        let names: Vec<_> = Dir::new(dir.path())
            .list()
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.toml"]);
        // An explicit glob still takes what it names; reading it then says why it fails.
        let yaml = Dir::new(dir.path()).glob("*.yaml").list().unwrap();
        assert_eq!(yaml.len(), 1);
        assert_eq!(Format::from_path(&yaml[0]), Some(Format::Yaml));
    }

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

    #[test]
    fn revision_changes_with_content() {
        assert_eq!(revision(b"a = 1"), revision(b"a = 1"));
        assert_ne!(revision(b"a = 1"), revision(b"a = 2"));
    }
}
