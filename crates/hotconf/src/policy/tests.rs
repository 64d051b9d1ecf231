use super::*;

#[test]
fn problems_are_redacted_only_where_they_could_quote_a_secret() {
    let at = |kind, path: &str, message: &str| {
        Problem::error(kind, message).at_path(path.parse().unwrap())
    };
    let cases = [
        // A type error at a secret path quotes the value: hidden, the expectation kept.
        (
            at(
                ProblemKind::Type,
                "db.password",
                "invalid type: integer `1`, expected a string",
            ),
            "invalid value (secret, not shown), expected a string",
        ),
        // Without an expectation, the whole message goes.
        (
            at(
                ProblemKind::Schema,
                "db.password",
                "\"hunter2\" is too short",
            ),
            "invalid value (secret, not shown)",
        ),
        // A missing secret has no value to hide.
        (
            at(ProblemKind::Type, "db.password", "missing field `password`"),
            "missing field `password`",
        ),
        // The service's own rules do not quote values: kept.
        (
            at(
                ProblemKind::Validation,
                "db.password",
                "must be at least 12 characters",
            ),
            "must be at least 12 characters",
        ),
        // Not a secret path: kept.
        (
            at(
                ProblemKind::Type,
                "db.port",
                "invalid type: string \"x\", expected u16",
            ),
            "invalid type: string \"x\", expected u16",
        ),
    ];
    for (mut problem, expected) in cases {
        Secrets::new().redact_problem(&mut problem);
        assert_eq!(problem.message, expected);
    }
}
use crate::diff::{ChangeKind, diff};
use proptest::prelude::*;
use serde_json::json;

fn path(text: &str) -> ConfigPath {
    text.parse().unwrap()
}

fn redacted(secrets: &Secrets, at: &str, mut value: Value) -> Value {
    secrets.redact_value(&path(at), &mut value);
    value
}

#[test]
fn built_in_words_at_any_depth_and_case() {
    let secrets = Secrets::new();
    let words = [
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "private_key",
        "credential",
    ];
    for word in words {
        for key in [
            word.to_owned(),
            word.to_ascii_uppercase(),
            format!("db_{word}_file"),
            format!("my{}", capitalize(word)),
        ] {
            for at in [
                ConfigPath::root().key(key.as_str()),
                ConfigPath::root().key("a").key(key.as_str()),
                ConfigPath::root()
                    .key("a")
                    .index(3)
                    .key("b")
                    .key(key.as_str()),
                ConfigPath::root().key(key.as_str()).key("under").index(0),
            ] {
                assert!(secrets.is_secret(&at), "{at}");
            }
        }
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[test]
fn which_paths_are_secret() {
    let secrets = Secrets::new();
    let cases = [
        ("DB_PASSWORD", true),
        ("auth.accessToken", true),
        ("cloud.credentials.id", true),
        ("providers.openai.apiKey", true),
        ("tls.private_key", true),
        (r#"labels."x.secret/name""#, true),
        ("limits.max_tokens", true), // over-redaction is the safe side
        ("routes[2].path", false),
        ("db.host", false),
        ("db.pass", false),
        ("keys[0]", false),
        ("", false),
    ];
    for (text, expected) in cases {
        assert_eq!(secrets.is_secret(&path(text)), expected, "{text}");
    }
}

#[test]
fn user_patterns_cover_paths_and_their_subtrees() {
    let secrets = Secrets::new()
        .pattern("providers.*.key".parse().unwrap())
        .pattern("**.dsn".parse().unwrap())
        .pattern("vault.**".parse().unwrap());
    let cases = [
        ("providers.openai.key", true),
        ("providers.openai.key.v2", true),
        ("providers[0].key", true),
        ("providers.openai.model", false),
        ("providers.a.b.key", false),
        ("dsn", true),
        ("db.replica[1].dsn", true),
        ("db.dsn_timeout", false),
        ("vault", true),
        ("vault.addr", true),
        ("vaults", false),
    ];
    for (text, expected) in cases {
        assert_eq!(secrets.is_secret(&path(text)), expected, "{text}");
    }
}

#[test]
fn redact_value_hides_secret_subtrees_only() {
    let secrets = Secrets::new().pattern("db.*.user".parse().unwrap());
    let cases = [
        (
            "a secret table is redacted whole",
            "credentials",
            json!({"id": "x", "key": "y"}),
            json!("***"),
        ),
        (
            "a secret array is redacted whole",
            "tokens",
            json!(["a", "b"]),
            json!("***"),
        ),
        ("a secret scalar", "db.password", json!(42), json!("***")),
        ("even null", "db.password", json!(null), json!("***")),
        (
            "a plain table keeps its plain children",
            "db",
            json!({"host": "h", "password": "p", "primary": {"user": "u", "port": 1}}),
            json!({"host": "h", "password": "***", "primary": {"user": "***", "port": 1}}),
        ),
        (
            "secrets inside array items",
            "routes",
            json!([{"path": "/a", "auth": {"Token": "t"}}, "x"]),
            json!([{"path": "/a", "auth": {"Token": "***"}}, "x"]),
        ),
        (
            "the root",
            "",
            json!({"api": {"apikey": "k", "url": "u"}, "n": 1}),
            json!({"api": {"apikey": "***", "url": "u"}, "n": 1}),
        ),
        ("a plain scalar", "db.host", json!("h"), json!("h")),
    ];
    for (name, at, value, expected) in cases {
        assert_eq!(redacted(&secrets, at, value), expected, "{name}");
    }
}

#[test]
fn redact_changes_keeps_paths_and_shape() {
    let secrets = Secrets::new();
    let mut changes = diff(
        &json!({"db": {"host": "a", "password": "old"}, "api_token": "t1"}),
        &json!({"db": "postgres://u:pw@h", "cache": {"host": "c", "secret": "s"}}),
    );
    secrets.redact(&mut changes);
    let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            r#"~ db: {"host":"a","password":"***"} -> "postgres://u:pw@h""#,
            r#"- api_token: "***""#,
            r#"+ cache: {"host":"c","secret":"***"}"#,
        ]
    );
    assert_eq!(changes[1].kind, ChangeKind::Removed);
    assert!(changes[1].new.is_none(), "redaction adds no side");
}

fn value() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec!["host", "Password", "x", "apiKey", "list", "my-token"]);
    let leaf = prop_oneof![
        Just(Value::Null),
        (-3i64..4).prop_map(Value::from),
        prop::sample::select(vec!["", "p", "***"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..4).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

/// Checks that every value at a secret path under `at` is the redaction marker.
fn assert_no_secret_left(
    secrets: &Secrets,
    at: &mut ConfigPath,
    value: &Value,
) -> Result<(), TestCaseError> {
    if secrets.is_secret(at) {
        prop_assert_eq!(value, &json!(REDACTED), "{}", at);
        return Ok(());
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                at.push(Segment::Key(key.clone()));
                assert_no_secret_left(secrets, at, child)?;
                at.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                at.push(Segment::Index(index));
                assert_no_secret_left(secrets, at, child)?;
                at.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

proptest! {
    #[test]
    fn redaction_leaves_no_secret(mut v in value(), under_list in any::<bool>()) {
        let secrets = Secrets::new().pattern("list[*].x".parse().unwrap());
        let at = if under_list { path("list[0]") } else { ConfigPath::root() };
        secrets.redact_value(&at, &mut v);
        assert_no_secret_left(&secrets, &mut at.clone(), &v)?;
    }
}
