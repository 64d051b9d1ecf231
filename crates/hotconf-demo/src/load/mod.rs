//! `hotconf-demo load`.

use clap::Args;

/// The load test's options.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoadArgs {
    /// How long to drive load, in seconds.
    #[arg(long, default_value_t = 60)]
    pub(crate) duration: u64,
}

pub(crate) fn run(_args: &LoadArgs) -> anyhow::Result<()> {
    Ok(())
}
