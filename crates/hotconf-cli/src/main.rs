//! `hotconf`: check and diff configuration files the way a running service would load them.

mod audit_hash;
#[cfg(feature = "etcd")]
mod etcd;
#[cfg(feature = "etcd")]
mod fleet;
#[cfg(feature = "etcd")]
mod push;
mod render;
mod sidecar;
mod trouble;
mod watch;

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};
use hotconf::source::{Dir, File, Source};
use hotconf::{Pattern, Pipeline, Policy, Problem, ProblemKind, Problems, Rule, Secrets};
use trouble::{Kind, Trouble};

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
    /// Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage or I/O trouble. With
    /// --json, trouble prints {"error":{"kind":"usage|io|not_found","message":…}}.
    Check(CheckArgs),
    /// Show what changes between two configs, by dotted path, secrets redacted, and how a
    /// running service would treat each change (--restart-required, --deny).
    ///
    /// Exit status: 0 no differences, 1 differences, 2 trouble (either side unreadable or
    /// invalid). With --json, an invalid side prints check's {"valid":false,…} report and
    /// other trouble {"error":{"kind":"usage|io|not_found","message":…}}.
    Diff(DiffArgs),
    /// Load a config, then watch its files and print one event per reload attempt: loaded
    /// (once every watch is armed), applied, rejected, unchanged, restart_required,
    /// deferred. A logical save gives exactly one event; bytes that did not change give
    /// none. SIGHUP forces a full reload; SIGINT or SIGTERM ends the watch.
    ///
    /// With --on-apply, a command that fails or cannot start is reported as an event of its
    /// own, `on-apply failed` (JSON: {"event":"on_apply_failed","version":N,"at":…,
    /// "command":…,"status":N,"message":…}), and the watch goes on. Warnings (such as a
    /// fallback to polling when the inotify watch limit is reached) go to standard error.
    ///
    /// Exit status: 0 after SIGINT or SIGTERM; at start, like check: 1 the config is
    /// invalid, 2 usage or I/O trouble (with --json, the same JSON as check).
    Watch(Box<watch::WatchArgs>),
    /// Print the HMAC the audit log writes for a secret value: reads the value from
    /// standard input (never from the command line), less one trailing newline, and prints
    /// `hmac-sha256:<hex>`. Compare it with a record's `changes` to tell which value a
    /// secret was set to.
    ///
    /// Exit status: 0 printed, 2 the key file is missing or invalid, or the input is not
    /// UTF-8.
    AuditHash(audit_hash::AuditHashArgs),
    /// Check a directory exactly as instances will load it from an etcd prefix, then publish
    /// it in one transaction: puts for new and changed keys (`P` + file name), deletes for
    /// keys under P the directory no longer has. The transaction is guarded: if anything
    /// under P changed since it was read (or since --expect-revision), nothing is written.
    /// Pushes over etcd's limits (128 operations, 1.5 MiB per request) are refused before
    /// sending. Values are never printed.
    ///
    /// A command line cannot run a service's own typed validation (its `Validate` impl):
    /// this checks syntax, types as JSON, --schema and the policy. A deploy tool in Rust gets
    /// the service's own checks with the same push as a library function:
    /// `hotconf_etcd::publish::<ServiceConfig>(…)`.
    ///
    /// Exit status: 0 published (or already identical), 1 invalid (nothing pushed), 3
    /// conflict (someone else changed P; nothing written), 2 other trouble. With --json,
    /// trouble prints {"error":{"kind":"usage|io|not_found","message":…}}.
    #[cfg(feature = "etcd")]
    Push(Box<push::PushArgs>),
    /// Fleet status of the instances that read an etcd prefix.
    #[cfg(feature = "etcd")]
    Fleet(fleet::FleetArgs),
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Also validate the merged config against this JSON Schema.
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// Also redact values at paths matching PATTERN (`db.*.dsn`, `**.key`) in errors; keys
    /// named like password, secret, token, api_key, private_key or credential always are.
    #[arg(long = "secret", value_name = "PATTERN")]
    secrets: Vec<Pattern>,
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
    secrets: Vec<Pattern>,
    /// Mark changes at paths matching PATTERN as needing a restart (`server.listen`).
    #[arg(long = "restart-required", value_name = "PATTERN")]
    restart_required: Vec<Pattern>,
    /// Mark changes at paths matching PATTERN as denied while running (`tenants.*.id`).
    #[arg(long = "deny", value_name = "PATTERN")]
    deny: Vec<Pattern>,
    /// The old config: a file or a directory.
    old: PathBuf,
    /// The new config: a file or a directory.
    new: PathBuf,
}

fn main() -> ExitCode {
    // Known before parsing, so that a usage error prints as JSON when JSON was asked for.
    let json = trouble::json_requested(std::env::args_os());
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => match error.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => error.exit(),
            _ if json => return Trouble::of_clap(&error).report(true),
            _ => error.exit(),
        },
    };
    init_logging();
    let result = match cli.command {
        Command::Check(args) => check(&args),
        Command::Diff(args) => diff(&args),
        Command::Watch(args) => watch::run(&args),
        Command::AuditHash(args) => audit_hash::run(&args),
        #[cfg(feature = "etcd")]
        Command::Push(args) => push::run(&args),
        #[cfg(feature = "etcd")]
        Command::Fleet(args) => fleet::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => Trouble::of_error(&error).report(json),
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
    let policy = policy(&args.secrets, &[], &[]);
    let secrets = policy.secrets().clone();
    let mut pipeline = Pipeline::new().policy(policy);
    if let Some(schema) = &args.schema {
        pipeline = with_schema(pipeline, load_schema(schema)?);
    }
    let sources: Vec<Box<dyn Source>> = args.paths.iter().map(|p| source_for(p)).collect();
    let empty = empty_dirs(&args.paths);
    let (files, problems) = if empty.is_empty() {
        let plan = pipeline.check::<Untyped>(&sources);
        let mut problems = plan.errors;
        problems.extend(plan.warnings);
        (plan.files, Problems(problems))
    } else {
        (files_of(&args.paths), Problems(empty))
    };
    if let Some(trouble) = Trouble::of_problems(&problems) {
        return Err(trouble.into());
    }
    let valid = !problems.has_errors();
    if args.json {
        writeln!(io::stdout().lock(), "{}", report(&files, &problems))?;
    } else {
        print_problems(&problems, &secrets)?;
        if valid {
            writeln!(
                io::stdout().lock(),
                "ok: {} valid ({})",
                plural(files.len(), "file"),
                files.join(", ")
            )?;
        } else {
            let count = problems.errors().count();
            writeln!(io::stderr().lock(), "invalid: {}", plural(count, "error"))?;
        }
    }
    Ok(exit_for(&problems))
}

/// The config type of `check`, which has no type to load: it accepts every document (as
/// `serde_json::Value` would, without a copy of it), so that syntax, limits, the schema (run
/// on the located tree) and the policy are what is checked. Nothing is kept, so the
/// memory `check` needs is the documents' and their trees'.
struct Untyped;

impl<'de> serde::Deserialize<'de> for Untyped {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Untyped)
    }
}

impl serde::Serialize for Untyped {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl hotconf::Validate for Untyped {}

/// The files the PATHs stand for, as they are now.
fn files_of(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .flat_map(|p| source_for(p).files())
        .map(|p| p.display().to_string())
        .collect()
}

/// `check --json`'s report: `{"valid":bool,"files":[…],"errors":[…],"warnings":[…]}`.
fn report(files: &[String], problems: &Problems) -> serde_json::Value {
    let errors: Vec<&Problem> = problems.errors().collect();
    let warnings: Vec<&Problem> = problems.warnings().collect();
    serde_json::json!({
        "valid": !problems.has_errors(),
        "files": files,
        "errors": errors,
        "warnings": warnings,
    })
}

/// Every problem as a compiler-style diagnostic, on standard error.
fn print_problems(problems: &Problems, secrets: &Secrets) -> io::Result<()> {
    let mut err = io::stderr().lock();
    for problem in &problems.0 {
        write!(err, "{}", render::problem(problem, secrets))?;
    }
    Ok(())
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

/// The `--schema` file: a missing or unreadable file is trouble of its kind; one that is
/// not a JSON Schema is a usage error.
fn load_schema(path: &Path) -> anyhow::Result<Schema> {
    if let Err(error) = std::fs::File::open(path) {
        let (kind, why) = match error.kind() {
            io::ErrorKind::NotFound => (Kind::NotFound, "no such file or directory".to_owned()),
            io::ErrorKind::PermissionDenied => (Kind::Io, "permission denied".to_owned()),
            _ => (Kind::Io, error.to_string()),
        };
        let message = format!("--schema {}: {why}", path.display());
        return Err(Trouble::new(kind, message).into());
    }
    parse_schema(path)
}

#[cfg(feature = "json-schema")]
fn parse_schema(path: &Path) -> anyhow::Result<Schema> {
    Ok(Schema::from_file(path)?)
}

#[cfg(not(feature = "json-schema"))]
fn parse_schema(_path: &Path) -> anyhow::Result<Schema> {
    let message = "--schema needs hotconf built with the `json-schema` feature";
    Err(Trouble::new(Kind::Usage, message).into())
}

#[cfg(feature = "json-schema")]
fn with_schema(pipeline: Pipeline, schema: Schema) -> Pipeline {
    pipeline.schema(schema)
}

#[cfg(not(feature = "json-schema"))]
fn with_schema(_pipeline: Pipeline, schema: Schema) -> Pipeline {
    match schema {}
}

/// The policy of the command line's patterns (clap has parsed them).
fn policy(secrets: &[Pattern], restart_required: &[Pattern], deny: &[Pattern]) -> Policy {
    type AddRule = fn(Policy, Pattern) -> Policy;
    let mut policy = Policy::new();
    let rules: [(&[Pattern], AddRule); 3] = [
        (secrets, Policy::secret),
        (restart_required, Policy::restart_required),
        (deny, Policy::deny),
    ];
    for (patterns, add) in rules {
        for pattern in patterns {
            policy = add(policy, pattern.clone());
        }
    }
    policy
}

fn diff(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let policy = policy(&args.secrets, &args.restart_required, &args.deny);
    let secrets = policy.secrets().clone();
    let pipeline = Pipeline::new().policy(policy);
    let sides = [&args.old, &args.new].map(|path| vec![source_for(path)]);
    let plan = match pipeline.diff::<serde_json::Value>(&sides[0], &sides[1]) {
        Ok(plan) => plan,
        Err(problems) => {
            if let Some(trouble) = Trouble::of_problems(&problems) {
                return Err(trouble.into());
            }
            // An invalid side is reported as check reports it; the exit status stays 2:
            // there is nothing to compare.
            if args.json {
                let files = files_of(&[args.old.clone(), args.new.clone()]);
                writeln!(io::stdout().lock(), "{}", report(&files, &problems))?;
            } else {
                print_problems(&problems, &secrets)?;
                eprintln!("hotconf: cannot diff: a side is invalid");
            }
            return Ok(ExitCode::from(2));
        }
    };
    let mut out = io::stdout().lock();
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
