//! Reading, layering and the watch_paths search.

use super::*;
use crate::ProblemKind;
use crate::source::{Defaults, Dir, Env, Format};

#[test]
fn later_layers_override_and_keep_their_provenance() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("10-base.toml"),
        "[limits]\nrpm = 60\nburst = 5\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("20-prod.yaml"), "limits:\n  burst: 50\n").unwrap();
    let sources: Vec<Box<dyn Source>> = vec![
        Box::new(Defaults::text(Format::Toml, "name = \"svc\"\n")),
        Box::new(Dir::new(dir.path())),
        Box::new(Env::from_vars(
            "APP",
            "__",
            [("APP__LIMITS__RPM".into(), "120".into())],
        )),
    ];
    let layers = Layers::load(&sources, &Limits::default()).unwrap();
    assert_eq!(
        layers.to_json(),
        serde_json::json!({"name": "svc", "limits": {"rpm": 120, "burst": 50}})
    );
    let burst = layers.locate(
        Problem::error(ProblemKind::Validation, "x"),
        &"limits.burst".parse().unwrap(),
    );
    assert!(burst.file.unwrap().ends_with("20-prod.yaml"));
    assert_eq!((burst.line, burst.column), (Some(2), Some(10)));
}

#[test]
fn every_broken_document_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), "a = \n").unwrap();
    std::fs::write(dir.path().join("b.json"), "{\"b\": }").unwrap();
    std::fs::write(dir.path().join("c.yaml"), "c: 1\n").unwrap();
    let problems = Layers::load(&[Dir::new(dir.path())], &Limits::default()).unwrap_err();
    let files: Vec<_> = problems.0.iter().map(|p| p.file.clone().unwrap()).collect();
    assert_eq!(files.len(), 2, "{problems}");
    assert!(files[0].ends_with("a.toml") && files[1].ends_with("b.json"));
}

fn key(name: &str, text: &str) -> Document {
    Document::new(
        crate::source::Origin::Key(name.into()),
        Format::Toml,
        text.as_bytes().to_vec(),
    )
}

/// Marks the cached tree of `name` so that a load that takes it shows `cached = true`.
fn mark(cache: &ParseCache, name: &str) {
    let mut state = cache.state.lock().unwrap();
    let origin = crate::source::Origin::Key(name.into());
    let (_, tree) = state
        .entries
        .iter_mut()
        .flatten()
        .find(|(document, _)| document.origin == origin)
        .unwrap();
    let tree = tree.as_mut().expect("a kept tree, not a lent one");
    let Value::Table(table) = &mut tree.value else {
        panic!("not a table")
    };
    table.insert("cached".into(), Node::new(Value::Bool(true), tree.span));
}

/// A document mounted under `section`, as [`Dir::sections`] reads them.
fn mounted(name: &str, section: &str, text: &str) -> Document {
    Document {
        section: Some(section.into()),
        ..key(name, text)
    }
}

/// A whole load: the layers' JSON, after the lent trees went back.
fn load(cache: &ParseCache, documents: Vec<Document>) -> serde_json::Value {
    let layers = Layers::from_documents_cached(documents, &Limits::default(), Some(cache)).unwrap();
    let json = layers.to_json();
    layers.give_back(Some(cache));
    json
}

#[test]
fn unchanged_documents_are_taken_from_the_cache() {
    let cache = ParseCache::default();
    let a = key("a", "x = 1\n");
    let b = key("b", "y = 2\n");
    load(&cache, vec![a.clone(), b.clone()]);
    assert_eq!(cache.len(), 2);
    mark(&cache, "a");
    mark(&cache, "b");
    // b changed: a comes from the cache, b is parsed.
    let b2 = key("b", "y = 3\n");
    assert_eq!(
        load(&cache, vec![a.clone(), b2.clone()]),
        serde_json::json!({"x": 1, "cached": true, "y": 3})
    );
    // The cache now holds this load's trees; b2's is fresh.
    mark(&cache, "b");
    assert_eq!(
        load(&cache, vec![a.clone(), b2.clone()]),
        serde_json::json!({"x": 1, "cached": true, "y": 3})
    );
    // A document at another position is parsed again (its spans name the position).
    assert_eq!(
        load(&cache, vec![b2.clone(), a.clone()]),
        serde_json::json!({"y": 3, "x": 1})
    );
    // Documents no longer read are forgotten.
    load(&cache, vec![a, key("c", "z = 0\n")]);
    assert_eq!(cache.len(), 2);
    let mut known = cache.take_all();
    assert!(known.take(&b2, 0).is_none() && known.take(&b2, 1).is_none());
}

#[test]
fn a_single_document_is_not_cached() {
    let cache = ParseCache::default();
    load(&cache, vec![key("a", "x = 1\n")]);
    assert_eq!(cache.len(), 0);
}

#[test]
fn a_failed_parse_keeps_the_good_documents_trees() {
    let cache = ParseCache::default();
    let a = key("a", "x = 1\n");
    load(&cache, vec![a.clone(), key("b", "y = 2\n")]);
    mark(&cache, "a");
    let broken = Layers::from_documents_cached(
        vec![a.clone(), key("b", "y = \n")],
        &Limits::default(),
        Some(&cache),
    );
    assert!(broken.is_err());
    assert_eq!(cache.len(), 1);
    assert_eq!(
        load(&cache, vec![a, key("b", "y = 4\n")]),
        serde_json::json!({"x": 1, "cached": true, "y": 4})
    );
}

#[test]
fn a_section_of_its_own_is_lent_to_the_merge_and_given_back() {
    let cache = ParseCache::default();
    let limits = Limits::default();
    let a = mounted("a", "a", "x = 1\n");
    let b = mounted("b", "b", "y = 2\n");
    let layers =
        Layers::from_documents_cached(vec![a.clone(), b.clone()], &limits, Some(&cache)).unwrap();
    // Lent, not copied: nothing is kept until the load is done with the layers.
    assert_eq!(cache.len(), 0);
    layers.give_back(Some(&cache));
    assert_eq!(cache.len(), 2);
    mark(&cache, "a");
    mark(&cache, "b");
    // b changed: a comes back from the cache, b is parsed.
    let b2 = mounted("b", "b", "y = 3\n");
    let layers =
        Layers::from_documents_cached(vec![a.clone(), b2.clone()], &limits, Some(&cache)).unwrap();
    assert_eq!(
        layers.to_json(),
        serde_json::json!({"a": {"x": 1, "cached": true}, "b": {"y": 3}})
    );
    // Layers that are dropped instead give nothing back: those trees are parsed again.
    drop(layers);
    assert_eq!(cache.len(), 0);
    assert_eq!(
        load(&cache, vec![a, b2]),
        serde_json::json!({"a": {"x": 1}, "b": {"y": 3}})
    );
}

#[test]
fn a_section_another_document_writes_is_copied_not_lent() {
    let cache = ParseCache::default();
    let limits = Limits::default();
    // `a` is written by two mounted documents, `b` by a document's top-level key; `c` is
    // only `c`'s.
    let documents = vec![
        mounted("a1", "a", "x = 1\n"),
        mounted("a2", "a", "y = 2\n"),
        key("top", "[b]\nz = 0\n"),
        mounted("b", "b", "w = 3\n"),
        mounted("c", "c", "v = 4\n"),
    ];
    let layers = Layers::from_documents_cached(documents.clone(), &limits, Some(&cache)).unwrap();
    assert_eq!(cache.len(), 4, "every tree but c's is copied");
    assert_eq!(
        layers.to_json(),
        serde_json::json!({"a": {"x": 1, "y": 2}, "b": {"z": 0, "w": 3}, "c": {"v": 4}})
    );
    layers.give_back(Some(&cache));
    assert_eq!(cache.len(), 5);
    for name in ["a1", "a2", "top", "b", "c"] {
        mark(&cache, name);
    }
    // Every tree came back as it was parsed, not as merged: a1's has no `y`.
    let layers = Layers::from_documents_cached(documents, &limits, Some(&cache)).unwrap();
    assert_eq!(
        layers.to_json(),
        serde_json::json!({
            "a": {"x": 1, "cached": true, "y": 2},
            "cached": true,
            "b": {"z": 0, "cached": true, "w": 3},
            "c": {"v": 4, "cached": true},
        })
    );
}

#[test]
fn only_the_last_load_gives_its_trees_back() {
    let cache = ParseCache::default();
    let limits = Limits::default();
    let documents = vec![mounted("a", "a", "x = 1\n"), mounted("b", "b", "y = 2\n")];
    let earlier = Layers::from_documents_cached(documents.clone(), &limits, Some(&cache)).unwrap();
    let later = Layers::from_documents_cached(documents, &limits, Some(&cache)).unwrap();
    earlier.give_back(Some(&cache));
    assert_eq!(
        cache.len(),
        0,
        "an earlier load's layers took the later load's place"
    );
    later.give_back(Some(&cache));
    assert_eq!(cache.len(), 2);
}

#[test]
fn a_tree_taken_out_of_the_root_is_parsed_again() {
    let cache = ParseCache::default();
    let limits = Limits::default();
    let documents = vec![
        mounted("a", "a", "x = 1\n"),
        mounted("settings", "hot_reload", "debounce_ms = 50\n"),
    ];
    let mut layers =
        Layers::from_documents_cached(documents.clone(), &limits, Some(&cache)).unwrap();
    assert!(layers.take_settings("hot_reload").unwrap().is_some());
    layers.give_back(Some(&cache));
    assert_eq!(cache.len(), 1);
    let mut layers = Layers::from_documents_cached(documents, &limits, Some(&cache)).unwrap();
    let found = layers.take_settings("hot_reload").unwrap().unwrap();
    assert_eq!(found.debounce_ms, Some(50));
}

#[test]
fn a_failed_load_gives_the_good_sections_back() {
    let cache = ParseCache::default();
    let limits = Limits::default();
    let a = mounted("a", "a", "x = 1\n");
    load(&cache, vec![a.clone(), mounted("b", "b", "y = 2\n")]);
    assert_eq!(cache.len(), 2);
    mark(&cache, "a");
    let broken = Layers::from_documents_cached(
        vec![a.clone(), mounted("b", "b", "y = \n")],
        &limits,
        Some(&cache),
    );
    assert!(broken.is_err());
    assert_eq!(cache.len(), 1);
    assert_eq!(
        load(&cache, vec![a, mounted("b", "b", "y = 4\n")]),
        serde_json::json!({"a": {"x": 1, "cached": true}, "b": {"y": 4}})
    );
}

#[test]
fn only_a_document_that_may_list_files_is_parsed_to_find_them() {
    let limits = Limits::default();
    let plain = vec![
        key("a", "x = 1\n"),
        key("b", "[hot_reload]\nenabled = true\n"),
    ];
    let read = with_extras(plain, Some("hot_reload"), &limits, None).unwrap();
    assert!(read.parsed.is_none(), "parsed without a reason");
    let listing = vec![key("a", "x = 1\n[hot_reload]\nwatch_paths = []\n")];
    let read = with_extras(listing, Some("hot_reload"), &limits, None).unwrap();
    assert!(read.parsed.is_some());
    let escaped = vec![key("a", "\"x\\u0041\" = 1\n")];
    let read = with_extras(escaped, Some("hot_reload"), &limits, None).unwrap();
    assert!(read.parsed.is_some());
    assert_eq!(format!("{:?}", ParseCache::default()), "ParseCache { .. }");
    // Bytes that are not UTF-8 are searched as bytes.
    let binary = |text: &[u8]| {
        Document::new(
            crate::source::Origin::Key("a".into()),
            Format::Toml,
            text.to_vec(),
        )
    };
    assert!(may_list_files(&binary(b"\xff watch_paths = []")));
    assert!(!may_list_files(&binary(b"\xff watch_pathz = []")));
    assert!(may_list_files(&binary(b"watch_paths = []")));
    assert!(!may_list_files(&binary(b"watch_path = []")));
}

#[test]
fn a_mounted_document_merges_as_a_table_under_its_section_would() {
    let merged = |documents: Vec<Document>| {
        Layers::from_documents(documents, &Limits::default())
            .unwrap()
            .to_json()
    };
    // First, beside another section, and over the same section written by a document
    // before it.
    assert_eq!(
        merged(vec![mounted("a", "a", "x = 1\n")]),
        serde_json::json!({"a": {"x": 1}})
    );
    assert_eq!(
        merged(vec![key("r", "b = 2\n"), mounted("a", "a", "x = 1\n")]),
        serde_json::json!({"b": 2, "a": {"x": 1}})
    );
    assert_eq!(
        merged(vec![
            key("r", "a = { x = 1, y = 2 }\n"),
            mounted("a", "a", "y = 3\n")
        ]),
        serde_json::json!({"a": {"x": 1, "y": 3}})
    );
}
