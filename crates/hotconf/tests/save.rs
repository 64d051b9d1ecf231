//! `Reloader::save` over layered sources, and its failure paths, on real files.

#![cfg(feature = "toml")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;

use hotconf::source::{Env, File, Format};
use hotconf::{Error, Outcome, Reloader};
use serde_json::{Value, json};

const DEFAULTS: &str = "[limits]\nrpm = 30\nburst = 5\n\n[server]\nname = \"svc\"\n";

/// The files of a directory, by name.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn save_writes_the_whole_effective_config_of_every_layer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "# tuned by hand\n[limits]\nrpm = 60\n").unwrap();
    let vars = [("APP__SERVER__NAME".to_owned(), "edge".to_owned())];
    let reloader = Reloader::<Value>::builder()
        .defaults(Format::Toml, DEFAULTS)
        .file(&path)
        .source(Env::from_vars("APP", "__", vars))
        .build()
        .unwrap();
    let effective = json!({"limits": {"rpm": 60, "burst": 5}, "server": {"name": "edge"}});
    assert_eq!(*reloader.current().config(), effective);

    assert_eq!(reloader.save().unwrap(), path);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# tuned by hand\n"), "{text}");
    // The file alone reproduces the effective config: the defaults' and the overrides'
    // values are in it too.
    let alone = Reloader::<Value>::builder().file(&path).build().unwrap();
    assert_eq!(*alone.current().config(), effective, "{text}");
    // Read back under the same layers, nothing changes.
    let event = reloader.reload().unwrap();
    assert_eq!(
        (event.outcome, event.version),
        (Outcome::Unchanged, 1),
        "{}",
        event.to_json()
    );
    assert_eq!(names(dir.path()), ["app.toml"], "no temp file left");
}

#[test]
fn save_without_a_file_to_save_to_is_unsaveable() {
    let reloader = Reloader::<Value>::builder()
        .defaults(Format::Toml, DEFAULTS)
        .source(Env::from_vars("APP", "__", []))
        .build()
        .unwrap();
    let error = reloader.save().unwrap_err();
    assert!(
        matches!(&error, Error::Unsaveable(reason) if reason.contains("no file source")),
        "{error:?}"
    );
}

#[test]
fn save_writes_to_a_file_source_added_with_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "rpm = 60\n").unwrap();
    let reloader = Reloader::<Value>::builder()
        .defaults(Format::Toml, "burst = 5\n")
        .source(File::new(&path))
        .build()
        .unwrap();
    assert_eq!(reloader.save().unwrap(), path);
    let alone = Reloader::<Value>::builder().file(&path).build().unwrap();
    assert_eq!(*alone.current().config(), json!({"rpm": 60, "burst": 5}));
}

/// Whether the tests run as root, for whom permission bits do not stop a write.
fn running_as_root() -> bool {
    let output = Command::new("id").arg("-u").output().unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

#[test]
fn a_save_that_cannot_write_fails_and_leaves_the_files_unchanged() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    fs::write(&path, "[limits]\nrpm = 60\n").unwrap();
    let root = running_as_root();
    // As root, a read-only directory is writable: a save path under a regular file fails
    // for everyone, with ENOTDIR.
    let plain = dir.path().join("plain.toml");
    fs::write(&plain, "kept = true\n").unwrap();
    let mut builder = Reloader::<Value>::builder()
        .defaults(Format::Toml, DEFAULTS)
        .file(&path);
    if root {
        builder = builder.save_to(plain.join("child.toml"));
    }
    let reloader = builder.build().unwrap();
    reloader
        .update(|config| config["limits"]["rpm"] = json!(90))
        .unwrap();
    if !root {
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
    }

    let result = reloader.save();
    if !root {
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let Err(Error::Save {
        path: failed,
        source,
    }) = result
    else {
        panic!("expected a save error, got {result:?}");
    };
    if root {
        assert_eq!(failed, plain.join("child.toml"));
        assert_eq!(source.kind(), ErrorKind::NotADirectory, "{source}");
    } else {
        assert_eq!(failed, path);
        assert_eq!(source.kind(), ErrorKind::PermissionDenied, "{source}");
    }
    assert_eq!(fs::read_to_string(&path).unwrap(), "[limits]\nrpm = 60\n");
    assert_eq!(fs::read_to_string(&plain).unwrap(), "kept = true\n");
    assert_eq!(
        names(dir.path()),
        ["app.toml", "plain.toml"],
        "no temp file"
    );
    assert_eq!(
        reloader.current().config()["limits"]["rpm"],
        90,
        "still live"
    );
}
