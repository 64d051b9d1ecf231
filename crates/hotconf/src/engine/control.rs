//! [`Control`]: a reloader as an admin server sees it, not generic over the config type, so
//! one server crate can serve any service's reloader.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Reloader;
use super::pipeline::{self, Input};
use super::status::Status;
use super::worker::{ConfigChange, Request};
use crate::document::{Document, Origin};
use crate::error::Result;
use crate::event::{Event, Trigger};
use crate::plan::Plan;
use crate::source::Format;
use crate::validate::Validate;

/// The effective config as the admin API serves it: secret values as `"***"`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConfigView {
    /// The effective config, redacted.
    pub json: serde_json::Value,
    /// Its version.
    pub version: u64,
    /// Its hash (see [`Event::hash`](crate::Event::hash)); with the version, its
    /// [`etag`](crate::etag).
    pub hash: u64,
}

/// What an admin server needs of a reloader, whatever its config type: read what is live,
/// ask for reloads and rollbacks, submit a config, follow the events.
///
/// Every method goes through the reloader's one worker and pipeline, like the calls it
/// stands for; `by` names the caller in events and the audit log.
///
/// ```
/// use hotconf::{Control, Reloader, source::Format};
///
/// let reloader = Reloader::<serde_json::Value>::builder()
///     .defaults(Format::Toml, "rpm = 60\n[db]\npassword = \"hunter2\"")
///     .build()
///     .unwrap();
/// let control = reloader.control();
/// let view = control.config();
/// assert_eq!(view.json["db"]["password"], "***");
/// let event = control
///     .put(Format::Json, br#"{"rpm": 120, "db": {"password": "***"}}"#.to_vec(), None, Some("ops".into()))
///     .unwrap();
/// assert_eq!(event.version, 2);
/// assert_eq!(reloader.current().config()["db"]["password"], "hunter2", "*** keeps the live secret");
/// assert!(control.status().local_override.is_some());
/// ```
pub trait Control: Send + Sync + 'static {
    /// The config's name (see [`ReloaderBuilder::name`](crate::ReloaderBuilder::name)).
    fn name(&self) -> String;
    /// The effective config, redacted, with its version and hash.
    fn config(&self) -> ConfigView;
    /// See [`Reloader::status`].
    fn status(&self) -> Status;
    /// See [`Reloader::attempts`].
    fn attempts(&self) -> Vec<Event>;
    /// See [`Reloader::attempt`].
    fn attempt(&self, seq: u64) -> Option<Event>;
    /// See [`Reloader::events_since`].
    fn events_since(&self, seq: u64) -> Vec<Event>;
    /// Reloads the sources, as [`Trigger::Api`].
    ///
    /// # Errors
    ///
    /// As [`Reloader::reload`].
    fn reload(&self, by: Option<String>) -> Result<Event>;
    /// See [`Reloader::rollback_to`]; the result is a local override until the sources
    /// next change.
    ///
    /// # Errors
    ///
    /// As [`Reloader::rollback_to`].
    fn rollback_to(&self, version: u64, by: Option<String>) -> Result<Event>;
    /// See [`Reloader::plan`]: what a reload of the sources would do.
    fn plan(&self) -> Plan;
    /// What submitting `bytes` (a whole config in `format`) would do, without doing it.
    fn plan_document(&self, format: Format, bytes: Vec<u8>) -> Plan;
    /// Applies `bytes`, a whole config in `format`, validated like a file save (its
    /// problems are located in the document `api`). A secret sent as `"***"` keeps its live
    /// value. With `if_match`, the live version and hash must be these, or nothing is
    /// applied. The result is a local override until the sources next change.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`](crate::Error::Conflict) when `if_match` is not the live config;
    /// otherwise as [`Reloader::apply`].
    fn put(
        &self,
        format: Format,
        bytes: Vec<u8>,
        if_match: Option<(u64, u64)>,
        by: Option<String>,
    ) -> Result<Event>;
    /// See [`Reloader::events`]. Needs the `tokio` feature.
    #[cfg(feature = "tokio")]
    fn events(&self) -> tokio::sync::broadcast::Receiver<Event>;
    /// See [`Reloader::enable`].
    fn enable(&self);
    /// See [`Reloader::disable`].
    fn disable(&self);
    /// See [`Reloader::is_enabled`].
    fn is_enabled(&self) -> bool;
    /// See [`Reloader::is_running`].
    fn is_running(&self) -> bool;
}

/// The origin of a config submitted through the API.
const SUBMITTED: &str = "api";

impl<T> Reloader<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    /// This reloader as a [`Control`], for an admin server.
    pub fn control(&self) -> Arc<dyn Control> {
        Arc::new(self.clone())
    }
}

impl<T> Control for Reloader<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    fn name(&self) -> String {
        self.inner.shared.name.clone()
    }

    fn config(&self) -> ConfigView {
        let shared = &self.inner.shared;
        // The lock makes the three agree: the worker swaps them under it.
        let _lock = super::lock(&shared.lock);
        let mut json = shared.effective.load().tree().to_json();
        shared
            .policy
            .secrets()
            .redact_value(&crate::ConfigPath::root(), &mut json);
        ConfigView {
            json,
            version: shared.current.load().version(),
            hash: shared.hash.load(Ordering::SeqCst),
        }
    }

    fn status(&self) -> Status {
        Reloader::status(self)
    }

    fn attempts(&self) -> Vec<Event> {
        Reloader::attempts(self)
    }

    fn attempt(&self, seq: u64) -> Option<Event> {
        Reloader::attempt(self, seq)
    }

    fn events_since(&self, seq: u64) -> Vec<Event> {
        Reloader::events_since(self, seq)
    }

    fn reload(&self, by: Option<String>) -> Result<Event> {
        self.reload_by(Trigger::Api, by)
    }

    fn rollback_to(&self, version: u64, by: Option<String>) -> Result<Event> {
        self.change(ConfigChange::Rollback(version), Trigger::Rollback, by)
    }

    fn plan(&self) -> Plan {
        Reloader::plan(self)
    }

    fn plan_document(&self, format: Format, bytes: Vec<u8>) -> Plan {
        let shared = &self.inner.shared;
        let document = Document::new(Origin::Key(SUBMITTED.into()), format, bytes);
        let base = shared.effective.load_full();
        let attempt = pipeline::run(&shared.stages(), Some(&*base), Input::Submitted(document));
        let components = match &attempt.result {
            Ok(planned) => shared.parts.interested(&planned.changes, false),
            Err(_) => Vec::new(),
        };
        attempt.to_plan(components)
    }

    fn put(
        &self,
        format: Format,
        bytes: Vec<u8>,
        if_match: Option<(u64, u64)>,
        by: Option<String>,
    ) -> Result<Event> {
        let document = Document::new(Origin::Key(SUBMITTED.into()), format, bytes);
        self.ask(Trigger::Api, |reply| Request::Config {
            change: ConfigChange::Put { document, if_match },
            trigger: Trigger::Api,
            by,
            reply: Some(reply),
        })
    }

    #[cfg(feature = "tokio")]
    fn events(&self) -> tokio::sync::broadcast::Receiver<Event> {
        Reloader::events(self)
    }

    fn enable(&self) {
        Reloader::enable(self);
    }

    fn disable(&self) {
        Reloader::disable(self);
    }

    fn is_enabled(&self) -> bool {
        Reloader::is_enabled(self)
    }

    fn is_running(&self) -> bool {
        Reloader::is_running(self)
    }
}
