//! The ground every stage stands on: a [`Document`] (raw bytes with an [`Origin`] and a
//! [`Format`]), the [`Span`] that locates a value in it, and the [`Limits`] on what one may
//! cost. Sources produce documents, parsers read them; neither imports the other.

use std::fmt;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The syntax of a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// TOML 1.1 (accepts 1.0).
    Toml,
    /// YAML 1.2, one document per file, string keys only.
    Yaml,
    /// JSON without duplicate keys.
    Json,
    /// `PREFIX__A__B=value` lines, as produced by [`Env`](crate::source::Env).
    Env,
}

impl Format {
    /// The format a file name's extension names: `.toml`, `.yaml`/`.yml`, `.json`.
    pub fn from_path(path: &Path) -> Option<Self> {
        Self::from_extension(path.extension()?.to_str()?)
    }

    /// The format an extension (without its dot) names, in any case.
    pub(crate) fn from_extension(ext: &str) -> Option<Self> {
        // A directory asks for each of its file names on every reload: compared in place.
        [
            ("toml", Self::Toml),
            ("yaml", Self::Yaml),
            ("yml", Self::Yaml),
            ("json", Self::Json),
        ]
        .into_iter()
        .find_map(|(name, format)| ext.eq_ignore_ascii_case(name).then_some(format))
    }

    /// Whether this build can parse the format: each of TOML, YAML and JSON is a cargo
    /// feature of the same name.
    pub(crate) fn is_compiled_in(self) -> bool {
        match self {
            Self::Toml => cfg!(feature = "toml"),
            Self::Yaml => cfg!(feature = "yaml"),
            Self::Json => cfg!(feature = "json"),
            Self::Env => true,
        }
    }

    /// What to say when a document's format is not compiled in.
    #[cfg(not(all(feature = "toml", feature = "yaml", feature = "json")))]
    pub(crate) fn not_compiled_in(self) -> String {
        let feature = match self {
            Self::Toml => "toml",
            Self::Yaml => "yaml",
            Self::Json => "json",
            Self::Env => "default",
        };
        format!("{self} support is not compiled in: enable the `{feature}` feature of hotconf")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Toml => "TOML",
            Self::Yaml => "YAML",
            Self::Json => "JSON",
            Self::Env => "environment",
        })
    }
}

/// Where a document came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// A file on disk.
    File(PathBuf),
    /// A key in a key-value store, or any other named origin.
    Key(String),
    /// Environment variables named `{prefix}{separator}…`.
    Env {
        /// The prefix, such as `APP`.
        prefix: String,
        /// The separator between the prefix and key segments, such as `__`.
        separator: String,
    },
    /// Defaults embedded in the program.
    Defaults,
}

impl Origin {
    /// The file path, for file origins.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::File(path) => Some(path),
            _ => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Every event names every file: a path that is UTF-8 (nearly all) is written
            // as it is, without `Path::display`'s character-by-character lossy pass.
            Self::File(path) => match path.to_str() {
                Some(text) => f.write_str(text),
                None => write!(f, "{}", path.display()),
            },
            Self::Key(key) => f.write_str(key),
            Self::Env { prefix, separator } => write!(f, "<env {prefix}{separator}*>"),
            Self::Defaults => f.write_str("<defaults>"),
        }
    }
}

/// One unit of raw config: origin, format, bytes and revision.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Document {
    /// Where it came from.
    pub origin: Origin,
    /// How to parse it.
    pub format: Format,
    /// The raw bytes, as read.
    pub bytes: Arc<[u8]>,
    /// A hash of the bytes: equal revisions mean equal content.
    pub revision: u64,
    /// Whether an empty document (nothing but whitespace and comments) is accepted as an
    /// empty table rather than rejected.
    pub allow_empty: bool,
    /// The key this document's content is mounted under, when its source mounts each file
    /// under its name ([`Dir::sections`](crate::source::Dir::sections)): `rate_limits.yaml`
    /// then holds `rate_limits` without repeating the name.
    pub section: Option<String>,
}

impl Document {
    /// A document from bytes; the revision is computed from them.
    pub fn new(origin: Origin, format: Format, bytes: impl Into<Arc<[u8]>>) -> Self {
        let bytes = bytes.into();
        Self {
            revision: revision(&bytes),
            origin,
            format,
            bytes,
            allow_empty: false,
            section: None,
        }
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bytes may hold secrets: show only their size.
        f.debug_struct("Document")
            .field("origin", &self.origin)
            .field("format", &self.format)
            .field("len", &self.bytes.len())
            .field("revision", &format_args!("{:016x}", self.revision))
            .finish()
    }
}

/// Where a value was written: which document of the load, the 1-based line and column (in
/// characters) of its first character, and the bytes it covers in that document.
///
/// `line` and `column` point where messages point: the value itself (for a YAML block
/// scalar, its first line of content). `start..end` is half-open, in bytes of
/// [`Document::bytes`] (a byte-order mark counted): for a scalar, its whole token, quotes
/// and a YAML block scalar's `|` or `>` header included; for a table or an array, from its
/// opening token (`{`, `[`, a TOML `[table]` header, the first key of a YAML block mapping or
/// of the TOML root, the first `-` of a block sequence) to the end of its last item; for an
/// environment variable, the text after its `=`. A range holds the ranges of everything in
/// it; a YAML alias's, the alias alone. `0..0` means "not known", as for values the program
/// made rather than read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Span {
    /// Index of the document in [`Layers::documents`](crate::Layers::documents).
    pub doc: u32,
    /// 1-based line; 0 when not known.
    pub line: u32,
    /// 1-based column in characters; 0 when not known.
    pub column: u32,
    /// Byte offset in [`Document::bytes`] where the value starts. Offsets are 32 bits, to
    /// keep every node of a tree small; one past 4 GiB is stored as `u32::MAX`.
    pub start: u32,
    /// Byte offset in [`Document::bytes`] just past the value's end; `0` with `start` when
    /// not known.
    pub end: u32,
}

impl Span {
    /// The value's bytes in [`Document::bytes`], as a range to slice them with.
    #[cfg_attr(
        not(any(feature = "toml", feature = "yaml")),
        allow(dead_code, reason = "the TOML and YAML parsers measure with it")
    )]
    pub fn range(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// A byte offset as a span keeps it.
    pub fn offset(at: usize) -> u32 {
        u32::try_from(at).unwrap_or(u32::MAX)
    }

    /// Whether the byte range is known: `false` for `0..0`.
    pub fn has_range(&self) -> bool {
        self.end > 0
    }

    /// The first and the last 1-based line the value covers in `bytes`, its document's bytes
    /// (lines end at `\n`): every line a snippet must hide to hide the value. Without a
    /// known range, the span's own `line` alone (`0..=0` when that is unknown too).
    pub fn lines(&self, bytes: &[u8]) -> RangeInclusive<u32> {
        if !self.has_range() {
            return self.line..=self.line;
        }
        let start = (self.start as usize).min(bytes.len());
        // The last byte of the value; an empty range covers the line it sits on.
        let last = (self.end as usize)
            .min(bytes.len())
            .saturating_sub(1)
            .max(start);
        let breaks = |range: Range<usize>| bytes[range].iter().filter(|&&b| b == b'\n').count();
        let first = breaks(0..start) + 1;
        let last = first + breaks(start..last);
        (saturate(first))..=(saturate(last))
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// XXH3-64 of the bytes: stable across runs, platforms and versions. FNV-1a, the hash
/// before it, costs a multiply per byte in one dependent chain: about a millisecond for a
/// megabyte, on every read of the document.
pub(crate) fn revision(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// [`revision`] of bytes written in pieces: the same hash as of the pieces joined, so that
/// text can be hashed as it is produced instead of being built first. The config hash
/// writes a piece per token (`,`, `:`, a key): pieces are gathered here and handed to the
/// hasher a buffer at a time.
pub(crate) struct Revision {
    hasher: xxhash_rust::xxh3::Xxh3,
    pending: [u8; Self::BUFFER],
    len: usize,
}

impl Default for Revision {
    fn default() -> Self {
        Self {
            hasher: xxhash_rust::xxh3::Xxh3::new(),
            pending: [0; Self::BUFFER],
            len: 0,
        }
    }
}

impl Revision {
    const BUFFER: usize = 512;

    #[inline]
    pub(crate) fn add(&mut self, bytes: &[u8]) {
        if let Some(room) = self.pending.get_mut(self.len..self.len + bytes.len()) {
            room.copy_from_slice(bytes);
            self.len += bytes.len();
        } else {
            self.spill(bytes);
        }
    }

    /// Hands what is pending to the hasher, then `bytes` (kept when they are few).
    #[cold]
    fn spill(&mut self, bytes: &[u8]) {
        self.hasher.update(&self.pending[..self.len]);
        self.len = 0;
        if bytes.len() < Self::BUFFER {
            self.add(bytes);
        } else {
            self.hasher.update(bytes);
        }
    }

    /// The hash of everything added.
    pub(crate) fn finish(mut self) -> u64 {
        self.hasher.update(&self.pending[..self.len]);
        self.hasher.digest()
    }
}

impl std::io::Write for Revision {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.add(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Bounds on what one document may cost to read and parse, so that a hostile or mistaken
/// file gets a clear error instead of exhausting memory or the stack.
///
/// ```
/// use hotconf::source::{File, Source};
/// use hotconf::{Outcome, Pipeline};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut limits = hotconf::Limits::default();
/// limits.max_bytes = 1 << 20; // 1 MiB per document
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("big.toml");
/// std::fs::write(&path, format!("blob = \"{}\"\n", "x".repeat(1 << 20)))?;
/// let sources: Vec<Box<dyn Source>> = vec![Box::new(File::new(&path))];
/// // Within the default 16 MiB, over the limit set here.
/// assert_eq!(Pipeline::new().check::<serde_json::Value>(&sources).outcome, Outcome::Loaded);
/// let plan = Pipeline::new().limits(limits).check::<serde_json::Value>(&sources);
/// assert_eq!(plan.outcome, Outcome::Rejected);
/// assert!(plan.errors[0].message.contains("over the limit of 1048576 bytes"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest document, in bytes. Default: 16 MiB.
    pub max_bytes: u64,
    /// Deepest nesting of tables and arrays. Default: 128.
    pub max_depth: usize,
    /// Most values in one document after YAML alias expansion (the "billion laughs" guard).
    /// Default: 100,000.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 16 << 20,
            max_depth: 128,
            max_nodes: 100_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_reads_as_its_path_key_or_kind() {
        let file = Origin::File(PathBuf::from("conf.d/é/app.toml"));
        assert_eq!(file.to_string(), "conf.d/é/app.toml");
        assert_eq!(Origin::Key("/svc/app".into()).to_string(), "/svc/app");
        assert_eq!(Origin::Defaults.to_string(), "<defaults>");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let bytes = std::ffi::OsStr::from_bytes(b"conf/a\xffb.toml");
            let lossy = Origin::File(PathBuf::from(bytes));
            assert_eq!(lossy.to_string(), "conf/a\u{fffd}b.toml");
        }
    }

    #[test]
    fn revision_changes_with_content() {
        assert_eq!(revision(b"a = 1"), revision(b"a = 1"));
        assert_ne!(revision(b"a = 1"), revision(b"a = 2"));
    }

    /// Revisions leave the process (events, audit records, a fleet's content hashes): they
    /// are XXH3-64, as the reference implementation gives it (Python's `xxhash`).
    #[test]
    fn a_revision_is_xxh3_64() {
        let long: Vec<u8> = (0..=255u8).cycle().take(1280).collect();
        for (bytes, expected) in [
            (&b""[..], 0x2d06_8005_38d3_94c2),
            (b"a = 1", 0x4f6b_629c_f663_0e20),
            (&long, 0x4844_b009_e164_352e),
        ] {
            assert_eq!(revision(bytes), expected);
            // Written in pieces of every size, across the hasher's buffer.
            for piece in [1, 7, 64, 255, 256, 1000] {
                let mut hash = Revision::default();
                bytes.chunks(piece).for_each(|chunk| hash.add(chunk));
                assert_eq!(hash.finish(), expected, "pieces of {piece}");
                // And in pieces of mixed sizes, a large one after small ones.
                let mut hash = Revision::default();
                let (head, tail) = bytes.split_at(bytes.len().min(piece));
                head.chunks(3).for_each(|chunk| hash.add(chunk));
                hash.add(tail);
                assert_eq!(hash.finish(), expected, "{piece} in threes, then the rest");
            }
        }
    }

    fn span(start: usize, end: usize) -> Span {
        Span {
            doc: 0,
            line: 9,
            column: 9,
            start: Span::offset(start),
            end: Span::offset(end),
        }
    }

    #[test]
    fn lines_are_the_first_and_last_a_range_touches() {
        let bytes = b"a = 1\nb = \"\"\"\nx\ny\"\"\"\n\nc = [\n  1,\n]\n";
        for (start, end, expected, written) in [
            (4, 5, 1..=1, "1"),
            (10, 20, 2..=4, "\"\"\"\nx\ny\"\"\""),
            // A range that ends with its line break stays on that line.
            (0, 6, 1..=1, "a = 1\n"),
            (26, 34, 6..=8, "[\n  1,\n]"),
            // An empty range covers the line it sits on.
            (22, 22, 6..=6, ""),
            // Past the end: clamped to the bytes.
            (33, 99, 8..=8, "]\n"),
        ] {
            let span = span(start, end);
            assert_eq!(
                String::from_utf8_lossy(&bytes[start..end.min(bytes.len())]),
                written
            );
            assert_eq!(span.lines(bytes), expected, "{start}..{end}");
        }
    }

    #[test]
    fn without_a_range_lines_fall_back_to_the_line() {
        assert_eq!(span(0, 0).lines(b"a\nb\n"), 9..=9);
        assert_eq!(Span::default().lines(b"a\nb\n"), 0..=0);
        assert!(!Span::default().has_range());
        assert!(span(0, 1).has_range());
        assert_eq!(span(2, 3).range(), 2..3);
    }
}
