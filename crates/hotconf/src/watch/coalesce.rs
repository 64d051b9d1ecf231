//! The quiet-window coalescer: relevant filesystem events in, one batch per logical save out.
//!
//! A pure state machine: the caller passes the time in and asks for the next deadline, so
//! it is tested with a fake clock and the driver can sleep until exactly that deadline (an
//! idle watcher has no deadline and never wakes).
//!
//! The first relevant event opens a window; each further event extends it; once the window
//! has been quiet for the debounce time, it closes into one [`Batch`]. A window that never
//! goes quiet (a file rewritten nonstop) closes anyway after [`MAX_WAIT_FACTOR`] times the
//! debounce time, so such a config still reloads; the driver then checks whether the files
//! were still moving before it believes a failure.

use std::time::{Duration, Instant};

/// How many debounce periods a window may stay open while events keep extending it.
pub(crate) const MAX_WAIT_FACTOR: u32 = 10;

/// The events of one logical save (or of several saves close together), ready to reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Batch {
    /// When the first event arrived.
    pub(crate) opened: Instant,
    /// How many relevant events it holds (0 for a settle round, which has none).
    pub(crate) events: usize,
    /// Events may have been lost (queue overflow, a backend switch): re-arm everything.
    pub(crate) rescan: bool,
    /// It closed because it stayed open too long, not because the files went quiet.
    pub(crate) forced: bool,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    opened: Instant,
    last: Instant,
    events: usize,
    rescan: bool,
}

/// Turns a stream of relevant events into batches separated by quiet periods.
#[derive(Debug)]
pub(crate) struct Coalescer {
    quiet: Duration,
    max_wait: Duration,
    window: Option<Window>,
    /// The quiet time of the next window, when it changed while one was open.
    next_quiet: Option<Duration>,
}

impl Coalescer {
    /// A coalescer that hands a batch over once the events have been quiet for `quiet`.
    pub(crate) fn new(quiet: Duration) -> Self {
        Self {
            quiet,
            max_wait: quiet.saturating_mul(MAX_WAIT_FACTOR),
            window: None,
            next_quiet: None,
        }
    }

    /// Changes the quiet time from the next window on; the open one keeps its own, so its
    /// deadline never jumps.
    pub(crate) fn set_quiet(&mut self, quiet: Duration) {
        if self.window.is_some() {
            self.next_quiet = Some(quiet).filter(|q| *q != self.quiet);
        } else {
            self.quiet = quiet;
            self.max_wait = quiet.saturating_mul(MAX_WAIT_FACTOR);
            self.next_quiet = None;
        }
    }

    /// A relevant event at `now`: opens a window or extends the open one. True when it
    /// opened a window (the driver then notes how the files look at the start).
    pub(crate) fn event(&mut self, now: Instant) -> bool {
        self.push(now, 1, false)
    }

    /// Something happened that may have hidden events (a queue overflow, the watch being
    /// re-armed on another backend): reload after a quiet period, re-arming everything.
    pub(crate) fn rescan(&mut self, now: Instant) -> bool {
        self.push(now, 1, true)
    }

    /// Waits one more quiet period before trying again, with no event: a config that fails
    /// while its files are still changing gets the chance to settle.
    pub(crate) fn settle(&mut self, now: Instant) {
        self.push(now, 0, false);
    }

    fn push(&mut self, now: Instant, events: usize, rescan: bool) -> bool {
        match &mut self.window {
            Some(window) => {
                // The clock is monotonic, but a caller's `now` may lag the last one by a
                // hair when taken before a lock: never move the window back.
                window.last = window.last.max(now);
                window.events += events;
                window.rescan |= rescan;
                false
            }
            None => {
                self.window = Some(Window {
                    opened: now,
                    last: now,
                    events,
                    rescan,
                });
                true
            }
        }
    }

    /// When the open window closes if nothing else arrives; `None` when there is none, so
    /// the driver can block without a timeout.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.window.map(|window| self.closes_at(&window))
    }

    fn closes_at(&self, window: &Window) -> Instant {
        (window.last + self.quiet).min(window.opened + self.max_wait)
    }

    /// The batch, if the window has closed by `now`.
    pub(crate) fn flush(&mut self, now: Instant) -> Option<Batch> {
        let window = self.window?;
        let quiet_at = window.last + self.quiet;
        if now < self.closes_at(&window) {
            return None;
        }
        self.window = None;
        if let Some(quiet) = self.next_quiet.take() {
            self.set_quiet(quiet);
        }
        Some(Batch {
            opened: window.opened,
            events: window.events,
            rescan: window.rescan,
            forced: now < quiet_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What happens at a time offset (ms) in a test case.
    #[derive(Clone, Copy, Debug)]
    enum Step {
        Event(u64),
        Rescan(u64),
        Settle(u64),
        /// Asks for a batch at this time: `Some(events)` when one is expected.
        Flush(u64, Option<usize>),
        /// The deadline the driver would sleep until, `None` when idle.
        Deadline(Option<u64>),
        /// The debounce changes to this many milliseconds.
        Quiet(u64),
    }
    use Step::*;

    fn run(name: &str, quiet_ms: u64, steps: &[Step]) -> Vec<Batch> {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut coalescer = Coalescer::new(Duration::from_millis(quiet_ms));
        let mut batches = Vec::new();
        for (index, step) in steps.iter().enumerate() {
            match *step {
                Event(ms) => {
                    coalescer.event(at(ms));
                }
                Rescan(ms) => {
                    coalescer.rescan(at(ms));
                }
                Settle(ms) => coalescer.settle(at(ms)),
                Quiet(ms) => coalescer.set_quiet(Duration::from_millis(ms)),
                Flush(ms, expected) => {
                    let batch = coalescer.flush(at(ms));
                    assert_eq!(
                        batch.map(|b| b.events),
                        expected,
                        "{name}: step {index} {step:?}"
                    );
                    batches.extend(batch);
                }
                Deadline(expected) => assert_eq!(
                    coalescer.deadline(),
                    expected.map(at),
                    "{name}: step {index} {step:?}"
                ),
            }
        }
        batches
    }

    #[test]
    fn quiet_windows_close_into_one_batch_each() {
        let cases: &[(&str, u64, &[Step])] = &[
            (
                "idle has no deadline",
                100,
                &[Deadline(None), Flush(10_000, None)],
            ),
            (
                "one event closes after the quiet time",
                100,
                &[
                    Event(0),
                    Deadline(Some(100)),
                    Flush(99, None),
                    Flush(100, Some(1)),
                ],
            ),
            (
                "a save's events coalesce: each extends the window",
                100,
                &[
                    Event(0),
                    Event(2),
                    Event(3),
                    Event(60),
                    Deadline(Some(160)),
                    Flush(100, None),
                    Flush(159, None),
                    Flush(160, Some(4)),
                    Deadline(None),
                ],
            ),
            (
                "two saves a quiet period apart are two batches",
                100,
                &[
                    Event(0),
                    Event(5),
                    Flush(105, Some(2)),
                    Event(400),
                    Flush(450, None),
                    Flush(500, Some(1)),
                ],
            ),
            (
                "a late poll still gets the batch, once",
                100,
                &[Event(0), Flush(5_000, Some(1)), Flush(5_001, None)],
            ),
            (
                "a window that never goes quiet closes at ten periods",
                10,
                &[
                    Event(0),
                    Event(8),
                    Event(16),
                    Event(24),
                    Event(32),
                    Event(40),
                    Event(48),
                    Event(56),
                    Event(64),
                    Event(72),
                    Event(80),
                    Event(88),
                    Event(96),
                    Deadline(Some(100)),
                    Flush(99, None),
                    Flush(100, Some(13)),
                    Event(104),
                    Deadline(Some(114)),
                ],
            ),
            (
                "a settle round is a quiet period with no event",
                100,
                &[
                    Event(0),
                    Flush(100, Some(1)),
                    Settle(100),
                    Deadline(Some(200)),
                    Flush(199, None),
                    Flush(200, Some(0)),
                ],
            ),
            (
                "events during a settle round join it",
                100,
                &[Settle(0), Event(50), Flush(100, None), Flush(150, Some(1))],
            ),
            (
                "a new quiet time applies from the next window",
                100,
                &[
                    Quiet(300),
                    Event(0),
                    Deadline(Some(300)),
                    Quiet(50),
                    Event(10),
                    Deadline(Some(310)),
                    Flush(310, Some(2)),
                    Event(400),
                    Deadline(Some(450)),
                    Flush(450, Some(1)),
                ],
            ),
            (
                "a quiet time changed back within a window changes nothing",
                100,
                &[
                    Event(0),
                    Quiet(20),
                    Quiet(100),
                    Flush(100, Some(1)),
                    Event(200),
                    Deadline(Some(300)),
                ],
            ),
            (
                "the longest wait follows the quiet time",
                100,
                &[
                    Quiet(10),
                    Event(0),
                    Event(8),
                    Event(16),
                    Event(24),
                    Event(32),
                    Event(40),
                    Event(48),
                    Event(56),
                    Event(64),
                    Event(72),
                    Event(80),
                    Event(88),
                    Event(96),
                    Flush(100, Some(13)),
                ],
            ),
            (
                "a time before the last event does not shorten the window",
                100,
                &[Event(50), Event(10), Deadline(Some(150))],
            ),
        ];
        for (name, quiet, steps) in cases {
            run(name, *quiet, steps);
        }
    }

    #[test]
    fn batches_say_whether_they_were_forced_or_need_a_rescan() {
        let batches = run(
            "flags",
            10,
            &[
                Event(0),
                Flush(10, Some(1)),
                Event(20),
                Rescan(25),
                Flush(35, Some(2)),
            ],
        );
        assert!(!batches[0].forced && !batches[0].rescan);
        assert!(batches[1].rescan && !batches[1].forced);

        let mut steps: Vec<Step> = (0..20).map(|i| Event(i * 5)).collect();
        steps.push(Flush(100, Some(20)));
        let batches = run("forced", 10, &steps);
        assert!(
            batches[0].forced,
            "closed at the cap while events still came"
        );
    }
}
