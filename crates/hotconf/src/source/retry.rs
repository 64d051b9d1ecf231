//! Retries for transient read errors: a file briefly missing while an editor or a deploy
//! tool replaces it, `EAGAIN`, `EINTR`.
//!
//! [`RetryPolicy::decide`] is pure: from the error's kind, the attempt that failed and the
//! time already waited it says whether to try again and after how long. [`run`] is the thin
//! loop the file and directory sources read through; it sleeps on the reading thread (the
//! reload worker, or the caller of `build`), bounded by the policy's total cap.

use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::Problem;

/// When a failed read of a file or directory is tried again before the reload is rejected
/// with the usual located read error.
///
/// Transient kinds are retried: [`WouldBlock`](ErrorKind::WouldBlock) (`EAGAIN`),
/// [`Interrupted`](ErrorKind::Interrupted) (`EINTR`), [`TimedOut`](ErrorKind::TimedOut),
/// [`ResourceBusy`](ErrorKind::ResourceBusy) and
/// [`StaleNetworkFileHandle`](ErrorKind::StaleNetworkFileHandle) (NFS), and
/// [`NotFound`](ErrorKind::NotFound) where a missing file is likely to be a file being
/// replaced:
///
/// - a [`File`](super::File) that is required (not optional): it is configured by name,
///   so missing is never its normal state;
/// - an optional [`File`](super::File) only when it existed at the previous read: one that
///   has never been there costs nothing, one that was there and is gone is waited for
///   before it is taken as removed;
/// - a [`Dir`](super::Dir)'s directory, and each file it listed the moment before.
///
/// Other errors (permission denied, a directory where a file was expected, over the size
/// limit) are not retried. The delay doubles from `base` up to `max_delay`, and the delays
/// together never exceed `total`. The default is 5 attempts, 5, 10, 20 and 40 ms apart
/// (75 ms at most), within a 250 ms cap.
///
/// Clones share one counter of the retries they decided ([`retries`](Self::retries)), so a
/// service (or a test) can see how often its files were caught mid-write.
///
/// ```
/// use std::io::ErrorKind;
/// use std::time::Duration;
/// use hotconf::source::{Decision, File, RetryPolicy};
///
/// let policy = RetryPolicy::default();
/// assert_eq!(
///     policy.decide(ErrorKind::Interrupted, 1, Duration::ZERO, false),
///     Decision::Retry(Duration::from_millis(5))
/// );
/// assert_eq!(
///     policy.decide(ErrorKind::PermissionDenied, 1, Duration::ZERO, true),
///     Decision::GiveUp
/// );
/// // A source takes its own policy; `RetryPolicy::none()` reads once.
/// let file = File::new("app.toml").retry(RetryPolicy::new(3, Duration::from_millis(10)));
/// # let _ = file;
/// ```
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    attempts: u32,
    base: Duration,
    max_delay: Duration,
    total: Duration,
    retries: Arc<AtomicU64>,
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Sleep this long, then try again.
    Retry(Duration),
    /// Report the error.
    GiveUp,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new(5, Duration::from_millis(5))
            .max_delay(Duration::from_millis(80))
            .total(Duration::from_millis(250))
    }
}

impl RetryPolicy {
    /// `attempts` reads in all (the first included), the first retry after `base`, each
    /// next one after twice the delay before; the default caps (80 ms per delay, 250 ms in
    /// all) apply until changed.
    pub fn new(attempts: u32, base: Duration) -> Self {
        Self {
            attempts: attempts.max(1),
            base,
            max_delay: Duration::from_millis(80),
            total: Duration::from_millis(250),
            retries: Arc::new(AtomicU64::new(0)),
        }
    }

    /// One attempt: every error is reported at once.
    pub fn none() -> Self {
        Self::new(1, Duration::ZERO)
    }

    /// The longest single delay.
    #[must_use]
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// The most all the delays of one read may add up to.
    #[must_use]
    pub fn total(mut self, total: Duration) -> Self {
        self.total = total;
        self
    }

    /// How many reads in all, the first included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How many retries this policy and its clones have decided since it was made.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Whether an error of this kind may go away by itself. `NotFound` counts only when
    /// `missing_is_transient` (see the type's docs for when the sources say so).
    pub fn is_transient(kind: ErrorKind, missing_is_transient: bool) -> bool {
        match kind {
            ErrorKind::NotFound => missing_is_transient,
            ErrorKind::WouldBlock
            | ErrorKind::Interrupted
            | ErrorKind::TimedOut
            | ErrorKind::ResourceBusy
            | ErrorKind::StaleNetworkFileHandle => true,
            _ => false,
        }
    }

    /// What to do after attempt number `attempt` (1 for the first read) failed with
    /// `kind`, having already slept `waited` in all. Pure: no clock, no counter.
    pub fn decide(
        &self,
        kind: ErrorKind,
        attempt: u32,
        waited: Duration,
        missing_is_transient: bool,
    ) -> Decision {
        if !Self::is_transient(kind, missing_is_transient) || attempt >= self.attempts {
            return Decision::GiveUp;
        }
        let left = self.total.saturating_sub(waited);
        if left.is_zero() {
            return Decision::GiveUp;
        }
        let doubling = 2u32.saturating_pow(attempt.saturating_sub(1));
        let delay = self
            .base
            .saturating_mul(doubling)
            .min(self.max_delay)
            .min(left);
        Decision::Retry(delay)
    }
}

/// A failed read: the located problem to report, and the I/O error kind that caused it
/// (none when retrying cannot help: a directory where a file was expected, a size limit).
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) kind: Option<ErrorKind>,
    /// Boxed: a failed read is rare, the `Result` that carries it is not.
    pub(crate) problem: Box<Problem>,
}

impl Failed {
    /// A failure the error's kind may let pass.
    pub(crate) fn io(kind: ErrorKind, problem: Problem) -> Self {
        Self {
            kind: Some(kind),
            problem: Box::new(problem),
        }
    }

    /// A failure no retry can help.
    pub(crate) fn fatal(problem: Problem) -> Self {
        Self {
            kind: None,
            problem: Box::new(problem),
        }
    }
}

/// Runs `read` until it succeeds or `policy` gives up, sleeping with `sleep` between
/// attempts. The failure returned is the last attempt's, unchanged: the usual located read
/// error, whatever the number of attempts (logged at debug level).
pub(crate) fn run<T>(
    policy: &RetryPolicy,
    missing_is_transient: bool,
    mut sleep: impl FnMut(Duration),
    mut read: impl FnMut() -> Result<T, Failed>,
) -> Result<T, Failed> {
    let mut waited = Duration::ZERO;
    let mut attempt = 1;
    loop {
        let failed = match read() {
            Ok(value) => return Ok(value),
            Err(failed) => failed,
        };
        let decision = match failed.kind {
            Some(kind) => policy.decide(kind, attempt, waited, missing_is_transient),
            None => Decision::GiveUp,
        };
        match decision {
            Decision::Retry(delay) => {
                policy.retries.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(target: "hotconf", attempt, delay_ms = delay.as_millis() as u64, problem = %failed.problem, "read failed, retrying");
                sleep(delay);
                waited += delay;
                attempt += 1;
            }
            Decision::GiveUp => {
                tracing::debug!(target: "hotconf", attempts = attempt, problem = %failed.problem, "read failed");
                return Err(failed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ProblemKind;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn transient_kinds() {
        let cases = [
            (ErrorKind::NotFound, false, false),
            (ErrorKind::NotFound, true, true),
            (ErrorKind::WouldBlock, false, true),
            (ErrorKind::Interrupted, false, true),
            (ErrorKind::TimedOut, false, true),
            (ErrorKind::ResourceBusy, false, true),
            (ErrorKind::StaleNetworkFileHandle, false, true),
            (ErrorKind::PermissionDenied, true, false),
            (ErrorKind::IsADirectory, true, false),
            (ErrorKind::InvalidData, true, false),
            (ErrorKind::Other, true, false),
        ];
        for (kind, missing, expected) in cases {
            assert_eq!(
                RetryPolicy::is_transient(kind, missing),
                expected,
                "{kind:?}, missing transient: {missing}"
            );
        }
    }

    #[test]
    fn default_backs_off_5_to_40_ms_then_gives_up_after_5_attempts() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.attempts(), 5);
        // (attempt that failed, waited so far, decision)
        let cases = [
            (1, 0, Decision::Retry(ms(5))),
            (2, 5, Decision::Retry(ms(10))),
            (3, 15, Decision::Retry(ms(20))),
            (4, 35, Decision::Retry(ms(40))),
            (5, 75, Decision::GiveUp),
            (9, 0, Decision::GiveUp),
        ];
        for (attempt, waited, expected) in cases {
            assert_eq!(
                policy.decide(ErrorKind::WouldBlock, attempt, ms(waited), false),
                expected,
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn delays_are_capped_per_retry_and_in_total() {
        let policy = RetryPolicy::new(10, ms(20))
            .max_delay(ms(50))
            .total(ms(100));
        let cases = [
            (1, 0, Decision::Retry(ms(20))),
            (2, 20, Decision::Retry(ms(40))),
            // 80 capped at 50
            (3, 60, Decision::Retry(ms(40))), // 50 capped by the 40 left
            (4, 100, Decision::GiveUp),       // nothing left
            (4, 150, Decision::GiveUp),
            (2, 0, Decision::Retry(ms(40))),
            (3, 0, Decision::Retry(ms(50))),
            (30, 0, Decision::GiveUp), // past the attempts, even with time left
        ];
        for (attempt, waited, expected) in cases {
            assert_eq!(
                policy.decide(ErrorKind::Interrupted, attempt, ms(waited), false),
                expected,
                "attempt {attempt}, waited {waited} ms"
            );
        }
        // A huge attempt number does not overflow the doubling.
        let long = RetryPolicy::new(u32::MAX, ms(1)).total(Duration::MAX);
        assert_eq!(
            long.decide(ErrorKind::Interrupted, 200, Duration::ZERO, false),
            Decision::Retry(ms(80))
        );
    }

    #[test]
    fn non_transient_errors_and_the_none_policy_give_up_at_once() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.decide(ErrorKind::PermissionDenied, 1, Duration::ZERO, true),
            Decision::GiveUp
        );
        assert_eq!(
            policy.decide(ErrorKind::NotFound, 1, Duration::ZERO, false),
            Decision::GiveUp
        );
        assert_eq!(
            RetryPolicy::none().decide(ErrorKind::Interrupted, 1, Duration::ZERO, true),
            Decision::GiveUp
        );
        assert_eq!(RetryPolicy::new(0, ms(1)).attempts(), 1);
    }

    fn failure(kind: Option<ErrorKind>) -> Failed {
        Failed {
            kind,
            problem: Box::new(
                Problem::error(ProblemKind::Io, "no such file or directory").in_file("a.toml"),
            ),
        }
    }

    /// Drives `run` with a scripted sequence of results and a fake sleep.
    fn script(
        policy: &RetryPolicy,
        missing: bool,
        results: Vec<Result<u32, Option<ErrorKind>>>,
    ) -> (Result<u32, Failed>, usize, Vec<Duration>) {
        let mut results = results.into_iter();
        let mut calls = 0;
        let mut slept = Vec::new();
        let result = run(
            policy,
            missing,
            |delay| slept.push(delay),
            || {
                calls += 1;
                results
                    .next()
                    .unwrap_or(Err(Some(ErrorKind::NotFound)))
                    .map_err(failure)
            },
        );
        (result, calls, slept)
    }

    #[test]
    fn run_retries_until_the_read_succeeds() {
        let policy = RetryPolicy::default();
        let (result, calls, slept) = script(
            &policy,
            true,
            vec![
                Err(Some(ErrorKind::NotFound)),
                Err(Some(ErrorKind::Interrupted)),
                Ok(7),
            ],
        );
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls, 3);
        assert_eq!(slept, [ms(5), ms(10)]);
        assert_eq!(policy.retries(), 2);
    }

    #[test]
    fn run_gives_up_after_the_attempts_with_the_last_error() {
        let policy = RetryPolicy::default();
        let shared = policy.clone();
        let (result, calls, slept) = script(&policy, true, Vec::new());
        let failed = result.unwrap_err();
        assert_eq!(calls, 5);
        assert_eq!(slept, [ms(5), ms(10), ms(20), ms(40)]);
        assert_eq!(failed.kind, Some(ErrorKind::NotFound));
        assert_eq!(
            failed.problem.to_string(),
            "a.toml: no such file or directory",
            "the usual located error"
        );
        assert_eq!(shared.retries(), 4, "clones share the counter");
    }

    #[test]
    fn run_does_not_retry_a_missing_file_unless_told_nor_a_fatal_failure() {
        let policy = RetryPolicy::default();
        let (result, calls, slept) = script(&policy, false, Vec::new());
        assert_eq!(calls, 1);
        assert!(slept.is_empty());
        assert_eq!(
            result.unwrap_err().problem.message,
            "no such file or directory"
        );

        let (result, calls, _) = script(&policy, true, vec![Err(None)]);
        assert_eq!(calls, 1);
        assert_eq!(result.unwrap_err().kind, None);
        assert_eq!(policy.retries(), 0);
    }
}
