//! [`Admin`], the builder, and [`AdminServer`], the server on its own thread.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use hotconf::Control;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::{oneshot, watch};

use crate::error::AdminError;
use crate::routes::{self, AppState};
use crate::security::{self, Guard};

/// The admin API of one reloader: build it, then mount its [`router`](Self::router), or
/// [`serve`](Self::serve) it on a listener, or [`spawn`](Self::spawn) it on a thread of
/// its own.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # #[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
/// # struct AppConfig { rpm: u32 }
/// # impl hotconf::Validate for AppConfig {}
/// let reloader = hotconf::Reloader::<AppConfig>::builder().file("app.toml").build()?;
/// let server = hotconf_admin::Admin::new(reloader.control())
///     .token("a-long-random-token")
///     .spawn("127.0.0.1:9180".parse()?)?;
/// println!("admin page on http://{}/", server.addr());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Admin {
    control: Arc<dyn Control>,
    token: Option<String>,
    metrics: Option<PrometheusHandle>,
    hosts: Vec<String>,
    keep_alive: Duration,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("config", &self.control.name())
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("metrics", &self.metrics.is_some())
            .field("hosts", &self.hosts)
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

impl Admin {
    /// The admin API of the reloader behind `control` ([`hotconf::Reloader::control`]):
    /// no token, no metrics.
    pub fn new(control: Arc<dyn Control>) -> Self {
        Self {
            control,
            token: None,
            metrics: None,
            hosts: Vec::new(),
            keep_alive: Duration::from_secs(15),
        }
    }

    /// Requires `Authorization: Bearer <token>`: on a loopback address for state changes
    /// (POST, PUT), on any other address for every route but the page itself. A token is
    /// compared in constant time and never logged.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Serves this Prometheus handle's text on `GET /metrics`. The service installs its
    /// recorder itself (or builds one without installing it); the admin API never installs
    /// a global recorder.
    #[must_use]
    pub fn metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// Accepts one more `Host` (and `Origin`) name, `host:port`, besides the bound address:
    /// the name a reverse proxy or DNS gives the service. Without a port, 80.
    #[must_use]
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.hosts.push(host.into());
        self
    }

    /// How often an idle event stream sends a keep-alive comment; 15 seconds by default.
    #[must_use]
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = interval;
        self
    }

    /// The router, for a service that serves it itself, bound to `bound` (the `Host`
    /// header must name it). Serve it with connect info
    /// (`into_make_service_with_connect_info::<SocketAddr>()`) to have the caller's address
    /// in events' `by`, at the root of its listener: the page calls the API by relative
    /// URLs, and its routes are the root's (`/config`, `/status`, …).
    ///
    /// # Errors
    ///
    /// [`AdminError::TokenRequired`] when `bound` is not a loopback address and no token
    /// is set; [`AdminError::InvalidToken`] for an empty token or one a header cannot carry.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("app.toml");
    /// # std::fs::write(&path, "rpm = 60\n")?;
    /// # #[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
    /// # struct AppConfig { rpm: u32 }
    /// # impl hotconf::Validate for AppConfig {}
    /// let reloader = hotconf::Reloader::<AppConfig>::builder().file(&path).build()?;
    /// let admin = hotconf_admin::Admin::new(reloader.control());
    /// // Loopback: fine without a token.
    /// let router = admin.router("127.0.0.1:9180".parse()?)?;
    /// // Every interface: refused without one.
    /// assert!(admin.router("0.0.0.0:9180".parse()?).is_err());
    /// # drop(router);
    /// # Ok(())
    /// # }
    /// ```
    pub fn router(&self, bound: SocketAddr) -> Result<Router, AdminError> {
        // Nobody holds the sender: the event streams end only with their clients.
        let (_, never) = watch::channel(false);
        self.build(bound, never)
    }

    fn build(
        &self,
        bound: SocketAddr,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Router, AdminError> {
        if let Some(token) = &self.token {
            security::valid_token(token)?;
        }
        let guard = Guard::new(bound, self.token.clone(), &self.hosts)?;
        let state = AppState {
            control: self.control.clone(),
            metrics: self.metrics.clone(),
            shutdown,
            keep_alive: self.keep_alive,
        };
        Ok(routes::router(state, guard))
    }

    /// Serves the API on `listener` (bound to its local address) until an I/O error: for a
    /// service that runs tokio.
    ///
    /// # Errors
    ///
    /// As [`router`](Self::router), and [`AdminError::Serve`] when serving fails.
    ///
    /// ```no_run
    /// # async fn run(control: std::sync::Arc<dyn hotconf::Control>) -> Result<(), hotconf_admin::AdminError> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:9180").await.map_err(|source| {
    ///     hotconf_admin::AdminError::Bind { addr: "127.0.0.1:9180".into(), source }
    /// })?;
    /// hotconf_admin::Admin::new(control).serve(listener).await
    /// # }
    /// ```
    pub async fn serve(self, listener: tokio::net::TcpListener) -> Result<(), AdminError> {
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Serves the API on `listener` until `signal` resolves; then open event streams end,
    /// requests in flight finish, and it returns.
    ///
    /// # Errors
    ///
    /// As [`serve`](Self::serve).
    pub async fn serve_with_shutdown(
        self,
        listener: tokio::net::TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AdminError> {
        let bound = listener.local_addr().map_err(|source| AdminError::Bind {
            addr: "the listener".into(),
            source,
        })?;
        let (stop, stopped) = watch::channel(false);
        let router = self.build(bound, stopped)?;
        tracing::info!(addr = %bound, config = %self.control.name(), "admin API listening");
        run(router, listener, signal, stop).await
    }

    /// Binds `addr` and serves the API from a small runtime of its own on a thread named
    /// `hotconf-admin`: for a service without tokio, and the `hotconf watch` sidecar.
    /// Port 0 picks a free port: [`AdminServer::addr`] says which. Dropping the server
    /// stops it and joins the thread.
    ///
    /// # Errors
    ///
    /// As [`router`](Self::router); [`AdminError::Bind`] when `addr` cannot be bound;
    /// [`AdminError::Start`] when the runtime or the thread cannot be started.
    pub fn spawn(self, addr: SocketAddr) -> Result<AdminServer, AdminError> {
        let bind_error = |source| AdminError::Bind {
            addr: addr.to_string(),
            source,
        };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let bound = listener.local_addr().map_err(bind_error)?;
        // Built here, so that a refused address is an error of this call.
        let (stop_streams, stopped) = watch::channel(false);
        let router = self.build(bound, stopped)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(AdminError::Start)?;
        let (stop, stop_requested) = oneshot::channel::<()>();
        let name = self.control.name();
        let thread = std::thread::Builder::new()
            .name("hotconf-admin".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).map_err(AdminError::Serve)?;
                    tracing::info!(addr = %bound, config = %name, "admin API listening");
                    let signal = async move {
                        let _ = stop_requested.await;
                    };
                    run(router, listener, signal, stop_streams).await
                })
            })
            .map_err(AdminError::Start)?;
        Ok(AdminServer {
            addr: bound,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// Serves `router` until `signal`; then tells the event streams to end, and waits for the
/// requests in flight.
async fn run(
    router: Router,
    listener: tokio::net::TcpListener,
    signal: impl Future<Output = ()> + Send + 'static,
    stop_streams: watch::Sender<bool>,
) -> Result<(), AdminError> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        signal.await;
        let _ = stop_streams.send(true);
    })
    .await
    .map_err(AdminError::Serve)
}

/// The admin API running on its own thread ([`Admin::spawn`]). Dropping it stops the
/// server and joins its thread.
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), AdminError>>>,
}

impl AdminServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server: open event streams end, requests in flight finish.
    ///
    /// # Errors
    ///
    /// The error serving stopped with, if any.
    pub fn stop(mut self) -> Result<(), AdminError> {
        self.halt()
    }

    fn halt(&mut self) -> Result<(), AdminError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(AdminError::Serve(std::io::Error::other(
                "the admin server's thread panicked",
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        if let Err(error) = self.halt() {
            tracing::warn!(%error, "the admin server stopped with an error");
        }
    }
}
