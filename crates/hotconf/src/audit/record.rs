//! One audit record: a line of JSON for a reload attempt or for a fail-closed intent.
//! Pure: no clock, no I/O.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};

use crate::diff::Change;
use crate::error::Problem;
use crate::event::{Event, Outcome, Timestamp, Trigger};
use crate::path::ConfigPath;

/// What a record says, borrowed from an event or an intent.
pub(crate) struct Attempt<'a> {
    pub(crate) time: SystemTime,
    /// `None` for an intent: it is written before its event is numbered.
    pub(crate) seq: Option<u64>,
    pub(crate) trigger: Trigger,
    pub(crate) by: Option<&'a str>,
    pub(crate) version_before: u64,
    pub(crate) version_after: u64,
    pub(crate) outcome: &'a str,
    pub(crate) stage: Option<&'a str>,
    pub(crate) files: &'a [String],
    pub(crate) revisions: &'a [u64],
    /// Secret values as HMACs, or redacted when no fingerprint was set.
    pub(crate) changes: &'a [Change],
    /// What only an attempt's event has: `None` for an intent.
    pub(crate) result: Option<Result<'a>>,
}

/// The end of an attempt: what an intent cannot know yet.
pub(crate) struct Result<'a> {
    pub(crate) pending: &'a [ConfigPath],
    pub(crate) errors: &'a [Problem],
    pub(crate) warnings: &'a [Problem],
    pub(crate) duration: Duration,
}

impl<'a> Attempt<'a> {
    /// The record of an event; `None` for events that are not attempts (`detected`).
    pub(crate) fn of_event(event: &'a Event) -> Option<Self> {
        if matches!(event.outcome, Outcome::Detected | Outcome::Queued) {
            return None;
        }
        // Never "***" placeholders when the HMAC form is there, never clear values.
        let changes = if event.hmac_changes.is_empty() {
            &event.changes
        } else {
            &event.hmac_changes
        };
        Some(Self {
            time: event.at,
            seq: Some(event.seq),
            trigger: event.trigger,
            by: event.by.as_deref(),
            // Nothing was live before the first load, whatever the event says.
            version_before: if event.outcome == Outcome::Loaded {
                0
            } else {
                event.version_before
            },
            version_after: event.version,
            outcome: event.outcome.as_str(),
            stage: (event.outcome == Outcome::Rejected)
                .then(|| event.stage.map(|stage| stage.as_str()))
                .flatten(),
            files: &event.files,
            revisions: &event.revisions,
            changes,
            result: Some(Result {
                pending: &event.pending,
                errors: &event.errors,
                warnings: &event.warnings,
                duration: event.elapsed,
            }),
        })
    }

    /// The record of a fail-closed intent, written before the swap.
    pub(crate) fn of_intent(intent: &'a crate::IntentRecord) -> Self {
        Self {
            time: intent.at,
            seq: None,
            trigger: intent.trigger,
            by: intent.by.as_deref(),
            version_before: intent.version_before,
            version_after: intent.version_after,
            outcome: "intent",
            stage: None,
            files: &intent.files,
            revisions: &intent.revisions,
            changes: &intent.changes,
            result: None,
        }
    }

    /// The record as one line of JSON, its fields in a fixed order; `file_hash` writes a
    /// document's revision.
    pub(crate) fn to_line(
        &self,
        config: Option<&str>,
        file_hash: &dyn Fn(u64) -> String,
    ) -> String {
        let mut record = Map::new();
        record.insert("time".into(), Timestamp(self.time).to_string().into());
        if let Some(seq) = self.seq {
            record.insert("seq".into(), seq.into());
        }
        if let Some(config) = config {
            record.insert("config".into(), config.into());
        }
        record.insert("trigger".into(), self.trigger.as_str().into());
        record.insert("by".into(), self.by.map_or(Value::Null, Value::from));
        record.insert("version_before".into(), self.version_before.into());
        record.insert("version_after".into(), self.version_after.into());
        record.insert("outcome".into(), self.outcome.into());
        if let Some(stage) = self.stage {
            record.insert("stage".into(), stage.into());
        }
        record.insert("files".into(), files(self.files, self.revisions, file_hash));
        record.insert("changes".into(), json!(self.changes));
        if let Some(result) = &self.result {
            record.insert("pending".into(), json!(result.pending));
            record.insert("errors".into(), problems(result.errors));
            record.insert("warnings".into(), problems(result.warnings));
            let micros = u64::try_from(result.duration.as_micros()).unwrap_or(u64::MAX);
            record.insert("duration_us".into(), micros.into());
        }
        Value::Object(record).to_string()
    }
}

/// `[{"file": …, "hash": …}]`; no hash when the source gave none.
fn files(files: &[String], revisions: &[u64], file_hash: &dyn Fn(u64) -> String) -> Value {
    files
        .iter()
        .enumerate()
        .map(|(index, file)| match revisions.get(index) {
            Some(revision) => json!({"file": file, "hash": file_hash(*revision)}),
            None => json!({ "file": file }),
        })
        .collect()
}

/// Problems as the events write them, plus the stage that found each (`kind`).
fn problems(problems: &[Problem]) -> Value {
    problems
        .iter()
        .map(|problem| {
            let mut value = json!(problem);
            if let Some(object) = value.as_object_mut() {
                object.insert("kind".into(), json!(problem.kind));
            }
            value
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::ProblemKind;
    use std::time::UNIX_EPOCH;

    fn change(path: &str, old: Value, new: Value) -> Change {
        Change::modified(path.parse().unwrap(), old, new)
    }

    #[test]
    fn an_attempt_record_has_every_field_in_order() {
        let files = ["app.toml".to_owned(), "extra.toml".to_owned()];
        let changes = [change("rpm", json!(60), json!(120))];
        let errors = [
            Problem::error(ProblemKind::Validation, "must be greater than 0")
                .at_path("rpm".parse().unwrap())
                .at_location("app.toml", 1, 7),
        ];
        let warnings = [Problem::warning(
            ProblemKind::Callback,
            "callback #0 panicked",
        )];
        let pending = ["server.listen".parse().unwrap()];
        let attempt = Attempt {
            time: UNIX_EPOCH + Duration::from_millis(1500),
            seq: Some(4),
            trigger: Trigger::Api,
            by: Some("api 127.0.0.1:5000"),
            version_before: 2,
            version_after: 2,
            outcome: "rejected",
            stage: Some("validate"),
            files: &files,
            revisions: &[0xabc],
            changes: &changes,
            result: Some(Result {
                pending: &pending,
                errors: &errors,
                warnings: &warnings,
                duration: Duration::from_micros(412),
            }),
        };
        assert_eq!(
            attempt.to_line(Some("app"), &|revision| format!("{revision:016x}")),
            concat!(
                r#"{"time":"1970-01-01T00:00:01.500Z","seq":4,"config":"app","trigger":"api","by":"api 127.0.0.1:5000","#,
                r#""version_before":2,"version_after":2,"outcome":"rejected","stage":"validate","#,
                r#""files":[{"file":"app.toml","hash":"0000000000000abc"},{"file":"extra.toml"}],"#,
                r#""changes":[{"path":"rpm","kind":"modified","old":60,"new":120}],"pending":["server.listen"],"#,
                r#""errors":[{"file":"app.toml","line":1,"column":7,"path":"rpm","message":"must be greater than 0","kind":"validation"}],"#,
                r#""warnings":[{"severity":"warning","message":"callback #0 panicked","kind":"callback"}],"duration_us":412}"#
            )
        );
    }

    #[test]
    fn an_intent_record_has_no_seq_and_no_result() {
        let attempt = Attempt {
            time: UNIX_EPOCH,
            seq: None,
            trigger: Trigger::Watch,
            by: None,
            version_before: 1,
            version_after: 2,
            outcome: "intent",
            stage: None,
            files: &[],
            revisions: &[],
            changes: &[],
            result: None,
        };
        assert_eq!(
            attempt.to_line(None, &|_| unreachable!("no files")),
            r#"{"time":"1970-01-01T00:00:00.000Z","trigger":"watch","by":null,"version_before":1,"version_after":2,"outcome":"intent","files":[],"changes":[]}"#
        );
    }
}
