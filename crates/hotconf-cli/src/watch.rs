//! `hotconf watch`: load a config, watch its files, and print one event per reload attempt
//! until SIGINT or SIGTERM; SIGHUP forces a full reload (every file read again);
//! `--on-apply` runs a command after each applied reload.
//!
//! One thread prints, so lines never interleave: it receives the reloader's events, the
//! signals and the results of `--on-apply` commands on one channel. Commands run one at a
//! time on their own thread, in the order of the reloads, so a slow command delays the next
//! command but never the event stream.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use hotconf::{Event, Outcome, Pattern, Reloader, RestartMode, Secrets, Timestamp, Trigger};
use serde_json::{Value, json};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// Print JSON Lines, one object per event, flushed at once.
    #[arg(long)]
    json: bool,
    /// Which events to print: `attempts` (one per reload attempt) or `all` (also
    /// `detected`, the files that changed, before each attempt).
    #[arg(long, value_name = "WHICH", default_value = "attempts", value_parser = ["attempts", "all"])]
    events: String,
    /// How long the files must be quiet before a batch of changes becomes one reload, in
    /// milliseconds (10 to 60000) [default: 100, or the config's `[hot_reload]
    /// debounce_ms`]. Given here, it overrides the config's.
    #[arg(
        long,
        value_name = "MS",
        value_parser = clap::value_parser!(u64).range(10..=60_000)
    )]
    debounce: Option<u64>,
    /// Also validate every config against this JSON Schema.
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// Changes at paths matching PATTERN take effect only after a restart: the rest of the
    /// reload applies and these paths are reported as pending (`server.listen`).
    #[arg(long = "restart-required", value_name = "PATTERN")]
    restart_required: Vec<Pattern>,
    /// What a reload that changes a restart-required path does: `pending` applies the rest
    /// and keeps the old values there; `reject` rejects the whole reload.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = RestartModeArg::Pending)]
    restart_mode: RestartModeArg,
    /// A reload that changes a path matching PATTERN is rejected whole, with the change's
    /// location, and the old config kept (`tenants.*.id`).
    #[arg(long = "deny", value_name = "PATTERN")]
    deny: Vec<Pattern>,
    /// Also redact values at paths matching PATTERN (`db.*.dsn`); keys named like password,
    /// secret, token, api_key, private_key or credential always are.
    #[arg(long = "secret", value_name = "PATTERN")]
    secrets: Vec<Pattern>,
    /// After each applied reload, run CMD with `sh -c`, the event's JSON on its standard
    /// input and its output on standard error. A command that fails or cannot start is
    /// reported as an `on_apply_failed` event and the watch goes on.
    #[arg(long = "on-apply", value_name = "CMD")]
    on_apply: Option<String>,
    #[command(flatten)]
    sidecar: crate::sidecar::SidecarArgs,
    #[cfg(feature = "etcd")]
    #[command(flatten)]
    etcd: crate::etcd::WatchEtcdArgs,
    /// Config files or directories (their .toml/.yaml/.yml/.json files in name order),
    /// layered in the order given: later ones override earlier ones.
    #[cfg_attr(
        feature = "etcd",
        arg(required_unless_present = "etcd", conflicts_with = "etcd")
    )]
    #[cfg_attr(not(feature = "etcd"), arg(required = true))]
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// `--restart-mode`, named as the contract names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum RestartModeArg {
    /// Apply the hot part; the restart-required paths stay pending.
    Pending,
    /// Reject the whole reload.
    Reject,
}

impl From<RestartModeArg> for RestartMode {
    fn from(mode: RestartModeArg) -> Self {
        match mode {
            RestartModeArg::Pending => Self::ApplyHot,
            RestartModeArg::Reject => Self::Reject,
        }
    }
}

/// What the printing thread is told.
enum Input {
    Event(Box<Event>),
    Signal(i32),
    /// A `--on-apply` command failed.
    OnApplyFailed(OnApplyFailure),
}

struct OnApplyFailure {
    version: u64,
    at: std::time::SystemTime,
    /// The exit status, or why the command did not run.
    outcome: Result<ExitStatus, String>,
}

pub(crate) fn run(args: &WatchArgs) -> anyhow::Result<ExitCode> {
    let schema = args.schema.as_deref().map(crate::load_schema).transpose()?;
    // Refuse to start on what `check` refuses, reported the same way.
    let empty = crate::empty_dirs(&args.paths);
    if !empty.is_empty() {
        return report_start_failure(&hotconf::Problems(empty), args);
    }
    let mut builder = Reloader::<Value>::builder().restart_mode(args.restart_mode.into());
    // A flag given on the command line beats the config's own `[hot_reload]` table.
    if let Some(ms) = args.debounce {
        builder = builder.debounce_explicit(Duration::from_millis(ms));
    }
    for path in &args.paths {
        builder = builder.source(crate::source_for(path));
    }
    for pattern in &args.restart_required {
        builder = builder.restart_required(pattern.as_str());
    }
    for pattern in &args.deny {
        builder = builder.deny(pattern.as_str());
    }
    for pattern in &args.secrets {
        builder = builder.secret(pattern.as_str());
    }
    if let Some(schema) = schema {
        builder = with_schema(builder, schema);
    }
    #[cfg(feature = "etcd")]
    let (builder, reporter) = args.etcd.configure(builder)?;
    let (builder, metrics) = args.sidecar.configure(builder)?;
    let reloader = match builder.build() {
        Ok(reloader) => reloader,
        Err(hotconf::Error::Invalid(problems)) => return report_start_failure(&problems, args),
        Err(error) => return Err(error).context("cannot start watching"),
    };
    #[cfg(feature = "etcd")]
    if let Some(reporter) = &reporter {
        eprintln!(
            "hotconf: reporting as instance {} ({})",
            reporter.instance(),
            reporter.key()
        );
    }

    // Signals are caught before `loaded` is printed: from then on, SIGTERM is a clean exit.
    let mut signals = Signals::new([SIGHUP, SIGINT, SIGTERM]).context("cannot catch signals")?;
    let (inputs, received) = mpsc::channel();
    forward_events(&reloader, inputs.clone());
    let forward = inputs.clone();
    thread::Builder::new()
        .name("hotconf-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if forward.send(Input::Signal(signal)).is_err() {
                    return;
                }
            }
        })
        .context("cannot start the signal thread")?;
    let on_apply = match &args.on_apply {
        Some(command) => Some(start_on_apply(command.clone(), inputs)?),
        None => {
            drop(inputs);
            None
        }
    };

    let admin = args.sidecar.serve(&reloader, metrics)?;
    reloader.watch().context("cannot watch the config files")?;
    let printer = Printer { json: args.json };
    printer.event(&reloader.loaded_event())?;
    print_loop(&reloader, &printer, &received, on_apply.as_ref(), args)?;
    reloader.unwatch();
    // The fleet's record goes at once, rather than when its lease runs out.
    #[cfg(feature = "etcd")]
    if let Some(reporter) = reporter {
        reporter.stop();
    }
    if let Some(admin) = admin {
        admin
            .stop()
            .context("the admin server did not stop cleanly")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_loop(
    reloader: &Reloader<Value>,
    printer: &Printer,
    received: &Receiver<Input>,
    on_apply: Option<&Sender<Event>>,
    args: &WatchArgs,
) -> anyhow::Result<()> {
    for input in received {
        match input {
            Input::Event(event) => {
                if event.outcome == Outcome::Detected && args.events != "all" {
                    continue;
                }
                printer.event(&event)?;
                if let (Some(on_apply), Outcome::Applied) = (on_apply, event.outcome) {
                    // The worker lives as long as this loop.
                    let _ = on_apply.send(*event);
                }
            }
            Input::OnApplyFailed(failure) => {
                printer.on_apply_failed(args.on_apply.as_deref().unwrap_or_default(), &failure)?;
            }
            // The attempt is printed like any other, from the event stream. A signal is an
            // operator's "read everything again": nothing is skipped as unchanged.
            Input::Signal(SIGHUP) => drop(reloader.reload_full_with(Trigger::Signal)),
            Input::Signal(_) => return Ok(()),
        }
    }
    Ok(())
}

#[cfg(feature = "json-schema")]
fn with_schema(
    builder: hotconf::ReloaderBuilder<Value>,
    schema: crate::Schema,
) -> hotconf::ReloaderBuilder<Value> {
    builder.schema(schema)
}

#[cfg(not(feature = "json-schema"))]
fn with_schema(
    _builder: hotconf::ReloaderBuilder<Value>,
    schema: crate::Schema,
) -> hotconf::ReloaderBuilder<Value> {
    match schema {}
}

/// The config does not load: the same report and exit status as `check` (with `--json`,
/// its JSON on standard output).
fn report_start_failure(
    problems: &hotconf::Problems,
    args: &WatchArgs,
) -> anyhow::Result<ExitCode> {
    if let Some(trouble) = crate::trouble::Trouble::of_problems(problems) {
        // An etcd prefix is not a path: trouble reading it is never "not found".
        #[cfg(feature = "etcd")]
        if args.etcd.is_set() {
            let io = crate::trouble::Trouble::new(crate::trouble::Kind::Io, trouble.message);
            return Err(io.into());
        }
        return Err(trouble.into());
    }
    if args.json {
        let report = crate::report(&crate::files_of(&args.paths), problems);
        writeln!(io::stdout().lock(), "{report}")?;
        return Ok(crate::exit_for(problems));
    }
    let secrets = args
        .secrets
        .iter()
        .fold(Secrets::new(), |secrets, pattern| {
            secrets.pattern(pattern.clone())
        });
    crate::print_problems(problems, &secrets)?;
    writeln!(
        io::stderr().lock(),
        "hotconf: not watching: the config does not load ({})",
        crate::plural(problems.errors().count(), "error")
    )?;
    Ok(crate::exit_for(problems))
}

/// Passes every event to the printing thread, losslessly and in order: an observer runs
/// on the reload worker and only queues the event.
fn forward_events(reloader: &Reloader<Value>, inputs: Sender<Input>) {
    let inputs = std::sync::Mutex::new(inputs);
    reloader.observe(move |event: &Event| {
        let inputs = inputs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The printer is gone only when the command is exiting.
        let _ = inputs.send(Input::Event(Box::new(event.clone())));
    });
}

/// Starts the thread that runs `--on-apply` commands one at a time, in order.
fn start_on_apply(command: String, inputs: Sender<Input>) -> anyhow::Result<Sender<Event>> {
    let (sender, applied) = mpsc::channel::<Event>();
    thread::Builder::new()
        .name("hotconf-on-apply".into())
        .spawn(move || {
            for event in applied {
                let outcome = run_on_apply(&command, &event);
                if !matches!(&outcome, Ok(status) if status.success()) {
                    let failure = OnApplyFailure {
                        version: event.version,
                        at: std::time::SystemTime::now(),
                        outcome,
                    };
                    if inputs.send(Input::OnApplyFailed(failure)).is_err() {
                        return;
                    }
                }
            }
        })
        .context("cannot start the --on-apply thread")?;
    Ok(sender)
}

/// Runs `sh -c command` with the event's JSON on its standard input. Its standard output
/// goes to our standard error, so the event stream on standard output stays clean.
fn run_on_apply(command: &str, event: &Event) -> Result<ExitStatus, String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(io::stderr())
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input closes the pipe early: not a failure.
        let _ = writeln!(stdin, "{}", event.to_json());
    }
    child
        .wait()
        .map_err(|e| format!("cannot wait for the command: {e}"))
}

/// Prints events as text or JSON Lines, flushing each line.
struct Printer {
    json: bool,
}

impl Printer {
    fn line(&self, text: &str) -> anyhow::Result<()> {
        let mut out = io::stdout().lock();
        writeln!(out, "{text}")?;
        out.flush()?;
        Ok(())
    }

    fn event(&self, event: &Event) -> anyhow::Result<()> {
        if self.json {
            self.line(&event.to_json())
        } else {
            self.line(human(event).trim_end())
        }
    }

    fn on_apply_failed(&self, command: &str, failure: &OnApplyFailure) -> anyhow::Result<()> {
        let at = Timestamp(failure.at).to_string();
        if self.json {
            let mut line = json!({
                "event": "on_apply_failed",
                "version": failure.version,
                "at": at,
                "command": command,
            });
            match &failure.outcome {
                Ok(status) => {
                    line["status"] = status.code().map_or(Value::Null, Value::from);
                    line["message"] = format!("the command {}", describe(status)).into();
                }
                Err(message) => line["message"] = message.as_str().into(),
            }
            self.line(&line.to_string())
        } else {
            let why = match &failure.outcome {
                Ok(status) => describe(status),
                Err(message) => message.clone(),
            };
            self.line(&format!(
                "{at} on-apply failed: version {}: `{command}` {why}",
                failure.version
            ))
        }
    }
}

/// "exited with status 1", "was killed by signal 9".
fn describe(status: &ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal}");
        }
    }
    format!("ended with {status}")
}

/// An event as text: a headline, then one indented line per change, pending path, warning
/// or error. Errors print as `file:line:column: path: message` without the source line: by
/// the time it is printed the file may hold something else.
fn human(event: &Event) -> String {
    let at = Timestamp(event.at);
    let version = event.version;
    let trigger = event.trigger.as_str();
    let mut text = match event.outcome {
        Outcome::Loaded => format!(
            "{at} loaded: version {version} from {}\n",
            event.files.join(", ")
        ),
        Outcome::Applied => format!(
            "{at} applied: version {version} ({trigger}, {})\n",
            crate::plural(event.changes.len(), "change")
        ),
        Outcome::Rejected => format!(
            "{at} rejected: version {version} kept ({trigger}, {})\n",
            crate::plural(event.errors.len(), "error")
        ),
        Outcome::Unchanged => format!("{at} unchanged: version {version} ({trigger})\n"),
        Outcome::RestartRequired => format!(
            "{at} restart required: version {version} kept ({trigger}), pending {}\n",
            join(&event.pending)
        ),
        Outcome::Deferred => format!("{at} deferred: version {version} ({trigger}), held\n"),
        Outcome::Detected => {
            let changed: Vec<String> = event
                .changed
                .iter()
                .map(|change| {
                    let kind = serde_json::to_value(change.kind).unwrap_or_default();
                    format!("{} {}", kind.as_str().unwrap_or_default(), change.file)
                })
                .collect();
            format!("{at} detected: {} ({trigger})\n", changed.join(", "))
        }
        other => format!("{at} {other}: version {version} ({trigger})\n"),
    };
    for change in &event.changes {
        text.push_str(&format!("  {change}\n"));
    }
    if event.outcome == Outcome::Applied && !event.pending.is_empty() {
        text.push_str(&format!("  pending restart: {}\n", join(&event.pending)));
    }
    for problem in event.warnings.iter().chain(&event.errors) {
        text.push_str(&format!("  {problem}\n"));
    }
    text
}

fn join(paths: &[hotconf::ConfigPath]) -> String {
    paths
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
