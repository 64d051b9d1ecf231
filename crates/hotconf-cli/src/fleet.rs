//! `hotconf fleet status --etcd URL --prefix P`: what every live instance runs, compared
//! with what is under the prefix now, like `istioctl proxy-status`.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use hotconf_etcd::{FleetStatus, Prefix, State, fleet_status_blocking};

use crate::etcd::{ConnectionArgs, trouble};

/// How often `--wait` looks again.
const POLL: Duration = Duration::from_millis(250);

#[derive(Debug, Args)]
pub(crate) struct FleetArgs {
    #[command(subcommand)]
    command: FleetCommand,
}

#[derive(Debug, Subcommand)]
enum FleetCommand {
    /// List every live instance of a prefix as SYNCED (it applied exactly what is under the
    /// prefix now), PENDING (not yet), NACKED (it rejected that, with the located errors)
    /// or RESTART (applied, restart-required changes pending). Revisions are shown, not
    /// compared: they repeat after an etcd restore; the content hash decides.
    ///
    /// Exit status: 0 when at least one instance is live and all are SYNCED, 1 otherwise
    /// (also at the --wait deadline), 2 trouble (etcd unreachable, bad options). With
    /// --json, trouble prints {"error":{"kind":"usage|io|not_found","message":…}}.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// The etcd endpoints, comma-separated (`http://127.0.0.1:2379`).
    #[arg(long, value_name = "URL")]
    etcd: String,
    /// The key prefix the instances read (`/app/`); their status is under `P` + `.status`.
    #[arg(long, value_name = "P")]
    prefix: String,
    /// Wait up to SECS for every live instance to be SYNCED, looking again every 250 ms;
    /// print the status then (exit 0), or at the deadline (exit 1).
    #[arg(long, value_name = "SECS")]
    wait: Option<u64>,
    #[command(flatten)]
    connection: ConnectionArgs,
}

pub(crate) fn run(args: &FleetArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        FleetCommand::Status(args) => status(args),
    }
}

fn status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let prefix = Prefix::new(args.prefix.clone()).map_err(trouble)?;
    let connection = args.connection.connection(&args.etcd)?;
    let deadline = args
        .wait
        .map(|secs| Instant::now() + Duration::from_secs(secs));
    let status = loop {
        let result = fleet_status_blocking(&connection, &prefix);
        let waiting = deadline.is_some_and(|d| Instant::now() < d);
        match result {
            Ok(status) if status.synced() || !waiting => break status,
            Err(error) if !waiting => return Err(trouble(error).into()),
            // Not yet, or etcd unreachable for now: it may come back before the deadline.
            _ => std::thread::sleep(POLL),
        }
    };
    let mut out = io::stdout().lock();
    if args.json {
        let mut json = serde_json::to_value(&status)?;
        json["synced"] = status.synced().into();
        writeln!(out, "{json}")?;
    } else {
        print_table(&mut out, &status)?;
    }
    Ok(if status.synced() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_table(out: &mut impl Write, status: &FleetStatus) -> io::Result<()> {
    if status.instances.is_empty() {
        writeln!(
            out,
            "no live instance reports under {} (prefix {} at revision {}, content hash {})",
            Prefix::new(status.prefix.clone())
                .map_or_else(|_| String::new(), |p| p.status().to_string()),
            status.prefix,
            status.revision,
            status.content_hash
        )?;
        return Ok(());
    }
    let header = [
        "INSTANCE",
        "STATE",
        "VERSION",
        "APPLIED REV",
        "ATTEMPTED REV",
        "HASH",
        "AGE",
    ];
    let rows: Vec<[String; 7]> = status
        .instances
        .iter()
        .map(|i| {
            let record = &i.record;
            let rev = |r: Option<i64>| r.map_or_else(|| "-".to_owned(), |r| r.to_string());
            [
                record.instance.clone(),
                i.state.to_string(),
                record.version.to_string(),
                rev(record.revision_applied),
                rev(record.revision_attempted),
                record
                    .content_hash
                    .clone()
                    .unwrap_or_else(|| "-".to_owned()),
                age(Duration::from_millis(i.age_ms)),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in &rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    for instance in status.instances.iter().filter(|i| i.state == State::Nacked) {
        writeln!(out)?;
        writeln!(out, "{} rejected the config:", instance.record.instance)?;
        for error in &instance.record.errors {
            writeln!(out, "  {error}")?;
        }
    }
    for key in &status.unreadable {
        writeln!(out, "warning: {key} is not a status record")?;
    }
    let synced = status
        .instances
        .iter()
        .filter(|i| i.state == State::Synced)
        .count();
    writeln!(
        out,
        "\n{} at revision {} (content hash {}): {synced} of {} synced",
        status.prefix,
        status.revision,
        status.content_hash,
        crate::plural(status.instances.len(), "instance"),
    )
}

/// `850ms`, `42s`, `3m`, `5h`, `2d`.
fn age(age: Duration) -> String {
    let secs = age.as_secs();
    match secs {
        0 => format!("{}ms", age.as_millis()),
        1..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_short() {
        let cases = [
            (Duration::from_millis(850), "850ms"),
            (Duration::from_secs(42), "42s"),
            (Duration::from_secs(60), "1m"),
            (Duration::from_secs(3 * 3600 + 5), "3h"),
            (Duration::from_secs(2 * 86_400), "2d"),
        ];
        for (duration, text) in cases {
            assert_eq!(age(duration), text);
        }
    }
}
