//! Applying a planned config: components prepare, the audit intent is written, the
//! snapshot with its resources swaps in, components commit, the history records it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{AnswerKind, Finished, Worker};
use crate::component::panic_message;
use crate::diff::Change;
use crate::engine::history::Record;
use crate::engine::intent::IntentRecord;
use crate::engine::lock;
use crate::engine::observe::Applied;
use crate::engine::pipeline::{Effective, Planned};
use crate::error::{Problem, ProblemKind, Problems};
use crate::event::{Event, Outcome, Trigger};
use crate::snapshot::Snapshot;
use crate::source::Origin;
use crate::trigger::Rejection;
use crate::validate::Validate;

impl<T> Worker<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    /// Applies a planned config: components prepare, the snapshot with its resources
    /// swaps in, components commit, the history records it.
    pub(super) fn transact(
        &mut self,
        planned: Planned<T>,
        origins: Vec<(Origin, u64)>,
        files: Vec<String>,
        trigger: Trigger,
        by: Option<String>,
    ) -> Finished<T> {
        let shared = Arc::clone(&self.shared);
        let old = shared.current.load_full();
        let pending = planned.pending();
        if planned.changes.is_empty() {
            self.origins = origins;
            lock(&shared.live).pending.clone_from(&pending);
            let mut event = Event::new(planned.outcome(), old.version(), trigger, files);
            event.changes = planned.held;
            event.hmac_changes = planned.hmac_held;
            event.pending = pending;
            event.warnings = planned.warnings;
            return Finished {
                detected: None,
                event: Some(event),
                applied: None,
                answer: AnswerKind::Event,
            };
        }
        let Planned {
            config,
            tree,
            hash,
            changes,
            warnings,
            hmac_changes,
            ..
        } = planned;
        let new = Arc::new(Snapshot::new(config, old.version() + 1, origins.clone()));
        let changes: Arc<[Change]> = changes.into();
        let mut prepared = match shared.parts.prepare(Some(&old), &new, &changes) {
            Ok(prepared) => prepared,
            Err(failed) => {
                let problems = Problems::from(*failed.problem);
                let mut finished = self.reject(trigger, files, problems.clone());
                if !failed.failures.is_empty() {
                    finished.answer =
                        AnswerKind::Rejected(Rejection::RollbackFailed(problems, failed.failures));
                }
                return finished;
            }
        };
        if let Some(intent) = &shared.intent {
            let record = IntentRecord {
                version_before: old.version(),
                version_after: new.version(),
                trigger,
                by,
                files: files.clone(),
                revisions: origins.iter().map(|(_, r)| *r).collect(),
                changes: if hmac_changes.is_empty() {
                    changes.to_vec()
                } else {
                    hmac_changes.clone()
                },
                at: SystemTime::now(),
            };
            let written =
                catch_unwind(AssertUnwindSafe(|| intent.intent(&record))).unwrap_or_else(|panic| {
                    Err(format!("panicked: {}", panic_message(panic.as_ref())))
                });
            if let Err(reason) = written {
                let failures = prepared.abort();
                let problem = Problem::error(
                    ProblemKind::Audit,
                    format!(
                        "the audit log could not record the change, so it was not applied: {reason}"
                    ),
                );
                let problems = Problems::from(problem);
                let mut finished = self.reject(trigger, files, problems.clone());
                if !failures.is_empty() {
                    finished.answer =
                        AnswerKind::Rejected(Rejection::RollbackFailed(problems, failures));
                }
                return finished;
            }
        }
        // Nothing has failed and nothing can from here: the config moves to the new one.
        prepared.publish(&new);
        shared.hash.store(hash, Ordering::SeqCst);
        let effective = Arc::new(Effective::applied(tree, &new));
        shared.effective.store(Arc::clone(&effective));
        shared.current.store(Arc::clone(&new));
        self.origins = origins;
        lock(&shared.live).pending.clone_from(&pending);
        let mut event = Event::new(Outcome::Applied, new.version(), trigger, files);
        event.warnings = warnings;
        event.warnings.extend(prepared.commit());
        event.changes = changes.to_vec();
        event.hmac_changes = hmac_changes;
        event.pending = pending;
        self.leftovers.record = lock(&shared.history).push(Record {
            snapshot: Arc::clone(&new),
            trigger,
            outcome: Outcome::Applied,
            changes: event.changes.clone(),
            pending: event.pending.clone(),
            effective,
        });
        let applied = Applied {
            old,
            new,
            changes: event.changes.clone(),
        };
        Finished {
            detected: None,
            event: Some(event),
            applied: Some(applied),
            answer: AnswerKind::Event,
        }
    }
}
