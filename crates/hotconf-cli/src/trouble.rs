//! Trouble: every failure that is not an invalid config (a usage error, a path that does
//! not exist, a file that cannot be read), exit status 2. With `--json` it prints as
//! `{"error":{"kind":"usage|io|not_found","message":"…"}}` on standard output, the object
//! the admin API uses, so a script can tell "invalid" (exit 1, `"valid":false`) from
//! "could not look".

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use hotconf::{ProblemKind, Problems};

/// What went wrong, for a script to branch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The command line is wrong: an unknown flag, a missing or out-of-range argument, a
    /// pattern or schema that does not parse.
    Usage,
    /// A path exists but cannot be read, or reading or watching it failed.
    Io,
    /// A path given does not exist.
    NotFound,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Usage => "usage",
            Self::Io => "io",
            Self::NotFound => "not_found",
        }
    }
}

/// A failure that is not an invalid config.
#[derive(Debug)]
pub(crate) struct Trouble {
    pub(crate) kind: Kind,
    pub(crate) message: String,
}

impl Trouble {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The trouble among `problems`: the sources that could not be read. `None` when every
    /// source was read and the problems are about the content.
    pub(crate) fn of_problems(problems: &Problems) -> Option<Self> {
        let unread: Vec<_> = problems
            .errors()
            .filter(|p| p.kind == ProblemKind::Io)
            .collect();
        let first = unread.first()?;
        // The library says why in words; whether the path is there is asked of the
        // filesystem, not read from the message.
        let missing = first.file.as_deref().is_some_and(|file| {
            matches!(Path::new(file).symlink_metadata(), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
        });
        let kind = if missing { Kind::NotFound } else { Kind::Io };
        let message = unread
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        Some(Self::new(kind, message))
    }

    /// The trouble an error of a command stands for. Errors that are not [`Trouble`] come
    /// from the library or the system: bad options are usage errors, the rest I/O.
    pub(crate) fn of_error(error: &anyhow::Error) -> Self {
        if let Some(trouble) = error.downcast_ref::<Self>() {
            return Self::new(trouble.kind, trouble.message.clone());
        }
        let kind = match error.downcast_ref::<hotconf::Error>() {
            Some(hotconf::Error::InvalidOption { .. } | hotconf::Error::InvalidPath { .. }) => {
                Kind::Usage
            }
            _ => Kind::Io,
        };
        Self::new(kind, format!("{error:#}"))
    }

    /// A clap error (not `--help` or `--version`) as a usage error: its statement on one
    /// line, then the usage line it printed.
    pub(crate) fn of_clap(error: &clap::Error) -> Self {
        let rendered = error.render().to_string();
        let mut paragraphs = rendered.split("\n\n").map(str::trim);
        let statement = paragraphs
            .next()
            .unwrap_or_default()
            .trim_start_matches("error:")
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        let usage = paragraphs.find_map(|p| p.strip_prefix("Usage:").map(str::trim));
        let message = match usage {
            Some(usage) => format!("{statement} (usage: {usage})"),
            None => statement,
        };
        Self::new(Kind::Usage, message)
    }

    /// Prints it (JSON on standard output, or text on standard error); exit status 2.
    pub(crate) fn report(&self, json: bool) -> ExitCode {
        // Nothing is left to tell when the output itself is gone.
        let _ = if json {
            let line = serde_json::json!({
                "error": {"kind": self.kind.as_str(), "message": self.message}
            });
            writeln!(std::io::stdout().lock(), "{line}")
        } else {
            writeln!(std::io::stderr().lock(), "hotconf: error: {}", self.message)
        };
        ExitCode::from(2)
    }
}

impl fmt::Display for Trouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Trouble {}

/// Whether `--json` is among the arguments (before a `--`), looked for before clap parses
/// them so that a usage error prints as JSON too.
pub(crate) fn json_requested(args: impl IntoIterator<Item = OsString>) -> bool {
    args.into_iter()
        .skip(1)
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn json_is_found_before_a_double_dash_only() {
        assert!(json_requested(args(&["hotconf", "check", "--json", "a"])));
        assert!(json_requested(args(&["hotconf", "check", "a", "--json"])));
        assert!(!json_requested(args(&["hotconf", "check", "a"])));
        assert!(!json_requested(args(&["hotconf", "check", "--", "--json"])));
        assert!(!json_requested(args(&["--json", "check", "a"])), "argv[0]");
    }

    #[test]
    fn a_missing_path_is_not_found_and_an_unknown_format_is_io() {
        let dir = std::env::temp_dir().join(format!("hotconf-trouble-{}", std::process::id()));
        let missing = dir.join("missing.toml").display().to_string();
        let problems = Problems(vec![
            hotconf::Problem::error(ProblemKind::Io, "no such file or directory").in_file(&missing),
        ]);
        let trouble = Trouble::of_problems(&problems).unwrap();
        assert_eq!(trouble.kind, Kind::NotFound);
        assert_eq!(
            trouble.message,
            format!("{missing}: no such file or directory")
        );

        let here = std::env::current_dir().unwrap().display().to_string();
        let problems = Problems(vec![
            hotconf::Problem::error(ProblemKind::Syntax, "bad").in_file(&here),
            hotconf::Problem::error(ProblemKind::Io, "unknown config format").in_file(&here),
        ]);
        assert_eq!(Trouble::of_problems(&problems).unwrap().kind, Kind::Io);

        let invalid = Problems(vec![
            hotconf::Problem::error(ProblemKind::Syntax, "bad").in_file(&missing),
        ]);
        assert!(Trouble::of_problems(&invalid).is_none());
    }
}
