//! Config embedded in the program: defaults, and environment overrides read at start.

use super::Source;
use crate::document::{Document, Format, Limits, Origin};
use crate::error::Problem;

/// Defaults embedded in the program: the lowest layer, so that files only need to say what
/// differs.
///
/// ```
/// use hotconf::Reloader;
/// use hotconf::source::{Defaults, Format};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("app.toml");
/// std::fs::write(&path, "[limits]\nrpm = 120\n")?;
/// let reloader = Reloader::<serde_json::Value>::builder()
///     .source(Defaults::text(Format::Toml, "[limits]\nrpm = 60\nburst = 10\n"))
///     .file(&path)
///     .build()?;
/// // The file says only what differs; the rest comes from the defaults.
/// let config = reloader.current();
/// assert_eq!(config.config()["limits"], serde_json::json!({"rpm": 120, "burst": 10}));
/// # Ok(())
/// # }
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
