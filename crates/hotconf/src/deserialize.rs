//! Typed loading: the merged tree into the service's config type, with type errors located
//! at the file and line that set the offending value.
//!
//! `serde_path_to_error` gives the config path where deserialization failed; the merged
//! tree's provenance turns that path into a file, line and column.

use serde::de::DeserializeOwned;

use crate::error::{Problem, ProblemKind, Problems};
use crate::layer::Layers;
use crate::path::ConfigPath;

impl Layers {
    /// Deserializes the merged config into `T`.
    ///
    /// # Errors
    ///
    /// One [`ProblemKind::Type`] problem naming the config path, file, line and column: a
    /// value of the wrong type, a missing field (located at its table), an unknown field
    /// when `T` denies them.
    ///
    /// ```
    /// use hotconf::source::{Defaults, Format};
    /// use hotconf::{Layers, Limits};
    ///
    /// #[derive(Debug, serde::Deserialize)]
    /// struct Limits2 { rpm: u32 }
    /// #[derive(Debug, serde::Deserialize)]
    /// struct Config { limits: Limits2 }
    ///
    /// let layers = Layers::load(
    ///     &[Defaults::text(Format::Toml, "[limits]\nrpm = \"fast\"\n")],
    ///     &Limits::default(),
    /// ).unwrap();
    /// let problems = layers.deserialize::<Config>().unwrap_err();
    /// assert_eq!(
    ///     problems.to_string(),
    ///     "<defaults>:2:7: limits.rpm: invalid type: string \"fast\", expected u32"
    /// );
    /// ```
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Problems> {
        serde_path_to_error::deserialize(self.to_json()).map_err(|error| {
            let mut path = convert(error.path());
            let message = error.inner().to_string();
            // A missing field is located at its table, but named by its full path.
            let missing = field_in(&message, "missing field `").map(str::to_owned);
            let unknown = field_in(&message, "unknown field `").map(str::to_owned);
            if let Some(field) = unknown
                && !matches!(path.segments().last(), Some(crate::Segment::Key(k)) if *k == field)
            {
                path = path.key(field);
            }
            let mut problem = self.locate(Problem::error(ProblemKind::Type, message), &path);
            if let Some(field) = missing {
                problem.path = Some(path.key(field));
            }
            tracing::debug!(target: "hotconf", %problem, "type error");
            Problems::from(problem)
        })
    }
}

fn convert(path: &serde_path_to_error::Path) -> ConfigPath {
    use serde_path_to_error::Segment as S;
    let mut out = ConfigPath::root();
    for segment in path.iter() {
        match segment {
            S::Seq { index } => out = out.index(*index),
            S::Map { key } => out = out.key(key.clone()),
            S::Enum { variant } => out = out.key(variant.clone()),
            S::Unknown => break,
        }
    }
    out
}

/// The field named in a serde message such as "missing field `rpm`".
fn field_in<'m>(message: &'m str, lead: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(lead)?;
    rest.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;
    use crate::source::{Defaults, Format};
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        limits: Limits2,
        routes: Vec<Route>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits2 {
        rpm: u32,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Route {
        path: String,
        upstream: String,
    }

    fn problem_for(format: Format, text: &str) -> Problem {
        let layers = Layers::load(&[Defaults::text(format, text)], &Limits::default()).unwrap();
        let problems = layers.deserialize::<Config>().unwrap_err();
        assert_eq!(problems.0.len(), 1);
        problems.0.into_iter().next().unwrap()
    }

    #[test]
    fn type_errors_are_located() {
        let cases = [
            (
                Format::Toml,
                "routes = []\n[limits]\nrpm = -5\n",
                "limits.rpm",
                (3, 7),
                "invalid value: integer `-5`",
            ),
            (
                Format::Yaml,
                "limits:\n  rpm: 10\nroutes:\n  - path: /a\n    upstream: 7\n",
                "routes[0].upstream",
                (5, 15),
                "invalid type: integer `7`, expected a string",
            ),
            (
                Format::Toml,
                "routes = []\n[limits]\n",
                "limits.rpm",
                (2, 1),
                "missing field `rpm`",
            ),
            (
                Format::Json,
                "{\"limits\": {\"rpm\": 1, \"rmp\": 2}, \"routes\": []}",
                "limits.rmp",
                (1, 30),
                "unknown field `rmp`",
            ),
        ];
        for (format, text, path, (line, column), message) in cases {
            let problem = problem_for(format, text);
            assert_eq!(problem.kind, ProblemKind::Type);
            assert_eq!(
                problem.path.as_ref().map(ToString::to_string).as_deref(),
                Some(path)
            );
            assert_eq!(
                (problem.line, problem.column),
                (Some(line), Some(column)),
                "{problem}"
            );
            assert!(problem.message.contains(message), "{problem}");
            assert_eq!(problem.file.as_deref(), Some("<defaults>"));
        }
    }
}
