//! An explicit reload whose documents have the bytes of the last clean attempt: its outcome
//! is known without running the pipeline again.
//!
//! The pipeline is a function of the documents and the effective config. When neither
//! changed since an attempt that was not rejected, running it again gives the same
//! outcome: `unchanged`, or `restart_required` with the same held-back changes when some
//! restart-required change still waits. [`Clean`] keeps what that event needs, so such a
//! reload costs one read of each file. The worker forgets it whenever the effective config
//! moves away from the sources (a programmatic change, a rollback, a `PUT`) and after a
//! rejected attempt, so those always run the pipeline.
//!
//! The service's [`Validate`](crate::Validate) is therefore not run again on unchanged
//! bytes: rules must judge the config, not the world around it, which they cannot watch.

use crate::diff::Change;
use crate::error::Problem;
use crate::event::{Event, Outcome, Trigger};
use crate::path::ConfigPath;

use super::pipeline::Planned;

/// What a clean attempt reported that a repeat of it reports again.
#[derive(Debug)]
pub(super) struct Clean {
    /// Validation's warnings (not the components', which only come with a commit).
    warnings: Vec<Problem>,
    /// Restart-required changes held back, redacted, and in their HMAC form.
    held: Vec<Change>,
    hmac_held: Vec<Change>,
}

impl Clean {
    pub(super) fn of<T>(planned: &Planned<T>) -> Self {
        Self {
            warnings: planned.warnings.clone(),
            held: planned.held.clone(),
            hmac_held: planned.hmac_held.clone(),
        }
    }

    /// The event a repeat of the attempt reports: nothing new applies.
    pub(super) fn event(
        &self,
        version: u64,
        trigger: Trigger,
        files: Vec<String>,
        revisions: Vec<u64>,
    ) -> Event {
        let outcome = if self.held.is_empty() {
            Outcome::Unchanged
        } else {
            Outcome::RestartRequired
        };
        let mut event = Event::new(outcome, version, trigger, files);
        event.revisions = revisions;
        event.warnings.clone_from(&self.warnings);
        event.changes.clone_from(&self.held);
        event.hmac_changes.clone_from(&self.hmac_held);
        event.pending = self.pending();
        event
    }

    fn pending(&self) -> Vec<ConfigPath> {
        self.held.iter().map(|change| change.path.clone()).collect()
    }
}
