//! Token buckets per route. The buckets are state that must survive a reload (a client that
//! spent its burst stays limited), so they live here, outside the snapshot, and a
//! [`Component`] makes them follow new `rpm`/`burst` values when a reload commits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hotconf::{Change, Component, PrepareError, Staged, staged};

use crate::config::{Demo, Limit, Limits};

/// The live limiters of every route.
#[derive(Debug)]
pub(crate) struct Limiter {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    limits: Limits,
    buckets: HashMap<String, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Adds the tokens earned since the last look, up to `limit.burst`.
    fn refill(&mut self, limit: Limit, now: Instant) {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * rate(limit);
        self.tokens = (self.tokens + earned).min(f64::from(limit.burst));
        self.at = now;
    }
}

/// Tokens per second.
fn rate(limit: Limit) -> f64 {
    f64::from(limit.rpm) / 60.0
}

impl Limiter {
    /// Limiters that let nothing through until the first load commits their limits.
    pub(crate) fn new() -> Arc<Self> {
        let none = Limit { rpm: 1, burst: 1 };
        Arc::new(Self {
            state: Mutex::new(State {
                limits: Limits {
                    default: none,
                    routes: Default::default(),
                },
                buckets: HashMap::new(),
            }),
        })
    }

    /// Takes a token from `route`'s bucket; when there is none, the time until there is.
    pub(crate) fn take(&self, route: &str, now: Instant) -> Result<(), Duration> {
        let mut state = self.lock();
        let limit = state.limits.of(route);
        let bucket = state.buckets.entry(route.to_owned()).or_insert(Bucket {
            tokens: f64::from(limit.burst),
            at: now,
        });
        bucket.refill(limit, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate(limit)))
        }
    }

    /// Makes every bucket follow `limits`: tokens earned under the old limit are kept, up
    /// to the new burst.
    fn follow(&self, limits: Limits, now: Instant) {
        let mut state = self.lock();
        let State {
            limits: old,
            buckets,
        } = &mut *state;
        for (route, bucket) in buckets.iter_mut() {
            bucket.refill(old.of(route), now);
            bucket.tokens = bucket.tokens.min(f64::from(limits.of(route).burst));
        }
        state.limits = limits;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain numbers: a panic elsewhere leaves nothing half-updated worth refusing.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Component<Demo> for Arc<Limiter> {
    fn name(&self) -> &str {
        "limiter"
    }

    fn paths(&self) -> Vec<String> {
        vec!["limits.**".into()]
    }

    fn prepare(
        &self,
        _old: Option<&Demo>,
        new: &Demo,
        _changes: &[Change],
    ) -> Result<Box<dyn Staged>, PrepareError> {
        // Nothing live changes before the swap; validation already refused rpm 0.
        let (limiter, limits) = (Arc::clone(self), new.limits.clone());
        Ok(staged(move || limiter.follow(limits, Instant::now())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: u32, burst: u32) -> Limits {
        Limits {
            default: Limit { rpm, burst },
            routes: Default::default(),
        }
    }

    fn taken(limiter: &Limiter, now: Instant, n: usize) -> usize {
        (0..n).filter(|_| limiter.take("r", now).is_ok()).count()
    }

    #[test]
    fn a_bucket_gives_its_burst_then_its_rate() {
        let limiter = Limiter::new();
        let start = Instant::now();
        limiter.follow(limits(60, 3), start);
        assert_eq!(taken(&limiter, start, 10), 3);
        let later = start + Duration::from_secs(2);
        assert_eq!(taken(&limiter, later, 10), 2);
        let wait = limiter.take("r", later).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
    }

    #[test]
    fn a_reload_keeps_the_state_and_follows_the_new_rate() {
        let limiter = Limiter::new();
        let start = Instant::now();
        limiter.follow(limits(60, 10), start);
        assert_eq!(taken(&limiter, start, 8), 8); // 2 left
        // A lower burst clamps what is left; a spent bucket stays spent.
        limiter.follow(limits(600, 1), start);
        assert_eq!(taken(&limiter, start, 10), 1);
        // The new rate: 10 a second.
        let later = start + Duration::from_millis(500);
        assert_eq!(taken(&limiter, later, 10), 1); // burst 1 caps it
        limiter.follow(limits(600, 20), later);
        let later = later + Duration::from_secs(1);
        assert_eq!(taken(&limiter, later, 30), 10);
    }

    #[test]
    fn a_raised_burst_does_not_refill_a_spent_bucket() {
        let limiter = Limiter::new();
        let start = Instant::now();
        limiter.follow(limits(60, 2), start);
        assert_eq!(taken(&limiter, start, 5), 2);
        limiter.follow(limits(60, 50), start);
        assert_eq!(taken(&limiter, start, 5), 0);
    }
}
