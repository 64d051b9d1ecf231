//! The demo service's config: four files merged into one typed value, validated across
//! files (a route naming an unknown backend, `rpm: 0`, a flag that needs a token that is
//! not set), every problem located by hotconf at its file, line and column.

use std::collections::BTreeMap;

use hotconf::{Report, Validate};
use serde::{Deserialize, Serialize};

/// The bundled config, written into a new data directory (and by `--reset`).
pub(crate) const BUNDLED: [(&str, &str); 4] = [
    ("server.toml", include_str!("../bundled/server.toml")),
    ("limits.yaml", include_str!("../bundled/limits.yaml")),
    ("routes.json", include_str!("../bundled/routes.json")),
    ("features.toml", include_str!("../bundled/features.toml")),
];

/// What the demo's config files hold together, one top-level key per part.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Demo {
    /// server.toml
    pub(crate) server: Server,
    /// server.toml
    pub(crate) pool: Pool,
    /// limits.yaml
    pub(crate) limits: Limits,
    /// routes.json
    pub(crate) backends: BTreeMap<String, Backend>,
    /// routes.json
    pub(crate) routes: BTreeMap<String, Route>,
    /// features.toml
    pub(crate) flags: Flags,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Server {
    /// Restart required.
    pub(crate) listen: String,
    /// Restart required: the size of the runtime's thread pool.
    pub(crate) workers: usize,
    /// Secret (by its name). Empty means none.
    #[serde(default)]
    pub(crate) admin_token: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pool {
    pub(crate) size: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Limits {
    pub(crate) default: Limit,
    #[serde(default)]
    pub(crate) routes: BTreeMap<String, Limit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Limit {
    pub(crate) rpm: u32,
    pub(crate) burst: u32,
}

impl Limits {
    /// The limit in force for `route`.
    pub(crate) fn of(&self, route: &str) -> Limit {
        self.routes.get(route).copied().unwrap_or(self.default)
    }
}

/// What a built-in backend does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// Answers the request's `msg`.
    Echo,
    /// Answers after `ms` milliseconds.
    Delay,
    /// Always fails: the chain moves on.
    Fail,
    /// Fails every `every`-th call.
    Flaky,
    /// Answers `body`.
    Static,
    /// Answers through a connection of the pool.
    Pool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Backend {
    pub(crate) kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) every: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) body: Option<String>,
}

/// A route: its primary backend, then the fallbacks in order.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Route {
    pub(crate) primary: String,
    #[serde(default)]
    pub(crate) fallbacks: Vec<String>,
}

impl Route {
    /// The backends to try, in order.
    pub(crate) fn chain(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.primary.as_str()).chain(self.fallbacks.iter().map(String::as_str))
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Flags {
    #[serde(default)]
    pub(crate) shout: bool,
    #[serde(default)]
    pub(crate) trace: bool,
    #[serde(default)]
    pub(crate) stats: bool,
}

/// The longest delay a `delay` backend may take, so a request always ends.
const MAX_DELAY_MS: u64 = 10_000;

impl Validate for Demo {
    fn validate(&self, report: &mut Report) {
        if !(1..=64).contains(&self.server.workers) {
            report.error("server.workers", "must be between 1 and 64");
        }
        if self.pool.size == 0 {
            report.error("pool.size", "must be at least 1");
        }
        check_limit(report, "limits.default", self.limits.default);
        for (route, limit) in &self.limits.routes {
            let at = format!("limits.routes.{route}");
            // Cross-file: limits.yaml names routes that routes.json defines.
            if !self.routes.contains_key(route) {
                report.error(&at, format!("no route named '{route}' in routes.json"));
            }
            check_limit(report, &at, *limit);
        }
        for (name, backend) in &self.backends {
            if !plain(name) {
                report.error(
                    "backends",
                    format!("'{name}': use letters, digits, - and _"),
                );
                continue;
            }
            check_backend(report, name, backend);
        }
        for (name, route) in &self.routes {
            if !plain(name) {
                report.error("routes", format!("'{name}': use letters, digits, - and _"));
                continue;
            }
            let at = format!("routes.{name}.primary");
            self.check_backend_name(report, &at, &route.primary);
            for (i, fallback) in route.fallbacks.iter().enumerate() {
                let at = format!("routes.{name}.fallbacks[{i}]");
                self.check_backend_name(report, &at, fallback);
            }
        }
        // Cross-file: a flag in features.toml that needs a secret from server.toml.
        if self.flags.stats && self.server.admin_token.trim().is_empty() {
            report.error(
                "flags.stats",
                "needs server.admin_token (server.toml) to be set: /api/stats is guarded by it",
            );
        }
    }
}

impl Demo {
    fn check_backend_name(&self, report: &mut Report, at: &str, name: &str) {
        if !self.backends.contains_key(name) {
            let known: Vec<&str> = self.backends.keys().map(String::as_str).collect();
            report.error(
                at,
                format!("no backend named '{name}' (known: {})", known.join(", ")),
            );
        }
    }
}

fn check_limit(report: &mut Report, at: &str, limit: Limit) {
    if limit.rpm == 0 {
        report.error(&format!("{at}.rpm"), "must be greater than 0");
    }
    if limit.burst == 0 {
        report.error(&format!("{at}.burst"), "must be greater than 0");
    }
}

fn check_backend(report: &mut Report, name: &str, backend: &Backend) {
    let at = |field: &str| format!("backends.{name}.{field}");
    match backend.kind {
        Kind::Delay => match backend.ms {
            None => report.error(&at("kind"), "a delay backend needs `ms`"),
            Some(ms) if ms > MAX_DELAY_MS => {
                report.error(&at("ms"), format!("at most {MAX_DELAY_MS}"));
            }
            Some(_) => {}
        },
        Kind::Flaky => match backend.every {
            None => report.error(&at("kind"), "a flaky backend needs `every`"),
            Some(every) if every < 2 => report.error(&at("every"), "must be at least 2"),
            Some(_) => {}
        },
        Kind::Static if backend.body.is_none() => {
            report.error(&at("kind"), "a static backend needs `body`");
        }
        _ => {}
    }
}

/// Whether a name is written as it is in a config path (no quoting needed).
fn plain(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use hotconf::Reloader;
    use hotconf::source::Format;

    use super::*;

    /// A reloader on the bundled config, as the demo loads it.
    fn bundled() -> Reloader<Demo> {
        let mut builder = Reloader::<Demo>::builder();
        for (name, text) in BUNDLED {
            let format = Format::from_path(std::path::Path::new(name)).unwrap();
            builder = builder.defaults(format, text);
        }
        builder.build().unwrap()
    }

    #[test]
    fn the_bundled_config_loads() {
        let reloader = bundled();
        let demo = reloader.current();
        assert_eq!(demo.limits.of("limited").rpm, 60);
        assert_eq!(demo.limits.of("chat"), demo.limits.default);
        let chain: Vec<&str> = demo.routes["chat"].chain().collect();
        assert_eq!(chain, ["flaky", "slow", "echo"]);
    }

    #[test]
    fn every_cross_file_mistake_is_refused_at_its_path() {
        type Edit = fn(&mut Demo);
        let cases: [(Edit, &str); 9] = [
            (
                |d| d.limits.default.rpm = 0,
                "limits.default.rpm: must be greater than 0",
            ),
            (
                |d| d.limits.default.burst = 0,
                "limits.default.burst: must be greater than 0",
            ),
            (
                |d| {
                    d.limits
                        .routes
                        .insert("nope".into(), d.limits.default)
                        .map_or((), drop)
                },
                "limits.routes.nope: no route named 'nope' in routes.json",
            ),
            (
                |d| d.routes.get_mut("chat").unwrap().fallbacks[1] = "nope".into(),
                "routes.chat.fallbacks[1]: no backend named 'nope' (known: db, down, echo",
            ),
            (
                |d| d.routes.get_mut("search").unwrap().primary = "gone".into(),
                "routes.search.primary: no backend named 'gone'",
            ),
            (
                |d| d.flags.stats = true,
                "flags.stats: needs server.admin_token (server.toml) to be set",
            ),
            (
                |d| d.server.workers = 0,
                "server.workers: must be between 1 and 64",
            ),
            (|d| d.pool.size = 0, "pool.size: must be at least 1"),
            (
                |d| d.backends.get_mut("slow").unwrap().ms = Some(60_000),
                "backends.slow.ms: at most 10000",
            ),
        ];
        let reloader = bundled();
        for (edit, expected) in cases {
            let mut demo = (*reloader.current()).clone();
            edit(&mut demo);
            let error = reloader.apply(demo).unwrap_err().to_string();
            assert!(error.contains(expected), "{expected}\n  not in: {error}");
            assert_eq!(reloader.current().version(), 1);
        }
        // With the token set, the flag is fine.
        let mut demo = (*reloader.current()).clone();
        demo.flags.stats = true;
        demo.server.admin_token = "s3cret".into();
        assert!(reloader.apply(demo).is_ok());
    }
}
