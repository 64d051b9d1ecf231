//! How the etcd commands connect: `--etcd URL[,URL…]` and the flags every etcd command
//! shares (user and password, TLS). The password never comes from the command line, where
//! `ps` would show it: from `--etcd-password-file` or `ETCD_PASSWORD`.

use std::path::PathBuf;

use clap::Args;
use hotconf_etcd::{Connection, Tls};

use crate::trouble::{Kind, Trouble};

/// The connection flags shared by `push`, `fleet status` and `watch --etcd`.
#[derive(Debug, Args)]
pub(crate) struct ConnectionArgs {
    /// Log in to etcd as USER. The password comes from --etcd-password-file or the
    /// ETCD_PASSWORD environment variable, never from the command line.
    #[arg(long = "etcd-user", value_name = "USER")]
    user: Option<String>,
    /// The file holding the password of --etcd-user (one trailing newline is ignored).
    #[arg(long = "etcd-password-file", value_name = "FILE", requires = "user")]
    password_file: Option<PathBuf>,
    /// The CA certificate (PEM) that signed etcd's server certificate: talk TLS.
    #[arg(long = "etcd-ca", value_name = "FILE")]
    ca: Option<PathBuf>,
    /// A client certificate (PEM) for etcd's --client-cert-auth; needs --etcd-key.
    #[arg(long = "etcd-cert", value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The client certificate's key (PEM); needs --etcd-cert.
    #[arg(long = "etcd-key", value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
}

impl ConnectionArgs {
    /// The connection to `endpoints` (comma-separated URLs) with these flags.
    pub(crate) fn connection(&self, endpoints: &str) -> anyhow::Result<Connection> {
        let endpoints: Vec<&str> = endpoints
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if endpoints.is_empty() {
            return Err(Trouble::new(Kind::Usage, "--etcd names no endpoint").into());
        }
        let mut connection = Connection::new(endpoints);
        if let Some(user) = &self.user {
            connection = connection.user(user.clone(), self.password()?);
        }
        if self.ca.is_some() || self.cert.is_some() {
            connection = connection.tls(Tls {
                ca: self.ca.clone(),
                cert: self.cert.clone(),
                key: self.key.clone(),
                domain: None,
            });
        }
        Ok(connection)
    }

    fn password(&self) -> anyhow::Result<String> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                let kind = if e.kind() == std::io::ErrorKind::NotFound {
                    Kind::NotFound
                } else {
                    Kind::Io
                };
                Trouble::new(
                    kind,
                    format!("--etcd-password-file {}: {e}", path.display()),
                )
            })?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            return Ok(text.strip_suffix('\r').unwrap_or(text).to_owned());
        }
        std::env::var("ETCD_PASSWORD").map_err(|_| {
            Trouble::new(
                Kind::Usage,
                "--etcd-user needs a password: --etcd-password-file FILE or ETCD_PASSWORD",
            )
            .into()
        })
    }
}

/// The trouble an error of hotconf-etcd stands for: bad options are usage errors, the rest
/// (etcd unreachable, a refused request) I/O.
pub(crate) fn trouble(error: hotconf_etcd::Error) -> Trouble {
    let kind = match error {
        hotconf_etcd::Error::Usage(_) => Kind::Usage,
        _ => Kind::Io,
    };
    Trouble::new(kind, error.to_string())
}

/// `hotconf watch --etcd URL --prefix P`: the config from an etcd prefix instead of files.
#[derive(Debug, Args)]
pub(crate) struct WatchEtcdArgs {
    /// Load and watch the config from etcd at URL (several: URL,URL…) instead of files:
    /// every key under --prefix ending in .toml, .yaml, .yml or .json is one document, in
    /// key order. The instance reports what it applied under the prefix's `.status`
    /// sibling, for `hotconf fleet status`.
    #[arg(long = "etcd", value_name = "URL", requires = "prefix")]
    etcd: Option<String>,
    /// The key prefix that holds the config (`/app/`).
    #[arg(long, value_name = "P", requires = "etcd")]
    prefix: Option<String>,
    /// This instance's name in fleet status [default: HOST-PID].
    #[arg(long, value_name = "NAME", requires = "etcd")]
    instance: Option<String>,
    /// Also write the applied documents to DIR as files (`/app/server.toml` →
    /// DIR/server.toml), each atomically and before --on-apply runs, so a program that reads
    /// files has them.
    #[arg(long = "write-to", value_name = "DIR", requires = "etcd")]
    write_to: Option<PathBuf>,
    /// Keep the last documents read in FILE, and start from them when etcd cannot be
    /// reached at start.
    #[arg(long = "etcd-cache", value_name = "FILE", requires = "etcd")]
    cache: Option<PathBuf>,
    #[command(flatten)]
    connection: ConnectionArgs,
}

impl WatchEtcdArgs {
    /// Whether the config comes from etcd.
    pub(crate) fn is_set(&self) -> bool {
        self.etcd.is_some()
    }

    /// Adds the etcd source, the fleet reporter and the `--write-to` writer to the
    /// reloader being built; returns the reporter, to stop it at exit.
    pub(crate) fn configure(
        &self,
        builder: hotconf::ReloaderBuilder<serde_json::Value>,
    ) -> anyhow::Result<(
        hotconf::ReloaderBuilder<serde_json::Value>,
        Option<std::sync::Arc<hotconf_etcd::Reporter>>,
    )> {
        let (Some(endpoints), Some(prefix)) = (&self.etcd, &self.prefix) else {
            return Ok((builder, None));
        };
        let connection = self.connection.connection(endpoints)?;
        let prefix = hotconf_etcd::Prefix::new(prefix.clone()).map_err(trouble)?;
        let mut source = hotconf_etcd::EtcdSource::new(connection.clone(), prefix);
        if let Some(cache) = &self.cache {
            source = source.cache(cache);
        }
        let tracker = source.tracker();
        let mut builder = builder.source(source);
        // Files first: an `--on-apply` command run on the event finds them written.
        if let Some(dir) = &self.write_to {
            let files = hotconf_etcd::WriteTo::new(dir, tracker.clone()).map_err(trouble)?;
            builder = builder.observer(files);
        }
        let mut reporter = hotconf_etcd::Reporter::builder(connection, tracker);
        if let Some(name) = &self.instance {
            reporter = reporter.instance(name.clone());
        }
        let reporter = std::sync::Arc::new(reporter.build().map_err(trouble)?);
        let observer: std::sync::Arc<dyn hotconf::Observer> = reporter.clone();
        Ok((builder.observer_arc(observer), Some(reporter)))
    }
}
