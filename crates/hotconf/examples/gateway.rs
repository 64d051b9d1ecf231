//! A gateway's config on top of `examples/config`: typed, validated across files, with a
//! rate limiter that is rebuilt as a transaction when `limits` change, a restart-required
//! listen address, and a dry run before applying an edit.
//!
//! Run with `cargo run -p hotconf --example gateway`. It works on a copy of the example
//! config in a temp dir, edits it, and prints what each reload did; `tests/gateway.rs`
//! runs it and checks what it prints.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hotconf::{Change, Component, PrepareError, Reloader, Report, Staged, Validate, staged};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Gateway {
    server: Server,
    limits: Limits,
    upstreams: BTreeMap<String, Upstream>,
    routes: Vec<Route>,
    database: Database,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Server {
    listen: String,
    workers: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Limits {
    rpm: u32,
    burst: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Upstream {
    url: String,
    timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Route {
    path: String,
    upstream: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Database {
    url: String,
    password: String,
}

impl Validate for Gateway {
    fn validate(&self, report: &mut Report) {
        if self.limits.rpm == 0 {
            report.error("limits.rpm", "must be greater than 0");
        }
        // Cross-file: routes live in the YAML file, upstreams may be anywhere.
        for (i, route) in self.routes.iter().enumerate() {
            if !self.upstreams.contains_key(&route.upstream) {
                report.error(
                    &format!("routes[{i}].upstream"),
                    format!("no upstream named '{}'", route.upstream),
                );
            }
            if !route.path.starts_with('/') {
                report.error(&format!("routes[{i}].path"), "must start with '/'");
            }
        }
    }
}

/// A token bucket: the live one only changes when a reload commits.
#[derive(Debug)]
struct RateLimiter {
    bucket: Mutex<(u32, u32)>,
}

impl Component<Gateway> for Arc<RateLimiter> {
    fn name(&self) -> &str {
        "rate-limiter"
    }

    fn paths(&self) -> Vec<String> {
        vec!["limits.**".into()]
    }

    fn prepare(
        &self,
        _old: Option<&Gateway>,
        new: &Gateway,
        _changes: &[Change],
    ) -> Result<Box<dyn Staged>, PrepareError> {
        if new.limits.burst > new.limits.rpm {
            return Err(format!(
                "a burst of {} cannot exceed {} requests per minute",
                new.limits.burst, new.limits.rpm
            )
            .into());
        }
        let (limiter, bucket) = (Arc::clone(self), (new.limits.rpm, new.limits.burst));
        Ok(staged(move || {
            *lock(&limiter.bucket) = bucket;
        }))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    run(&mut std::io::stdout().lock())
}

/// Walks through the edits, writing what each reload did to `out`.
pub fn run(out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/config");
    for entry in std::fs::read_dir(examples)? {
        let entry = entry?;
        std::fs::copy(entry.path(), dir.path().join(entry.file_name()))?;
    }
    // Empty until the first load prepares and commits it, like every reload.
    let limiter = Arc::new(RateLimiter {
        bucket: Mutex::new((0, 0)),
    });
    let reloader = Reloader::<Gateway>::builder()
        .dir(dir.path(), "*.{toml,yaml,json}")
        .restart_required("server.listen")
        .component(Arc::clone(&limiter))
        .build()?;
    // Callbacks run on the reload worker, before reload() returns: they leave their lines
    // here, and `report` writes them out.
    let notes = Arc::new(Mutex::new(Vec::new()));
    let callback_notes = Arc::clone(&notes);
    reloader.on_change_at(&["routes"], move |update| {
        lock(&callback_notes).push(format!(
            "  callback: {} routes now",
            update.new.routes.len()
        ));
    })?;
    writeln!(
        out,
        "loaded version {}, limiter bucket {:?}",
        reloader.current().version(),
        lock(&limiter.bucket)
    )?;

    let edit = |from: &str, to: &str| -> std::io::Result<()> {
        let path = dir.path().join("10-server.toml");
        let text = std::fs::read_to_string(&path)?;
        std::fs::write(&path, text.replace(from, to))
    };

    writeln!(out, "\n1. a valid edit, previewed first")?;
    edit("rpm = 600", "rpm = 900")?;
    for planned in reloader.plan().changes {
        writeln!(
            out,
            "  would change {} ({})",
            planned.change,
            planned.rule.as_str()
        )?;
    }
    report(out, &notes, reloader.reload())?;
    writeln!(out, "  limiter bucket: {:?}", lock(&limiter.bucket))?;

    writeln!(
        out,
        "\n2. the rate limiter refuses a burst above rpm (set in the JSON layer)"
    )?;
    let overrides = dir.path().join("30-overrides.json");
    let text = std::fs::read_to_string(&overrides)?;
    std::fs::write(&overrides, text.replace("\"burst\": 80", "\"burst\": 5000"))?;
    report(out, &notes, reloader.reload())?;
    std::fs::write(&overrides, text)?;

    writeln!(out, "\n3. a route to an unknown upstream, in the YAML file")?;
    let routes = dir.path().join("20-routes.yaml");
    let text = std::fs::read_to_string(&routes)?;
    std::fs::write(
        &routes,
        text.replace("upstream: billing", "upstream: invoices"),
    )?;
    report(out, &notes, reloader.reload())?;
    std::fs::write(&routes, text)?;

    writeln!(
        out,
        "\n4. the listen address needs a restart: the rest applies"
    )?;
    edit("0.0.0.0:8080", "0.0.0.0:9090")?;
    edit("workers = 4", "workers = 8")?;
    report(out, &notes, reloader.reload())?;
    let pending: Vec<String> = reloader
        .status()
        .pending
        .iter()
        .map(ToString::to_string)
        .collect();
    writeln!(
        out,
        "  listening on {} (pending a restart: {})",
        reloader.current().server.listen,
        pending.join(", ")
    )?;
    Ok(())
}

/// A lock that a panic elsewhere does not make unusable: the data is plain values.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn report(
    out: &mut dyn Write,
    notes: &Mutex<Vec<String>>,
    result: hotconf::Result<hotconf::Event>,
) -> std::io::Result<()> {
    for note in lock(notes).drain(..) {
        writeln!(out, "{note}")?;
    }
    match result {
        Ok(event) => {
            writeln!(out, "  {} -> version {}", event.outcome, event.version)?;
            for change in &event.changes {
                writeln!(out, "    {change}")?;
            }
        }
        Err(error) => writeln!(out, "  {error}")?,
    }
    Ok(())
}
