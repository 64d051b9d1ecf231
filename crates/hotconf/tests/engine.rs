//! The reload engine on real files in temp dirs: every outcome, subscribers, programmatic
//! changes, saving, and every kind of bad input leaving the old config active.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hotconf::source::Format;
use hotconf::{ChangeKind, Error, Outcome, ProblemKind, Reloader, Report, Trigger, Validate};
use serde::{Deserialize, Serialize};

type Json = serde_json::Value;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Config {
    limits: Limits,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    providers: std::collections::BTreeMap<String, Provider>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Limits {
    rpm: u32,
    #[serde(default)]
    burst: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
struct Route {
    path: String,
    provider: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
struct Provider {
    enabled: bool,
    #[serde(default)]
    api_key: Option<String>,
}

impl Validate for Config {
    fn validate(&self, report: &mut Report) {
        if self.limits.rpm == 0 {
            report.error("limits.rpm", "must be greater than 0");
        }
        if self.limits.burst > self.limits.rpm {
            report.warning("limits.burst", "is larger than rpm");
        }
        for (i, route) in self.routes.iter().enumerate() {
            if !self.providers.contains_key(&route.provider) {
                report.error(
                    &format!("routes[{i}].provider"),
                    format!("unknown provider '{}'", route.provider),
                );
            }
        }
        for (name, provider) in &self.providers {
            if provider.enabled && provider.api_key.is_none() {
                report.error(
                    &format!("providers.{name}"),
                    "enabled provider needs an api_key",
                );
            }
        }
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let fixture = Self { _dir: dir, root };
        fixture.write("app.toml", "[limits]\nrpm = 60\n");
        fs::create_dir(fixture.root.join("conf.d")).unwrap();
        fixture.write(
            "conf.d/providers.yaml",
            "providers:\n  openai:\n    enabled: true\n    api_key: sk-1\n",
        );
        fixture.write(
            "conf.d/routes.yaml",
            "routes:\n  - path: /chat\n    provider: openai\n",
        );
        fixture
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn write(&self, name: &str, text: impl AsRef<[u8]>) {
        fs::write(self.path(name), text).unwrap();
    }

    fn reloader(&self) -> Reloader<Config> {
        Reloader::<Config>::builder()
            .file(self.path("app.toml"))
            .dir(self.path("conf.d"), "*.yaml")
            .build()
            .unwrap()
    }
}

#[test]
fn first_load_layers_every_source() {
    let fixture = Fixture::new();
    let reloader = fixture.reloader();
    let snapshot = reloader.current();
    assert_eq!(snapshot.version(), 1);
    assert_eq!(snapshot.limits.rpm, 60);
    assert_eq!(snapshot.routes[0].provider, "openai");
    assert_eq!(snapshot.origins().len(), 3);
}

#[test]
fn first_load_errors_are_located_across_files() {
    let fixture = Fixture::new();
    fixture.write(
        "conf.d/routes.yaml",
        "routes:\n  - path: /chat\n    provider: anthropic\n",
    );
    fixture.write("app.toml", "[limits]\nrpm = 0\n");
    let error = Reloader::<Config>::builder()
        .file(fixture.path("app.toml"))
        .dir(fixture.path("conf.d"), "*.yaml")
        .build()
        .unwrap_err();
    let problems = error.problems();
    assert_eq!(problems.len(), 2, "{error}");
    let text = error.to_string();
    assert!(
        text.contains("app.toml:2:7: limits.rpm: must be greater than 0"),
        "{text}"
    );
    assert!(
        text.contains("routes.yaml:3:15: routes[0].provider: unknown provider 'anthropic'"),
        "{text}"
    );
}

#[test]
fn reload_applies_a_valid_change_with_a_diff_and_a_new_version() {
    let fixture = Fixture::new();
    let reloader = fixture.reloader();
    let handle = reloader.handle();
    let mut events = reloader.events();
    let mut snapshots = reloader.subscribe();

    fixture.write("app.toml", "[limits]\nrpm = 120\nburst = 200\n");
    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Applied);
    assert_eq!(event.version, 2);
    assert_eq!(event.trigger, Trigger::Reload);
    let changes: Vec<String> = event.changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        changes,
        ["~ limits.rpm: 60 -> 120", "~ limits.burst: 0 -> 200"]
    );
    assert_eq!(
        event.warnings.len(),
        1,
        "burst > rpm is a warning, not an error"
    );
    assert_eq!(event.warnings[0].line, Some(3));

    assert_eq!(handle.load().limits.rpm, 120);
    assert_eq!(handle.load().version(), 2);
    assert!(snapshots.has_changed().unwrap());
    assert_eq!(snapshots.borrow_and_update().version(), 2);
    // The attempt is announced with the file that changed, then reported.
    let detected = events.try_recv().unwrap();
    assert_eq!((detected.outcome, detected.version), (Outcome::Detected, 1));
    assert_eq!(detected.changed.len(), 1);
    assert_eq!(detected.changed[0].kind, hotconf::FileChangeKind::Modified);
    assert!(
        detected.changed[0].file.ends_with(".toml"),
        "{}",
        detected.to_json()
    );
    let broadcast = events.try_recv().unwrap();
    assert_eq!(
        (broadcast.outcome, broadcast.version, broadcast.seq),
        (Outcome::Applied, 2, detected.seq + 1)
    );
    assert_eq!(broadcast.changed, detected.changed);
}

#[test]
fn reload_with_no_effective_change_is_unchanged() {
    let fixture = Fixture::new();
    let reloader = fixture.reloader();
    // Different bytes, same effective config.
    fixture.write("app.toml", "# a comment\n[limits]\nrpm = 60 # same\n");
    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Unchanged);
    assert_eq!(event.version, 1);
    assert_eq!(reloader.current().version(), 1);
}

#[test]
fn rejected_reload_keeps_the_old_snapshot_and_reports_every_error() {
    let fixture = Fixture::new();
    let reloader = fixture.reloader();
    let before = reloader.current();
    let mut events = reloader.events();

    fixture.write("app.toml", "[limits]\nrpm = 0\n");
    fixture.write(
        "conf.d/providers.yaml",
        "providers:\n  openai:\n    enabled: true\n",
    );
    let error = reloader.reload().unwrap_err();
    assert!(matches!(error, Error::Invalid(_)));
    assert_eq!(error.problems().len(), 2, "{error}");
    assert!(
        Arc::ptr_eq(&before, &reloader.current()),
        "the old snapshot stays, untouched"
    );

    assert_eq!(events.try_recv().unwrap().outcome, Outcome::Detected);
    let event = events.try_recv().unwrap();
    assert_eq!(event.outcome, Outcome::Rejected);
    assert_eq!(event.version, 1);
    assert_eq!(event.errors.len(), 2);
    let json: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
    assert_eq!(json["event"], "rejected");
    assert_eq!(json["errors"][0]["line"], 2);

    // The next valid save applies as version 2.
    fixture.write("app.toml", "[limits]\nrpm = 90\n");
    fixture.write(
        "conf.d/providers.yaml",
        "providers:\n  openai:\n    enabled: true\n    api_key: sk-2\n",
    );
    let event = reloader.reload().unwrap();
    assert_eq!((event.outcome, event.version), (Outcome::Applied, 2));
}

/// Each bad input, written over the TOML file, the YAML file or both.
fn bad_inputs() -> Vec<(&'static str, Vec<u8>, ProblemKind)> {
    vec![
        ("app.toml", vec![], ProblemKind::Empty),
        ("app.toml", vec![0, 1, 2, 0xfe, 0xff, 0], ProblemKind::Syntax),
        ("app.toml", b"[limits]\nrpm = \"\xff\"\n".to_vec(), ProblemKind::Syntax),
        ("app.toml", b"[limits]\nrpm = 60\nrpm = 61\n".to_vec(), ProblemKind::Syntax),
        ("app.toml", b"[limits]\nrpm = \"fast\"\n".to_vec(), ProblemKind::Type),
        ("app.toml", b"[limits]\nrmp = 60\n".to_vec(), ProblemKind::Type),
        (
            "app.toml",
            format!("x = {}{}\n", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            ProblemKind::Limit,
        ),
        ("conf.d/routes.yaml", b"- not\n- a\n- mapping\n".to_vec(), ProblemKind::Syntax),
        ("conf.d/routes.yaml", b"a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n".to_vec(), ProblemKind::Limit),
        ("conf.d/routes.yaml", b"routes: [\n".to_vec(), ProblemKind::Syntax),
        ("conf.d/routes.yaml", b"a: 1\n---\nb: 2\n".to_vec(), ProblemKind::Syntax),
    ]
}

#[test]
fn every_bad_input_is_rejected_and_the_old_config_stays() {
    for (name, bytes, kind) in bad_inputs() {
        let fixture = Fixture::new();
        let reloader = fixture.reloader();
        let before = reloader.current();
        fixture.write(name, &bytes);
        let error = reloader.reload().unwrap_err();
        let problems = error.problems();
        assert_eq!(problems.len(), 1, "{name}: {error}");
        assert_eq!(problems[0].kind, kind, "{name}: {error}");
        assert!(
            problems[0].file.as_deref().unwrap().ends_with(name),
            "{error}"
        );
        assert!(
            Arc::ptr_eq(&before, &reloader.current()),
            "{name}: snapshot replaced"
        );
    }
}

#[test]
fn missing_unreadable_and_misplaced_sources_are_rejected() {
    let fixture = Fixture::new();
    let reloader = fixture.reloader();
    let before = reloader.current();

    fs::remove_file(fixture.path("app.toml")).unwrap();
    let error = reloader.reload().unwrap_err();
    assert_eq!(error.problems()[0].kind, ProblemKind::Io);
    assert!(error.to_string().contains("no such file"), "{error}");

    fs::create_dir(fixture.path("app.toml")).unwrap();
    let error = reloader.reload().unwrap_err();
    assert!(
        error
            .to_string()
            .contains("is a directory, expected a file"),
        "{error}"
    );

    fs::remove_dir(fixture.path("app.toml")).unwrap();
    fs::File::create(fixture.path("app.toml"))
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    let error = reloader.reload().unwrap_err();
    assert_eq!(error.problems()[0].kind, ProblemKind::Limit);

    assert!(Arc::ptr_eq(&before, &reloader.current()));
}

#[test]
fn callbacks_run_in_order_filtered_by_path_with_panics_caught() {
    let fixture = Fixture::new();
    let reloader = fixture.reloader();
    let calls = Arc::new(Mutex::new(Vec::new()));

    let log = Arc::clone(&calls);
    reloader.on_change(move |update| {
        log.lock()
            .unwrap()
            .push(format!("all v{}", update.new.version()));
    });
    reloader.on_change(|_| panic!("callback bug"));
    let log = Arc::clone(&calls);
    reloader
        .on_change_at(&["routes.**"], move |_| {
            log.lock().unwrap().push("routes".into())
        })
        .unwrap();
    let log = Arc::clone(&calls);
    reloader
        .on_change_at(&["limits.*"], move |update| {
            let old = update.old.limits.rpm;
            log.lock()
                .unwrap()
                .push(format!("limits {old} -> {}", update.new.limits.rpm));
        })
        .unwrap();
    assert!(reloader.on_change_at(&["bad..pattern"], |_| {}).is_err());

    fixture.write("app.toml", "[limits]\nrpm = 70\n");
    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Applied);
    assert_eq!(*calls.lock().unwrap(), ["all v2", "limits 60 -> 70"]);
    // The panic is reported as a warning; the config stays applied.
    assert_eq!(event.warnings.len(), 1);
    assert_eq!(event.warnings[0].kind, ProblemKind::Callback);
    assert!(event.warnings[0].message.contains("callback bug"));
    assert_eq!(reloader.current().limits.rpm, 70);

    calls.lock().unwrap().clear();
    fixture.write(
        "conf.d/routes.yaml",
        "routes:\n  - path: /v2/chat\n    provider: openai\n",
    );
    reloader.reload().unwrap();
    assert_eq!(*calls.lock().unwrap(), ["all v3", "routes"]);
}

#[test]
fn apply_and_update_go_through_validation_and_sources_win_on_reload() {
    let fixture = Fixture::new();
    let reloader = fixture.reloader();

    let mut bad = reloader.current().config().clone();
    bad.limits.rpm = 0;
    assert!(reloader.apply(bad).is_err());
    assert_eq!(reloader.current().version(), 1);

    let event = reloader.update(|config| config.limits.rpm = 300).unwrap();
    assert_eq!(
        (event.outcome, event.trigger, event.version),
        (Outcome::Applied, Trigger::Apply, 2)
    );
    assert_eq!(reloader.current().limits.rpm, 300);

    let event = reloader.update(|config| config.limits.rpm = 300).unwrap();
    assert_eq!(event.outcome, Outcome::Unchanged);

    // The file still says 60: the next reload from the sources wins.
    let event = reloader.reload().unwrap();
    assert_eq!((event.outcome, event.version), (Outcome::Applied, 3));
    assert_eq!(reloader.current().limits.rpm, 60);
}

#[test]
fn save_writes_the_effective_config_keeping_comments_and_reload_sees_no_change() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(
        &path,
        "# tuned for prod\n[limits]\nrpm = 60 # per client\nburst = 5\n",
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let reloader = Reloader::<Config>::builder().file(&path).build().unwrap();

    reloader.update(|config| config.limits.rpm = 90).unwrap();
    assert_eq!(reloader.save().unwrap(), path);
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("# tuned for prod\n[limits]\nrpm = 90 # per client\nburst = 5\n"),
        "{text}"
    );
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Unchanged);
    assert_eq!(reloader.current().limits.rpm, 90);
}

#[test]
fn save_writes_yaml_and_json_files_that_load_back() {
    for name in ["app.yaml", "app.json"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let text = if name.ends_with("json") {
            "{\"limits\": {\"rpm\": 60}}"
        } else {
            "limits:\n  rpm: 60\n"
        };
        fs::write(&path, text).unwrap();
        let reloader = Reloader::<Config>::builder().file(&path).build().unwrap();
        reloader.update(|config| config.limits.burst = 7).unwrap();
        reloader.save().unwrap();
        let reread = Reloader::<Config>::builder().file(&path).build().unwrap();
        assert_eq!(
            reread.current().config(),
            reloader.current().config(),
            "{name}"
        );
    }
}

#[test]
fn events_redact_secrets_and_carry_located_errors() {
    let fixture = Fixture::new();
    let reloader = Reloader::<Config>::builder()
        .file(fixture.path("app.toml"))
        .dir(fixture.path("conf.d"), "*.yaml")
        .secret("routes[*].path")
        .build()
        .unwrap();
    fixture.write(
        "conf.d/providers.yaml",
        "providers:\n  openai:\n    enabled: true\n    api_key: sk-rotated\n",
    );
    fixture.write(
        "conf.d/routes.yaml",
        "routes:\n  - path: /hidden\n    provider: openai\n",
    );
    let event = reloader.reload().unwrap();
    let json = event.to_json();
    assert!(!json.contains("sk-"), "{json}");
    assert!(!json.contains("hidden"), "{json}");
    assert!(event.changes.iter().all(|c| c.kind == ChangeKind::Modified));
    assert_eq!(event.changes.len(), 2, "{json}");
}

#[test]
fn defaults_and_env_layers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.yaml");
    fs::write(&path, "limits:\n  burst: 3\n").unwrap();
    let env = hotconf::source::Env::from_vars(
        "SVC",
        "__",
        [("SVC__LIMITS__RPM".to_owned(), "250".to_owned())],
    );
    let reloader = Reloader::<Config>::builder()
        .defaults(Format::Toml, "[limits]\nrpm = 10\nburst = 1\n")
        .file(&path)
        .source(env)
        .build()
        .unwrap();
    assert_eq!(reloader.current().limits, Limits { rpm: 250, burst: 3 });

    let reloader = Reloader::<Config>::builder()
        .defaults_value(&Config {
            limits: Limits { rpm: 5, burst: 0 },
            routes: vec![],
            providers: Default::default(),
        })
        .file(&path)
        .build()
        .unwrap();
    assert_eq!(reloader.current().limits, Limits { rpm: 5, burst: 3 });
}

#[test]
fn builder_options_are_checked() {
    let error = Reloader::<Config>::builder().build().unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidOption {
            option: "sources",
            ..
        }
    ));
    let error = Reloader::<Config>::builder()
        .defaults(Format::Toml, "[limits]\nrpm = 1\n")
        .secret("a..b")
        .build()
        .unwrap_err();
    assert!(matches!(error, Error::InvalidPath { .. }), "{error}");
    let error = Reloader::<Config>::builder()
        .defaults(Format::Toml, "[limits]\nrpm = 1\n")
        .save_to(Path::new("x.ini"))
        .build()
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidOption {
                option: "save_to",
                ..
            }
        ),
        "{error}"
    );
    // The debounce range is 10 ms ..= 60 s, both ends included.
    let debounce = |ms: u64| {
        Reloader::<Config>::builder()
            .defaults(Format::Toml, "[limits]\nrpm = 1\n")
            .debounce(std::time::Duration::from_millis(ms))
            .build()
            .map(drop)
    };
    for ms in [10, 100, 60_000] {
        assert!(debounce(ms).is_ok(), "{ms} ms");
    }
    for ms in [0, 9, 60_001] {
        let error = debounce(ms).unwrap_err();
        assert!(
            matches!(
                error,
                Error::InvalidOption {
                    option: "debounce",
                    ..
                }
            ),
            "{ms} ms: {error}"
        );
    }
    let error = Reloader::<Config>::builder()
        .defaults(Format::Toml, "[limits]\nrpm = 1\n")
        .history(0)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidOption {
                option: "history",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn the_builders_limits_apply_to_every_document() {
    let mut limits = hotconf::Limits::default();
    limits.max_depth = 2;
    let deep = "[a.b.c]\nd = 1\n";
    let error = Reloader::<Json>::builder()
        .defaults(Format::Toml, deep)
        .limits(limits)
        .build()
        .unwrap_err();
    assert_eq!(error.problems()[0].kind, ProblemKind::Limit, "{error}");
    assert!(
        Reloader::<Json>::builder()
            .defaults(Format::Toml, deep)
            .build()
            .is_ok()
    );
}

/// The reload worker parses YAML on its own thread: its stack must hold a document nested as
/// deep as the limits allow (in a debug build, serde-saphyr takes about 45 KiB a level: 128
/// levels would overflow a default 2 MiB thread stack and abort the process).
#[test]
fn the_worker_parses_yaml_as_deep_as_the_limits_allow() {
    let nested = |depth: usize, value: u32| {
        let mut text = String::new();
        for level in 0..depth - 1 {
            text.push_str(&" ".repeat(level * 2));
            text.push_str("a:\n");
        }
        text.push_str(&" ".repeat((depth - 1) * 2));
        text.push_str(&format!("leaf: {value}\n"));
        text
    };
    let depth = hotconf::Limits::default().max_depth;
    let fixture = Fixture::new();
    fixture.write("deep.yaml", nested(depth, 1));
    let reloader = Reloader::<Json>::builder()
        .file(fixture.path("deep.yaml"))
        .build()
        .unwrap();
    fixture.write("deep.yaml", nested(depth, 2));
    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Applied, "{event:?}");
    fixture.write("deep.yaml", nested(depth + 1, 3));
    let error = reloader.reload().unwrap_err();
    assert_eq!(error.problems()[0].kind, ProblemKind::Limit, "{error}");
    assert_eq!(reloader.current().version(), 2);
}

#[test]
fn projection_sees_only_its_part() {
    let fixture = Fixture::new();
    let reloader = fixture.reloader();
    let limits = reloader.handle().map(|config: &Config| &config.limits);
    assert_eq!(limits.load().rpm, 60);
    fixture.write("app.toml", "[limits]\nrpm = 61\n");
    reloader.reload().unwrap();
    let part = limits.load();
    assert_eq!((part.rpm, part.version()), (61, 2));
}

#[test]
fn cached_reader_keeps_its_snapshot_until_a_reload_swaps_one_in() {
    let fixture = Fixture::new();
    let reloader = fixture.reloader();
    let mut reader = reloader.handle().cached();
    let first = Arc::clone(reader.load());
    assert_eq!((first.limits.rpm, first.version()), (60, 1));
    // Nothing changed: the same snapshot, not a copy.
    assert!(Arc::ptr_eq(reader.load(), &first));
    fixture.write("app.toml", "[limits]\nrpm = 61\n");
    reloader.reload().unwrap();
    let second = Arc::clone(reader.load());
    assert_eq!((second.limits.rpm, second.version()), (61, 2));
    assert!(!Arc::ptr_eq(&second, &first));
    // A clone reads the same live config.
    let mut clone = reader.clone();
    assert!(Arc::ptr_eq(clone.load(), &second));
    // A rejected reload swaps nothing in.
    fixture.write("app.toml", "[limits]\nrpm = \"x\"\n");
    assert!(reloader.reload().is_err());
    assert!(Arc::ptr_eq(reader.load(), &second));
}

#[test]
fn type_errors_at_secret_paths_do_not_quote_the_value() {
    let fixture = Fixture::new();
    let reloader = fixture.reloader();
    fixture.write(
        "conf.d/providers.yaml",
        "providers:\n  openai:\n    enabled: true\n    api_key: [sk-live-1234]\n",
    );
    let error = reloader.reload().unwrap_err();
    let text = error.to_string();
    assert!(!text.contains("sk-live"), "{text}");
    let problem = &error.problems()[0];
    assert_eq!(
        problem.path.as_ref().unwrap().to_string(),
        "providers.openai.api_key"
    );
    assert_eq!(problem.line, Some(4), "still located");
    assert!(problem.message.contains("secret, not shown"), "{text}");
}
