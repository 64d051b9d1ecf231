//! The seams operations are built on: attempts kept by `seq`, the status, local overrides,
//! the `Control` handle (submitted configs, `If-Match`, secrets sent back as `***`), the
//! stage of a rejection, secret fingerprints and the intent step before the swap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{Fixture, next, observed};
use hotconf::source::Format;
use hotconf::{Error, Fingerprint, IntentRecord, Outcome, Stage, Trigger};

fn secret_fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.write("rpm = 60\n[db]\npassword = \"hunter2-distinctive\"\n");
    fixture
}

#[test]
fn every_attempt_is_kept_by_seq_with_its_stage() {
    let fixture = Fixture::new();
    let (reloader, events) = observed(fixture.builder());
    next(&events);
    fixture.write("rpm = \n");
    let parse = reloader.reload().unwrap_err();
    assert!(matches!(parse, Error::Invalid(_)));
    fixture.write("rpm = 0\n");
    reloader.reload().unwrap_err();
    fixture.write("rpm = \"many\"\n");
    reloader.reload().unwrap_err();
    fixture.write("rpm = 90\n");
    reloader.reload().unwrap();
    let attempts = reloader.attempts();
    let outcomes: Vec<(u64, Outcome, Option<Stage>)> = attempts
        .iter()
        .map(|e| (e.seq, e.outcome, e.stage))
        .collect();
    // Detected announcements take seqs but are not attempts.
    let kept: Vec<(Outcome, Option<Stage>)> = outcomes.iter().map(|(_, o, s)| (*o, *s)).collect();
    assert_eq!(
        kept,
        [
            (Outcome::Loaded, None),
            (Outcome::Rejected, Some(Stage::Parse)),
            (Outcome::Rejected, Some(Stage::Validate)),
            (Outcome::Rejected, Some(Stage::Deserialize)),
            (Outcome::Applied, None),
        ]
    );
    assert!(outcomes.windows(2).all(|w| w[0].0 < w[1].0));
    let rejected = &attempts[1];
    assert_eq!(
        reloader.attempt(rejected.seq).unwrap().errors,
        rejected.errors
    );
    assert_eq!(rejected.errors[0].line, Some(1));
    assert!(reloader.attempt(9_999).is_none());
    let since: Vec<u64> = reloader
        .events_since(attempts[2].seq)
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(since, [attempts[3].seq, attempts[4].seq]);
    let json = serde_json::to_value(&attempts[1]).unwrap();
    assert_eq!(json["stage"], "parse");
    let status = reloader.status();
    assert_eq!(status.last.unwrap().outcome, Outcome::Applied);
    assert_eq!(status.version, 2);
}

#[test]
fn the_attempt_buffer_is_bounded() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().attempts(2).build().unwrap();
    for _ in 0..3 {
        reloader.reload().unwrap();
    }
    let seqs: Vec<u64> = reloader.attempts().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [3, 4]);
}

#[test]
fn keeping_no_attempts_keeps_none() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().attempts(0).build().unwrap();
    reloader.reload().unwrap();
    assert!(reloader.attempts().is_empty());
    assert!(reloader.status().last.is_none());
}

#[test]
fn events_carry_the_config_hash_and_the_version_before() {
    let fixture = Fixture::new();
    let (reloader, events) = observed(fixture.builder());
    let loaded = next(&events);
    fixture.write("rpm = 61\n");
    let applied = reloader.reload().unwrap();
    assert_eq!((applied.version_before, applied.version), (1, 2));
    assert_ne!(loaded.hash, applied.hash);
    fixture.write("rpm = 60\n");
    let back = reloader.reload().unwrap();
    assert_eq!(back.hash, loaded.hash, "equal configs hash alike");
    assert_eq!(reloader.status().hash, back.hash);
    assert_eq!(reloader.control().config().hash, back.hash);
    assert_eq!(back.revisions.len(), 1);
}

#[test]
fn put_validates_keeps_secrets_sent_back_and_checks_if_match() {
    let fixture = secret_fixture();
    let reloader = fixture.builder().build().unwrap();
    let control = reloader.control();
    let view = control.config();
    assert_eq!(view.json["db"]["password"], "***");
    assert!(!view.json.to_string().contains("hunter2"));

    // A stale tag changes nothing.
    let stale = control
        .put(
            Format::Json,
            br#"{"rpm": 5}"#.to_vec(),
            Some((view.version, view.hash ^ 1)),
            None,
        )
        .unwrap_err();
    assert!(matches!(stale, Error::Conflict { .. }), "{stale}");
    assert_eq!(reloader.current().version(), 1);

    // An invalid document is located in the submitted text.
    let invalid = control
        .put(
            Format::Toml,
            b"rpm = 60\nsize = \"big\"\n".to_vec(),
            None,
            None,
        )
        .unwrap_err();
    let Error::Invalid(problems) = invalid else {
        panic!("{invalid}")
    };
    assert_eq!(problems.0[0].file.as_deref(), Some("api"));
    assert_eq!(problems.0[0].line, Some(2));
    assert_eq!(reloader.current().version(), 1);

    let mut sent = view.json.clone();
    sent["rpm"] = 120.into();
    let event = control
        .put(
            Format::Json,
            sent.to_string().into_bytes(),
            Some((view.version, view.hash)),
            Some("api 127.0.0.1:1".into()),
        )
        .unwrap();
    assert_eq!(
        (event.outcome, event.trigger),
        (Outcome::Applied, Trigger::Api)
    );
    assert_eq!(event.by.as_deref(), Some("api 127.0.0.1:1"));
    let current = reloader.current();
    assert_eq!(current.config().rpm, 120);
    assert_eq!(current.config().db.password, "hunter2-distinctive");
    let local = reloader.status().local_override.unwrap();
    assert_eq!((local.version, local.trigger), (2, Trigger::Api));

    // A secret sent as *** where there is no live value is refused, located.
    let nothing_live = control
        .put(
            Format::Json,
            br#"{"rpm": 1, "api_token": "***"}"#.to_vec(),
            None,
            None,
        )
        .unwrap_err();
    assert!(
        nothing_live.to_string().contains("api_token"),
        "{nothing_live}"
    );
}

#[test]
fn a_local_override_lasts_until_the_sources_change() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().build().unwrap();
    fixture.write("rpm = 61\n");
    reloader.reload().unwrap();
    assert!(reloader.status().local_override.is_none());
    let rolled = reloader
        .control()
        .rollback_to(1, Some("ops".into()))
        .unwrap();
    assert_eq!(rolled.version, 3);
    let local = reloader.status().local_override.unwrap();
    assert_eq!(
        (local.version, local.trigger, local.by.as_deref()),
        (3, Trigger::Rollback, Some("ops"))
    );
    assert_eq!(reloader.current().config().rpm, 60);
    let json = serde_json::to_value(reloader.status()).unwrap();
    assert_eq!(json["local_override"]["trigger"], "rollback");
    // A rejected reload of the sources leaves the override live.
    fixture.write("rpm = 0\n");
    reloader.reload().unwrap_err();
    assert!(reloader.status().local_override.is_some());
    fixture.write("rpm = 62\n");
    reloader.reload().unwrap();
    assert!(reloader.status().local_override.is_none());
    assert_eq!(reloader.current().config().rpm, 62);
}

#[test]
fn plan_document_is_a_dry_run() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().build().unwrap();
    let plan = reloader
        .control()
        .plan_document(Format::Toml, b"rpm = 70\n".to_vec());
    assert_eq!(plan.outcome, Outcome::Applied);
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(reloader.current().version(), 1);
    let bad = reloader
        .control()
        .plan_document(Format::Toml, b"rpm = 0\n".to_vec());
    assert_eq!(bad.outcome, Outcome::Rejected);
    assert_eq!(bad.errors[0].file.as_deref(), Some("api"));
}

fn fake_hmac() -> Fingerprint {
    Arc::new(|value: &serde_json::Value| format!("fp:{}", value.to_string().len()))
}

#[test]
fn secrets_are_fingerprinted_for_the_audit_only() {
    let fixture = secret_fixture();
    let (reloader, events) = observed(fixture.builder().fingerprint(fake_hmac()));
    next(&events);
    fixture.write("rpm = 60\n[db]\npassword = \"longer-hunter2-distinctive\"\n");
    let event = reloader.reload().unwrap();
    assert_eq!(event.changes[0].new, Some("***".into()));
    assert_eq!(event.hmac_changes[0].old, Some("fp:21".into()));
    assert_eq!(event.hmac_changes[0].new, Some("fp:28".into()));
    assert!(
        !event.to_json().contains("fp:"),
        "the fingerprint stays out of the event JSON"
    );
    let plain = Fixture::new();
    let without = plain.builder().build().unwrap();
    plain.write("rpm = 1\n");
    assert!(without.reload().unwrap().hmac_changes.is_empty());
}

#[test]
fn the_intent_step_runs_before_the_swap_and_can_refuse_it() {
    let fixture = secret_fixture();
    let records: Arc<Mutex<Vec<IntentRecord>>> = Arc::default();
    let refuse = Arc::new(AtomicUsize::new(0));
    let (seen, refusing) = (Arc::clone(&records), Arc::clone(&refuse));
    let reloader = fixture
        .builder()
        .fingerprint(fake_hmac())
        .intent(Arc::new(move |record: &IntentRecord| {
            seen.lock().unwrap().push(record.clone());
            if refusing.load(Ordering::SeqCst) > 0 {
                Err("disk full".to_owned())
            } else {
                Ok(())
            }
        }))
        .build()
        .unwrap();
    fixture.write("rpm = 61\n[db]\npassword = \"x\"\n");
    reloader.reload().unwrap();
    {
        let records = records.lock().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(
            (records[0].version_before, records[0].version_after),
            (1, 2)
        );
        let password = records[0]
            .changes
            .iter()
            .find(|c| c.path.to_string() == "db.password");
        assert_eq!(password.unwrap().new, Some("fp:3".into()));
    }
    refuse.store(1, Ordering::SeqCst);
    fixture.write("rpm = 62\n[db]\npassword = \"x\"\n");
    let refused = reloader.reload().unwrap_err();
    assert!(refused.to_string().contains("disk full"), "{refused}");
    assert_eq!(reloader.current().config().rpm, 61, "the old config stays");
    let last = reloader.status().last.unwrap();
    assert_eq!(
        (last.outcome, last.stage),
        (Outcome::Rejected, Some(Stage::Audit))
    );
    // Unchanged attempts need no intent record.
    refuse.store(0, Ordering::SeqCst);
    let before = records.lock().unwrap().len();
    fixture.write("rpm = 61\n[db]\npassword = \"x\"\n");
    reloader.reload().unwrap();
    assert_eq!(records.lock().unwrap().len(), before);
}

#[test]
fn is_running_until_shut_down() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().build().unwrap();
    assert!(reloader.is_running() && reloader.control().is_running());
    reloader.shutdown();
    assert!(!reloader.is_running() && !reloader.control().is_running());
}

#[test]
fn a_secret_written_where_its_table_belongs_is_not_quoted() {
    let fixture = secret_fixture();
    let reloader = fixture.builder().build().unwrap();
    fixture.write("rpm = 60\ndb = \"XYZZY-not-a-table\"\n");
    let error = reloader.reload().unwrap_err().to_string();
    assert!(!error.contains("XYZZY"), "{error}");
    assert!(error.contains("app.toml:2:"), "still located: {error}");
    let last = reloader.status().last.unwrap();
    assert!(!last.to_json().contains("XYZZY"));
}

#[test]
fn control_answers_for_the_reloader() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().name("gateway").build().unwrap();
    let control = reloader.control();
    assert_eq!(control.name(), "gateway");
    assert_eq!(control.status().name, "gateway");
    control.disable();
    assert!(!control.is_enabled() && !reloader.is_enabled());
    control.enable();
    assert!(control.is_enabled());
    // Served after enable()'s catch-up read: requests are served in order.
    assert_eq!(control.reload(None).unwrap().outcome, Outcome::Unchanged);
    fixture.write("rpm = 0\n");
    let rejected = control.reload(Some("ops".into())).unwrap_err();
    assert!(matches!(rejected, Error::Invalid(_)));
    let attempts = control.attempts();
    assert_eq!(attempts.len(), 3);
    let last = &attempts[2];
    assert_eq!(
        (last.trigger, last.by.as_deref()),
        (Trigger::Api, Some("ops"))
    );
    assert_eq!(control.attempt(last.seq).unwrap().seq, last.seq);
    assert!(control.attempt(last.seq + 1).is_none());
    assert_eq!(control.events_since(attempts[1].seq).len(), 1);
    assert!(control.events_since(last.seq).is_empty());
    assert_eq!(control.plan().outcome, Outcome::Rejected);
    let mut events = control.events();
    fixture.write("rpm = 61\n");
    control.reload(None).unwrap();
    let detected = events.try_recv().unwrap();
    assert_eq!(detected.outcome, Outcome::Detected);
    let event = events.try_recv().unwrap();
    assert_eq!((event.outcome, event.version), (Outcome::Applied, 2));
}
