//! What the unit tests share.

use std::thread;
use std::time::{Duration, Instant};

/// Waits until `condition` holds, failing the test after ten seconds with `what`.
pub(crate) fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(2));
    }
}
