use super::*;

#[test]
fn shown_urls_keep_no_slack_path_and_no_password() {
    let table = [
        (
            Sink::Slack,
            "https://hooks.slack.com/services/T0/B0/SECRET",
            "https://hooks.slack.com/…",
        ),
        (
            Sink::Slack,
            "http://127.0.0.1:9000",
            "http://127.0.0.1:9000",
        ),
        (
            Sink::Slack,
            "hooks.slack.com/services/SECRET",
            "hooks.slack.com/…",
        ),
        (
            Sink::Alertmanager,
            "http://user:pw@am:9093/api/v2/alerts?token=SECRET",
            "http://am:9093/api/v2/alerts",
        ),
    ];
    for (sink, url, expected) in table {
        assert_eq!(shown(sink, url), expected, "{url}");
    }
}

#[test]
fn bad_urls_are_refused_by_name() {
    let error = endpoint(Sink::Slack, "ftp://chat/hooks/SECRET".into()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "slack webhook URL `ftp://chat/…` is not usable: the scheme must be http or https"
    );
    let error = endpoint(Sink::Alertmanager, "am:9093/api/v2/alerts".into()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("alertmanager URL `am:9093/api/v2/alerts` is not usable"),
        "{error}"
    );
    let error = endpoint(Sink::Slack, "not a url".into()).unwrap_err();
    assert!(matches!(error, AlertError::Url { .. }), "{error}");
    assert!(endpoint(Sink::Slack, "http://127.0.0.1:1/x".into()).is_ok());
}

#[test]
fn https_needs_the_tls_feature() {
    let result = endpoint(
        Sink::Slack,
        "https://hooks.slack.com/services/SECRET".into(),
    );
    if cfg!(feature = "alerts-tls") {
        assert!(result.is_ok());
    } else {
        let error = result.unwrap_err();
        assert!(matches!(error, AlertError::TlsNotCompiled { .. }));
        assert!(error.to_string().contains("`alerts-tls`"), "{error}");
        assert!(!error.to_string().contains("SECRET"));
    }
}

#[test]
fn the_builder_needs_a_sink_and_positive_settings() {
    assert!(matches!(
        Alerts::builder().build().unwrap_err(),
        AlertError::NoSink
    ));
    let error = Alerts::builder()
        .slack("http://127.0.0.1:1/")
        .queue(0)
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "alerts setting queue: must be greater than zero"
    );
    let error = Alerts::builder()
        .alertmanager("http://127.0.0.1:1")
        .timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(matches!(
        error,
        AlertError::Setting {
            setting: "timeout",
            ..
        }
    ));
}

#[test]
fn the_watcher_state_fires_and_resolves_the_watcher_alert() {
    // A closed port: what is posted is dropped; this is about the decisions.
    let alerts = Alerts::builder()
        .slack("http://127.0.0.1:1/hook")
        .retries(0)
        .build()
        .unwrap();
    alerts.watcher(&WatcherState::new(true, true, None));
    assert_eq!(alerts.active(), 0, "polling by choice is no degradation");
    alerts.watcher(&WatcherState::new(
        true,
        true,
        Some("native file watching failed (x), polling instead".into()),
    ));
    assert_eq!(alerts.active(), 1);
    assert_eq!(alerts.health().unwrap().detail["active"], 1);
    alerts.watcher(&WatcherState::new(false, false, None));
    assert_eq!(alerts.active(), 0);
}

#[test]
fn the_reloaders_name_names_the_alerts_unless_they_have_one() {
    type Builder = ReloaderBuilder<serde_json::Value>;
    let build = |builder: AlertsBuilder| builder.slack("http://127.0.0.1:1/").build().unwrap();
    let unnamed = build(Alerts::builder());
    let _ = Builder::default().name("svc").alerts(unnamed.clone());
    assert_eq!(unnamed.inner.shared.config(), "svc");
    let notices = unnamed.inner.shared.tracker().input(
        Input::Rejected {
            stage: "parse".into(),
            errors: Vec::new(),
            failed: Vec::new(),
            at: std::time::SystemTime::UNIX_EPOCH,
        },
        Duration::ZERO,
    );
    let [Notice::Firing(alert)] = notices.as_slice() else {
        panic!("{notices:?}");
    };
    assert_eq!(alert.summary, "config svc reload rejected at stage parse");
    let named = build(Alerts::builder().config_name("app"));
    let _ = Builder::default().name("svc").alerts(named.clone());
    assert_eq!(named.inner.shared.config(), "app");
}

#[test]
fn events_map_to_inputs_by_outcome() {
    let rejected = Event::new(Outcome::Rejected, 1, crate::Trigger::Reload, Vec::new());
    let mut rejected = rejected;
    rejected.errors.push(
        Problem::error(ProblemKind::Validation, "must be > 0")
            .at_path("limits.rpm".parse().unwrap()),
    );
    let Some(Input::Rejected { stage, errors, .. }) = input_of(&rejected) else {
        panic!("a rejection alerts");
    };
    assert_eq!(stage, "validate", "from the first error's kind");
    rejected.stage = Some(Stage::Policy);
    let Some(Input::Rejected { stage, .. }) = input_of(&rejected) else {
        panic!("a rejection alerts");
    };
    assert_eq!(stage, "policy", "the event's own stage wins");
    let mut pool = Problem::error(ProblemKind::Component, "pool refused");
    pool.component = Some("pool".into());
    let mut unnamed = Problem::error(ProblemKind::Component, "a refusal");
    unnamed.component = None;
    let mut other = Problem::error(ProblemKind::Validation, "bad");
    other.component = Some("not a component problem".into());
    let failed = failures(&[pool.clone(), unnamed, other, pool], Phase::Commit);
    assert_eq!(
        failed,
        [ComponentFailure {
            name: "pool".into(),
            phase: Phase::Commit,
            message: "pool refused".into()
        }]
    );
    assert_eq!(errors, ["limits.rpm: must be > 0"]);
    for outcome in [
        Outcome::Applied,
        Outcome::Unchanged,
        Outcome::RestartRequired,
        Outcome::Loaded,
    ] {
        let event = Event::new(outcome, 1, crate::Trigger::Reload, Vec::new());
        assert!(
            matches!(input_of(&event), Some(Input::Succeeded { .. })),
            "{outcome}"
        );
    }
    for outcome in [Outcome::Deferred, Outcome::Detected] {
        let event = Event::new(outcome, 1, crate::Trigger::Reload, Vec::new());
        assert_eq!(input_of(&event), None, "{outcome}");
    }
}
