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
