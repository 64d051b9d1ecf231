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
/// `impl Validate for MyConfig {}`. A reloader notices a config type that keeps the default:
/// with no JSON Schema either, its reloads skip the validation thread (and its timeout)
/// altogether, as there is nothing to run there.
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
        report.default_rules_ran(self);
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
    /// The config whose rules this report collects, as its address and type name, when
    /// [`run`] made the report.
    root: Option<(usize, &'static str)>,
    /// The default [`Validate::validate`] ran on the root config itself: its type has no
    /// rules of its own.
    root_has_no_rules: bool,
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

    /// Called by the default [`Validate::validate`]. A part's default rules (`self.limits`,
    /// even at the root's address) are told apart from the root's by the type name.
    fn default_rules_ran<V: ?Sized>(&mut self, part: &V) {
        if self.root == Some(identity(part)) {
            self.root_has_no_rules = true;
        }
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

fn identity<V: ?Sized>(value: &V) -> (usize, &'static str) {
    (
        std::ptr::from_ref(value).cast::<()>() as usize,
        std::any::type_name::<V>(),
    )
}

/// What running a config's rules found.
#[derive(Debug, Default)]
pub(crate) struct Ran {
    /// Every problem, located through the layers when the config came from them.
    pub(crate) problems: Problems,
    /// The config's type keeps the default [`Validate::validate`]: no config of this type can
    /// have a problem, so its rules need not run again.
    pub(crate) no_rules: bool,
}

/// Runs `T`'s rules, with problems located through `layers` when the config came from them.
pub(crate) fn run<T: Validate>(config: &T, layers: Option<&Layers>) -> Ran {
    let mut report = Report {
        root: Some(identity(config)),
        ..Report::default()
    };
    config.validate(&mut report);
    let problems = match layers {
        Some(layers) => report.located(layers),
        None => report.problems(),
    };
    Ran {
        problems,
        no_rules: report.root_has_no_rules && report.is_empty(),
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

    /// No rules of its own.
    struct Plain {
        limits: Limits,
    }
    impl Validate for Plain {}

    /// Also none; the first field of `Ruled`, so both sit at one address.
    struct Limits {
        rpm: u32,
    }
    impl Validate for Limits {}

    /// Rules of its own, which call the default rules of a part at the same address.
    struct Ruled(Limits);
    impl Validate for Ruled {
        fn validate(&self, report: &mut Report) {
            self.0.validate(report);
            if self.0.rpm == 0 {
                report.error("rpm", "must be greater than 0");
            }
        }
    }

    /// Rules of its own that nest a part with none.
    struct Nesting {
        plain: Plain,
    }
    impl Validate for Nesting {
        fn validate(&self, report: &mut Report) {
            report.nested("plain", &self.plain);
        }
    }

    #[test]
    fn a_type_that_keeps_the_default_rules_has_none() {
        let plain = Plain {
            limits: Limits { rpm: 0 },
        };
        let ran = run(&plain, None);
        assert!(ran.no_rules);
        assert!(ran.problems.0.is_empty());
        assert!(run(&plain.limits, None).no_rules);
        assert!(run(&serde_json::json!({"a": 1}), None).no_rules);
    }

    #[test]
    fn a_type_with_rules_has_them_even_when_a_part_has_none() {
        // Passing this time does not make the rules go away: the next config may break them.
        let passing = run(&Ruled(Limits { rpm: 5 }), None);
        assert!(passing.problems.0.is_empty());
        assert!(!passing.no_rules);
        let failing = run(&Ruled(Limits { rpm: 0 }), None);
        assert_eq!(failing.problems.0.len(), 1);
        assert!(!failing.no_rules);
        let nesting = Nesting {
            plain: Plain {
                limits: Limits { rpm: 1 },
            },
        };
        assert!(!run(&nesting, None).no_rules);
        // A part's default rules seen on their own are still no rules.
        assert!(run(&nesting.plain, None).no_rules);
    }

    #[test]
    fn a_report_made_by_hand_knows_no_root() {
        let mut report = Report::new();
        Plain {
            limits: Limits { rpm: 0 },
        }
        .validate(&mut report);
        assert!(!report.root_has_no_rules);
        assert!(report.is_empty());
    }

    #[test]
    fn unparsable_rule_paths_keep_the_message() {
        let mut report = Report::new();
        report.error("not a path", "x");
        assert_eq!(report.problems().0[0].to_string(), "\"not a path\": x");
    }
}
