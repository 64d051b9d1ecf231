//! Validation: the service's own rules over the merged, typed config.
//!
//! Rules run on the whole merged config, so a rule can relate values from different files
//! (a route naming an upstream defined elsewhere). A rule reports every problem it finds;
//! errors reject the config, warnings are reported with it.

use crate::error::{Problem, ProblemKind, Problems, Severity};
use crate::layer::Layers;
use crate::path::ConfigPath;

/// Rules a config must satisfy before it is applied.
///
/// The default implementation accepts everything, so a type with no rules can simply
/// `impl Validate for MyConfig {}`.
///
/// ```
/// use hotconf::{Report, Validate};
///
/// struct Limits { rpm: u32, burst: u32 }
///
/// impl Validate for Limits {
///     fn validate(&self, report: &mut Report) {
///         if self.rpm == 0 {
///             report.error("rpm", "must be greater than 0");
///         }
///         if self.burst > self.rpm {
///             report.warning("burst", "is larger than rpm; the burst will never be reached");
///         }
///     }
/// }
///
/// let mut report = Report::new();
/// Limits { rpm: 0, burst: 5 }.validate(&mut report);
/// assert_eq!(report.len(), 2);
/// assert!(report.has_errors());
/// ```
pub trait Validate {
    /// Reports every problem with `self` into `report`.
    fn validate(&self, report: &mut Report) {
        let _ = report;
    }
}

/// An untyped config has no rules of its own; the `hotconf` command line uses it, with
/// JSON Schema for rules.
impl Validate for serde_json::Value {}

/// The problems found by [`Validate::validate`], each at a config path.
#[derive(Debug, Default)]
pub struct Report {
    entries: Vec<(ConfigPath, Severity, String)>,
    prefix: ConfigPath,
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error at `path` (`limits.rpm`, `routes[2].upstream`): the config is
    /// rejected.
    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        self.push(path, Severity::Error, message.into());
    }

    /// Records a warning at `path`: reported, and the config still applies.
    pub fn warning(&mut self, path: &str, message: impl Into<String>) {
        self.push(path, Severity::Warning, message.into());
    }

    /// Runs a nested part's rules with paths relative to `path`, so a part's `Validate`
    /// can be reused wherever the part sits.
    ///
    /// ```
    /// # use hotconf::{Report, Validate};
    /// struct Limits { rpm: u32 }
    /// impl Validate for Limits {
    ///     fn validate(&self, report: &mut Report) {
    ///         if self.rpm == 0 { report.error("rpm", "must be greater than 0"); }
    ///     }
    /// }
    /// struct Config { limits: Limits }
    /// impl Validate for Config {
    ///     fn validate(&self, report: &mut Report) {
    ///         report.nested("limits", &self.limits);
    ///     }
    /// }
    /// let mut report = Report::new();
    /// Config { limits: Limits { rpm: 0 } }.validate(&mut report);
    /// assert_eq!(report.problems().0[0].path.as_ref().unwrap().to_string(), "limits.rpm");
    /// ```
    pub fn nested<V: Validate + ?Sized>(&mut self, path: &str, part: &V) {
        let outer = self.prefix.clone();
        self.prefix = join(&outer, path);
        part.validate(self);
        self.prefix = outer;
    }

    fn push(&mut self, path: &str, severity: Severity, message: String) {
        let path = join(&self.prefix, path);
        self.entries.push((path, severity, message));
    }

    /// The number of problems recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.entries.iter().any(|(_, s, _)| *s == Severity::Error)
    }

    /// The problems, without file locations.
    pub fn problems(&self) -> Problems {
        Problems(
            self.entries
                .iter()
                .map(|(path, severity, message)| problem(path, *severity, message))
                .collect(),
        )
    }

    /// The problems, each located at the file and line that set the value at its path.
    pub(crate) fn located(&self, layers: &Layers) -> Problems {
        Problems(
            self.entries
                .iter()
                .map(|(path, severity, message)| {
                    let mut located = layers.locate(problem(path, *severity, message), path);
                    // A rule may speak of a value that is absent (a required field left
                    // out), or its path may be a typo: say so rather than point at the
                    // table as if the value were there.
                    if layers.root().get(path).is_none() {
                        located.message = format!("{message} (`{path}` is not set in the config)");
                    }
                    located
                })
                .collect(),
        )
    }
}

fn problem(path: &ConfigPath, severity: Severity, message: &str) -> Problem {
    let problem = match severity {
        Severity::Error => Problem::error(ProblemKind::Validation, message),
        Severity::Warning => Problem::warning(ProblemKind::Validation, message),
    };
    problem.at_path(path.clone())
}

/// `prefix` extended by the path text; text that does not parse as a path is kept as one key,
/// so a typo in a rule's path never hides the rule's message.
fn join(prefix: &ConfigPath, path: &str) -> ConfigPath {
    let tail = path
        .parse::<ConfigPath>()
        .unwrap_or_else(|_| ConfigPath::root().key(path));
    let mut joined = prefix.clone();
    for segment in tail.segments() {
        joined.push(segment.clone());
    }
    joined
}

/// Runs `T`'s rules, with problems located through `layers` when the config came from them.
pub(crate) fn run<T: Validate>(config: &T, layers: Option<&Layers>) -> Problems {
    let mut report = Report::new();
    config.validate(&mut report);
    match layers {
        Some(layers) => report.located(layers),
        None => report.problems(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(feature = "toml", feature = "yaml"))]
    #[test]
    fn problems_are_located_at_the_value_that_set_them() {
        use crate::Limits;
        use crate::source::{Defaults, Format};

        let layers = Layers::load(
            &[
                Defaults::text(Format::Toml, "[limits]\nrpm = 60\n"),
                Defaults::text(Format::Yaml, "chains:\n  main:\n    provider: nope\n"),
            ],
            &Limits::default(),
        )
        .unwrap();
        let mut report = Report::new();
        report.error("chains.main.provider", "unknown provider 'nope'");
        report.warning("limits.rpm", "low");
        let problems = report.located(&layers);
        let first = &problems.0[0];
        assert_eq!((first.line, first.column), (Some(3), Some(15)));
        assert!(first.is_error());
        let second = &problems.0[1];
        assert_eq!(
            (second.line, second.column, second.severity),
            (Some(2), Some(7), Severity::Warning)
        );
    }

    #[test]
    fn unparsable_rule_paths_keep_the_message() {
        let mut report = Report::new();
        report.error("not a path", "x");
        assert_eq!(report.problems().0[0].to_string(), "\"not a path\": x");
    }
}
