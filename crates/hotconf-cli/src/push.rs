//! `hotconf push DIR --etcd URL --prefix P`: check a directory as instances will load it,
//! then publish it in one guarded etcd transaction.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hotconf::{Pattern, Pipeline, Problems};
use hotconf_etcd::{Prefix, PublishError, Published, publish_blocking};
use serde_json::json;

use crate::etcd::{ConnectionArgs, trouble};
use crate::trouble::{Kind, Trouble};

/// Exit status of a push that someone else's change got in the way of.
const CONFLICT: u8 = 3;

#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The etcd endpoints, comma-separated (`http://127.0.0.1:2379`).
    #[arg(long, value_name = "URL")]
    etcd: String,
    /// The key prefix instances read (`/app/`): DIR's files become `P + file name`.
    #[arg(long, value_name = "P")]
    prefix: String,
    /// Also validate the config against this JSON Schema.
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// Also redact values at paths matching PATTERN in errors (`db.*.dsn`).
    #[arg(long = "secret", value_name = "PATTERN")]
    secrets: Vec<Pattern>,
    /// Paths that need a restart, as the instances are configured (`server.listen`): the
    /// push names those it changes, compared with what is under P now.
    #[arg(long = "restart-required", value_name = "PATTERN")]
    restart_required: Vec<Pattern>,
    /// Paths denied while running, as the instances are configured (`tenants.*.id`): a push
    /// that changes one, compared with what is under P now, is invalid (every instance would
    /// reject it).
    #[arg(long = "deny", value_name = "PATTERN")]
    deny: Vec<Pattern>,
    /// Base the push on revision R (as read before editing): if anything under P changed
    /// since, nothing is written and the exit status is 3.
    #[arg(long, value_name = "R")]
    expect_revision: Option<i64>,
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The directory: its .toml/.yaml/.yml/.json files in name order, as `check DIR` reads
    /// them.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

pub(crate) fn run(args: &PushArgs) -> anyhow::Result<ExitCode> {
    let policy = crate::policy(&args.secrets, &args.restart_required, &args.deny);
    let secrets = policy.secrets().clone();
    let mut pipeline = Pipeline::new().policy(policy);
    if let Some(schema) = &args.schema {
        pipeline = crate::with_schema(pipeline, crate::load_schema(schema)?);
    }
    let prefix = Prefix::new(args.prefix.clone()).map_err(trouble)?;
    let connection = args.connection.connection(&args.etcd)?;
    if !args.dir.is_dir() {
        let kind = if args.dir.exists() {
            Kind::Usage
        } else {
            Kind::NotFound
        };
        let message = format!("{}: not a directory", args.dir.display());
        return Err(Trouble::new(kind, message).into());
    }
    let result = publish_blocking::<serde_json::Value>(
        &pipeline,
        &args.dir,
        &connection,
        &prefix,
        args.expect_revision,
    );
    let mut out = io::stdout().lock();
    match result {
        Ok(done) => {
            if args.json {
                writeln!(out, "{}", published_json(&done, &prefix))?;
            } else {
                crate::print_problems(&Problems(done.warnings.clone()), &secrets)?;
                print_published(&mut out, &done, &prefix)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(PublishError::Invalid { files, problems }) => {
            if let Some(trouble) = Trouble::of_problems(&problems) {
                return Err(trouble.into());
            }
            if args.json {
                let mut report = crate::report(&files, &problems);
                report["outcome"] = json!("invalid");
                writeln!(out, "{report}")?;
            } else {
                crate::print_problems(&problems, &secrets)?;
                let count = problems.errors().count();
                writeln!(
                    io::stderr().lock(),
                    "invalid: {}; nothing was pushed",
                    crate::plural(count, "error")
                )?;
            }
            Ok(ExitCode::from(1))
        }
        Err(ref error @ PublishError::Conflict { read_revision, .. }) => {
            if args.json {
                let line = json!({
                    "outcome": "conflict",
                    "prefix": prefix.as_str(),
                    "read_revision": read_revision,
                    "message": error.to_string(),
                });
                writeln!(out, "{line}")?;
            } else {
                writeln!(io::stderr().lock(), "hotconf: {error}")?;
            }
            Ok(ExitCode::from(CONFLICT))
        }
        Err(PublishError::TooLarge(message)) => {
            Err(Trouble::new(Kind::Usage, format!("nothing was pushed: {message}")).into())
        }
        Err(PublishError::Etcd(error)) => Err(trouble(error).into()),
        Err(error) => Err(Trouble::new(Kind::Io, error.to_string()).into()),
    }
}

fn published_json(done: &Published, prefix: &Prefix) -> serde_json::Value {
    json!({
        "outcome": if done.written { "published" } else { "unchanged" },
        "prefix": prefix.as_str(),
        "written": done.written,
        "read_revision": done.read_revision,
        "revision": done.revision,
        "files": done.files,
        "put": done.put,
        "deleted": done.deleted,
        "unchanged": done.unchanged,
        "content_hash": done.content_hash,
        "pending": done.pending,
        "warnings": done.warnings,
    })
}

fn print_published(out: &mut impl Write, done: &Published, prefix: &Prefix) -> io::Result<()> {
    if !done.written {
        return writeln!(
            out,
            "unchanged: {prefix} already holds these {} (revision {}, content hash {})",
            crate::plural(done.files.len(), "document"),
            done.revision,
            done.content_hash
        );
    }
    for key in &done.put {
        writeln!(out, "put     {key}")?;
    }
    for key in &done.deleted {
        writeln!(out, "delete  {key}")?;
    }
    for path in &done.pending {
        writeln!(
            out,
            "restart required: {path} (instances apply it after a restart)"
        )?;
    }
    writeln!(
        out,
        "published {prefix} at revision {}: {} put, {} deleted, {} unchanged (content hash {})",
        done.revision,
        done.put.len(),
        done.deleted.len(),
        done.unchanged.len(),
        done.content_hash
    )
}
