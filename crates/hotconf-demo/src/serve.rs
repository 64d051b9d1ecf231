//! `hotconf-demo` (no subcommand): the service. It prepares the data directory, builds the
//! reloader (sources, policy, the limiter component, the pool resource, audit, alerts,
//! metrics), serves the API and the admin page, and stops cleanly on Ctrl-C or SIGTERM.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use clap::Args;
use hotconf::alert::Alerts;
use hotconf::audit::AuditLog;
use hotconf::{Event, Observer, Outcome, Reloader, ReloaderBuilder, WatcherState};
use hotconf_admin::Admin;
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::api::{self, App};
use crate::config::{BUNDLED, Demo};
use crate::limiter::Limiter;
use crate::pool::PoolResource;

/// The service's options.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// The data directory: the config (created from the bundled one on first run) and the
    /// audit log.
    #[arg(long, value_name = "DIR", default_value = "hotconf-demo-data")]
    pub(crate) data: PathBuf,
    /// Rewrite the data directory's config from the bundled one and start a new audit log.
    #[arg(long)]
    pub(crate) reset: bool,
    /// Read the config from DIR instead of the data directory's `config/`.
    #[arg(long, value_name = "DIR")]
    pub(crate) config: Option<PathBuf>,
    /// Serve the API on ADDR instead of `server.listen` (port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<SocketAddr>,
    /// Serve the admin API, page and /metrics on ADDR.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7879")]
    pub(crate) admin: SocketAddr,
    /// POST a Slack-compatible alert to URL when a reload is rejected (and when it resolves).
    #[arg(long, value_name = "URL")]
    pub(crate) alert_webhook: Option<String>,
    #[cfg(feature = "etcd")]
    #[command(flatten)]
    pub(crate) etcd: crate::etcd::EtcdArgs,
}

/// The config files this build reads, one per part of the config.
pub(crate) const FILES: [&str; 4] = ["server.toml", "limits.yaml", "routes.json", "features.toml"];

/// Where the config comes from, as the startup message describes it.
#[derive(Debug)]
pub(crate) struct Sources {
    /// What to tell a newcomer to edit.
    edit: Vec<String>,
}

/// The one place that says where the config comes from: the four files of the config
/// directory (`--config`, or the data directory's, made from the bundled files) today. A
/// source behind a cargo feature (an etcd prefix) is another branch here, before the files.
fn config_sources(
    builder: ReloaderBuilder<Demo>,
    args: &ServeArgs,
) -> anyhow::Result<(ReloaderBuilder<Demo>, Sources)> {
    let config_dir = match &args.config {
        Some(dir) => dir.clone(),
        None => bundled_config(&args.data, args.reset)?,
    };
    #[cfg(feature = "etcd")]
    let builder = match args.etcd.configure(builder, &config_dir)? {
        (builder, Some(edit)) => return Ok((builder, Sources { edit })),
        (builder, None) => builder,
    };
    let mut builder = builder;
    let mut edit = Vec::new();
    for name in FILES {
        let path = config_dir.join(name);
        edit.push(path.display().to_string());
        builder = builder.file(path);
    }
    Ok((builder, Sources { edit }))
}

/// The data directory's config directory, its files written from the bundled ones when
/// missing, or always with `reset`.
fn bundled_config(data: &Path, reset: bool) -> anyhow::Result<PathBuf> {
    let dir = data.join("config");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in BUNDLED {
        let path = dir.join(name);
        if reset || !path.exists() {
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(dir)
}

/// Creates the data directory (a new audit log with `reset`); answers the audit log's path.
fn prepare_data(args: &ServeArgs) -> anyhow::Result<PathBuf> {
    let data = &args.data;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    let audit = data.join("audit.jsonl");
    if args.reset {
        for path in [audit.clone(), data.join("audit.jsonl.key")] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()));
                }
                _ => {}
            }
        }
    }
    Ok(audit)
}

/// Runs the service until Ctrl-C or SIGTERM.
pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let audit_path = prepare_data(args)?;
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot record metrics")?;
    let limiter = Limiter::new();
    let builder = Reloader::<Demo>::builder()
        .name("hotconf-demo")
        .restart_required("server.listen")
        .restart_required("server.workers")
        .secret("server.admin_token")
        .component(Arc::clone(&limiter))
        .attempts(1000)
        .observer(Printer)
        .metrics()
        .audit(
            AuditLog::builder(&audit_path)
                .build()
                .with_context(|| format!("cannot open the audit log {}", audit_path.display()))?,
        );
    let builder = match &args.alert_webhook {
        Some(url) => builder.alerts(
            Alerts::builder()
                .config_name("hotconf-demo")
                .slack(url)
                .build()
                .context("cannot send alerts")?,
        ),
        None => builder,
    };
    let (builder, sources) = config_sources(builder, args)?;
    let (builder, pool) = builder.resource(PoolResource);
    let reloader = match builder.build() {
        Ok(reloader) => reloader,
        Err(error) => bail!("the config cannot be loaded, nothing started:\n{error}"),
    };
    reloader.watch().context("cannot watch the config files")?;
    let first = reloader.current();
    let listen = match args.listen {
        Some(addr) => addr,
        None => first.server.listen.parse().with_context(|| {
            format!(
                "server.listen = {:?} is not an address",
                first.server.listen
            )
        })?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(first.server.workers)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let admin = Admin::new(reloader.control())
        .metrics(metrics)
        .spawn(args.admin)
        .with_context(|| format!("cannot serve the admin page on {}", args.admin))?;
    let app = App {
        handle: reloader.handle(),
        pool,
        limiter,
        calls: Arc::new(AtomicU64::new(0)),
        stats: Arc::new(Mutex::new(BTreeMap::new())),
    };
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let api_addr = listener.local_addr().context("no local address")?;
        greet(api_addr, admin.addr(), &sources, &audit_path, &first.routes);
        axum::serve(listener, api::router(app))
            .with_graceful_shutdown(stop_signal())
            .await
            .context("the API server failed")
    })?;
    eprintln!("hotconf-demo: stopping");
    admin
        .stop()
        .context("the admin server did not stop cleanly")?;
    reloader.shutdown();
    println!("hotconf-demo: stopped");
    Ok(())
}

fn greet(
    api: SocketAddr,
    admin: SocketAddr,
    sources: &Sources,
    audit: &Path,
    routes: &BTreeMap<String, crate::config::Route>,
) {
    // Both URL lines are read by `hotconf-demo load`: keep their prefixes.
    println!("API:   http://{api}/");
    println!("Admin: http://{admin}/");
    for route in routes.keys() {
        println!("  curl -i http://{api}/api/{route}");
    }
    println!("  curl http://{api}/api/flags");
    println!("Open the admin page, then edit and save any of these; each save is applied live,");
    println!("or rejected with its file and line while the old config keeps serving:");
    for path in &sources.edit {
        println!("  {path}");
    }
    println!("Audit log: {}", audit.display());
    println!("Metrics:   http://{admin}/metrics");
    println!("Ctrl-C stops.");
}

async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Prints one line per reload attempt on standard error, with its changes or errors.
#[derive(Debug)]
struct Printer;

impl Observer for Printer {
    fn observe(&self, event: &Event) {
        if event.outcome == Outcome::Detected {
            return;
        }
        // The files that changed; on the first load, every file read.
        let files: Vec<&str> = if event.changed.is_empty() {
            event.files.iter().map(String::as_str).collect()
        } else {
            event.changed.iter().map(|c| c.file.as_str()).collect()
        };
        eprintln!(
            "hotconf-demo: v{} {} ({}) {}",
            event.version,
            event.outcome,
            event.trigger.as_str(),
            files.join(", ")
        );
        for change in &event.changes {
            eprintln!("    {change}");
        }
        for problem in &event.errors {
            eprintln!("    {problem}");
        }
        for path in &event.pending {
            eprintln!("    pending a restart: {path}");
        }
    }

    fn watcher(&self, state: &WatcherState) {
        match (&state.error, state.polling) {
            (Some(error), _) => eprintln!("hotconf-demo: the file watcher failed: {error}"),
            (None, true) => eprintln!("hotconf-demo: the file watcher fell back to polling"),
            (None, false) => {}
        }
    }
}
