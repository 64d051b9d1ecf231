//! `hotconf`: check and diff configuration files the way a running service would load them.

mod render;
mod watch;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use hotconf::source::{Dir, File, Source};
use hotconf::{Layers, Limits, Pattern, Policy, Problem, ProblemKind, Problems, Rule, Secrets};

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

/// A file or directory given on the command line, as a source.
fn source_for(path: &Path) -> Box<dyn Source> {
    if path.is_dir() {
        Box::new(Dir::new(path))
    } else {
        Box::new(File::new(path))
    }
}

fn load(paths: &[PathBuf]) -> Result<Layers, Problems> {
    // A directory with nothing to check is almost always a wrong path.
    let empty: Vec<Problem> = paths
        .iter()
        .filter(|p| p.is_dir() && Dir::new(p).list().is_ok_and(|files| files.is_empty()))
        .map(|p| {
            Problem::error(
                ProblemKind::Io,
                "no config files (.toml, .yaml, .yml, .json) in this directory",
            )
            .in_file(p.display().to_string())
        })
        .collect();
    if !empty.is_empty() {
        return Err(Problems(empty));
    }
    let sources: Vec<Box<dyn Source>> = paths.iter().map(|p| source_for(p)).collect();
    Layers::load(&sources, &Limits::default())
}

/// The files a set of paths names, for reports on loads that failed.
fn files_of(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .flat_map(|p| source_for(p).files())
        .map(|p| p.display().to_string())
        .collect()
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let schema = args.schema.as_deref().map(load_schema).transpose()?;
    let (files, problems) = match load(&args.paths) {
        Ok(layers) => {
            let problems = match &schema {
                Some(schema) => check_schema(schema, &layers),
                None => Problems::default(),
            };
            (layers.files(), problems)
        }
        Err(problems) => (files_of(&args.paths), problems),
    };
    let mut problems = problems;
    for problem in &mut problems.0 {
        Secrets::new().redact_problem(problem);
    }
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
fn check_schema(schema: &Schema, layers: &Layers) -> Problems {
    schema.check(layers)
}

#[cfg(not(feature = "json-schema"))]
fn check_schema(schema: &Schema, _layers: &Layers) -> Problems {
    match *schema {}
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
    let policy = policy(args)?;
    let mut sides = Vec::new();
    let mut trouble = false;
    for path in [&args.old, &args.new] {
        match load(std::slice::from_ref(path)) {
            Ok(layers) => sides.push(layers.to_json()),
            Err(problems) => {
                trouble = true;
                let mut err = std::io::stderr().lock();
                for problem in &problems.0 {
                    write!(err, "{}", render::problem(problem))?;
                }
            }
        }
    }
    if trouble {
        eprintln!("hotconf: cannot diff: a side is unreadable or invalid");
        return Ok(ExitCode::from(2));
    }
    let mut changes = hotconf::diff(&sides[0], &sides[1]);
    policy.secrets().redact(&mut changes);
    let mut out = std::io::stdout().lock();
    if args.json {
        let changes: Vec<serde_json::Value> = changes
            .iter()
            .map(|change| {
                let mut json = serde_json::json!(change);
                let rule = policy.rule(&change.path);
                if let (Some(object), true) = (json.as_object_mut(), rule != Rule::Hot) {
                    object.insert("rule".into(), rule.as_str().into());
                }
                json
            })
            .collect();
        writeln!(out, "{}", serde_json::json!({ "changes": changes }))?;
    } else {
        for change in &changes {
            match policy.rule(&change.path) {
                Rule::Hot => writeln!(out, "{change}")?,
                Rule::RestartRequired => writeln!(out, "{change}  (restart required)")?,
                Rule::Denied => writeln!(out, "{change}  (denied)")?,
                _ => writeln!(out, "{change}")?,
            }
        }
    }
    Ok(if changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
