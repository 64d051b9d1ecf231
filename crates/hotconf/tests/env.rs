//! Environment overrides from the real process environment, which
//! `ReloaderBuilder::env` reads once, at build.
//!
//! The tests cannot set a variable in their own process (`std::env::set_var` is unsafe, and
//! the workspace forbids unsafe code), so the parent test runs this test binary again with
//! the variables set, selecting only the ignored helper test, which checks the overrides.

#![cfg(feature = "toml")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use hotconf::Reloader;
use hotconf::source::Format;
use serde_json::{Value, json};

/// The helper's name, and the variable that gives it the prefix to read.
const HELPER: &str = "child_with_the_variables_set_reads_them_as_overrides";
const PREFIX_VAR: &str = "HOTCONF_TEST_ENV_PREFIX";
const DEFAULTS: &str = "[limits]\nrpm = 30\nburst = 5\n\n[server]\nname = \"svc\"\n";
const MARK: &str = "overrides checked";

fn reloader(prefix: &str) -> Reloader<Value> {
    Reloader::<Value>::builder()
        .defaults(Format::Toml, DEFAULTS)
        .env(prefix, "__")
        .build()
        .unwrap()
}

#[test]
fn overrides_come_from_the_process_environment() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("HOTCONF_TEST_{}_{nanos}", std::process::id());
    // The negative control: this process has no such variables.
    assert_eq!(reloader(&prefix).current().config()["limits"]["rpm"], 30);

    let output = Command::new(std::env::current_exe().unwrap())
        .args([HELPER, "--exact", "--ignored", "--nocapture"])
        .env(PREFIX_VAR, &prefix)
        .env(format!("{prefix}__LIMITS__RPM"), "120")
        .env(format!("{prefix}__SERVER__NAME"), "edge")
        // Another prefix that merely starts the same way: not ours.
        .env(format!("{prefix}X__LIMITS__BURST"), "9")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // The helper ran (a filter that matched nothing would succeed too) and got its prefix.
    assert!(stdout.contains(MARK), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}\n{stderr}");
}

#[test]
#[ignore = "a helper: overrides_come_from_the_process_environment runs it with variables set"]
fn child_with_the_variables_set_reads_them_as_overrides() {
    let Ok(prefix) = std::env::var(PREFIX_VAR) else {
        // Run on its own: there is nothing to check, and the parent would see no mark.
        return;
    };
    let reloader = reloader(&prefix);
    assert_eq!(
        *reloader.current().config(),
        json!({"limits": {"rpm": 120, "burst": 5}, "server": {"name": "edge"}}),
        "a value that reads as JSON keeps its type; other prefixes are ignored"
    );
    println!("{MARK}");
}
