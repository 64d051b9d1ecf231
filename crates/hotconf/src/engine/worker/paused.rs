//! A watcher's reload while the settings table pauses reloading: only the table's own file
//! is looked at.

use std::sync::atomic::Ordering;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{AnswerKind, Finished, Worker, unsettled};
use crate::engine::lock;
use crate::event::Trigger;
use crate::trigger::Mode;
use crate::validate::Validate;

impl<T> Worker<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    /// A watcher's reload while the settings table says `enabled = false`: reads only the
    /// file holding the table. Nothing happens (no event) unless that file's bytes changed;
    /// then its table alone is read and put into effect, no config is applied. `None` when
    /// reloading is back on: the caller then reloads everything, so that the saves made
    /// while paused apply.
    pub(super) fn paused(&mut self, trigger: Trigger, mode: Mode) -> Option<Finished<T>> {
        let origin = lock(&self.shared.settings).0.origin.clone()?;
        let seen = self.settings_seen.or_else(|| {
            self.seen
                .iter()
                .find(|(o, _)| *o == origin)
                .map(|(_, revision)| *revision)
        });
        let skip = |why: &str| {
            tracing::info!(target: "hotconf", file = %origin, "config change seen but not applied: reloading from the watcher is paused by the settings table (enabled = false){why}");
            Some(Finished {
                detected: None,
                event: None,
                applied: None,
                answer: AnswerKind::Event,
            })
        };
        let Some(read) = self.shared.read_one(&origin) else {
            // A file gone from its directory takes its table with it; embedded defaults
            // never change.
            return match origin.path() {
                Some(_) => None,
                None => skip(""),
            };
        };
        let document = match read {
            Ok(document) => document,
            Err(_) if mode == Mode::Settling => return Some(unsettled()),
            Err(problems) => {
                self.settings_seen = None;
                return Some(self.reject(trigger, vec![origin.to_string()], problems));
            }
        };
        if Some(document.revision) == seen {
            return skip("");
        }
        let revision = document.revision;
        let name = self.shared.settings_table.as_deref()?;
        let found = crate::layer::Layers::from_documents(vec![document], &self.shared.limits)
            .and_then(|mut layers| layers.take_settings(name));
        let found = match found {
            Ok(found) => found.unwrap_or_default(),
            Err(_) if mode == Mode::Settling => return Some(unsettled()),
            Err(mut problems) => {
                for problem in &mut problems.0 {
                    self.shared.policy.secrets().redact_problem(problem);
                }
                self.settings_seen = Some(revision);
                return Some(self.reject(trigger, vec![origin.to_string()], problems));
            }
        };
        self.settings_seen = Some(revision);
        self.shared.apply_settings(found);
        if self.shared.file_enabled.load(Ordering::SeqCst) {
            return None;
        }
        skip(" (its settings were read)")
    }
}
