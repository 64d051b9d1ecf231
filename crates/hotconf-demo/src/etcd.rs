//! `--etcd URL --prefix P` (cargo feature `etcd`): the same service with its config under
//! an etcd prefix instead of files. An empty prefix is first filled with the config
//! directory's files through [`hotconf_etcd::publish_blocking`], the validated push that
//! `hotconf push` runs; then the service reads and watches the prefix and reports what it
//! applied for `hotconf fleet status`. Start several with `--listen 127.0.0.1:0 --admin
//! 127.0.0.1:0 --instance NAME` to see a fleet.

use std::path::Path;

use anyhow::Context;
use clap::Args;
use hotconf::{Pipeline, ReloaderBuilder};
use hotconf_etcd::{Connection, EtcdSource, Prefix, Reporter};

use crate::config::Demo;
use crate::serve::FILES;

/// Where the config lives when it comes from etcd.
#[derive(Debug, Clone, Args)]
pub(crate) struct EtcdArgs {
    /// Read and watch the config in etcd at URL (URL,URL… for several) under --prefix,
    /// instead of files. An empty prefix is first filled with the bundled config, checked
    /// as `hotconf push` checks it.
    #[arg(long, value_name = "URL", requires = "prefix")]
    etcd: Option<String>,
    /// The key prefix that holds server.toml, limits.yaml, routes.json and features.toml
    /// (`/hotconf-demo/`).
    #[arg(long, value_name = "P", requires = "etcd")]
    prefix: Option<String>,
    /// This instance's name in `hotconf fleet status` [default: HOST-PID].
    #[arg(long, value_name = "NAME", requires = "etcd")]
    instance: Option<String>,
}

impl EtcdArgs {
    /// With `--etcd`, the builder reads the prefix (seeded from `seed` when empty) and
    /// reports to the fleet; the keys to edit come back with it. Without, the builder as
    /// it was and `None`.
    pub(crate) fn configure(
        &self,
        builder: ReloaderBuilder<Demo>,
        seed: &Path,
    ) -> anyhow::Result<(ReloaderBuilder<Demo>, Option<Vec<String>>)> {
        let (Some(url), Some(prefix)) = (&self.etcd, &self.prefix) else {
            return Ok((builder, None));
        };
        let endpoints: Vec<String> = url
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect();
        let connection = Connection::new(endpoints);
        let prefix = Prefix::new(prefix.clone())?;
        let fleet = hotconf_etcd::fleet_status_blocking(&connection, &prefix)
            .with_context(|| format!("cannot read {prefix} from {url}"))?;
        if fleet.documents == 0 {
            let published = hotconf_etcd::publish_blocking::<Demo>(
                &Pipeline::new(),
                seed,
                &connection,
                &prefix,
                Some(fleet.revision),
            )
            .with_context(|| format!("cannot fill the empty prefix {prefix}"))?;
            eprintln!(
                "hotconf-demo: {prefix} was empty: published the bundled config ({} keys) at revision {}",
                published.put.len(),
                published.revision
            );
        }
        let source = EtcdSource::new(connection.clone(), prefix.clone());
        let mut reporter = Reporter::builder(connection, source.tracker());
        if let Some(name) = &self.instance {
            reporter = reporter.instance(name.clone());
        }
        let reporter = reporter.build()?;
        eprintln!(
            "hotconf-demo: reporting as instance {} (hotconf fleet status --etcd {url} --prefix {prefix})",
            reporter.instance()
        );
        let edit = FILES
            .iter()
            .map(|name| {
                format!("ETCDCTL_API=3 etcdctl --endpoints={url} put {prefix}{name} < {name}")
            })
            .collect();
        Ok((builder.source(source).observer(reporter), Some(edit)))
    }
}
