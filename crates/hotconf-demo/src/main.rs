//! `hotconf-demo`: a small HTTP API whose rate limits, routes, feature flags and connection
//! pool follow its config files while it runs, with the admin page, metrics, the audit log
//! and alerts of hotconf around it. `hotconf-demo load` drives it under load while
//! rewriting its config, and checks every guarantee hotconf makes.
//!
//! `cargo run --release -p hotconf-demo` prints the URLs to open and the files to edit.

mod api;
mod config;
#[cfg(feature = "etcd")]
mod etcd;
mod limiter;
mod load;
mod pool;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hotconf-demo",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: serve::ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the demo on a config of its own, drive it with steady load while rewriting its
    /// config files, check what hotconf promises, print the figures.
    Load(load::LoadArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // The demo prints every reload itself; the library's own warnings about
                // the watcher (a fallback to polling) still show.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("warn,hotconf=error,hotconf::watch=warn")
                }),
        )
        .init();
    let result = match &cli.command {
        Some(Command::Load(args)) => load::run(args),
        None => serve::run(&cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hotconf-demo: {error:#}");
            ExitCode::FAILURE
        }
    }
}
