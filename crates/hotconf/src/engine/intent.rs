//! The intent step: a record written before the swap, for an audit log that must not let a
//! config go live unrecorded (fail-closed). A failure rejects the attempt at stage `audit`.

use std::time::SystemTime;

use crate::diff::Change;
use crate::event::Trigger;

/// What is about to go live, as the transaction tells an [`Intent`] before the swap.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IntentRecord {
    /// The version active now.
    pub version_before: u64,
    /// The version the config will have.
    pub version_after: u64,
    /// What started the attempt.
    pub trigger: Trigger,
    /// Who asked, when known.
    pub by: Option<String>,
    /// The documents read.
    pub files: Vec<String>,
    /// Their content hashes, in the same order.
    pub revisions: Vec<u64>,
    /// What changes: secret values as their fingerprint when the reloader has one,
    /// else as `***`.
    pub changes: Vec<Change>,
    /// When the record was made.
    pub at: SystemTime,
}

/// Called on the reload worker after the components prepared and before the new config is
/// swapped in: an `Err` aborts the prepared components and rejects the attempt with a
/// [`ProblemKind::Audit`](crate::ProblemKind::Audit) problem; the old config stays. The
/// audit log's fail-closed mode is one (see `ReloaderBuilder::intent`).
pub trait Intent: Send + Sync + 'static {
    /// Records `intent` durably, or says why it could not.
    ///
    /// # Errors
    ///
    /// Why the record could not be made: the attempt is rejected with this message.
    fn intent(&self, intent: &IntentRecord) -> Result<(), String>;
}

impl<F> Intent for F
where
    F: Fn(&IntentRecord) -> Result<(), String> + Send + Sync + 'static,
{
    fn intent(&self, intent: &IntentRecord) -> Result<(), String> {
        self(intent)
    }
}
