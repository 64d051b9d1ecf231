//! The hold gate: defers work while a critical operation holds the reloader, and says when
//! a deferral has lasted long enough to be reported again.
//!
//! Pure: no threads, no clock. The worker passes the time in and acts on what comes out,
//! so the whole state machine is tested with a fake clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Work that can absorb a later piece of work of the same kind: two reloads from the
/// sources become one, while programmatic changes each keep their place.
pub(crate) trait Coalesce: Sized {
    /// Takes `later` into `self` when one run can serve both; gives it back otherwise.
    fn absorb(&mut self, later: Self) -> Option<Self>;
}

/// What the gate does with work offered to it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit<W> {
    /// No hold is in place: run it now.
    Run(W),
    /// Held: kept for when the last hold is released.
    Deferred,
}

/// The hold state machine.
#[derive(Debug)]
pub(crate) struct Gate<W> {
    holds: usize,
    deferred: VecDeque<W>,
    /// When the current deferral began.
    since: Option<Instant>,
    /// When the deferral is next reported as still waiting.
    report_at: Option<Instant>,
    period: Duration,
}

impl<W: Coalesce> Gate<W> {
    /// A gate that reports a deferral again every `period` it lasts.
    pub(crate) fn new(period: Duration) -> Self {
        Self {
            holds: 0,
            deferred: VecDeque::new(),
            since: None,
            report_at: None,
            period,
        }
    }

    /// One more hold.
    pub(crate) fn hold(&mut self) {
        self.holds += 1;
    }

    /// One hold less. When it was the last, everything deferred comes out, in the order it
    /// was offered (coalesced), and the deferral ends.
    pub(crate) fn release(&mut self) -> Vec<W> {
        self.holds = self.holds.saturating_sub(1);
        if self.holds > 0 {
            return Vec::new();
        }
        self.since = None;
        self.report_at = None;
        self.deferred.drain(..).collect()
    }

    /// Runs `work` now, or keeps it while held. Kept work coalesces into the latest kept
    /// work that can absorb it.
    pub(crate) fn admit(&mut self, work: W, now: Instant) -> Admit<W> {
        if self.holds == 0 {
            return Admit::Run(work);
        }
        if self.since.is_none() {
            self.since = Some(now);
            self.report_at = Some(now + self.period);
        }
        let work = match self.deferred.back_mut() {
            Some(last) => last.absorb(work),
            None => Some(work),
        };
        if let Some(work) = work {
            self.deferred.push_back(work);
        }
        Admit::Deferred
    }

    /// When the worker must wake to report the deferral again; `None` when nothing waits.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.report_at
    }

    /// How long the deferral has lasted, when a report is due at `now`; the next report is
    /// then one period later.
    pub(crate) fn due(&mut self, now: Instant) -> Option<Duration> {
        let at = self.report_at?;
        if now < at {
            return None;
        }
        self.report_at = Some(now + self.period);
        self.since.map(|since| now.saturating_duration_since(since))
    }

    /// How many holds are in place.
    pub(crate) fn holds(&self) -> usize {
        self.holds
    }

    /// Since when work has been waiting, if any does.
    pub(crate) fn deferred_since(&self) -> Option<Instant> {
        self.since
    }

    /// The work waiting, oldest first.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> impl Iterator<Item = &W> {
        self.deferred.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test work: reloads (`R`) coalesce, applies (`A`) do not.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Work {
        R(Vec<u32>),
        A(u32),
    }

    impl Coalesce for Work {
        fn absorb(&mut self, later: Self) -> Option<Self> {
            match (self, later) {
                (Work::R(ids), Work::R(more)) => {
                    ids.extend(more);
                    None
                }
                (_, later) => Some(later),
            }
        }
    }

    const PERIOD: Duration = Duration::from_secs(30);

    fn gate() -> (Gate<Work>, Instant) {
        (Gate::new(PERIOD), Instant::now())
    }

    #[test]
    fn without_holds_work_runs_at_once_and_nothing_is_scheduled() {
        let (mut gate, t0) = gate();
        assert_eq!(gate.admit(Work::A(1), t0), Admit::Run(Work::A(1)));
        assert_eq!(gate.deadline(), None);
        assert_eq!(gate.due(t0 + PERIOD * 10), None);
        assert_eq!(gate.deferred_since(), None);
    }

    #[test]
    fn held_reloads_coalesce_and_applies_keep_their_order() {
        let (mut gate, t0) = gate();
        gate.hold();
        for work in [
            Work::R(vec![1]),
            Work::R(vec![2]),
            Work::A(3),
            Work::R(vec![4]),
            Work::R(vec![5]),
            Work::A(6),
        ] {
            assert_eq!(gate.admit(work, t0), Admit::Deferred);
        }
        let expected = [
            Work::R(vec![1, 2]),
            Work::A(3),
            Work::R(vec![4, 5]),
            Work::A(6),
        ];
        assert!(gate.waiting().eq(expected.iter()));
        assert_eq!(gate.release(), expected);
        assert_eq!(gate.holds(), 0);
        assert_eq!(gate.deadline(), None, "the deferral ended");
        assert_eq!(gate.admit(Work::A(7), t0), Admit::Run(Work::A(7)));
    }

    #[test]
    fn only_the_last_release_lets_work_out() {
        let (mut gate, t0) = gate();
        gate.hold();
        gate.hold();
        assert_eq!(gate.admit(Work::R(vec![1]), t0), Admit::Deferred);
        assert!(gate.release().is_empty());
        assert_eq!(gate.holds(), 1);
        assert_eq!(gate.deferred_since(), Some(t0));
        assert_eq!(gate.release(), [Work::R(vec![1])]);
        // A release with no hold left does not go below zero.
        assert!(gate.release().is_empty());
        assert_eq!(gate.holds(), 0);
    }

    #[test]
    fn a_long_deferral_is_reported_every_period_from_its_start() {
        let (mut gate, t0) = gate();
        gate.hold();
        assert_eq!(gate.deadline(), None, "a hold alone defers nothing");
        let t1 = t0 + Duration::from_secs(5);
        gate.admit(Work::R(vec![1]), t1);
        assert_eq!(gate.deadline(), Some(t1 + PERIOD));
        // A later offer does not restart the clock.
        gate.admit(Work::R(vec![2]), t1 + Duration::from_secs(10));
        assert_eq!(gate.deadline(), Some(t1 + PERIOD));
        assert_eq!(gate.due(t1 + PERIOD - Duration::from_millis(1)), None);
        assert_eq!(gate.due(t1 + PERIOD), Some(PERIOD));
        assert_eq!(gate.deadline(), Some(t1 + PERIOD * 2));
        assert_eq!(gate.due(t1 + PERIOD), None, "reported once per period");
        let late = t1 + PERIOD * 2 + Duration::from_secs(3);
        assert_eq!(gate.due(late), Some(PERIOD * 2 + Duration::from_secs(3)));
        assert_eq!(gate.deadline(), Some(late + PERIOD));
        gate.release();
        assert_eq!(gate.due(late + PERIOD * 5), None);
        assert_eq!(gate.deferred_since(), None);
    }
}
