//! The engine's seams: a source that pushes, resources published with their config, the
//! builder's schema, secrets kept out of every path, non-finite floats, and which request
//! names a coalesced reload.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hotconf::source::{Document, Format, Origin, Source};
use hotconf::{
    Limits, Outcome, PrepareError, Problem, Pusher, Reloader, Resource, SourceHealth, Trigger,
    Validate,
};
use serde::{Deserialize, Serialize};

/// A source that pushes from memory, as an etcd watch would; the test keeps the pusher.
#[derive(Debug, Default, Clone)]
struct Memory {
    pusher: Arc<Mutex<Option<Pusher>>>,
}

impl Source for Memory {
    fn read(&self, _limits: &Limits) -> Result<Vec<Document>, Problem> {
        Ok(vec![document("rpm = 60\n")])
    }

    fn start(&self, pusher: Pusher) -> Result<(), Problem> {
        *self.pusher.lock().unwrap() = Some(pusher);
        Ok(())
    }
}

fn document(text: &str) -> Document {
    Document::new(
        Origin::Key("/app/config.toml".into()),
        Format::Toml,
        text.as_bytes().to_vec(),
    )
}

#[test]
fn a_pushing_source_applies_exactly_what_it_pushed() {
    let memory = Memory::default();
    let (reloader, events) = observed(Reloader::<Config>::builder().source(memory.clone()));
    assert_eq!(next(&events).outcome, Outcome::Loaded);
    let pusher = memory.pusher.lock().unwrap().clone().expect("started");

    assert!(pusher.push(vec![document("rpm = 70\n")], 7));
    let applied = next(&events);
    assert_eq!(
        (applied.outcome, applied.trigger),
        (Outcome::Applied, Trigger::Source)
    );
    assert_eq!(applied.files, ["/app/config.toml"]);
    assert_eq!(reloader.current().rpm, 70);
    assert_eq!(reloader.status().sources[0].revision, Some(7));

    // The same bytes again give nothing; an explicit reload uses the pushed documents.
    assert!(pusher.push(vec![document("rpm = 70\n")], 8));
    let marker = reloader.reload().unwrap();
    let next_event = next(&events);
    assert_eq!(
        (next_event.seq, next_event.trigger),
        (marker.seq, Trigger::Reload)
    );
    assert_eq!(
        marker.outcome,
        Outcome::Unchanged,
        "the push stands for the read"
    );

    // A bad push is rejected with the key as its origin; the last good config stays.
    assert!(pusher.push(vec![document("rpm = 0\n")], 9));
    let rejected = next(&events);
    assert_eq!(rejected.outcome, Outcome::Rejected);
    assert_eq!(
        rejected.errors[0].to_string(),
        "/app/config.toml:1:7: rpm: must be greater than 0"
    );
    assert_eq!(reloader.current().rpm, 70);

    assert_eq!(format!("{pusher:?}"), "Pusher { source: 0, .. }");
    assert_eq!(
        format!("{:?}", reloader.trigger_handle()),
        "TriggerHandle { .. }"
    );
    assert!(pusher.health(SourceHealth::Degraded("reconnecting".into())));
    let deadline = Instant::now() + DEADLINE;
    while reloader.status().sources[0].health == SourceHealth::Connected {
        assert!(Instant::now() < deadline, "health never shown");
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        reloader.status().sources[0].health,
        SourceHealth::Degraded("reconnecting".into())
    );
    assert!(events.try_recv().is_err(), "a health report is no reload");

    drop(reloader);
    assert!(
        !pusher.push(vec![document("rpm = 80\n")], 10),
        "the reloader is gone"
    );
}

/// Builds a pool of `size` connections; fails for 13.
struct Pool {
    builds: Arc<AtomicUsize>,
}

impl Resource<Config> for Pool {
    type Output = Vec<usize>;

    fn name(&self) -> &str {
        "pool"
    }

    fn paths(&self) -> Vec<String> {
        vec!["size".into()]
    }

    fn build(
        &self,
        config: &Config,
        live: Option<&Vec<usize>>,
    ) -> Result<Vec<usize>, PrepareError> {
        self.builds.fetch_add(1, Ordering::SeqCst);
        if config.size == 13 {
            return Err("13 connections is unlucky".into());
        }
        // Reuses the live connections, adds or drops the rest.
        let mut pool = live.cloned().unwrap_or_default();
        pool.resize(config.size, config.size);
        Ok(pool)
    }
}

#[test]
fn a_resource_is_published_with_its_config_and_carried_forward_when_unchanged() {
    let fixture = Fixture::new();
    fixture.write("rpm = 60\nsize = 2\n");
    let builds = Arc::new(AtomicUsize::new(0));
    let (builder, pool) = fixture.builder().resource(Pool {
        builds: Arc::clone(&builds),
    });
    let reloader = builder.build().unwrap();
    let handle = reloader.handle();
    assert_eq!(
        handle.load().resource(&pool).len(),
        2,
        "built on the first load"
    );

    // Readers never see a config with another config's pool.
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (handle, stop) = (handle.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let snapshot = handle.load();
                    assert_eq!(snapshot.resource(&pool).len(), snapshot.size);
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for size in 3..40 {
        fixture.write(&format!("rpm = 60\nsize = {size}\n"));
        let _ = reloader.reload();
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    assert_eq!(
        reloader.current().size,
        39,
        "13 was refused, the rest applied"
    );

    // A change elsewhere carries the same pool forward, unbuilt.
    let before = builds.load(Ordering::SeqCst);
    let pool_before: *const Vec<usize> = handle.load().resource(&pool);
    fixture.write("rpm = 61\nsize = 39\n");
    reloader.reload().unwrap();
    assert_eq!(builds.load(Ordering::SeqCst), before);
    assert!(std::ptr::eq(pool_before, handle.load().resource(&pool)));
}

#[test]
fn a_failing_resource_fails_the_first_load() {
    let fixture = Fixture::new();
    fixture.write("rpm = 60\nsize = 13\n");
    let (builder, _pool) = fixture.builder().resource(Pool {
        builds: Arc::default(),
    });
    let error = builder.build().unwrap_err();
    assert_eq!(
        error.problems()[0].message,
        "component 'pool' refused the config: 13 connections is unlucky"
    );
}

#[test]
fn secrets_are_redacted_on_every_path() {
    let fixture = Fixture::new();
    fixture.write("rpm = 60\n[db]\npassword = \"hunter2\"\n");
    let (updates, got) = mpsc::channel();
    let updates = Mutex::new(updates);
    let (reloader, events) = observed(fixture.builder());
    reloader.on_change(move |update| {
        let text = format!("{update:?} {:?} {:?}", update.changes, update.new);
        let _ = updates.lock().unwrap().send(text);
    });
    fixture.write("rpm = 61\n[db]\npassword = \"swordfish\"\n");
    let plan = reloader.plan();
    let event = reloader.reload().unwrap();
    fixture.write("rpm = 61\n[db]\npassword = 1234\n");
    let rejected = reloader.reload().unwrap_err();
    let callback = got.recv_timeout(DEADLINE).unwrap();
    assert!(
        callback.starts_with("Update { old: 1, new: 2, changes: [Change { path: ConfigPath"),
        "Debug shows versions and changes: {callback}"
    );
    let history = serde_json::to_string(&reloader.history()).unwrap();
    let observed: Vec<String> = events.try_iter().map(|e| e.to_json()).collect();
    let everything = [
        format!("{plan:?}"),
        serde_json::to_string(&plan).unwrap(),
        event.to_json(),
        format!("{event:?}"),
        rejected.to_string(),
        format!("{rejected:?}"),
        callback,
        history,
        observed.join("\n"),
        format!("{:?}", reloader.current()),
        format!("{reloader:?}"),
    ];
    for (index, text) in everything.iter().enumerate() {
        for secret in ["hunter2", "swordfish", "1234"] {
            assert!(
                !text.contains(secret),
                "path {index} leaks {secret}: {text}"
            );
        }
    }
    assert!(
        everything[2].contains(r#""path":"db.password""#),
        "the change itself is shown"
    );
}

#[test]
fn non_finite_floats_survive_reloads_rollbacks_and_held_back_changes() {
    #[derive(Debug, Deserialize, Serialize)]
    struct Floats {
        listen: String,
        ceiling: f64,
        ratio: f64,
    }
    impl Validate for Floats {}
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    let write = |text: &str| fs::write(&path, text).unwrap();
    write("listen = \"a\"\nceiling = inf\nratio = 0.5\n");
    let reloader = Reloader::<Floats>::builder()
        .file(&path)
        .restart_required("listen")
        .build()
        .unwrap();
    assert!(reloader.current().ceiling.is_infinite());

    write("listen = \"a\"\nceiling = -inf\nratio = nan\n");
    let event = reloader.reload().unwrap();
    let changes: Vec<String> = event.changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        changes,
        [r#"~ ceiling: "inf" -> "-inf""#, r#"~ ratio: 0.5 -> "nan""#]
    );
    assert!(reloader.current().ratio.is_nan());

    // A restart-required change is held back while infinity stays what it was.
    write("listen = \"b\"\nceiling = -inf\nratio = 2.0\n");
    let event = reloader.reload().unwrap();
    assert_eq!(event.pending, ["listen".parse().unwrap()]);
    let current = reloader.current();
    assert_eq!((current.listen.as_str(), current.ratio), ("a", 2.0));
    assert_eq!(current.ceiling, f64::NEG_INFINITY);

    // Rolling back to version 1 brings positive infinity back.
    let event = reloader.rollback_to(1).unwrap();
    assert_eq!(event.outcome, Outcome::Applied);
    assert_eq!(reloader.current().ceiling, f64::INFINITY);
    assert_eq!(reloader.current().ratio, 0.5);
}

#[cfg(feature = "json-schema")]
#[test]
fn the_builders_schema_rejects_a_reload_with_located_errors() {
    let fixture = Fixture::new();
    let schema = hotconf::schema::Schema::from_json(&serde_json::json!({
        "properties": {"rpm": {"type": "integer", "maximum": 1000}}
    }))
    .unwrap();
    let reloader = fixture.builder().schema(schema).build().unwrap();
    fixture.write("rpm = 5000\n");
    let error = reloader.reload().unwrap_err();
    assert_eq!(
        error.problems()[0].to_string(),
        format!(
            "{}:1:7: rpm: 5000 is greater than the maximum of 1000",
            fixture.path.display()
        )
    );
    assert_eq!(reloader.current().rpm, 60);
    // A programmatic change is checked against the schema too.
    let error = reloader.update(|c| c.rpm = 2000).unwrap_err();
    assert!(
        error.problems()[0].message.contains("maximum of 1000"),
        "{error}"
    );
    fixture.write("rpm = 500\n");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Applied);
}

#[test]
fn a_waiting_reload_that_insists_names_the_coalesced_reload() {
    // A push of the bytes already seen asks for a reload only if something changed; an
    // explicit request insists. Served together, the reload runs and reports, whichever
    // came first, and carries the explicit request's trigger.
    for explicit_first in [false, true] {
        let memory = Memory::default();
        let (reloader, events) = observed(Reloader::<Config>::builder().source(memory.clone()));
        assert_eq!(next(&events).outcome, Outcome::Loaded);
        let pusher = memory.pusher.lock().unwrap().clone().unwrap();
        let hold = reloader.hold();
        let push = || assert!(pusher.push(vec![document("rpm = 60\n")], 1));
        let explicit = || assert!(reloader.trigger_handle().request(Trigger::Api));
        if explicit_first {
            explicit();
            push();
        } else {
            push();
            explicit();
        }
        // Queued behind each other, the two may merge before the gate or in it: one or
        // two `deferred` events, then one reload when the hold goes.
        drop(hold);
        let mut event = next(&events);
        while event.outcome == Outcome::Deferred {
            event = next(&events);
        }
        assert_eq!(
            (event.outcome, event.trigger),
            (Outcome::Unchanged, Trigger::Api),
            "explicit first: {explicit_first}"
        );
        // Nothing else: the next event is a marker's.
        let marker = reloader.reload().unwrap();
        assert_eq!(next(&events).seq, marker.seq);
    }
}
