//! What the unit tests share.

pub(crate) mod trees;

/// Waits until `condition` holds, failing the test after ten seconds with `what`. For the
/// tests that wait on a running reloader: the watcher's and the worker's.
#[cfg(any(
    all(feature = "watch", feature = "tokio", feature = "toml"),
    feature = "json"
))]
pub(crate) fn wait_until(what: &str, condition: impl Fn() -> bool) {
    use std::time::{Duration, Instant};

    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}
