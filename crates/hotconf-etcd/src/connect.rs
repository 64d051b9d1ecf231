//! How to reach etcd: endpoints, user and password, TLS, timeouts.

use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use crate::Error;

/// Where etcd is and how to talk to it. Cheap to clone; shared by the source, the fleet
/// reporter, `push` and `fleet status`.
///
/// ```
/// use hotconf_etcd::Connection;
///
/// let etcd = Connection::new(["http://127.0.0.1:2379"]).user("app", "s3cret");
/// assert_eq!(etcd.endpoints(), ["http://127.0.0.1:2379"]);
/// ```
#[derive(Clone)]
pub struct Connection {
    endpoints: Vec<String>,
    user: Option<(String, String)>,
    tls: Option<Tls>,
    timeout: Duration,
    connect_timeout: Duration,
}

/// TLS to etcd: the CA that signed the server's certificate and, for client-certificate
/// authentication, the client's certificate and key (PEM files).
#[derive(Clone, Debug, Default)]
pub struct Tls {
    /// The CA certificate that signed etcd's server certificate.
    pub ca: Option<PathBuf>,
    /// The client certificate, for `--client-cert-auth`.
    pub cert: Option<PathBuf>,
    /// The client certificate's key.
    pub key: Option<PathBuf>,
    /// The name to check the server's certificate against, when it is not the endpoint's host.
    pub domain: Option<String>,
}

impl Connection {
    /// etcd at `endpoints` (`http://host:port`, or `https://…` with [`tls`](Self::tls)).
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            user: None,
            tls: None,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
        }
    }

    /// Authenticates as `user` with `password` (etcd's `--auth`): the client gets a token
    /// and renews it.
    pub fn user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((user.into(), password.into()));
        self
    }

    /// Talks TLS (build with the `tls` feature).
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The timeout of each request (not of a watch); 5 s by default.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The timeout of connecting; 3 s by default.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The endpoints, joined for messages.
    pub(crate) fn describe(&self) -> String {
        self.endpoints.join(",")
    }

    /// Connects: authenticates when a user is set, so a wrong password fails here.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] for options that cannot work (no endpoint, TLS without the `tls`
    /// feature, an unreadable certificate), [`Error::Etcd`] when etcd cannot be reached or
    /// refuses the user.
    pub async fn connect(&self) -> Result<Client, Error> {
        if self.endpoints.is_empty() {
            return Err(Error::Usage("no etcd endpoint given".into()));
        }
        let mut options = ConnectOptions::new()
            .with_timeout(self.timeout)
            .with_connect_timeout(self.connect_timeout)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        if let Some((user, password)) = &self.user {
            options = options.with_user(user.clone(), password.clone());
        }
        options = self.with_tls(options)?;
        Client::connect(&self.endpoints, Some(options))
            .await
            .map_err(|source| Error::etcd(format!("cannot connect to {}", self.describe()), source))
    }

    #[cfg(feature = "tls")]
    fn with_tls(&self, options: ConnectOptions) -> Result<ConnectOptions, Error> {
        use etcd_client::{Certificate, Identity, TlsOptions};
        let Some(tls) = &self.tls else {
            return Ok(options);
        };
        let read = |path: &PathBuf| {
            std::fs::read(path)
                .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))
        };
        let mut config = TlsOptions::new();
        if let Some(ca) = &tls.ca {
            config = config.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            (None, None) => {}
            _ => {
                return Err(Error::Usage(
                    "a client certificate needs both its certificate and its key".into(),
                ));
            }
        }
        if let Some(domain) = &tls.domain {
            config = config.domain_name(domain.clone());
        }
        Ok(options.with_tls(config))
    }

    #[cfg(not(feature = "tls"))]
    fn with_tls(&self, options: ConnectOptions) -> Result<ConnectOptions, Error> {
        if self.tls.is_some() || self.endpoints.iter().any(|e| e.starts_with("https://")) {
            return Err(Error::Usage(
                "TLS to etcd needs hotconf-etcd's `tls` feature".into(),
            ));
        }
        Ok(options)
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Connection")
            .field("endpoints", &self.endpoints)
            .field("user", &self.user.as_ref().map(|(user, _)| user))
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
