//! File watching: filesystem activity into one reload per logical save.
//!
//! (Being written: the quiet-window coalescer and the notify driver.)

use std::time::Duration;

/// How the watcher turns filesystem events into reloads.
#[derive(Clone, Debug)]
pub(crate) struct WatchOptions {
    /// How long the files must be quiet before a batch of events becomes one reload.
    pub(crate) debounce: Duration,
    /// File-name globs whose events are ignored.
    pub(crate) ignore: Vec<String>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(100),
            ignore: crate::source::DEFAULT_IGNORES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

/// A running watcher; dropping it stops the watch.
#[derive(Debug)]
pub(crate) struct Watching;
