//! The public pipeline, as tools that check configs without a reloader use it (the
//! `hotconf` command's `check` and `diff`): the same stages and redaction as a reload.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hotconf::source::{Defaults, Format, Source};
use hotconf::{Limits, Outcome, Pattern, Pipeline, Policy, ProblemKind, Rule};

type Json = serde_json::Value;

fn toml(text: &str) -> Vec<Box<dyn Source>> {
    vec![Box::new(Defaults::text(Format::Toml, text))]
}

fn pattern(text: &str) -> Pattern {
    text.parse().unwrap()
}

#[test]
fn check_loads_or_rejects_with_located_redacted_problems() {
    let plan = Pipeline::new().check::<Json>(&toml("[db]\npassword = \"hunter2\"\n"));
    assert_eq!(plan.outcome, Outcome::Loaded);
    assert!(plan.errors.is_empty() && plan.changes.is_empty());
    assert_eq!(plan.files, ["<defaults>"]);

    let plan = Pipeline::new().check::<Json>(&toml("a = \n"));
    assert_eq!(plan.outcome, Outcome::Rejected);
    assert_eq!(plan.errors[0].kind, ProblemKind::Syntax);
    assert_eq!(
        (plan.errors[0].line, plan.errors[0].column),
        (Some(1), Some(5))
    );
}

#[test]
fn check_applies_the_limits_it_is_given() {
    let mut limits = Limits::default();
    limits.max_depth = 2;
    let deep = "[a.b.c]\nd = 1\n";
    let plan = Pipeline::new().limits(limits).check::<Json>(&toml(deep));
    assert_eq!(plan.outcome, Outcome::Rejected);
    assert_eq!(plan.errors[0].kind, ProblemKind::Limit, "{:?}", plan.errors);
    assert_eq!(
        Pipeline::new().check::<Json>(&toml(deep)).outcome,
        Outcome::Loaded
    );
}

#[cfg(feature = "json-schema")]
#[test]
fn check_runs_the_schema_it_is_given() {
    let schema = hotconf::schema::Schema::from_json(&serde_json::json!({
        "properties": {"rpm": {"type": "integer", "minimum": 1}}
    }))
    .unwrap();
    let plan = Pipeline::new()
        .schema(schema)
        .check::<Json>(&toml("rpm = 0\n"));
    assert_eq!(plan.outcome, Outcome::Rejected);
    assert_eq!(
        plan.errors[0].to_string(),
        "<defaults>:1:7: rpm: 0 is less than the minimum of 1"
    );
    assert_eq!(
        Pipeline::new().check::<Json>(&toml("rpm = 0\n")).outcome,
        Outcome::Loaded
    );
}

#[test]
fn diff_classifies_every_change_by_the_policy_and_redacts_secrets() {
    let policy = Policy::new()
        .restart_required(pattern("server.listen"))
        .deny(pattern("tenant.id"))
        .secret(pattern("signing"));
    let old =
        toml("signing = \"k1\"\n[server]\nlisten = \"a\"\n[tenant]\nid = 1\n[limits]\nrpm = 1\n");
    let new =
        toml("signing = \"k2\"\n[server]\nlisten = \"b\"\n[tenant]\nid = 2\n[limits]\nrpm = 2\n");
    let plan = Pipeline::new()
        .policy(policy)
        .diff::<Json>(&old, &new)
        .unwrap();
    let rules: Vec<(String, Rule)> = plan
        .changes
        .iter()
        .map(|c| (c.change.path.to_string(), c.rule))
        .collect();
    assert_eq!(
        rules,
        [
            ("signing".to_owned(), Rule::Hot),
            ("server.listen".to_owned(), Rule::RestartRequired),
            ("tenant.id".to_owned(), Rule::Denied),
            ("limits.rpm".to_owned(), Rule::Hot),
        ]
    );
    assert_eq!(
        plan.changes[0].change.to_string(),
        r#"~ signing: "***" -> "***""#
    );
    // The denied change is what would reject the reload; the diff is still reported.
    assert_eq!(plan.outcome, Outcome::Rejected);
    assert!(
        plan.errors[0].message.contains("denied by policy"),
        "{:?}",
        plan.errors
    );

    let same = Pipeline::new().diff::<Json>(&old, &old).unwrap();
    assert!(same.changes.is_empty());
    assert_eq!(same.outcome, Outcome::Unchanged);
}

#[test]
fn diff_refuses_a_side_that_does_not_load() {
    let good = toml("a = 1\n");
    let broken = toml("a = \n");
    let error = Pipeline::new().diff::<Json>(&broken, &good).unwrap_err();
    assert_eq!(error.0[0].kind, ProblemKind::Syntax);
    let error = Pipeline::new().diff::<Json>(&good, &broken).unwrap_err();
    assert_eq!(error.0[0].kind, ProblemKind::Syntax);
    let missing: Vec<Box<dyn Source>> = vec![Box::new(hotconf::source::File::new(
        "/nonexistent/app.toml",
    ))];
    let error = Pipeline::new().diff::<Json>(&good, &missing).unwrap_err();
    assert_eq!(error.0[0].kind, ProblemKind::Io);
}
