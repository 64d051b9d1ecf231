//! Long-lived threads with stacks deep enough for the recursion over a deep tree.
//!
//! The YAML builder keeps open collections on a heap stack, but what follows it still
//! recurses once per level of nesting: widening ranges, checking flow indentation, cloning
//! and dropping nodes, and, on the reload worker that is spawned with this size, the stages
//! after parsing. A caller's thread may be small (a tokio worker has 2 MiB), and spawning a
//! thread per document cost about a millisecond, more than parsing a small file; these
//! threads are spawned once and reused. A caller takes an idle thread whose stack is large
//! enough (or spawns one), hands it the job and waits; a few idle threads are kept, the
//! rest end.

use std::any::Any;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, PoisonError};

/// Stack reserved per level of nesting. Parsing now takes under 2 KiB a level in debug
/// builds (measured at 20,000 levels); the margin was set when serde-saphyr's recursion took
/// 45 KiB, and is kept for the stages after parsing, which were not measured.
const STACK_PER_LEVEL: usize = 64 << 10;
/// Stack for everything but the nesting.
const STACK_BASE: usize = 1 << 20;
/// Reservation cap for absurd `max_depth` values; it is virtual memory, touched only as used.
const STACK_MAX: usize = 1 << 30;

/// The stack a thread needs to parse YAML within `limits`, and to work on its tree.
pub(crate) fn stack_for(limits: &crate::document::Limits) -> usize {
    STACK_PER_LEVEL
        .saturating_mul(limits.max_depth)
        .saturating_add(STACK_BASE)
        .min(STACK_MAX)
}

/// Idle threads kept for later jobs; more than this many idle at once end.
const KEEP_IDLE: usize = 4;

type Job = Box<dyn FnOnce() + Send>;

/// One thread, waiting for jobs.
struct Worker {
    stack: usize,
    jobs: Sender<Job>,
}

/// A set of idle threads. The parser uses one for the whole process ([`run`]).
pub(super) struct Pool {
    idle: Mutex<Vec<Worker>>,
    name: &'static str,
}

static POOL: Pool = Pool::new("hotconf-yaml");

thread_local! {
    /// The stack this thread was spawned with, when the thread that spawned it said so
    /// ([`spawned_with`]); 0 when not known.
    static STACK: Cell<usize> = const { Cell::new(0) };
}

/// Records that the current thread was spawned with `stack` bytes of stack: a parse that
/// fits runs on it, without the hop to a pooled thread. Call it first thing in the thread.
pub(crate) fn spawned_with(stack: usize) {
    STACK.set(stack);
}

/// Whether the current thread was spawned with at least `stack` bytes of stack.
pub(super) fn fits(stack: usize) -> bool {
    STACK.get() >= stack
}

/// Runs `job` on a pooled thread with at least `stack` bytes of stack; returns its
/// result, or resumes its panic on the calling thread.
pub(super) fn run<R: Send + 'static>(
    stack: usize,
    job: impl FnOnce() -> R + Send + 'static,
) -> std::io::Result<R> {
    POOL.run(stack, job)
}

impl Pool {
    pub(super) const fn new(name: &'static str) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            name,
        }
    }

    pub(super) fn run<R: Send + 'static>(
        &self,
        stack: usize,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> std::io::Result<R> {
        let (reply, answer) = mpsc::sync_channel::<Result<R, Box<dyn Any + Send>>>(1);
        let job: Job = Box::new(move || {
            let _ = reply.send(catch_unwind(AssertUnwindSafe(job)));
        });
        let worker = match self.take(stack) {
            Some(worker) => worker,
            None => self.spawn(stack)?,
        };
        // A kept thread never ends on its own (jobs cannot panic through), so the send
        // only fails if it was killed some other way: then a fresh one takes the job.
        let worker = match worker.jobs.send(job) {
            Ok(()) => worker,
            Err(mpsc::SendError(job)) => {
                let fresh = self.spawn(stack)?;
                fresh
                    .jobs
                    .send(job)
                    .map_err(|_| std::io::Error::other("the parser thread ended"))?;
                fresh
            }
        };
        let result = answer
            .recv()
            .map_err(|_| std::io::Error::other("the parser thread ended"))?;
        self.put_back(worker);
        match result {
            Ok(value) => Ok(value),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// An idle thread with at least `stack` bytes, the smallest such.
    fn take(&self, stack: usize) -> Option<Worker> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let best = idle
            .iter()
            .enumerate()
            .filter(|(_, worker)| worker.stack >= stack)
            .min_by_key(|(_, worker)| worker.stack)
            .map(|(index, _)| index)?;
        Some(idle.swap_remove(best))
    }

    fn put_back(&self, worker: Worker) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < KEEP_IDLE {
            idle.push(worker);
        }
        // Otherwise dropping the sender ends the thread.
    }

    fn spawn(&self, stack: usize) -> std::io::Result<Worker> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(self.name.to_owned())
            .stack_size(stack)
            .spawn(move || {
                spawned_with(stack);
                for job in inbox {
                    job();
                }
            })?;
        Ok(Worker { stack, jobs })
    }

    /// How many threads wait for jobs.
    #[cfg(test)]
    pub(super) fn idle(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread::{self, ThreadId};

    const STACK: usize = 256 << 10;

    fn id() -> ThreadId {
        thread::current().id()
    }

    #[test]
    fn a_thread_fits_what_it_was_spawned_with_and_no_more() {
        let fits = thread::Builder::new()
            .stack_size(STACK)
            .spawn(|| {
                let before = fits(1);
                spawned_with(STACK);
                (before, fits(STACK), fits(STACK + 1))
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(fits, (false, true, false));
        // A pooled thread says what it was spawned with.
        let pool = Pool::new("test-pool");
        assert!(pool.run(STACK, move || super::fits(STACK)).unwrap());
    }

    #[test]
    fn a_thread_is_reused_for_the_next_job() {
        let pool = Pool::new("test-pool");
        let first = pool.run(STACK, id).unwrap();
        assert_ne!(first, id(), "the job ran on the caller's thread");
        assert_eq!(pool.run(STACK, id).unwrap(), first);
        // A smaller stack fits the same thread; a larger one needs another.
        assert_eq!(pool.run(STACK / 2, id).unwrap(), first);
        let larger = pool.run(STACK * 2, id).unwrap();
        assert_ne!(larger, first);
        assert_eq!(pool.idle(), 2);
        // The smallest thread that fits is taken.
        assert_eq!(pool.run(STACK, id).unwrap(), first);
        assert_eq!(pool.run(STACK * 2, id).unwrap(), larger);
    }

    #[test]
    fn at_most_a_few_idle_threads_are_kept() {
        let pool = Pool::new("test-pool");
        // Jobs that run at once each need a thread of their own.
        let (started, wait) = mpsc::channel();
        let (release, gate) = mpsc::channel::<()>();
        let gate = std::sync::Arc::new(Mutex::new(gate));
        let pool = std::sync::Arc::new(pool);
        let runners: Vec<_> = (0..KEEP_IDLE + 2)
            .map(|_| {
                let pool = std::sync::Arc::clone(&pool);
                let started = started.clone();
                let gate = std::sync::Arc::clone(&gate);
                thread::spawn(move || {
                    pool.run(STACK, move || {
                        started.send(()).unwrap();
                        let _ = gate.lock().unwrap().recv();
                    })
                    .unwrap();
                })
            })
            .collect();
        for _ in 0..KEEP_IDLE + 2 {
            wait.recv().unwrap();
        }
        for _ in 0..KEEP_IDLE + 2 {
            release.send(()).unwrap();
        }
        for runner in runners {
            runner.join().unwrap();
        }
        assert_eq!(pool.idle(), KEEP_IDLE);
    }

    #[test]
    fn a_panic_reaches_the_caller_and_the_thread_survives() {
        let pool = Pool::new("test-pool");
        let first = pool.run(STACK, id).unwrap();
        let panic = catch_unwind(AssertUnwindSafe(|| {
            pool.run(STACK, || panic!("boom")).unwrap();
        }))
        .unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"boom"));
        assert_eq!(pool.run(STACK, id).unwrap(), first);
    }
}
