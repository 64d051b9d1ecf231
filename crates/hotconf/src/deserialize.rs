//! Typed loading: the merged tree into the service's config type, with type errors located
//! at the file and line that set the offending value.
//!
//! `T` is read straight from the located tree by [`node::NodeDeserializer`]; its error
//! carries the config path and span of the node that failed, and the span's document gives
//! the file.

mod node;

use serde::de::DeserializeOwned;

use crate::error::{Problem, ProblemKind, Problems};
use crate::layer::Layers;
use crate::tree::Node;

impl Layers {
    /// Deserializes the merged config into `T`.
    ///
    /// # Errors
    ///
    /// One [`ProblemKind::Type`] problem naming the config path, file, line and column: a
    /// value of the wrong type, a missing field (located at its table), an unknown field
    /// when `T` denies them.
    ///
    pub(crate) fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Problems> {
        T::deserialize(node::NodeDeserializer::root(self.root())).map_err(|error| {
            let mut problem =
                Problem::error(ProblemKind::Type, error.message()).at_path(error.path());
            if let Some(span) = error.span().filter(|span| span.line > 0)
                && let Some(document) = self.documents().get(span.doc as usize)
            {
                problem = problem.at_location(document.origin.to_string(), span.line, span.column);
            }
            // Not logged here: the value may be a secret, and the pipeline redacts it.
            Problems::from(problem)
        })
    }
}

/// Reads `T` from a tree the engine built (the effective config): a failure names the
/// path, not a line, since such a tree was not written by anyone.
pub(crate) fn from_node<T: DeserializeOwned>(tree: &Node) -> Result<T, Problem> {
    T::deserialize(node::NodeDeserializer::root(tree))
        .map_err(|error| Problem::error(ProblemKind::Type, error.message()).at_path(error.path()))
}

#[cfg(test)]
// Every case here reads more than one format.
#[cfg(all(feature = "yaml", feature = "json"))]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::fmt::Debug;

    use serde::Deserialize;

    use super::*;
    use crate::Limits;
    use crate::source::{Defaults, Format};

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

    fn layers(format: Format, text: &str) -> Layers {
        Layers::load(&[Defaults::text(format, text)], &Limits::default()).unwrap()
    }

    fn problem_for(format: Format, text: &str) -> Problem {
        let problems = layers(format, text).deserialize::<Config>().unwrap_err();
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

    // The shapes a service config takes: one of each serde representation.

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Service {
        name: String,
        #[serde(default)]
        workers: Option<u16>,
        mode: Mode,
        #[serde(default)]
        upstreams: Vec<Upstream>,
        #[serde(default)]
        backend: Option<Backend>,
        #[serde(default)]
        port: Option<Port>,
        #[serde(default)]
        pair: Option<(String, u8)>,
        #[serde(default)]
        timeout: Option<Millis>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Fast,
        Slow,
    }

    /// Externally tagged: `{tcp = {...}}`, `{unix = "..."}`, `{pair = [...]}`.
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Upstream {
        Tcp { host: String, port: u16 },
        Unix(String),
        Pair(String, u16),
        Local,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(tag = "type", rename_all = "lowercase")]
    enum Backend {
        Static { root: String },
        Proxy { url: String, retries: u8 },
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u16),
        Name(String),
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Millis(u64);

    #[derive(Debug, PartialEq, Deserialize)]
    struct Labels {
        name: String,
        #[serde(flatten)]
        rest: BTreeMap<String, String>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Maps {
        by_name: HashMap<String, u32>,
        by_code: BTreeMap<u16, String>,
        nested: Vec<Vec<i8>>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Numbers {
        big: u64,
        small: i64,
        ratio: f32,
        whole: f64,
        inf: f64,
        nan: f64,
        ninf: f32,
    }

    fn read<T: DeserializeOwned>(format: Format, text: &str) -> T {
        layers(format, text)
            .deserialize()
            .unwrap_or_else(|problems| panic!("{text:?}: {problems}"))
    }

    fn check<T: DeserializeOwned + PartialEq + Debug>(format: Format, text: &str, expected: T) {
        assert_eq!(read::<T>(format, text), expected, "{text:?}");
    }

    #[test]
    fn every_representation_reads() {
        let minimal = |mode| Service {
            name: "svc".into(),
            workers: None,
            mode,
            upstreams: vec![],
            backend: None,
            port: None,
            pair: None,
            timeout: None,
        };
        check(
            Format::Toml,
            "name = \"svc\"\nmode = \"slow\"\n",
            minimal(Mode::Slow),
        );
        check(
            Format::Toml,
            "name = \"svc\"\nworkers = 4\nmode = \"fast\"\npair = [\"a\", 2]\ntimeout = 1500\n\
             upstreams = [{tcp = {host = \"h\", port = 80}}, {unix = \"/s\"}, \
             {pair = [\"p\", 9]}, \"local\"]\n\
             [backend]\ntype = \"proxy\"\nurl = \"http://x\"\nretries = 3\n",
            Service {
                workers: Some(4),
                upstreams: vec![
                    Upstream::Tcp {
                        host: "h".into(),
                        port: 80,
                    },
                    Upstream::Unix("/s".into()),
                    Upstream::Pair("p".into(), 9),
                    Upstream::Local,
                ],
                backend: Some(Backend::Proxy {
                    url: "http://x".into(),
                    retries: 3,
                }),
                pair: Some(("a".into(), 2)),
                timeout: Some(Millis(1500)),
                ..minimal(Mode::Fast)
            },
        );
        check(
            Format::Yaml,
            "name: svc\nmode: fast\nworkers: null\nport: 8080\nbackend:\n  type: static\n  root: /w\n",
            Service {
                port: Some(Port::Number(8080)),
                backend: Some(Backend::Static { root: "/w".into() }),
                ..minimal(Mode::Fast)
            },
        );
        check(
            Format::Json,
            r#"{"name": "svc", "mode": "fast", "port": "http"}"#,
            Service {
                port: Some(Port::Name("http".into())),
                ..minimal(Mode::Fast)
            },
        );
        check(
            Format::Yaml,
            "name: n\nteam: core\ntier: \"1\"\n",
            Labels {
                name: "n".into(),
                rest: [("team", "core"), ("tier", "1")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .into(),
            },
        );
        check(
            Format::Toml,
            "nested = [[1, -2], []]\n[by_name]\na = 1\n[by_code]\n404 = \"gone\"\n",
            Maps {
                by_name: [("a".to_owned(), 1)].into(),
                by_code: [(404, "gone".to_owned())].into(),
                nested: vec![vec![1, -2], vec![]],
            },
        );
        check(
            Format::Json,
            r#"{"big": 18446744073709551615, "small": -9223372036854775808,
                "ratio": 0.5, "whole": 2, "inf": 1, "nan": 1, "ninf": 1}"#,
            Numbers {
                big: u64::MAX,
                small: i64::MIN,
                ratio: 0.5,
                whole: 2.0,
                inf: 1.0,
                nan: 1.0,
                ninf: 1.0,
            },
        );
    }

    #[test]
    fn non_finite_floats_read_into_float_fields() {
        let toml = "big = 1\nsmall = 1\nratio = 1.0\nwhole = 1.0\ninf = inf\nnan = nan\n\
                    ninf = -inf\n";
        let yaml = "big: 1\nsmall: 1\nratio: 1.0\nwhole: 1.0\ninf: .inf\nnan: .nan\nninf: -.inf\n";
        for (format, text) in [(Format::Toml, toml), (Format::Yaml, yaml)] {
            let numbers: Numbers = read(format, text);
            assert!(numbers.inf.is_infinite() && numbers.inf > 0.0, "{text}");
            assert!(numbers.nan.is_nan(), "{text}");
            assert!(numbers.ninf.is_infinite() && numbers.ninf < 0.0, "{text}");
        }
    }

    fn error_of<T: DeserializeOwned + Debug>(layers: &Layers) -> String {
        match layers.deserialize::<T>() {
            Ok(value) => panic!("expected an error, got {value:?}"),
            Err(problems) => {
                assert_eq!(problems.0.len(), 1, "{problems}");
                assert!(problems.0.iter().all(|p| p.kind == ProblemKind::Type));
                problems.to_string()
            }
        }
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Narrow {
        small: u8,
        signed: i8,
        big: u64,
        exact: i64,
        #[serde(default)]
        label: Option<String>,
    }

    #[test]
    fn errors_name_the_file_line_column_and_path() {
        type Case = (Format, &'static str, fn(&Layers) -> String, &'static str);
        let cases: &[Case] = &[
            // Integers out of range, located at the value.
            (
                Format::Toml,
                "small = 300\nsigned = 1\nbig = 1\nexact = 1\n",
                error_of::<Narrow>,
                "<defaults>:1:9: small: invalid value: integer `300`, expected u8",
            ),
            (
                Format::Toml,
                "small = 1\nsigned = -129\nbig = 1\nexact = 1\n",
                error_of::<Narrow>,
                "<defaults>:2:10: signed: invalid value: integer `-129`, expected i8",
            ),
            (
                Format::Yaml,
                "small: 1\nsigned: 1\nbig: -1\nexact: 1\n",
                error_of::<Narrow>,
                "<defaults>:3:6: big: invalid value: integer `-1`, expected u64",
            ),
            (
                Format::Json,
                "{\"small\": 1, \"signed\": 1, \"big\": 1,\n \"exact\": 9223372036854775808}",
                error_of::<Narrow>,
                "<defaults>:2:11: exact: invalid value: integer `9223372036854775808`, \
                 expected i64",
            ),
            // Wrong kinds of value, serde_json's wording.
            (
                Format::Yaml,
                "small: ~\nsigned: 1\nbig: 1\nexact: 1\n",
                error_of::<Narrow>,
                "<defaults>:1:8: small: invalid type: null, expected u8",
            ),
            (
                Format::Toml,
                "small = 1.5\nsigned = 1\nbig = 1\nexact = 1\n",
                error_of::<Narrow>,
                "<defaults>:1:9: small: invalid type: floating point `1.5`, expected u8",
            ),
            (
                Format::Toml,
                "small = 1\nsigned = 1\nbig = 1\nexact = 1\nlabel = [1]\n",
                error_of::<Narrow>,
                "<defaults>:5:9: label: invalid type: sequence, expected a string",
            ),
            // A missing field at its table, named by its path.
            (
                Format::Yaml,
                "limits: {}\nroutes: []\n",
                error_of::<Config>,
                "<defaults>:1:9: limits.rpm: missing field `rpm`",
            ),
            (
                Format::Toml,
                "routes = []\n",
                error_of::<Config>,
                "<defaults>:1:1: limits: missing field `limits`",
            ),
            // An unknown field at its key's entry.
            (
                Format::Toml,
                "routes = []\n[limits]\nrpm = 1\nrmp = 2\n",
                error_of::<Config>,
                "<defaults>:4:7: limits.rmp: unknown field `rmp`, expected `rpm`",
            ),
            (
                Format::Yaml,
                "limits:\n  rpm: 1\nroutes:\n  - path: /\n    upstream: u\n    weight: 2\n",
                error_of::<Config>,
                "<defaults>:6:13: routes[0].weight: unknown field `weight`, expected `path` \
                 or `upstream`",
            ),
            // Inside arrays.
            (
                Format::Json,
                "{\"limits\": {\"rpm\": 1},\n \"routes\": [{\"path\": \"/\", \"upstream\": \"u\"},\n  \
                 {\"path\": false, \"upstream\": \"u\"}]}",
                error_of::<Config>,
                "<defaults>:3:12: routes[1].path: invalid type: boolean `false`, expected a \
                 string",
            ),
            // Enums, each representation.
            (
                Format::Toml,
                "name = \"s\"\nmode = \"medium\"\n",
                error_of::<Service>,
                "<defaults>:2:8: mode: unknown variant `medium`, expected `fast` or `slow`",
            ),
            (
                Format::Toml,
                "name = \"s\"\nmode = 1\n",
                error_of::<Service>,
                "<defaults>:2:8: mode: invalid type: integer `1`, expected string or map",
            ),
            (
                Format::Toml,
                "name = \"s\"\nmode = \"fast\"\n[[upstreams]]\ntcp = { host = \"h\", port = \"x\" }\n",
                error_of::<Service>,
                "<defaults>:4:28: upstreams[0].tcp.port: invalid type: string \"x\", expected u16",
            ),
            (
                Format::Yaml,
                "name: s\nmode: fast\nupstreams:\n  - unix: /s\n    tcp: {}\n",
                error_of::<Service>,
                "<defaults>:4:5: upstreams[0]: invalid value: map, expected map with a single key",
            ),
            (
                Format::Yaml,
                "name: s\nmode: fast\nupstreams:\n  - tcp: [h, 1]\n",
                error_of::<Service>,
                "<defaults>:4:10: upstreams[0].tcp: invalid type: sequence, expected struct \
                 variant",
            ),
            (
                Format::Yaml,
                "name: s\nmode: fast\nupstreams: [unix]\n",
                error_of::<Service>,
                "<defaults>:3:13: upstreams[0]: invalid type: unit variant, expected newtype \
                 variant",
            ),
            (
                Format::Toml,
                "name = \"s\"\nmode = \"fast\"\n[backend]\nroot = \"/w\"\n",
                error_of::<Service>,
                "<defaults>:3:1: backend.type: missing field `type`",
            ),
            (
                Format::Toml,
                "name = \"s\"\nmode = \"fast\"\n[backend]\ntype = \"proxy\"\nurl = \"u\"\n\
                 retries = 1000\n",
                error_of::<Service>,
                "<defaults>:3:1: backend: invalid value: integer `1000`, expected u8",
            ),
            (
                Format::Toml,
                "name = \"s\"\nmode = \"fast\"\nport = true\n",
                error_of::<Service>,
                "<defaults>:3:8: port: data did not match any variant of untagged enum Port",
            ),
            // Tuples and newtypes.
            (
                Format::Toml,
                "name = \"s\"\nmode = \"fast\"\npair = [\"a\"]\n",
                error_of::<Service>,
                "<defaults>:3:8: pair: invalid length 1, expected a tuple of size 2",
            ),
            (
                Format::Toml,
                "name = \"s\"\nmode = \"fast\"\npair = [\"a\", 1, 2]\n",
                error_of::<Service>,
                "<defaults>:3:8: pair: invalid length 3, expected fewer elements in array",
            ),
            (
                Format::Toml,
                "name = \"s\"\nmode = \"fast\"\ntimeout = -1\n",
                error_of::<Service>,
                "<defaults>:3:11: timeout: invalid value: integer `-1`, expected u64",
            ),
            // Maps: a key that does not parse is located at its entry.
            (
                Format::Toml,
                "nested = []\n[by_name]\na = \"x\"\n[by_code]\n",
                error_of::<Maps>,
                "<defaults>:3:5: by_name.a: invalid type: string \"x\", expected u32",
            ),
            (
                Format::Toml,
                "nested = [[1], [2, 300]]\n[by_name]\n[by_code]\n",
                error_of::<Maps>,
                "<defaults>:1:20: nested[1][1]: invalid value: integer `300`, expected i8",
            ),
            (
                Format::Yaml,
                "nested: []\nby_name: {}\nby_code:\n  \"not a code\": x\n",
                error_of::<Maps>,
                "<defaults>:4:17: by_code.\"not a code\": invalid type: string \"not a code\", \
                 expected u16",
            ),
        ];
        for (format, text, error_of, expected) in cases {
            let layers = layers(*format, text);
            assert_eq!(error_of(&layers), *expected, "{text:?}");
        }
    }

    #[test]
    fn an_error_names_the_layer_that_set_the_value() {
        let sources = [
            Defaults::text(Format::Toml, "routes = []\n[limits]\nrpm = 1\n"),
            Defaults::text(Format::Yaml, "\n\nlimits:\n  rpm: lots\n"),
        ];
        let layers = Layers::load(&sources, &Limits::default()).unwrap();
        assert_eq!(
            error_of::<Config>(&layers),
            "<defaults>:4:8: limits.rpm: invalid type: string \"lots\", expected u32"
        );
    }
}
