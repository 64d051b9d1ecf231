//! Configures and builds a [`Reloader`]: the first load runs the same pipeline and
//! transaction as every reload, then the worker starts.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(doc)]
use super::Reloader;
use super::intent::Intent;
use super::observe::Observer;
use super::transaction::Parts;
use super::validator::Schema;
use crate::component::{Component, Resource};
use crate::document::Limits;
use crate::error::Error;
#[cfg(doc)]
use crate::event::Event;
use crate::path::Pattern;
use crate::policy::{Fingerprint, Policy, RestartMode};
use crate::settings;
use crate::snapshot::ResourceKey;
use crate::source::{self, Format, Source};
use crate::validate::Validate;
#[cfg(feature = "watch")]
use crate::watch::WatchOptions;

mod build;

/// Configures and builds a [`Reloader`]. Sources layer in the order they are added.
pub struct ReloaderBuilder<T> {
    sources: Vec<Box<dyn Source>>,
    limits: Limits,
    policy: Policy,
    schema: Option<Schema>,
    parts: Parts<T>,
    observers: Vec<Arc<dyn Observer>>,
    timeout: Duration,
    max_hold: Duration,
    history_limit: usize,
    attempts_limit: usize,
    save_to: Option<(PathBuf, Format)>,
    #[cfg(feature = "watch")]
    watch_options: WatchOptions,
    name: String,
    fingerprint: Option<Fingerprint>,
    intent: Option<Arc<dyn Intent>>,
    settings_table: Option<String>,
    settings_base: settings::Base,
    errors: Vec<Error>,
    config: PhantomData<fn() -> T>,
}

impl<T: Send + Sync + 'static> Default for ReloaderBuilder<T> {
    fn default() -> Self {
        Self {
            sources: Vec::new(),
            limits: Limits::default(),
            policy: Policy::new(),
            schema: None,
            parts: Parts::new(),
            observers: Vec::new(),
            timeout: Duration::from_secs(10),
            max_hold: Duration::from_secs(30),
            history_limit: 16,
            attempts_limit: 256,
            save_to: None,
            #[cfg(feature = "watch")]
            watch_options: WatchOptions::default(),
            name: "config".into(),
            fingerprint: None,
            intent: None,
            settings_table: Some(settings::DEFAULT_TABLE.to_owned()),
            settings_base: settings::Base::default(),
            errors: Vec::new(),
            config: PhantomData,
        }
    }
}

impl<T: 'static> fmt::Debug for ReloaderBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloaderBuilder")
            .field("sources", &self.sources)
            .field("limits", &self.limits)
            .field("policy", &self.policy)
            .field("components", &self.parts)
            .finish_non_exhaustive()
    }
}

impl<T> ReloaderBuilder<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    /// Adds a config file; its extension names the format. The last file added is where
    /// [`Reloader::save`] writes, unless [`save_to`](Self::save_to) says otherwise.
    #[must_use]
    pub fn file(self, path: impl Into<PathBuf>) -> Self {
        self.source(source::File::new(path))
    }

    /// Adds the files of a directory that match `glob` (`*.yaml`, `*.{toml,json}`), in name
    /// order.
    #[must_use]
    pub fn dir(self, path: impl Into<PathBuf>, glob: &str) -> Self {
        self.source(source::Dir::new(path).glob(glob))
    }

    /// Adds defaults written in a config format, usually the first layer.
    #[must_use]
    pub fn defaults(self, format: Format, text: impl Into<String>) -> Self {
        self.source(source::Defaults::text(format, text))
    }

    /// Adds defaults from a value, such as `T::default()`. Needs the `json` feature: the
    /// value is layered as JSON text.
    #[cfg(feature = "json")]
    #[must_use]
    pub fn defaults_value<V: Serialize>(mut self, value: &V) -> Self {
        match source::Defaults::value(value) {
            Ok(defaults) => self.source(defaults),
            Err(e) => {
                self.errors.push(e);
                self
            }
        }
    }

    /// Adds environment overrides `{prefix}{separator}A{separator}B=value` as a layer. They
    /// are read now, once: changing them takes a restart.
    #[must_use]
    pub fn env(self, prefix: &str, separator: &str) -> Self {
        self.source(source::Env::new(prefix, separator))
    }

    /// Adds any [`Source`].
    #[must_use]
    pub fn source(mut self, source: impl Source + 'static) -> Self {
        self.sources.push(Box::new(source));
        self
    }

    /// Sets the size and depth limits for every document.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    fn with_pattern(mut self, pattern: &str, add: impl FnOnce(Policy, Pattern) -> Policy) -> Self {
        match pattern.parse() {
            Ok(pattern) => self.policy = add(std::mem::take(&mut self.policy), pattern),
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// Marks the values matching `pattern` as secret: they print as `"***"` in events and
    /// logs, on top of the built-in key names (`password`, `token`, …).
    #[must_use]
    pub fn secret(self, pattern: &str) -> Self {
        self.with_pattern(pattern, Policy::secret)
    }

    /// Changes under `pattern` (`server.listen`, `db.**`) take effect only after a restart:
    /// by default the rest of the reload applies and these paths keep their old value and
    /// are reported as pending (see [`restart_mode`](Self::restart_mode)).
    #[must_use]
    pub fn restart_required(self, pattern: &str) -> Self {
        self.with_pattern(pattern, Policy::restart_required)
    }

    /// Changes under `pattern` reject the whole reload.
    #[must_use]
    pub fn deny(self, pattern: &str) -> Self {
        self.with_pattern(pattern, Policy::deny)
    }

    /// What a reload that changes restart-required paths does: apply the hot part (the
    /// default) or reject it whole.
    #[must_use]
    pub fn restart_mode(mut self, mode: RestartMode) -> Self {
        self.policy = std::mem::take(&mut self.policy).restart_mode(mode);
        self
    }

    /// Validates every config against a JSON Schema before the service's own rules.
    #[cfg(feature = "json-schema")]
    #[must_use]
    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Adds a component that must prepare every config that changes its paths before the
    /// config is applied, the first load included (see [`Component`]). Components and
    /// resources prepare in the order added.
    #[must_use]
    pub fn component(mut self, component: impl Component<T>) -> Self {
        if let Err(e) = self.parts.component(component) {
            self.errors.push(e);
        }
        self
    }

    /// Adds a [`Resource`] built from the config and published with it in every snapshot;
    /// returns the builder and the key that reads it (`snapshot.resource(&key)`).
    #[must_use]
    pub fn resource<R: Resource<T>>(mut self, resource: R) -> (Self, ResourceKey<R::Output>) {
        match self.parts.resource(resource) {
            Ok(slot) => (self, ResourceKey::new(slot)),
            Err(e) => {
                self.errors.push(e);
                (self, ResourceKey::new(usize::MAX))
            }
        }
    }

    /// Adds an [`Observer`]: it receives every event from the first load on, in order.
    #[must_use]
    pub fn observer(self, observer: impl Observer) -> Self {
        self.observer_arc(Arc::new(observer))
    }

    /// Adds an [`Observer`] the caller keeps a handle to (to read its own state).
    #[must_use]
    pub fn observer_arc(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Names the config (default `config`): the `config` label of its metrics, the name
    /// the status and the admin page show. Several reloaders in one process need
    /// different names.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The config's name, as set with [`name`](Self::name).
    pub fn config_name(&self) -> &str {
        &self.name
    }

    /// The names of the components and resources added so far, in order.
    pub fn component_names(&self) -> Vec<String> {
        self.parts.names()
    }

    /// Sets how secret values are fingerprinted for the audit log (see [`Fingerprint`] and
    /// [`Event::hmac_changes`]); the audit log sets it itself.
    #[must_use]
    pub fn fingerprint(mut self, fingerprint: Fingerprint) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }

    /// Adds a step to every reload, after the components prepared and before the swap:
    /// a failure rejects the reload at stage `audit` (see [`Intent`]). The audit log's
    /// fail-closed mode sets it.
    #[must_use]
    pub fn intent(mut self, intent: Arc<dyn Intent>) -> Self {
        self.intent = Some(intent);
        self
    }

    /// How many reload attempts [`Reloader::attempts`] keeps, rejected ones included
    /// (the admin API's history and its event stream resume from them). Default: 256.
    #[must_use]
    pub fn attempts(mut self, attempts: usize) -> Self {
        self.attempts_limit = attempts;
        self
    }

    /// How long one component may take to prepare, and validation (the service's rules
    /// and the schema) may take to run, before the attempt is rejected. Default: 10 s.
    #[must_use]
    pub fn component_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a reload may wait on holds before it is reported again as still deferred
    /// (and again each time this period passes). Default: 30 s.
    #[must_use]
    pub fn max_hold(mut self, period: Duration) -> Self {
        self.max_hold = period;
        self
    }

    /// How many applied snapshots [`Reloader::history`] keeps for
    /// [`Reloader::rollback_to`]. Default: 16.
    #[must_use]
    pub fn history(mut self, snapshots: usize) -> Self {
        self.history_limit = snapshots;
        self
    }

    /// How long the watched files must be quiet before a batch of filesystem events becomes
    /// one reload: from 10 ms to 60 s. Default: 100 ms.
    ///
    /// This is the service's default: a `debounce_ms` in the config's settings table
    /// (see [`settings_table`](Self::settings_table)) overrides it, and
    /// [`debounce_explicit`](Self::debounce_explicit) overrides both.
    #[cfg(feature = "watch")]
    #[must_use]
    pub fn debounce(mut self, quiet: Duration) -> Self {
        self.watch_options.debounce = quiet;
        self.settings_base.debounce_ms =
            settings::Setting::new(millis(quiet), settings::SettingSource::Builder);
        self
    }

    /// Like [`debounce`](Self::debounce), but an explicit override (a command-line flag):
    /// it beats the `debounce_ms` of the config's settings table, which can then not
    /// change it. [`Status::settings`](crate::Status::settings) shows it as `explicit`.
    #[cfg(feature = "watch")]
    #[must_use]
    pub fn debounce_explicit(mut self, quiet: Duration) -> Self {
        self.watch_options.debounce = quiet;
        self.settings_base.explicit_debounce_ms = Some(millis(quiet));
        self
    }

    /// Names the config's table of reloader settings (default `hot_reload`), or turns it
    /// off with `None`: the key is then left to the service's own config.
    ///
    /// The table sits at the top level of the merged config (TOML `[hot_reload]`, YAML and
    /// JSON `hot_reload:`) and holds `enabled` (`false` pauses reloads from the watcher),
    /// `debounce_ms` (10 to 60000) and `watch_paths` (more config files). It is checked like the rest of the config (a wrong
    /// value rejects the load or reload with its file, line and column, and the old
    /// settings stay), then taken out before the config is deserialized, so a
    /// `#[serde(deny_unknown_fields)]` config still loads and the table never shows in
    /// diffs, events or the effective config.
    ///
    /// It is read at the first load and after every reload of the sources that is not
    /// rejected (a change to the table alone reloads as `unchanged`, and still takes
    /// effect):
    ///
    /// - `debounce_ms` applies from the watcher's next batch, without restarting it.
    /// - `watch_paths` lists more config files, relative to the directory of the file
    ///   holding the table: they are layered right after that file, in the listed order,
    ///   and watched like it (a change of the list re-arms the running watcher). A listed
    ///   file that is missing rejects the load like any source; a file already among the
    ///   sources is not layered twice; a listed file cannot list more. A table pushed by a
    ///   source that is not on disk has no directory, and its `watch_paths` add nothing.
    /// - `enabled = false` pauses reloads from the watcher, except for the file holding the
    ///   table (the first layer that writes it), which stays watched: a save of another
    ///   file is seen but not applied; a save of that file reads only its table, and
    ///   `enabled = true` there resumes at once with a full reload, so the saves made while
    ///   paused are applied. [`Reloader::reload`], the admin API and programmatic changes
    ///   always work. [`Reloader::disable`] is a separate runtime switch: the watcher
    ///   reloads only while both say enabled.
    ///
    /// Precedence, lowest first: the default, the builder ([`debounce`](Self::debounce)),
    /// the file, an explicit override ([`debounce_explicit`](Self::debounce_explicit),
    /// the command line's `--debounce`). [`Status::settings`](crate::Status::settings)
    /// shows each value and where it came from. A config submitted whole (the admin API's
    /// `PUT /config`) has its table checked and taken out, but not applied: the settings
    /// live in the files.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// #[derive(serde::Deserialize, serde::Serialize)]
    /// #[serde(deny_unknown_fields)]
    /// struct App { rpm: u32 }
    /// impl hotconf::Validate for App {}
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("app.toml");
    /// std::fs::write(&path, "rpm = 60\n\n[hot_reload]\ndebounce_ms = 500\n")?;
    /// let reloader = hotconf::Reloader::<App>::builder().file(&path).build()?;
    /// assert_eq!(reloader.current().config().rpm, 60);
    /// let settings = reloader.status().settings;
    /// assert_eq!(settings.debounce_ms.value, 500);
    /// assert_eq!(settings.debounce_ms.from, hotconf::SettingSource::File);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn settings_table(mut self, name: Option<&str>) -> Self {
        self.settings_table = name.map(str::to_owned);
        self
    }

    /// Ignores watcher events for file names matching `glob`, on top of the default litter
    /// list ([`DEFAULT_IGNORES`](crate::source::DEFAULT_IGNORES)).
    #[cfg(feature = "watch")]
    #[must_use]
    pub fn ignore(mut self, glob: &str) -> Self {
        self.watch_options.ignore.push(glob.to_owned());
        self
    }

    /// Sets the file [`Reloader::save`] writes to, with its format from the extension.
    #[must_use]
    pub fn save_to(mut self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        match Format::from_path(&path) {
            Some(format) => self.save_to = Some((path, format)),
            None => self.errors.push(Error::InvalidOption {
                option: "save_to",
                reason: format!(
                    "{}: unknown format; use .toml, .yaml, .yml or .json",
                    path.display()
                ),
            }),
        }
        self
    }
}

/// Whole milliseconds, saturating (the range check refuses anything that large).
#[cfg(feature = "watch")]
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
