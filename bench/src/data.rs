//! The one typed config every contender loads, and generated documents of a given size.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A service config: a few scalars and a list of routes that sets the size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Listener.
    pub server: Server,
    /// The value the "changed" cases toggle (`limits.rpm`, 600 ↔ 601).
    pub limits: Limits,
    /// As many as it takes to reach the size.
    pub routes: Vec<Route>,
}

/// Listener settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Worker threads.
    pub workers: u32,
    /// Whether TLS is on.
    pub tls: bool,
}

/// Rate limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Requests per minute.
    pub rpm: u32,
    /// Burst.
    pub burst: u32,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// URL path.
    pub path: String,
    /// Upstream name.
    pub upstream: String,
    /// Timeout.
    pub timeout_ms: u64,
    /// Backoff steps.
    pub retries: Vec<u32>,
    /// Methods allowed.
    pub methods: Vec<String>,
    /// Whether it is served.
    pub enabled: bool,
}

impl hotconf::Validate for Config {}

/// A document format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fmt {
    /// TOML.
    Toml,
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

impl Fmt {
    /// Every format, in table order.
    pub const ALL: [Fmt; 3] = [Fmt::Toml, Fmt::Yaml, Fmt::Json];

    /// The file extension.
    pub fn ext(self) -> &'static str {
        match self {
            Fmt::Toml => "toml",
            Fmt::Yaml => "yaml",
            Fmt::Json => "json",
        }
    }

    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Fmt::Toml => "TOML",
            Fmt::Yaml => "YAML",
            Fmt::Json => "JSON",
        }
    }

    /// `config` written in this format.
    pub fn write<S: Serialize>(self, config: &S) -> String {
        match self {
            Fmt::Toml => toml::to_string(config).expect("TOML serializes"),
            Fmt::Yaml => serde_saphyr::to_string(config).expect("YAML serializes"),
            Fmt::Json => serde_json::to_string_pretty(config).expect("JSON serializes"),
        }
    }

    /// The hand-written parse: `toml::from_str`, `serde_saphyr::from_str`,
    /// `serde_json::from_slice`.
    pub fn parse(self, bytes: &[u8]) -> Config {
        match self {
            Fmt::Toml => {
                toml::from_str(std::str::from_utf8(bytes).expect("UTF-8")).expect("valid TOML")
            }
            Fmt::Yaml => serde_saphyr::from_str(std::str::from_utf8(bytes).expect("UTF-8"))
                .expect("valid YAML"),
            Fmt::Json => serde_json::from_slice(bytes).expect("valid JSON"),
        }
    }
}

/// A config with `routes` routes and `limits.rpm = rpm`.
pub fn config(routes: usize, rpm: u32) -> Config {
    Config {
        server: Server {
            host: "api.internal.example".into(),
            port: 8443,
            workers: 8,
            tls: true,
        },
        limits: Limits { rpm, burst: 50 },
        routes: (0..routes)
            .map(|i| Route {
                path: format!("/api/v1/resource-{i:06}"),
                upstream: format!("pool-{}", i % 17),
                timeout_ms: 1_000 + (i as u64 % 9) * 250,
                retries: vec![10, 20, 40],
                methods: vec!["GET".into(), "POST".into()],
                enabled: i % 5 != 0,
            })
            .collect(),
    }
}

/// The two texts the "changed" cases alternate between (`rpm` 600 and 601, same length),
/// about `size` bytes of `fmt`.
pub fn texts(fmt: Fmt, size: usize) -> (String, String) {
    let probe = fmt.write(&config(100, 600)).len();
    let empty = fmt.write(&config(0, 600)).len();
    let per_route = (probe - empty) / 100;
    let routes = size.saturating_sub(empty) / per_route.max(1);
    (
        fmt.write(&config(routes, 600)),
        fmt.write(&config(routes, 601)),
    )
}

/// One small service file of the directory cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u32,
    /// Load-balancing weight; the changed file toggles it.
    pub weight: u32,
    /// Whether it takes traffic.
    pub enabled: bool,
    /// Labels.
    pub tags: Vec<String>,
}

/// A directory of services, each file mounted under its name without the extension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Services(pub BTreeMap<String, Service>);

impl hotconf::Validate for Services {}

/// The text of service file `i` with `weight`.
pub fn service_text(i: usize, weight: u32) -> String {
    format!(
        "host = \"svc-{i:05}.internal\"\nport = {}\nweight = {weight}\nenabled = true\ntags = [\"zone-{}\", \"tier-web\"]\n",
        8000 + i % 1000,
        i % 3
    )
}

/// The file name of service `i`.
pub fn service_name(i: usize) -> String {
    format!("svc-{i:05}")
}

/// Writes `count` service files into `dir`.
pub fn write_services(dir: &Path, count: usize) {
    for i in 0..count {
        std::fs::write(
            dir.join(format!("{}.toml", service_name(i))),
            service_text(i, 1),
        )
        .expect("write a service file");
    }
}
