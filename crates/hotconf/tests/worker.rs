//! The reload worker and its seams: every method called from inside a callback and an
//! observer, events numbered without gaps from concurrent triggers, a source that pushes,
//! resources published with their config, validation timeouts, shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hotconf::source::{Document, Format, Origin, Source};
use hotconf::{
    Error, Event, Limits, Outcome, PrepareError, Problem, Pusher, Reloader, Report, Resource,
    SourceHealth, Trigger, Validate,
};
use serde::{Deserialize, Serialize};

const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
struct Config {
    rpm: u32,
    #[serde(default)]
    size: usize,
    #[serde(default)]
    db: Db,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
struct Db {
    #[serde(default)]
    password: String,
}

/// Rules that can be told to stall, to test the validation timeout.
static STALL: AtomicBool = AtomicBool::new(false);

impl Validate for Config {
    fn validate(&self, report: &mut Report) {
        if self.rpm == 0 {
            report.error("rpm", "must be greater than 0");
        }
        if self.rpm == 999_999 {
            while STALL.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.toml");
        fs::write(&path, "rpm = 60\n").unwrap();
        Self { _dir: dir, path }
    }

    fn write(&self, text: &str) {
        fs::write(&self.path, text).unwrap();
    }

    fn builder(&self) -> hotconf::ReloaderBuilder<Config> {
        Reloader::<Config>::builder().file(&self.path)
    }
}

/// Every event an observer sees, on a channel that can be waited on.
fn observed(builder: hotconf::ReloaderBuilder<Config>) -> (Reloader<Config>, Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let reloader = builder
        .observer(move |event: &Event| {
            let _ = tx.lock().unwrap().send(event.clone());
        })
        .build()
        .unwrap();
    (reloader, rx)
}

/// The next event, `detected` ones included.
fn next_any(events: &Receiver<Event>) -> Event {
    events.recv_timeout(DEADLINE).expect("an event within 10 s")
}

/// The next attempt's event (`detected` announcements skipped).
fn next(events: &Receiver<Event>) -> Event {
    loop {
        let event = next_any(events);
        if event.outcome != Outcome::Detected {
            return event;
        }
    }
}

#[test]
fn observers_see_every_event_from_the_first_load_numbered_without_gaps() {
    let fixture = Fixture::new();
    let (reloader, events) = observed(fixture.builder());
    let loaded = next(&events);
    assert_eq!(
        (loaded.outcome, loaded.seq, loaded.version),
        (Outcome::Loaded, 1, 1)
    );
    assert_eq!(reloader.loaded_event().seq, 1);

    fixture.write("rpm = 0\n");
    assert!(reloader.reload().is_err());
    fixture.write("rpm = 0\n# same config, other bytes\n");
    assert!(reloader.reload().is_err());
    fixture.write("rpm = 70\n");
    reloader.reload().unwrap();
    reloader.reload().unwrap();
    let seen: Vec<(u64, Outcome, u64)> = (0..7)
        .map(|_| next_any(&events))
        .map(|e| (e.seq, e.outcome, e.version))
        .collect();
    // Each change of the file is announced before its attempt; a reload of the same
    // bytes announces nothing.
    assert_eq!(
        seen,
        [
            (2, Outcome::Detected, 1),
            (3, Outcome::Rejected, 1),
            (4, Outcome::Detected, 1),
            (5, Outcome::Rejected, 1),
            (6, Outcome::Detected, 1),
            (7, Outcome::Applied, 2),
            (8, Outcome::Unchanged, 2),
        ]
    );
    assert!(events.try_recv().is_err(), "nothing else");
}

/// What a method called from inside the worker returned.
type Calls = Vec<(&'static str, String)>;

/// Calls every method of the reloader and records what each returned.
fn call_everything(reloader: &Reloader<Config>) -> Calls {
    let mut calls: Calls = Vec::new();
    let mut record = |name, value: String| calls.push((name, value));
    record(
        "reload",
        format!("{:?}", reloader.reload().map(|e| e.outcome)),
    );
    record(
        "reload_with",
        format!(
            "{:?}",
            reloader.reload_with(Trigger::Api).map(|e| e.outcome)
        ),
    );
    let mut config = reloader.current().config().clone();
    config.rpm += 1000;
    record(
        "apply",
        format!("{:?}", reloader.apply(config).map(|e| e.outcome)),
    );
    record(
        "update",
        format!("{:?}", reloader.update(|c| c.rpm += 1).map(|e| e.outcome)),
    );
    record(
        "rollback_to",
        format!("{:?}", reloader.rollback_to(1).map(|e| e.outcome)),
    );
    record("history", format!("{}", reloader.history().len()));
    record("status", format!("{}", reloader.status().version));
    record("plan", format!("{:?}", reloader.plan().outcome));
    record("save", format!("{:?}", reloader.save().is_ok()));
    let hold = reloader.hold();
    record("hold", format!("{}", reloader.status().holds));
    drop(hold);
    reloader.on_change(|_| {});
    reloader.observe(|_: &Event| {});
    record("current", format!("{}", reloader.current().version()));
    record("handle", format!("{}", reloader.handle().load().version()));
    record(
        "subscribe",
        format!("{}", reloader.subscribe().borrow().version()),
    );
    drop(reloader.events());
    record(
        "trigger",
        format!("{}", reloader.trigger_handle().request(Trigger::Api)),
    );
    record("watch", format!("{:?}", reloader.watch().is_ok()));
    reloader.unwatch();
    record("loaded_event", format!("{}", reloader.loaded_event().seq));
    calls
}

fn check_calls(calls: &Calls) {
    let get = |name: &str| calls.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    // Methods that wait for the worker queue their request and say so.
    for name in ["reload", "reload_with", "apply", "update", "rollback_to"] {
        assert_eq!(get(name), "Ok(Queued)", "{name}");
    }
    assert_eq!(
        get("plan"),
        "Unchanged",
        "the file holds what was just applied"
    );
    assert_eq!(get("save"), "true");
    assert_eq!(get("hold"), "1");
    assert_eq!(get("watch"), "true");
    assert_eq!(get("trigger"), "true");
}

#[test]
fn every_method_can_be_called_from_a_callback_and_an_observer() {
    for from_observer in [false, true] {
        let fixture = Fixture::new();
        let reloader = fixture.builder().build().unwrap();
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let once = AtomicBool::new(false);
        // The closure keeps a clone: a cycle that only this test's process end breaks.
        let inside = reloader.clone();
        let body = move || {
            if !once.swap(true, Ordering::SeqCst) {
                let calls = call_everything(&inside);
                let _ = tx.lock().unwrap().send(calls);
            }
        };
        if from_observer {
            reloader.observe(move |event: &Event| {
                if event.outcome == Outcome::Applied {
                    body();
                }
            });
        } else {
            reloader.on_change(move |_| body());
        }
        let mut events = reloader.events();
        fixture.write("rpm = 70\n");
        reloader.reload().unwrap();
        let calls = rx
            .recv_timeout(DEADLINE)
            .expect("no deadlock inside the worker");
        check_calls(&calls);
        // The queued requests run after the event that called them went out.
        let deadline = Instant::now() + DEADLINE;
        let mut triggers = Vec::new();
        let done = |t: &Vec<(Trigger, Outcome)>| {
            t.contains(&(Trigger::Rollback, Outcome::Applied))
                && t.contains(&(Trigger::Apply, Outcome::Applied))
        };
        while !done(&triggers) && Instant::now() < deadline {
            if let Ok(event) = events.try_recv() {
                triggers.push((event.trigger, event.outcome));
            } else {
                thread::sleep(Duration::from_millis(2));
            }
        }
        assert!(
            triggers.contains(&(Trigger::Rollback, Outcome::Applied)),
            "{triggers:?}"
        );
        assert!(
            triggers.contains(&(Trigger::Apply, Outcome::Applied)),
            "{triggers:?}"
        );
    }
}

/// Code written against arc-swap's `Access` takes a handle or a projection.
fn rpm_through_access(config: &impl arc_swap::access::Access<u32>) -> u32 {
    *config.load()
}

#[test]
fn handles_and_projections_implement_arc_swaps_access() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().build().unwrap();
    let handle = reloader.handle();
    let snapshot = arc_swap::access::Access::<hotconf::Snapshot<Config>>::load(&handle);
    assert_eq!(snapshot.version(), 1);
    let rpm = handle.map(|config: &Config| &config.rpm);
    assert_eq!(rpm_through_access(&rpm), 60);
    fixture.write("rpm = 70\n");
    reloader.reload().unwrap();
    assert_eq!(rpm_through_access(&rpm), 70);
}

#[test]
fn history_read_from_a_callback_holds_the_version_being_applied() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().build().unwrap();
    let inside = reloader.clone();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    reloader.on_change(move |update| {
        let versions: Vec<u64> = inside
            .history()
            .iter()
            .map(|r| r.snapshot.version())
            .collect();
        let status = inside.status().version;
        let _ = tx
            .lock()
            .unwrap()
            .send((update.new.version(), versions, status));
    });
    fixture.write("rpm = 70\n");
    reloader.reload().unwrap();
    let (new, versions, status) = rx.recv_timeout(DEADLINE).unwrap();
    assert_eq!((new, versions, status), (2, vec![1, 2], 2));
}

#[test]
fn a_panicking_observer_is_reported_and_the_worker_goes_on() {
    let fixture = Fixture::new();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let reloader = fixture
        .builder()
        .observer(|event: &Event| assert!(event.outcome != Outcome::Applied, "observer bug"))
        .observer(move |event: &Event| {
            if event.outcome != Outcome::Detected {
                let _ = tx.lock().unwrap().send(event.seq);
            }
        })
        .build()
        .unwrap();
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), 1);
    for rpm in [70, 80] {
        fixture.write(&format!("rpm = {rpm}\n"));
        let event = reloader.reload().unwrap();
        assert_eq!(event.outcome, Outcome::Applied);
        assert_eq!(
            rx.recv_timeout(DEADLINE).unwrap(),
            event.seq,
            "later observers still run"
        );
    }
    assert_eq!(reloader.current().rpm, 80);
}

/// One thread's requests: 0 reload, 1 update, 2 a trigger that does not wait, 3 an
/// invalid apply, 4 a hold taken and released.
fn run_ops(reloader: &Reloader<Config>, ops: &[u8]) {
    for (i, op) in ops.iter().enumerate() {
        let i = u32::try_from(i).unwrap();
        match op {
            0 => drop(reloader.reload()),
            1 => drop(reloader.update(move |c| c.rpm = 100 + i)),
            2 => drop(reloader.trigger_handle().request(Trigger::Api)),
            3 => drop(reloader.apply(Config {
                rpm: 0,
                size: 0,
                db: Db::default(),
            })),
            _ => drop(reloader.hold()),
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    #[test]
    fn concurrent_triggers_give_each_event_once_in_order_without_gaps(
        threads in proptest::collection::vec(proptest::collection::vec(0u8..5, 1..20), 1..5)
    ) {
        let fixture = Fixture::new();
        let (reloader, events) = observed(fixture.builder());
        let workers: Vec<_> = threads
            .into_iter()
            .map(|ops| {
                let reloader = reloader.clone();
                thread::spawn(move || run_ops(&reloader, &ops))
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        // A marker that runs after everything the threads queued.
        fixture.write("rpm = 12345\n");
        let marker = reloader.reload().unwrap();
        let mut seqs = Vec::new();
        let mut versions = Vec::new();
        loop {
            let event = next_any(&events);
            seqs.push(event.seq);
            versions.push(event.version);
            if event.seq == marker.seq {
                break;
            }
        }
        let expected: Vec<u64> = (1..=marker.seq).collect();
        proptest::prop_assert_eq!(seqs, expected, "every event once, in order");
        proptest::prop_assert!(versions.windows(2).all(|w| w[0] <= w[1]), "versions never go back");
        proptest::prop_assert!(events.try_recv().is_err(), "nothing after the marker");
    }
}

#[test]
fn concurrent_updates_are_applied_one_after_another_none_lost() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().build().unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let reloader = reloader.clone();
            thread::spawn(move || {
                for _ in 0..25 {
                    reloader.update(|c| c.rpm += 1).unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(reloader.current().rpm, 160);
    assert_eq!(reloader.current().version(), 101);
}

#[test]
fn concurrent_reloads_after_one_change_apply_it_once_and_answer_every_caller() {
    let fixture = Fixture::new();
    let (reloader, events) = observed(fixture.builder());
    assert_eq!(next(&events).outcome, Outcome::Loaded);
    fixture.write("rpm = 70\n");

    let start = std::sync::Barrier::new(8);
    let answers: Vec<Event> = thread::scope(|scope| {
        let callers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    reloader.reload()
                })
            })
            .collect();
        callers
            .into_iter()
            .map(|caller| caller.join().unwrap().expect("every caller gets Ok"))
            .collect()
    });

    // The marker: everything the reloads sent comes before this reload's event.
    let marker = reloader.reload_with(Trigger::Api).unwrap();
    let mut seen = Vec::new();
    loop {
        let event = next_any(&events);
        if event.seq == marker.seq {
            break;
        }
        seen.push(event);
    }
    let count = |outcome| seen.iter().filter(|e| e.outcome == outcome).count();
    assert_eq!(count(Outcome::Applied), 1, "{seen:#?}");
    assert_eq!(count(Outcome::Detected), 1, "the change is announced once");
    assert_eq!(
        count(Outcome::Unchanged),
        seen.len() - 2,
        "callers not served by the applied reload find nothing new: {seen:#?}"
    );
    for answer in &answers {
        assert_eq!(answer.version, 2, "{}", answer.to_json());
        assert!(
            matches!(answer.outcome, Outcome::Applied | Outcome::Unchanged),
            "{}",
            answer.to_json()
        );
        assert!(
            seen.iter().any(|e| e.seq == answer.seq),
            "each answer is an event that went out: {}",
            answer.to_json()
        );
    }
    assert_eq!(reloader.current().version(), 2);
    assert_eq!(reloader.current().rpm, 70);
}

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
fn a_stuck_validation_rejects_without_wedging_the_worker() {
    let fixture = Fixture::new();
    let reloader = fixture
        .builder()
        .component_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    STALL.store(true, Ordering::SeqCst);
    fixture.write("rpm = 999999\n");
    let error = reloader.reload().unwrap_err();
    assert_eq!(
        error.problems()[0].message,
        "validation timed out after 100 ms"
    );
    fixture.write("rpm = 70\n");
    let error = reloader.reload().unwrap_err();
    assert!(
        error.problems()[0]
            .message
            .starts_with("validation of attempt"),
        "{error}"
    );
    assert_eq!(reloader.current().rpm, 60);
    STALL.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + DEADLINE;
    loop {
        match reloader.reload() {
            Ok(event) => {
                assert_eq!(event.outcome, Outcome::Applied);
                break;
            }
            Err(_) => assert!(Instant::now() < deadline, "validation never recovered"),
        }
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(reloader.current().rpm, 70);
}

#[test]
fn shutdown_finishes_the_reload_in_progress_and_loses_no_event() {
    let fixture = Fixture::new();
    let (reloader, events) = observed(fixture.builder());
    assert_eq!(next(&events).outcome, Outcome::Loaded);
    fixture.write("rpm = 70\n");
    assert!(reloader.trigger_handle().request(Trigger::Signal));
    // Whether the request was served before or after it, shutdown returns only once the
    // worker stopped; an event it produced is never lost.
    reloader.shutdown();
    let served: Vec<Event> = events
        .try_iter()
        .filter(|e| e.outcome != Outcome::Detected)
        .collect();
    assert!(served.len() <= 1);
    if let Some(event) = served.first() {
        assert_eq!(event.outcome, Outcome::Applied);
        assert_eq!(reloader.current().rpm, 70);
    }
    assert!(matches!(reloader.reload(), Err(Error::Stopped)));
    assert!(!reloader.trigger_handle().request(Trigger::Reload));
    assert_eq!(
        reloader.handle().load().version(),
        reloader.current().version()
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

#[test]
fn a_panic_in_the_service_code_the_worker_runs_rejects_and_the_worker_goes_on() {
    let fixture = Fixture::new();
    let reloader = fixture.builder().build().unwrap();
    let error = reloader
        .update(|config| {
            assert!(config.rpm == 0, "update bug");
        })
        .unwrap_err();
    assert_eq!(
        error.problems()[0].message,
        "the reload panicked: update bug"
    );
    assert_eq!(reloader.current().version(), 1);
    fixture.write("rpm = 70\n");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Applied);
    assert_eq!(reloader.update(|c| c.rpm = 71).unwrap().version, 3);
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
