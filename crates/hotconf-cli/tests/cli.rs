//! The real `hotconf` binary on real files: outputs, JSON shapes and exit codes of `check`
//! and `diff`, and every kind of bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::{Value, json};

fn hotconf(args: &[&str]) -> Output {
    Command::cargo_bin("hotconf")
        .unwrap()
        .args(args)
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap()
}

fn run_json(args: &[&str]) -> (i32, Value) {
    let output = hotconf(args);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?}, stderr {:?}", output.stderr));
    (output.status.code().unwrap(), value)
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn check_accepts_the_bundled_example() {
    let dir = examples().join("config");
    let output = hotconf(&["check", path_str(&dir)]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("ok: 3 files valid ("), "{stdout}");

    let (code, report) = run_json(&["check", "--json", path_str(&dir)]);
    assert_eq!(code, 0);
    assert_eq!(report["valid"], json!(true));
    assert_eq!(report["errors"], json!([]));
    assert_eq!(report["warnings"], json!([]));
    let files: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 3);
    assert!(files[0].ends_with("10-server.toml") && files[2].ends_with("30-overrides.json"));
}

#[test]
fn check_reports_a_syntax_error_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.toml");
    fs::write(&file, "[limits]\nrpm = 60\nburst = = 5\n").unwrap();

    let (code, report) = run_json(&["check", "--json", path_str(&file)]);
    assert_eq!(code, 1);
    assert_eq!(report["valid"], json!(false));
    let error = &report["errors"][0];
    assert_eq!(error["file"], json!(path_str(&file)));
    assert_eq!(error["line"], json!(3));
    // The second `=` of `burst = = 5`, as the README shows.
    assert_eq!(error["column"], json!(9), "{error}");

    let output = hotconf(&["check", path_str(&file)]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A compiler-style snippet: the path, then the offending line.
    assert!(
        stderr.contains(&format!("{}:3:", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("3 | burst = = 5"), "{stderr}");
    assert!(stderr.contains("invalid: 1 error"), "{stderr}");
}

/// `check` reads the config as a reloader does: the `[hot_reload]` table is checked and
/// the files its `watch_paths` lists are layered and checked too.
#[test]
fn check_reads_the_hot_reload_table_and_its_watch_paths() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.toml");
    let extra = dir.path().join("extra.toml");
    fs::write(
        &file,
        "rpm = 60\n[hot_reload]\ndebounce_ms = 500\nwatch_paths = [\"extra.toml\"]\n",
    )
    .unwrap();
    fs::write(&extra, "burst = = 5\n").unwrap();
    let (code, report) = run_json(&["check", "--json", path_str(&file)]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        report["errors"][0]["file"],
        json!(path_str(&extra)),
        "{report}"
    );

    fs::write(&extra, "burst = 5\n").unwrap();
    let (code, report) = run_json(&["check", "--json", path_str(&file)]);
    assert_eq!(code, 0, "{report}");

    fs::write(&file, "rpm = 60\n[hot_reload]\ndebounce_ms = 5\n").unwrap();
    let (code, report) = run_json(&["check", "--json", path_str(&file)]);
    assert_eq!(code, 1, "{report}");
    let error = &report["errors"][0];
    assert_eq!(error["path"], json!("hot_reload.debounce_ms"), "{error}");
    assert_eq!((&error["line"], &error["column"]), (&json!(3), &json!(15)));
}

#[test]
fn check_layers_several_paths_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.toml");
    let local = dir.path().join("local.yaml");
    fs::write(&base, "[limits]\nrpm = 60\n").unwrap();
    fs::write(&local, "limits:\n  rpm: 0\n").unwrap();
    let schema = dir.path().join("schema.json");
    fs::write(
        &schema,
        r#"{"properties": {"limits": {"properties": {"rpm": {"type": "integer", "minimum": 1}}}}}"#,
    )
    .unwrap();

    let (code, _) = run_json(&[
        "check",
        "--json",
        "--schema",
        path_str(&schema),
        path_str(&base),
    ]);
    assert_eq!(code, 0);
    // The YAML layer sets rpm = 0: the schema error points at the YAML file, line 2.
    let (code, report) = run_json(&[
        "check",
        "--json",
        "--schema",
        path_str(&schema),
        path_str(&base),
        path_str(&local),
    ]);
    assert_eq!(code, 1);
    let error = &report["errors"][0];
    assert_eq!(error["file"], json!(path_str(&local)));
    assert_eq!(
        (error["line"].clone(), error["column"].clone()),
        (json!(2), json!(8))
    );
    assert_eq!(error["path"], json!("limits.rpm"));
    assert!(
        error["message"].as_str().unwrap().contains("minimum"),
        "{error}"
    );
}

#[test]
fn check_validates_the_example_against_its_schema() {
    let output = hotconf(&[
        "check",
        "--schema",
        path_str(&examples().join("schema.json")),
        path_str(&examples().join("config")),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_scalar_where_a_table_belongs_is_never_quoted_nor_shown() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.json");
    fs::write(
        &schema,
        r#"{"properties": {"db": {"type": "object", "properties": {"password": {"type": "string"}}}}}"#,
    )
    .unwrap();
    let config = dir.path().join("app.toml");
    fs::write(&config, "rpm = 60\ndb = \"XYZZY-hunter2\"\n").unwrap();
    for json in [false, true] {
        let mut args = vec!["check", "--schema", path_str(&schema), path_str(&config)];
        if json {
            args.insert(1, "--json");
        }
        let output = hotconf(&args);
        assert_eq!(output.status.code(), Some(1));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(text.contains("app.toml") && text.contains("db"), "{text}");
        assert!(!text.contains("XYZZY"), "{text}");
    }
}

/// One bad input: the file's bytes, the expected exit code and a fragment of the message.
struct BadInput {
    name: &'static str,
    bytes: Vec<u8>,
    code: i32,
    message: &'static str,
}

fn billion_laughs() -> Vec<u8> {
    let mut yaml = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        let refs = vec![format!("*{prev}"); 9].join(",");
        yaml.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    yaml.into_bytes()
}

#[test]
fn check_rejects_every_kind_of_bad_input_with_one_clear_error() {
    let cases = vec![
        BadInput {
            name: "empty.toml",
            bytes: vec![],
            code: 1,
            message: "empty document",
        },
        BadInput {
            name: "comments.yaml",
            bytes: b"# nothing here\n".to_vec(),
            code: 1,
            message: "empty document",
        },
        BadInput {
            name: "garbage.toml",
            bytes: vec![0, 159, 146, 150, 0, 1, 2, 255],
            code: 1,
            message: "binary content",
        },
        BadInput {
            name: "latin1.toml",
            bytes: b"name = \"caf\xe9\"\n".to_vec(),
            code: 1,
            message: "not valid UTF-8",
        },
        BadInput {
            name: "list.json",
            bytes: b"[1, 2, 3]".to_vec(),
            code: 1,
            message: "top level must be a table",
        },
        BadInput {
            name: "scalar.yaml",
            bytes: b"just text\n".to_vec(),
            code: 1,
            message: "top level must be a table",
        },
        BadInput {
            name: "dup.json",
            bytes: b"{\"a\": 1, \"a\": 2}".to_vec(),
            code: 1,
            message: "duplicate",
        },
        BadInput {
            name: "dup.yaml",
            bytes: b"a: 1\na: 2\n".to_vec(),
            code: 1,
            message: "duplicate",
        },
        BadInput {
            name: "dup.toml",
            bytes: b"a = 1\na = 2\n".to_vec(),
            code: 1,
            message: "duplicate",
        },
        // Aliases expand 9^9 values: the node limit stops it.
        BadInput {
            name: "laughs.yaml",
            bytes: billion_laughs(),
            code: 1,
            message: "more than 100000 values (Limits::max_nodes)",
        },
        BadInput {
            name: "deep.json",
            bytes: format!("{{\"a\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            code: 1,
            message: "nesting deeper than 128 levels (Limits::max_depth)",
        },
        BadInput {
            name: "deep.toml",
            bytes: format!("a = {}{}\n", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            code: 1,
            message: "nesting deeper than the TOML parser allows",
        },
        BadInput {
            name: "deep.yaml",
            bytes: format!("a: {}{}\n", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            code: 1,
            message: "nesting deeper than 128 levels (Limits::max_depth)",
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    for case in cases {
        let file = dir.path().join(case.name);
        fs::write(&file, &case.bytes).unwrap();
        let (code, report) = run_json(&["check", "--json", path_str(&file)]);
        assert_eq!(code, case.code, "{}: {report}", case.name);
        let errors = report["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{}: {report}", case.name);
        assert_eq!(errors[0]["file"], json!(path_str(&file)), "{}", case.name);
        let message = errors[0]["message"].as_str().unwrap();
        assert!(
            !case.message.is_empty(),
            "{}: every string contains \"\"",
            case.name
        );
        assert!(message.contains(case.message), "{}: {message}", case.name);
    }
}

#[test]
fn check_rejects_a_100_mb_file_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge.yaml");
    // A sparse file: 100 MB long, no disk used.
    fs::File::create(&file).unwrap().set_len(100 << 20).unwrap();
    let (code, report) = run_json(&["check", "--json", path_str(&file)]);
    assert_eq!(code, 1, "{report}");
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("over the limit"), "{message}");
}

/// The `{"error":{"kind","message"}}` object that `--json` prints for trouble; its kind and
/// message. Nothing else is in it.
fn trouble(code: i32, report: &Value) -> (&str, &str) {
    assert_eq!(code, 2, "trouble exits 2: {report}");
    let keys: Vec<&String> = report.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["error"], "{report}");
    let error = report["error"].as_object().unwrap();
    let keys: Vec<&String> = error.keys().collect();
    assert_eq!(keys, ["kind", "message"], "{report}");
    (
        error["kind"].as_str().unwrap(),
        error["message"].as_str().unwrap(),
    )
}

#[test]
fn check_reports_io_trouble_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let (code, report) = run_json(&["check", "--json", path_str(&missing)]);
    assert_eq!(
        trouble(code, &report),
        (
            "not_found",
            format!("{}: no such file or directory", missing.display()).as_str()
        )
    );

    let unknown = dir.path().join("app.conf");
    fs::write(&unknown, "a = 1").unwrap();
    let (code, report) = run_json(&["check", "--json", path_str(&unknown)]);
    let (kind, message) = trouble(code, &report);
    assert_eq!(kind, "io");
    assert!(
        message.starts_with(&format!("{}: unknown config format", unknown.display())),
        "{message}"
    );

    let empty_dir = dir.path().join("conf.d");
    fs::create_dir(&empty_dir).unwrap();
    let (code, report) = run_json(&["check", "--json", path_str(&empty_dir)]);
    let (kind, message) = trouble(code, &report);
    assert_eq!(kind, "io");
    assert!(message.contains("no config files"), "{message}");

    let output = hotconf(&["check"]);
    assert_eq!(output.status.code(), Some(2), "usage error");
    assert!(
        output.stdout.is_empty(),
        "without --json, usage goes to stderr"
    );
}

#[test]
fn json_usage_errors_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.toml");
    fs::write(&file, "a = 1\n").unwrap();
    let cases: [(&[&str], &str); 7] = [
        (
            &["check", "--json", "--bogus", path_str(&file)],
            "unexpected argument '--bogus' found",
        ),
        (
            &["check", "--json"],
            "the following required arguments were not provided: <PATH>...",
        ),
        (
            &["diff", "--json", path_str(&file)],
            "the following required arguments were not provided: <NEW>",
        ),
        (
            &[
                "diff",
                "--json",
                "--deny",
                "a..b",
                path_str(&file),
                path_str(&file),
            ],
            "invalid value 'a..b' for '--deny <PATTERN>'",
        ),
        (
            &["watch", "--json", "--bogus", path_str(&file)],
            "unexpected argument '--bogus' found",
        ),
        (
            &["watch", "--json", "--secret", "a..b", path_str(&file)],
            "invalid value 'a..b' for '--secret <PATTERN>'",
        ),
        (
            &["watch", "--json", "--debounce", "5", path_str(&file)],
            "invalid value '5' for '--debounce <MS>': 5 is not in 10..=60000",
        ),
    ];
    for (args, expected) in cases {
        let (code, report) = run_json(args);
        let (kind, message) = trouble(code, &report);
        assert_eq!(kind, "usage", "{args:?}: {report}");
        assert!(message.starts_with(expected), "{args:?}: {message}");
    }

    // Help and version are not failures: text, exit 0.
    for args in [&["check", "--json", "--help"][..], &["--version", "--json"]] {
        let output = hotconf(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(serde_json::from_str::<Value>(&stdout).is_err(), "{stdout}");
        assert!(stdout.contains("hotconf"), "{stdout}");
    }
}

#[test]
fn json_missing_paths_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.toml");
    fs::write(&file, "a = 1\n").unwrap();
    let missing = dir.path().join("missing.toml");
    let expected = format!("{}: no such file or directory", missing.display());
    for args in [
        vec!["check", "--json", path_str(&file), path_str(&missing)],
        vec!["diff", "--json", path_str(&file), path_str(&missing)],
        vec!["diff", "--json", path_str(&missing), path_str(&file)],
        vec!["watch", "--json", path_str(&missing)],
    ] {
        let (code, report) = run_json(&args);
        assert_eq!(
            trouble(code, &report),
            ("not_found", expected.as_str()),
            "{args:?}"
        );
    }
    let schema = dir.path().join("schema.json");
    let expected = format!("--schema {}: no such file or directory", schema.display());
    for command in ["check", "watch"] {
        let (code, report) = run_json(&[
            command,
            "--json",
            "--schema",
            path_str(&schema),
            path_str(&file),
        ]);
        assert_eq!(
            trouble(code, &report),
            ("not_found", expected.as_str()),
            "{command}"
        );
    }
}

#[test]
fn json_invalid_configs_keep_the_check_report() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    let bad = dir.path().join("bad.toml");
    fs::write(&good, "a = 1\n").unwrap();
    fs::write(&bad, "a = 1\nb = = 2\n").unwrap();
    let located = json!([{
        "file": path_str(&bad), "line": 2, "column": 5, "message": "extra `=`, expected nothing"
    }]);
    let invalid = |files: &[&Path]| {
        let files: Vec<&str> = files.iter().map(|f| path_str(f)).collect();
        json!({"valid": false, "files": files, "errors": located, "warnings": []})
    };

    let (code, report) = run_json(&["check", "--json", path_str(&bad)]);
    assert_eq!((code, report), (1, invalid(&[&bad])));
    // `watch` refuses to start on it, with the same report and exit status.
    let (code, report) = run_json(&["watch", "--json", path_str(&bad)]);
    assert_eq!((code, report), (1, invalid(&[&bad])));
    // `diff` has nothing to compare: the same report, with the contract's exit 2.
    let (code, report) = run_json(&["diff", "--json", path_str(&good), path_str(&bad)]);
    assert_eq!((code, report), (2, invalid(&[&good, &bad])));
}

/// Runs a copy of the binary that cannot read `file` (mode 000): as `nobody` when the tests
/// run as root, who reads it anyway. The copy can be executed wherever the build directory is.
fn run_unreadable(dir: &Path, file: &Path, args: &[&str]) -> Output {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(file, fs::Permissions::from_mode(0o000)).unwrap();
    let as_root = fs::read(file).is_ok();
    let binary = dir.join("hotconf");
    if !binary.exists() {
        fs::copy(assert_cmd::cargo::cargo_bin("hotconf"), &binary).unwrap();
    }
    let mut command = if as_root {
        let mut command = std::process::Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&binary);
        command
    } else {
        std::process::Command::new(&binary)
    };
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn json_unreadable_files_are_io_trouble() {
    let dir = tempfile::tempdir().unwrap();
    let readable = dir.path().join("app.toml");
    fs::write(&readable, "a = 1\n").unwrap();
    let file = dir.path().join("secret.toml");
    fs::write(&file, "a = 1\n").unwrap();
    let expected = format!("{}: permission denied", file.display());
    for args in [
        vec!["check", "--json", path_str(&file)],
        vec!["diff", "--json", path_str(&readable), path_str(&file)],
        vec!["watch", "--json", path_str(&file)],
    ] {
        let output = run_unreadable(dir.path(), &file, &args);
        let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&output.stderr))
        });
        let code = output.status.code().unwrap();
        assert_eq!(
            trouble(code, &report),
            ("io", expected.as_str()),
            "{args:?}"
        );
    }
}

#[test]
fn diff_prints_changes_by_path_with_secrets_redacted() {
    let old = examples().join("config");
    let new = examples().join("config-next");
    let output = hotconf(&["diff", path_str(&old), path_str(&new)]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        stdout,
        "~ limits.rpm: 600 -> 1200\n\
         ~ database.password: \"***\" -> \"***\"\n\
         + routes[2]: {\"path\":\"/api/reports\",\"upstream\":\"billing\"}\n\
         ~ labels.tier: \"edge\" -> \"core\"\n"
    );
    assert!(!stdout.contains("rotated"), "a secret leaked: {stdout}");

    let (code, report) = run_json(&["diff", "--json", path_str(&old), path_str(&new)]);
    assert_eq!(code, 1);
    assert_eq!(
        report["changes"][0],
        json!({"path": "limits.rpm", "kind": "modified", "old": 600, "new": 1200})
    );
    assert_eq!(
        report["changes"][2],
        json!({"path": "routes[2]", "kind": "added", "new": {"path": "/api/reports", "upstream": "billing"}})
    );
}

#[test]
fn diff_of_identical_configs_is_empty() {
    let dir = examples().join("config");
    let output = hotconf(&["diff", path_str(&dir), path_str(&dir)]);
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty());
    let (code, report) = run_json(&["diff", "--json", path_str(&dir), path_str(&dir)]);
    assert_eq!((code, report), (0, json!({"changes": []})));
}

#[test]
fn diff_follows_the_contract_for_paths_arrays_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.json");
    let new = dir.path().join("new.yaml");
    fs::write(
        &old,
        r#"{"labels": {"app.kubernetes.io/name": "a"}, "ports": [80, 443, 8080], "ratio": 1, "db": {"dsn": "x"}}"#,
    )
    .unwrap();
    fs::write(
        &new,
        "labels:\n  app.kubernetes.io/name: b\nports: [80, 8443]\nratio: 1.0\ndb:\n  dsn: y\n",
    )
    .unwrap();
    let (code, report) = run_json(&[
        "diff",
        "--json",
        "--secret",
        "db.dsn",
        path_str(&old),
        path_str(&new),
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        report["changes"],
        json!([
            {"path": "labels.\"app.kubernetes.io/name\"", "kind": "modified", "old": "a", "new": "b"},
            {"path": "ports[1]", "kind": "modified", "old": 443, "new": 8443},
            {"path": "ports[2]", "kind": "removed", "old": 8080},
            {"path": "ratio", "kind": "modified", "old": 1, "new": 1.0},
            {"path": "db.dsn", "kind": "modified", "old": "***", "new": "***"},
        ])
    );
}

#[test]
fn diff_with_an_invalid_side_is_trouble() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    let bad = dir.path().join("bad.toml");
    fs::write(&good, "a = 1\n").unwrap();
    fs::write(&bad, "a = \n").unwrap();
    let output = hotconf(&["diff", path_str(&good), path_str(&bad)]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.toml:1:"), "{stderr}");
    let missing = dir.path().join("missing.toml");
    let output = hotconf(&["diff", path_str(&good), path_str(&missing)]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn diff_classifies_changes_by_policy() {
    let old = examples().join("config");
    let new = examples().join("config-next");
    let args = [
        "diff",
        "--restart-required",
        "limits.rpm",
        "--deny",
        "labels.*",
        path_str(&old),
        path_str(&new),
    ];
    let output = hotconf(&args);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("~ limits.rpm: 600 -> 1200  (restart required)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("~ labels.tier: \"edge\" -> \"core\"  (denied)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+ routes[2]: {\"path\":\"/api/reports\",\"upstream\":\"billing\"}\n"),
        "{stdout}"
    );

    let mut json_args = args.to_vec();
    json_args.insert(1, "--json");
    let (code, report) = run_json(&json_args);
    assert_eq!(code, 1);
    assert_eq!(report["changes"][0]["rule"], json!("restart_required"));
    assert_eq!(report["changes"][3]["rule"], json!("denied"));
    assert!(
        report["changes"][2].get("rule").is_none(),
        "hot changes carry no rule"
    );
}

#[test]
fn check_does_not_show_secret_values_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.toml");
    fs::write(&file, "[db]\npassword = 918273\n").unwrap();
    let schema = dir.path().join("schema.json");
    fs::write(
        &schema,
        r#"{"properties": {"db": {"properties": {"password": {"type": "string"}}}}}"#,
    )
    .unwrap();
    let output = hotconf(&["check", "--schema", path_str(&schema), path_str(&file)]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("db.password: invalid value (secret, not shown)"),
        "{stderr}"
    );
    assert!(!stderr.contains("918273"), "the secret leaked: {stderr}");
}

#[test]
fn caret_snippets_never_show_a_secret_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // A syntax error on the secret's own line.
        ("a.toml", "name = \"svc\"\npassword = \"hunter2\n", &[][..]),
        // A duplicate key inside a multi-line secret's table.
        (
            "b.toml",
            "[db]\ntoken = \"\"\"\nhunter2\n\"\"\"\ntoken = 1\n",
            &[][..],
        ),
        // A YAML block scalar under a secret key, the error after it.
        ("c.yaml", "api_key: |\n  hunter2\nbad: [\n", &[][..]),
        // A user pattern's key, on the line the parser points at.
        (
            "d.json",
            "{\"dsn\": \"hunter2\" \"x\": 1}",
            &["--secret", "dsn"][..],
        ),
    ];
    for (name, text, flags) in cases {
        let file = dir.path().join(name);
        fs::write(&file, text).unwrap();
        let mut args = vec!["check"];
        args.extend_from_slice(flags);
        args.push(path_str(&file));
        let output = hotconf(&args);
        assert_eq!(output.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(name), "{name}: located: {stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "{name}: the secret leaked: {stderr}"
        );
    }
    // The control: a syntax error on a line with no secret shows its line.
    let file = dir.path().join("e.toml");
    fs::write(&file, "password = \"hunter2\"\nport = = 5\n").unwrap();
    let output = hotconf(&["check", path_str(&file)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("port = = 5"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn a_secret_pattern_hides_the_value_from_check_and_diff() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.toml");
    let new = dir.path().join("new.toml");
    fs::write(&old, "[db]\ndsn = \"postgres://u:hunter2@db\"\n").unwrap();
    fs::write(&new, "[db]\ndsn = \"postgres://u:hunter3@db\"\n").unwrap();
    let schema = dir.path().join("schema.json");
    fs::write(
        &schema,
        r#"{"properties": {"db": {"properties": {"dsn": {"type": "integer"}}}}}"#,
    )
    .unwrap();
    let all_output = |output: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };

    // `dsn` is no secret by name: without the pattern the schema error shows the value.
    let check = ["check", "--schema", path_str(&schema), path_str(&old)];
    let output = hotconf(&check);
    assert!(all_output(&output).contains("hunter2"), "the baseline");

    let mut check = check.to_vec();
    check.splice(1..1, ["--secret", "db.dsn"]);
    let output = hotconf(&check);
    assert_eq!(output.status.code(), Some(1));
    let text = all_output(&output);
    assert!(!text.contains("hunter"), "the secret leaked: {text}");
    assert!(
        text.contains(&format!(
            "{}:2:7: db.dsn: invalid value (secret, not shown)",
            old.display()
        )),
        "{text}"
    );
    check.insert(1, "--json");
    let output = hotconf(&check);
    let text = all_output(&output);
    assert!(!text.contains("hunter"), "the secret leaked: {text}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["errors"],
        json!([{"file": path_str(&old), "line": 2, "column": 7, "path": "db.dsn",
                "message": "invalid value (secret, not shown)"}])
    );

    let diff = ["diff", "--secret", "db.dsn", path_str(&old), path_str(&new)];
    let output = hotconf(&diff);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(all_output(&output), "~ db.dsn: \"***\" -> \"***\"\n");
    let (code, report) = run_json(&[&["diff", "--json"][..], &diff[1..]].concat());
    assert_eq!(code, 1);
    assert_eq!(
        report,
        json!({"changes": [{"path": "db.dsn", "kind": "modified", "old": "***", "new": "***"}]})
    );
}

/// `RUST_LOG` shows the engine's stages on standard error, never in the output read by
/// scripts.
#[test]
fn rust_log_is_honoured_by_check_and_diff() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.toml");
    fs::write(&file, "a = 1\n").unwrap();
    for args in [
        vec!["check", "--json", path_str(&file)],
        vec!["diff", "--json", path_str(&file), path_str(&file)],
    ] {
        let output = Command::cargo_bin("hotconf")
            .unwrap()
            .args(&args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "hotconf=debug")
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("DEBUG hotconf: merged layers"),
            "{args:?}: {stderr}"
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap();

        let quiet = hotconf(&args);
        assert!(quiet.stderr.is_empty(), "no RUST_LOG, no log");
    }
}

/// Help wraps to the terminal's width (`COLUMNS` when there is no terminal), up to 100.
#[test]
fn help_wraps_to_the_terminal_width() {
    let widest = |columns: &str| {
        let output = Command::cargo_bin("hotconf")
            .unwrap()
            .args(["watch", "--help"])
            .env("COLUMNS", columns)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0));
        let stdout = String::from_utf8(output.stdout).unwrap();
        stdout.lines().map(|l| l.chars().count()).max().unwrap()
    };
    assert_eq!(widest("60"), 60);
    assert_eq!(widest("80"), 80);
    assert_eq!(widest("200"), 100, "max_term_width");
}
