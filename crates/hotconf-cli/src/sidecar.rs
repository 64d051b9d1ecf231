//! What `hotconf watch` adds for a service that uses hotconf only through `--on-apply`: the
//! admin API, web page and metrics (`--admin`), the audit log (`--audit`) and alerts
//! (`--alert-webhook`, `--alertmanager`), all from the library and `hotconf-admin`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use hotconf::alert::Alerts;
use hotconf::audit::AuditLog;
use hotconf::{Reloader, ReloaderBuilder};
use hotconf_admin::{Admin, AdminServer};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::Value;

#[derive(Debug, Args)]
pub(crate) struct SidecarArgs {
    /// Serve the admin API, the live web page and Prometheus metrics on ADDR
    /// (`127.0.0.1:9090`; port 0 picks a free one, printed on standard error). A
    /// non-loopback address needs --admin-token-file.
    #[arg(long, value_name = "ADDR")]
    admin: Option<SocketAddr>,
    /// The admin API's bearer token, read from FILE (trimmed). On loopback it guards state
    /// changes; on any other address every route.
    #[arg(long, value_name = "FILE", requires = "admin")]
    admin_token_file: Option<PathBuf>,
    /// Append one JSON Lines audit record per reload attempt to PATH, secret values as
    /// keyed HMAC-SHA256 (see `hotconf audit-hash`).
    #[arg(long, value_name = "PATH")]
    audit: Option<PathBuf>,
    /// The audit log's HMAC key file; by default PATH.key beside the log, created with mode
    /// 0600 when missing.
    #[arg(long, value_name = "FILE", requires = "audit")]
    audit_key_file: Option<PathBuf>,
    /// Refuse a reload the audit log cannot record (an intent record is written and synced
    /// before the swap).
    #[arg(long, requires = "audit")]
    audit_fail_closed: bool,
    /// POST a Slack-compatible `{"text": …}` alert to URL on rejected reloads, failed
    /// components and a degraded watcher, and when they resolve.
    #[arg(long, value_name = "URL")]
    alert_webhook: Option<String>,
    /// Send alerts to an Alertmanager at URL (`POST URL/api/v2/alerts`), re-posted while
    /// active and resolved when the next reload succeeds.
    #[arg(long, value_name = "URL")]
    alertmanager: Option<String>,
}

impl SidecarArgs {
    /// Adds the audit log, alerts and metrics to the reloader being built; returns the
    /// metrics handle the admin server renders.
    pub(crate) fn configure(
        &self,
        mut builder: ReloaderBuilder<Value>,
    ) -> anyhow::Result<(ReloaderBuilder<Value>, Option<PrometheusHandle>)> {
        if let Some(path) = &self.audit {
            let mut log = AuditLog::builder(path).fail_closed(self.audit_fail_closed);
            if let Some(key) = &self.audit_key_file {
                log = log.key_file(key);
            }
            let log = log.build().context("cannot open the audit log")?;
            builder = builder.audit(log);
        }
        if self.alert_webhook.is_some() || self.alertmanager.is_some() {
            let mut alerts = Alerts::builder().config_name(builder.config_name());
            if let Some(url) = &self.alert_webhook {
                alerts = alerts.slack(url);
            }
            if let Some(url) = &self.alertmanager {
                alerts = alerts.alertmanager(url);
            }
            builder = builder.alerts(alerts.build().context("cannot send alerts")?);
        }
        let metrics = match self.admin {
            Some(_) => {
                // This process is the service: it owns the global recorder.
                let handle = PrometheusBuilder::new()
                    .install_recorder()
                    .context("cannot record metrics")?;
                builder = builder.metrics();
                Some(handle)
            }
            None => None,
        };
        Ok((builder, metrics))
    }

    /// Starts the admin server, when asked for, and says where it listens.
    pub(crate) fn serve(
        &self,
        reloader: &Reloader<Value>,
        metrics: Option<PrometheusHandle>,
    ) -> anyhow::Result<Option<AdminServer>> {
        let Some(addr) = self.admin else {
            return Ok(None);
        };
        let mut admin = Admin::new(reloader.control());
        if let Some(path) = &self.admin_token_file {
            let token = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the admin token file {}", path.display()))?;
            let token = token.trim();
            if token.is_empty() {
                bail!("the admin token file {} is empty", path.display());
            }
            admin = admin.token(token);
        }
        if let Some(handle) = metrics {
            admin = admin.metrics(handle);
        }
        let server = admin
            .spawn(addr)
            .with_context(|| format!("cannot serve the admin API on {addr}"))?;
        eprintln!("hotconf: admin API and page on http://{}/", server.addr());
        Ok(Some(server))
    }
}
