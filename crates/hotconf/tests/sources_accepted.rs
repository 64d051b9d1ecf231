//! `Source::accepted`: a source hears which documents the reloader runs after the first
//! load and after every attempt on the sources that was not rejected, and never after a
//! rejected one or a programmatic change. A last-known-good cache depends on exactly this.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use hotconf::source::{Document, Format, Origin, Source};
use hotconf::{Limits, Outcome, Problem, Reloader};
use serde_json::json;

type Json = serde_json::Value;
/// One `accepted` call: each document's origin and text, in order.
type Call = Vec<(String, String)>;

/// A source over one in-memory TOML document that records every `accepted` call as the
/// origins and texts it was given.
#[derive(Debug, Clone, Default)]
struct Recording {
    text: Arc<Mutex<String>>,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Recording {
    fn new(text: &str) -> Self {
        let source = Self::default();
        source.set(text);
        source
    }

    fn set(&self, text: &str) {
        text.clone_into(&mut self.text.lock().unwrap());
    }

    /// The calls so far, emptied.
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl Source for Recording {
    fn read(&self, _limits: &Limits) -> Result<Vec<Document>, Problem> {
        let text = self.text.lock().unwrap().clone();
        Ok(vec![Document::new(
            Origin::Key("/mem/app.toml".into()),
            Format::Toml,
            text.into_bytes(),
        )])
    }

    fn accepted(&self, documents: &[Document]) {
        let call = documents
            .iter()
            .map(|d| {
                (
                    d.origin.to_string(),
                    String::from_utf8(d.bytes.to_vec()).unwrap(),
                )
            })
            .collect();
        self.calls.lock().unwrap().push(call);
    }
}

fn build(source: &Recording) -> Reloader<Json> {
    Reloader::<Json>::builder()
        .defaults(Format::Toml, "rpm = 1\nlisten = \"a\"\n")
        .source(source.clone())
        .restart_required("listen")
        .deny("locked")
        .build()
        .unwrap()
}

#[test]
fn accepted_hears_the_first_load_and_every_reload_that_was_not_rejected() {
    let source = Recording::new("rpm = 60\n");
    let reloader = build(&source);
    let defaults = reloader.current().origins()[0].0.to_string();
    // One call with the defaults' document, then the source's.
    let call = |text: &str| {
        vec![vec![
            (defaults.clone(), "rpm = 1\nlisten = \"a\"\n".to_owned()),
            ("/mem/app.toml".to_owned(), text.to_owned()),
        ]]
    };
    // The first load: every source's documents, lowest layer first.
    assert_eq!(source.take(), call("rpm = 60\n"));

    // Applied.
    source.set("rpm = 70\n");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Applied);
    assert_eq!(source.take(), call("rpm = 70\n"));

    // Other bytes, the same config: unchanged, and still accepted.
    source.set("rpm = 70 # same\n");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Unchanged);
    assert_eq!(source.take(), call("rpm = 70 # same\n"));

    // A restart-required change is accepted: a restart would load it.
    source.set("rpm = 70\nlisten = \"b\"\n");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::RestartRequired);
    assert_eq!(source.take(), call("rpm = 70\nlisten = \"b\"\n"));

    // Rejected, twice (invalid TOML, then a denied path): never accepted.
    source.set("rpm = \n");
    assert!(reloader.reload().is_err());
    source.set("rpm = 71\nlocked = 1\n");
    assert!(reloader.reload().is_err());
    assert_eq!(source.take(), Vec::<Call>::new());
    assert_eq!(reloader.current().config()["rpm"], json!(70));

    // Back to a good document: accepted again.
    source.set("rpm = 80\n");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Applied);
    assert_eq!(source.take(), call("rpm = 80\n"));
}

#[test]
fn accepted_does_not_hear_programmatic_changes_or_a_replay_of_the_same_bytes() {
    let source = Recording::new("rpm = 60\n");
    let reloader = build(&source);
    assert_eq!(source.take().len(), 1);

    // apply() and rollback_to() put a config in effect that is not the sources' documents.
    let event = reloader.apply(json!({"rpm": 5, "listen": "a"})).unwrap();
    assert_eq!(event.outcome, Outcome::Applied);
    assert_eq!(reloader.rollback_to(1).unwrap().outcome, Outcome::Applied);
    assert_eq!(source.take(), Vec::<Call>::new());

    // The sources again: accepted.
    source.set("rpm = 61\n");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Applied);
    assert_eq!(source.take().len(), 1);

    // The same bytes again: the last attempt's outcome stands, nothing new was accepted.
    let again = reloader.reload().unwrap();
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert_eq!(source.take(), Vec::<Call>::new());
}

#[test]
fn a_boxed_source_forwards_accepted() {
    let source = Recording::new("rpm = 60\n");
    let boxed: Box<dyn Source> = Box::new(source.clone());
    let reloader = Reloader::<Json>::builder().source(boxed).build().unwrap();
    assert_eq!(
        source.take(),
        vec![vec![("/mem/app.toml".to_owned(), "rpm = 60\n".to_owned())]]
    );
    drop(reloader);
}

/// A source whose `accepted` panics.
#[derive(Debug)]
struct Panicking;

impl Source for Panicking {
    fn read(&self, _limits: &Limits) -> Result<Vec<Document>, Problem> {
        Ok(vec![Document::new(
            Origin::Key("/mem/base.toml".into()),
            Format::Toml,
            b"base = 1\n".to_vec(),
        )])
    }

    fn accepted(&self, _documents: &[Document]) {
        panic!("accepted blew up");
    }
}

#[test]
fn a_source_that_panics_in_accepted_neither_fails_the_reload_nor_silences_the_others() {
    let source = Recording::new("rpm = 60\n");
    let reloader = Reloader::<Json>::builder()
        .source(Panicking)
        .source(source.clone())
        .build()
        .unwrap();
    assert_eq!(source.take().len(), 1);

    source.set("rpm = 70\n");
    let event = reloader.reload().unwrap();
    assert_eq!(event.outcome, Outcome::Applied);
    assert_eq!(
        source.take(),
        vec![vec![
            ("/mem/base.toml".to_owned(), "base = 1\n".to_owned()),
            ("/mem/app.toml".to_owned(), "rpm = 70\n".to_owned()),
        ]]
    );
    assert_eq!(*reloader.current().config(), json!({"base": 1, "rpm": 70}));
    // The worker goes on.
    source.set("rpm = 80\n");
    assert_eq!(reloader.reload().unwrap().outcome, Outcome::Applied);
}
