//! hotconf side by side with hand-written reloaders and hotswap-config 0.2.2, in one
//! process, cases interleaved round-robin (see `runner`). Run through `scripts/bench.sh`,
//! which rewrites the tables of BENCHMARKS.md; by hand:
//!
//! ```text
//! cargo bench --manifest-path bench/Cargo.toml --bench compare -- [--quick] [--out DIR] [--only reload,dirs,read,watch,memory] [--cli PATH]
//! ```
//!
//! This crate is not a member of the repository's workspace, so `cargo test --workspace`
//! never builds it or its baselines.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

pub mod data;
pub mod dirs;
pub mod memory;
pub mod read;
pub mod reload;
pub mod report;
pub mod runner;
pub mod sys;
pub mod watch;

use std::path::PathBuf;

/// The runner's entry point: parses the arguments and runs the sections asked for.
pub fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        let rest = &args[at + 1..];
        match rest.first().map(String::as_str) {
            Some("check") => memory::child(rest.get(1).expect("a file to check")),
            Some("peak") => memory::relay(&rest[1..]),
            _ => watch::child(rest),
        }
        return;
    }
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let quick = args.iter().any(|a| a == "--quick");
    let only: Option<Vec<String>> =
        value("--only").map(|v| v.split(',').map(str::to_owned).collect());
    let wanted = |section: &str| only.as_ref().is_none_or(|o| o.iter().any(|s| s == section));
    let out = value("--out").map(PathBuf::from);
    let cli = value("--cli")
        .or_else(|| std::env::var("HOTCONF_CLI").ok())
        .map(PathBuf::from);

    let settings = runner::Settings::new(quick);
    println!(
        "machine: {}; {} run",
        sys::machine(),
        if quick { "quick" } else { "full" }
    );
    let temp = tempfile::tempdir().expect("a temp dir");
    let root = temp.path();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut results = report::Results::default();
    if wanted("reload") {
        results.reload = reload::run(&settings, root, &rt);
    }
    if wanted("dirs") {
        results.dirs = dirs::run(&settings, root);
    }
    if wanted("read") {
        let (groups, notes) = read::run(&settings);
        results.read = groups;
        results.read_notes = notes;
    }
    if wanted("memory") {
        results.memory = memory::run(quick, root, cli);
    }
    if wanted("watch") {
        results.watch = Some(watch::run(quick, root));
    }
    if let Some(out) = out {
        report::write(&out, &results);
        println!("\ntables written to {}", out.display());
    }
}
