//! What the worker settles after answering, and the effective config it keeps.

#![allow(clippy::unwrap_used)]

use std::fs;

use serde_json::Value;

use crate::Reloader;
use crate::event::Outcome;
use crate::source::Dir;
use crate::testing::wait_until;

#[test]
fn the_trees_lent_to_a_reload_go_back_to_the_parse_cache() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b", "c"] {
        fs::write(dir.path().join(format!("{name}.json")), r#"{"x": 1}"#).unwrap();
    }
    let reloader = Reloader::<Value>::builder()
        .source(Dir::new(dir.path()).sections(true))
        .build()
        .unwrap();
    let cache = &reloader.inner.shared.parsed;
    // Each file has a section of its own: the first load's trees were lent, and are back.
    assert_eq!(cache.len(), 3);

    fs::write(dir.path().join("b.json"), r#"{"x": 2}"#).unwrap();
    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Applied);
    assert_eq!(reloader.current().config()["b"]["x"], 2);
    // The worker gives them back once the caller has its answer.
    wait_until("three trees are kept", || cache.len() == 3);
}

/// A config whose `Serialize` refuses one name.
#[derive(Debug, serde::Deserialize)]
struct Picky {
    name: String,
}

impl serde::Serialize for Picky {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.name == "unwritable" {
            return Err(serde::ser::Error::custom("this name does not serialize"));
        }
        use serde::ser::SerializeStruct;

        let mut fields = s.serialize_struct("Picky", 1)?;
        fields.serialize_field("name", &self.name)?;
        fields.end()
    }
}

impl crate::Validate for Picky {}

#[test]
fn a_config_that_does_not_serialize_is_rejected_and_the_old_one_stays() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.json");
    fs::write(&path, r#"{"name": "first"}"#).unwrap();
    let reloader = Reloader::<Picky>::builder().file(&path).build().unwrap();

    fs::write(&path, r#"{"name": "unwritable"}"#).unwrap();
    let Err(crate::Error::Invalid(problems)) = reloader.reload() else {
        panic!("a config that does not serialize is applied");
    };
    let messages: Vec<&str> = problems.0.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        ["config does not serialize: this name does not serialize"]
    );
    assert_eq!(reloader.current().config().name, "first");

    fs::write(&path, r#"{"name": "second"}"#).unwrap();
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Applied);
    assert_eq!(reloader.current().config().name, "second");
}

#[test]
fn the_effective_tree_is_the_applied_configs_once_the_caller_has_its_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.json");
    fs::write(&path, r#"{"a": {"b": 1}, "c": [1, 2]}"#).unwrap();
    let reloader = Reloader::<Value>::builder().file(&path).build().unwrap();

    fs::write(&path, r#"{"a": {"b": 2}, "d": "new"}"#).unwrap();
    let event = reloader.reload().unwrap();
    let paths: Vec<String> = event.changes.iter().map(|c| c.path.to_string()).collect();
    assert_eq!(paths, ["a.b", "c", "d"]);
    let effective = reloader.inner.shared.effective.load_full();
    assert_eq!(
        effective.tree().to_json(),
        serde_json::json!({"a": {"b": 2}, "d": "new"})
    );
    assert_eq!(
        crate::event::config_hash(effective.tree()),
        event.hash,
        "the event's hash is the tree's"
    );
}
