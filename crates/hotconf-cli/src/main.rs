//! `hotconf`: check and diff configuration files the way a running service would load them.

mod render;
mod watch;

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use hotconf::source::{Dir, File, Source};
use hotconf::{Pattern, Pipeline, Policy, Problem, ProblemKind, Problems, Rule};

/// Check and diff configuration files the way a running service would load them.
#[derive(Debug, Parser)]
#[command(name = "hotconf", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse, merge and validate config files; report every problem with file:line:column.
    ///
    /// Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage or I/O trouble.
    Check(CheckArgs),
    /// Show what changes between two configs, by dotted path, secrets redacted, and how a
    /// running service would treat each change (--restart-required, --deny).
    ///
    /// Exit status: 0 no differences, 1 differences, 2 trouble (either side unreadable or
    /// invalid).
    Diff(DiffArgs),
    /// Load a config, then watch its files and print one event per reload attempt: loaded
    /// (once every watch is armed), applied, rejected, unchanged, restart_required,
    /// deferred. A logical save gives exactly one event; bytes that did not change give
    /// none. SIGHUP forces a reload; SIGINT or SIGTERM ends the watch.
    ///
    /// With --on-apply, a command that fails or cannot start is reported as an event of its
    /// own, `on-apply failed` (JSON: {"event":"on_apply_failed","version":N,"at":…,
    /// "command":…,"status":N,"message":…}), and the watch goes on. Warnings (such as a
    /// fallback to polling when the inotify watch limit is reached) go to standard error.
    ///
    /// Exit status: 0 after SIGINT or SIGTERM; at start, like check: 1 the config is
    /// invalid, 2 usage or I/O trouble.
    Watch(watch::WatchArgs),
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Also validate the merged config against this JSON Schema.
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// Config files or directories (their .toml/.yaml/.yml/.json files in name order),
    /// layered in the order given: later ones override earlier ones.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct DiffArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Also redact values at paths matching PATTERN (`db.*.dsn`, `**.key`); keys named like
    /// password, secret, token, api_key, private_key or credential always are.
    #[arg(long = "secret", value_name = "PATTERN")]
    secrets: Vec<String>,
    /// Mark changes at paths matching PATTERN as needing a restart (`server.listen`).
    #[arg(long = "restart-required", value_name = "PATTERN")]
    restart_required: Vec<String>,
    /// Mark changes at paths matching PATTERN as denied while running (`tenants.*.id`).
    #[arg(long = "deny", value_name = "PATTERN")]
    deny: Vec<String>,
    /// The old config: a file or a directory.
    old: PathBuf,
    /// The new config: a file or a directory.
    new: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Check(args) => check(&args),
        Command::Diff(args) => diff(&args),
        Command::Watch(args) => watch::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("hotconf: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to standard error, never into the output a script reads. The watcher's warnings
/// (a fallback to polling, lost events) show by default; the engine's own reports are the
/// events. `RUST_LOG=hotconf=debug` shows every stage of every load, in every command.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("hotconf::watch=warn"));
    let ansi = std::env::var_os("NO_COLOR").is_none() && io::stderr().is_terminal();
    // Only fails when a subscriber is already set, which then keeps logging.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// A file or directory given on the command line, as a source.
fn source_for(path: &Path) -> Box<dyn Source> {
    if path.is_dir() {
        Box::new(Dir::new(path))
    } else {
        Box::new(File::new(path))
    }
}

/// A directory with nothing to check is almost always a wrong path.
fn empty_dirs(paths: &[PathBuf]) -> Vec<Problem> {
    paths
        .iter()
        .filter(|p| p.is_dir() && Dir::new(p).list().is_ok_and(|files| files.is_empty()))
        .map(|p| {
            Problem::error(
                ProblemKind::Io,
                "no config files (.toml, .yaml, .yml, .json) in this directory",
            )
            .in_file(p.display().to_string())
        })
        .collect()
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let mut pipeline = Pipeline::new();
    if let Some(schema) = &args.schema {
        pipeline = with_schema(pipeline, load_schema(schema)?);
    }
    let sources: Vec<Box<dyn Source>> = args.paths.iter().map(|p| source_for(p)).collect();
    let empty = empty_dirs(&args.paths);
    let (files, problems) = if empty.is_empty() {
        let plan = pipeline.check::<serde_json::Value>(&sources);
        let mut problems = plan.errors;
        problems.extend(plan.warnings);
        (plan.files, Problems(problems))
    } else {
        let files = sources.iter().flat_map(|s| s.files());
        (
            files.map(|p| p.display().to_string()).collect(),
            Problems(empty),
        )
    };
    let valid = !problems.has_errors();
    let mut out = std::io::stdout().lock();
    if args.json {
        let errors: Vec<&Problem> = problems.errors().collect();
        let warnings: Vec<&Problem> = problems.warnings().collect();
        let report = serde_json::json!({
            "valid": valid,
            "files": files,
            "errors": errors,
            "warnings": warnings,
        });
        writeln!(out, "{report}")?;
    } else {
        let mut err = std::io::stderr().lock();
        for problem in &problems.0 {
            write!(err, "{}", render::problem(problem))?;
        }
        if valid {
            writeln!(
                out,
                "ok: {} valid ({})",
                plural(files.len(), "file"),
                files.join(", ")
            )?;
        } else {
            let count = problems.errors().count();
            writeln!(err, "invalid: {}", plural(count, "error"))?;
        }
    }
    Ok(exit_for(&problems))
}

fn exit_for(problems: &Problems) -> ExitCode {
    if problems.has_io_errors() {
        ExitCode::from(2)
    } else if problems.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(feature = "json-schema")]
type Schema = hotconf::schema::Schema;
#[cfg(not(feature = "json-schema"))]
type Schema = std::convert::Infallible;

#[cfg(feature = "json-schema")]
fn load_schema(path: &Path) -> anyhow::Result<Schema> {
    Ok(Schema::from_file(path)?)
}

#[cfg(not(feature = "json-schema"))]
fn load_schema(_path: &Path) -> anyhow::Result<Schema> {
    anyhow::bail!("--schema needs hotconf built with the `json-schema` feature")
}

#[cfg(feature = "json-schema")]
fn with_schema(pipeline: Pipeline, schema: Schema) -> Pipeline {
    pipeline.schema(schema)
}

#[cfg(not(feature = "json-schema"))]
fn with_schema(_pipeline: Pipeline, schema: Schema) -> Pipeline {
    match schema {}
}

/// The policy the diff options describe.
fn policy(args: &DiffArgs) -> anyhow::Result<Policy> {
    type AddRule = fn(Policy, Pattern) -> Policy;
    let mut policy = Policy::new();
    let rules: [(&str, &[String], AddRule); 3] = [
        ("--secret", &args.secrets, Policy::secret),
        (
            "--restart-required",
            &args.restart_required,
            Policy::restart_required,
        ),
        ("--deny", &args.deny, Policy::deny),
    ];
    for (flag, patterns, add) in rules {
        for pattern in patterns {
            let pattern = pattern
                .parse()
                .with_context(|| format!("{flag} {pattern}"))?;
            policy = add(policy, pattern);
        }
    }
    Ok(policy)
}

fn diff(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let pipeline = Pipeline::new().policy(policy(args)?);
    let sides = [&args.old, &args.new].map(|path| vec![source_for(path)]);
    let plan = match pipeline.diff::<serde_json::Value>(&sides[0], &sides[1]) {
        Ok(plan) => plan,
        Err(problems) => {
            let mut err = std::io::stderr().lock();
            for problem in &problems.0 {
                write!(err, "{}", render::problem(problem))?;
            }
            eprintln!("hotconf: cannot diff: a side is unreadable or invalid");
            return Ok(ExitCode::from(2));
        }
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let changes: Vec<serde_json::Value> = plan
            .changes
            .iter()
            .map(|planned| {
                let mut json = serde_json::json!(planned.change);
                if let (Some(object), true) = (json.as_object_mut(), planned.rule != Rule::Hot) {
                    object.insert("rule".into(), planned.rule.as_str().into());
                }
                json
            })
            .collect();
        writeln!(out, "{}", serde_json::json!({ "changes": changes }))?;
    } else {
        for planned in &plan.changes {
            let change = &planned.change;
            match planned.rule {
                Rule::RestartRequired => writeln!(out, "{change}  (restart required)")?,
                Rule::Denied => writeln!(out, "{change}  (denied)")?,
                _ => writeln!(out, "{change}")?,
            }
        }
    }
    Ok(if plan.changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
