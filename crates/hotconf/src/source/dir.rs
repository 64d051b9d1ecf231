//! A directory of config files, and which names in it are litter.

mod cache;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use cache::{Cache, Stamp};

use super::file::{describe_io, read_file};
use super::retry::{self, Failed, RetryPolicy};
use super::{Source, WatchTarget};
use crate::document::{Document, Format, Limits, Origin};
use crate::error::{Problem, ProblemKind};

/// The file names a directory source skips: editor swap and backup files, temp files and
/// lock files (`~$report.yaml`, `~lock`), vim's probe file and Kubernetes' staging link.
pub const DEFAULT_IGNORES: &[&str] = &[
    "*.swp",
    "*.swx",
    "*~",
    ".#*",
    "#*#",
    "*.tmp",
    "4913",
    "..data_tmp",
    "~*",
];

/// The bytes some pattern of [`DEFAULT_IGNORES`] starts with, and those one ends with,
/// written literally. Every pattern has one or the other (else the build fails), so a name
/// that neither starts nor ends with such a byte is no litter, without matching each
/// pattern: a directory asks for every name on every reload.
const LITTER_ENDS: ([bool; 256], [bool; 256]) = literal_ends(DEFAULT_IGNORES);

const fn literal_ends(patterns: &[&str]) -> ([bool; 256], [bool; 256]) {
    let (mut first, mut last) = ([false; 256], [false; 256]);
    let mut i = 0;
    while i < patterns.len() {
        let pattern = patterns[i].as_bytes();
        let (head, tail) = (pattern[0], pattern[pattern.len() - 1]);
        if literal(head) {
            first[head as usize] = true;
        } else if literal(tail) {
            last[tail as usize] = true;
        } else {
            panic!("a default ignore pattern must start or end with a literal character");
        }
        i += 1;
    }
    (first, last)
}

/// Whether a glob byte stands for itself.
const fn literal(byte: u8) -> bool {
    !matches!(byte, b'*' | b'?' | b'{' | b'}' | b',')
}

/// Whether a file name is editor or tool litter by [`DEFAULT_IGNORES`].
pub(crate) fn is_litter(name: &str) -> bool {
    let bytes = name.as_bytes();
    let (first, last) = &LITTER_ENDS;
    let may = |byte: Option<&u8>, ends: &[bool; 256]| byte.is_some_and(|&b| ends[usize::from(b)]);
    (may(bytes.first(), first) || may(bytes.last(), last))
        && DEFAULT_IGNORES
            .iter()
            .any(|pattern| glob_match(pattern, name))
}

/// The config files of a directory, in sorted name order, matching a glob; subdirectories,
/// hidden entries and litter ([`DEFAULT_IGNORES`]) are skipped. The default glob takes every
/// `.toml`, `.yaml`, `.yml` and `.json` file whose format is compiled in (each is a cargo
/// feature).
///
/// Listing the directory and reading each file it listed are retried under the source's
/// [`RetryPolicy`] when they fail with a transient error, a missing directory or a file
/// gone since it was listed included (a file genuinely deleted in between costs the
/// policy's bounded wait, then rejects that reload as before).
///
/// # Incremental reads
///
/// A read lists the directory and stats every file, but reads only the files that may have
/// changed since the last read; the others give the document read then. A file is read
/// again unless its device, inode, size, `mtime` and `ctime` (in nanoseconds) are all
/// unchanged *and* no watcher event named it. `ctime` is what catches a tool that restores
/// `mtime` (`cp -p`, `rsync -t`, `touch -d`): no tool can set it back.
///
/// Every file is read again after a kernel event queue overflow (or any other watcher
/// rescan), on a reload triggered by a signal (`SIGHUP` in `hotconf watch`), on
/// [`Reloader::reload_full`](crate::Reloader::reload_full) and after
/// [`Source::invalidate`]. A file whose times lie within a second of the read, or whose
/// `ctime` has no sub-second part (a filesystem with coarse timestamps, such as ext3 or
/// FAT), is read on every reload: a second write within one tick of the filesystem's
/// clock could leave its stamp as it was. On platforms other than Unix every file is read
/// every time. Clones share what was read (the watcher holds one); a builder method
/// (`glob`, `sections`, …) starts afresh.
///
/// ```
/// use hotconf::source::Dir;
///
/// let routes = Dir::new("config/routes.d").glob("*.yaml");
/// assert!(routes.selects("10-api.yaml"));
/// assert!(!routes.selects("10-api.toml"));
/// // Litter is skipped even when the glob matches it.
/// assert!(!routes.selects(".10-api.yaml.swp") && !routes.selects("~10-api.yaml"));
/// ```
#[derive(Clone, Debug)]
pub struct Dir {
    path: PathBuf,
    glob: Option<String>,
    allow_empty: bool,
    allow_none: bool,
    sections: bool,
    retry: RetryPolicy,
    cache: Arc<Cache>,
}

impl Dir {
    /// Every config file of `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            glob: None,
            allow_empty: false,
            allow_none: false,
            sections: false,
            retry: RetryPolicy::default(),
            cache: Arc::default(),
        }
    }

    /// Only the files whose name matches `glob` (`*`, `?`, `{a,b}`).
    #[must_use]
    pub fn glob(mut self, glob: impl Into<String>) -> Self {
        self.glob = Some(glob.into());
        self.cache = Arc::default();
        self
    }

    /// Accept empty files as empty tables.
    #[must_use]
    pub fn allow_empty(mut self, allow: bool) -> Self {
        self.allow_empty = allow;
        self.cache = Arc::default();
        self
    }

    /// Accept a directory with no matching file as an empty layer. By default it is an
    /// error: a directory whose files were all deleted (or whose only file was replaced by a
    /// directory) would otherwise apply a config with every key removed.
    #[must_use]
    pub fn allow_no_files(mut self, allow: bool) -> Self {
        self.allow_none = allow;
        self.cache = Arc::default();
        self
    }

    /// Mounts each file under its name without the extension: `rate_limits.yaml` holds the
    /// `rate_limits` section without repeating its name, and errors in it are still located
    /// in it (`rate_limits.default.rpm`). Saving does not split the config back into files.
    #[must_use]
    pub fn sections(mut self, sections: bool) -> Self {
        self.sections = sections;
        self.cache = Arc::default();
        self
    }

    /// How failed reads are retried. Default: [`RetryPolicy::default`].
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self.cache = Arc::default();
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
            // `Path::extension` of a name that does not start with a dot, without parsing
            // it as a path.
            None => name
                .rsplit_once('.')
                .and_then(|(_, ext)| Format::from_extension(ext))
                .is_some_and(Format::is_compiled_in),
        }
    }

    /// The selected files as they are now, sorted by name.
    pub fn list(&self) -> Result<Vec<PathBuf>, Problem> {
        self.scan()
            .map(|files| {
                files
                    .into_iter()
                    .map(|(name, _)| self.path.join(name))
                    .collect()
            })
            .map_err(|failed| *failed.problem)
    }

    /// How many files this source and its clones have read from disk so far: a reload
    /// counts only the files it read again (see [Incremental reads](Self#incremental-reads)).
    ///
    /// ```
    /// use hotconf::source::{Dir, Source};
    ///
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join("app.toml"), "rpm = 60\n")?;
    /// let source = Dir::new(dir.path());
    /// source.read(&Default::default())?;
    /// assert_eq!(source.files_read(), 1);
    /// source.invalidate();
    /// source.read(&Default::default())?;
    /// assert_eq!(source.files_read(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn files_read(&self) -> u64 {
        self.cache.reads()
    }

    /// A watcher event named `path`: if it is one of this directory's file names, the next
    /// read reads that file whatever its stamp says.
    #[cfg(feature = "watch")]
    pub(crate) fn named(&self, path: &Path) {
        if let Some(name) = path.file_name() {
            self.cache.name(name.to_owned());
        }
    }

    /// The selected files' names with their stamps (taken before they are read), sorted.
    fn scan(&self) -> Result<Vec<(String, Option<Stamp>)>, Failed> {
        let dir_name = self.path.display().to_string();
        let io_failed = |e: std::io::Error| {
            let message = if e.raw_os_error() == Some(20) {
                "is not a directory".to_owned()
            } else {
                describe_io(&e)
            };
            Failed::io(
                e.kind(),
                Problem::error(ProblemKind::Io, message).in_file(&dir_name),
            )
        };
        let entries = fs::read_dir(&self.path).map_err(io_failed)?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_failed)?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !self.selects(&name) {
                continue;
            }
            // Follow symlinks: a Kubernetes ConfigMap's files are links into `..data`. Any
            // other entry is stat'ed through the directory's handle, with no path built.
            let metadata = match entry.file_type() {
                Ok(kind) if !kind.is_symlink() => entry.metadata(),
                _ => fs::metadata(entry.path()),
            };
            if metadata.as_ref().is_ok_and(fs::Metadata::is_dir) {
                continue;
            }
            let stamp = metadata.ok().as_ref().and_then(Stamp::of);
            files.push((name, stamp));
        }
        // By name: the order paths sort in (one directory), without comparing them
        // component by component.
        files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(files)
    }
}

impl Dir {
    /// The glob as a reader would write it: the one given, or the compiled-in formats.
    fn glob_text(&self) -> String {
        match &self.glob {
            Some(glob) => glob.clone(),
            None => {
                let extensions: Vec<&str> = [
                    (Format::Toml, &["toml"][..]),
                    (Format::Yaml, &["yaml", "yml"]),
                    (Format::Json, &["json"]),
                ]
                .into_iter()
                .filter(|(format, _)| format.is_compiled_in())
                .flat_map(|(_, extensions)| extensions.iter().copied())
                .collect();
                format!("*.{{{}}}", extensions.join(","))
            }
        }
    }
}

impl Source for Dir {
    fn read(&self, limits: &Limits) -> Result<Vec<Document>, Problem> {
        // Taken before anything is listed: a file whose times lie well before it was not
        // written during this read (see `cache`).
        let began = SystemTime::now();
        let (marks, known) = self.cache.begin();
        let mut kept = cache::Files::with_capacity_and_hasher(known.len(), Default::default());
        let mut reads = 0;
        let read = self.read_since(limits, began, &marks, known, &mut kept, &mut reads);
        if read.is_err() {
            self.cache.restore(marks);
        }
        self.cache.end(kept, reads);
        read
    }

    fn files(&self) -> Vec<PathBuf> {
        self.list().unwrap_or_default()
    }

    fn watch_targets(&self) -> Vec<WatchTarget> {
        vec![WatchTarget::Dir(self.clone())]
    }

    fn invalidate(&self) {
        self.cache.forget();
    }
}

impl Dir {
    /// Reads the files, taking from `known` those unchanged; `kept` receives every file's
    /// settled stamp and document (on failure, what was known too).
    fn read_since(
        &self,
        limits: &Limits,
        began: SystemTime,
        marks: &cache::Marks,
        mut known: cache::Files,
        kept: &mut cache::Files,
        reads: &mut u64,
    ) -> Result<Vec<Document>, Problem> {
        // The directory is configured by name: missing is most likely a swap in progress.
        let files = match retry::run(&self.retry, true, std::thread::sleep, || self.scan()) {
            Ok(files) => files,
            Err(failed) => {
                *kept = known;
                return Err(*failed.problem);
            }
        };
        if files.is_empty() && !self.allow_none {
            let message = format!(
                "no file matching `{}` in this directory (an empty config would remove every key)",
                self.glob_text()
            );
            *kept = known;
            return Err(
                Problem::error(ProblemKind::Io, message).in_file(self.path.display().to_string())
            );
        }
        let mut documents = Vec::with_capacity(files.len());
        for (name, stamp) in files {
            // Every builder method starts a new cache: a known document already says
            // what this source says (section, empty allowed).
            let unchanged = match (stamp, known.remove(&name)) {
                (Some(stamp), Some((was, document))) if was == stamp && marks.may_skip(&name) => {
                    Some(document)
                }
                _ => None,
            };
            let document = match unchanged {
                Some(document) => document,
                None => match self.read_file(&name, limits) {
                    Ok(document) => {
                        *reads += 1;
                        document
                    }
                    Err(problem) => {
                        kept.extend(known);
                        return Err(problem);
                    }
                },
            };
            // The stamp was taken before the bytes were read: if the file changed in
            // between, the next stamp differs and the file is read again.
            if let Some(stamp) = stamp.filter(|stamp| stamp.settled(began)) {
                kept.insert(name, (stamp, document.clone()));
            }
            documents.push(document);
        }
        Ok(documents)
    }

    fn read_file(&self, name: &str, limits: &Limits) -> Result<Document, Problem> {
        let path = self.path.join(name);
        // Listed a moment ago: missing now is most likely a replacement.
        let bytes =
            read_file(&path, limits, &self.retry, true).map_err(|failed| *failed.problem)?;
        let format = Format::from_path(&path).unwrap_or(Format::Yaml);
        let section = self.section(&path);
        let mut document = Document::new(Origin::File(path), format, bytes);
        document.allow_empty = self.allow_empty;
        document.section = section;
        Ok(document)
    }

    /// The key a file is mounted under, with [`sections`](Self::sections).
    fn section(&self, path: &Path) -> Option<String> {
        self.sections
            .then(|| {
                path.file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
            })
            .flatten()
    }
}

/// A minimal glob over file names: `*` (any run), `?` (one character) and `{a,b}`
/// alternatives.
pub(crate) fn glob_match(glob: &str, name: &str) -> bool {
    // Every name of a directory goes through here on every reload, against every litter
    // pattern: a literal first or last character that differs rejects it at once.
    let (pattern, text) = (glob.as_bytes(), name.as_bytes());
    for (p, t) in [
        (pattern.first(), text.first()),
        (pattern.last(), text.last()),
    ] {
        if let (Some(&p), Some(&t)) = (p, t)
            && literal(p)
            && p != t
        {
            return false;
        }
    }
    if let Some(open) = glob.find('{')
        && let Some(close) = glob[open..].find('}').map(|c| open + c)
    {
        let (head, tail) = (&glob[..open], &glob[close + 1..]);
        return glob[open + 1..close]
            .split(',')
            .any(|alt| glob_match(&format!("{head}{alt}{tail}"), name));
    }
    // One `*` and no `?` (most patterns) is a prefix and a suffix, and ASCII (the usual
    // case) is matched byte by byte, without collecting characters.
    if !glob.contains('?')
        && let Some((head, tail)) = glob.split_once('*')
        && !tail.contains('*')
    {
        return name.len() >= head.len() + tail.len()
            && name.starts_with(head)
            && name.ends_with(tail);
    }
    if glob.is_ascii() && name.is_ascii() {
        return wildcard(glob.as_bytes(), name.as_bytes(), b'*', b'?');
    }
    let pattern: Vec<char> = glob.chars().collect();
    let text: Vec<char> = name.chars().collect();
    wildcard(&pattern, &text, '*', '?')
}

/// Iterative wildcard matching with one backtrack point: `star` matches any run, `one`
/// any single unit.
fn wildcard<T: Copy + PartialEq>(pattern: &[T], text: &[T], star: T, one: T) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == one || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == star {
            backtrack = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = backtrack {
            p = sp + 1;
            t = st + 1;
            backtrack = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == star)
}

#[cfg(test)]
mod tests;
