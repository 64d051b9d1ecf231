//! What the worker settles after answering.

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
