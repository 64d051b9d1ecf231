//! hotconf lets a running service take a new configuration without a restart, and without
//! ever running on a configuration that is broken, half-written or half-applied.
//!
//! A [`Reloader`] reads the config's sources (files, directories, embedded defaults,
//! environment overrides), layers them, deserializes the result into your type, runs your
//! [`Validate`] rules, and publishes an immutable [`Snapshot`]. Readers get it through a
//! [`Handle`] with a lock-free pointer load. A reload runs the same pipeline and swaps the
//! snapshot only if everything passed; otherwise the old config stays active and every
//! problem is reported with its file, line, column and config path.
//!
//! # Quick start
//!
//! ```
//! use hotconf::{Reloader, Report, Validate};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, Deserialize, Serialize)]
//! struct AppConfig {
//!     limits: Limits,
//! }
//!
//! #[derive(Debug, Clone, Deserialize, Serialize)]
//! struct Limits {
//!     rpm: u32,
//! }
//!
//! impl Validate for AppConfig {
//!     fn validate(&self, report: &mut Report) {
//!         if self.limits.rpm == 0 {
//!             report.error("limits.rpm", "must be greater than 0");
//!         }
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("app.toml");
//! std::fs::write(&path, "[limits]\nrpm = 60\n")?;
//!
//! let reloader = Reloader::<AppConfig>::builder()
//!     .defaults(hotconf::source::Format::Toml, "[limits]\nrpm = 30\n")
//!     .file(&path)
//!     .env("APP", "__") // APP__LIMITS__RPM=120 overrides, read once at start
//!     .build()?; // the first load: errors point at file:line:col
//! let config = reloader.handle(); // cheap to clone, Send + Sync
//!
//! // A request calls load() once and uses that snapshot to the end.
//! assert_eq!(config.load().limits.rpm, 60);
//!
//! // A bad edit is rejected with its location; the old config stays.
//! std::fs::write(&path, "[limits]\nrpm = 0\n")?;
//! let error = reloader.reload().unwrap_err();
//! assert!(error.to_string().contains("app.toml:2:7: limits.rpm: must be greater than 0"));
//! assert_eq!(config.load().limits.rpm, 60);
//!
//! // A good edit is applied as version 2, with a diff.
//! std::fs::write(&path, "[limits]\nrpm = 120\n")?;
//! let event = reloader.reload()?;
//! assert_eq!(event.version, 2);
//! assert_eq!(event.changes[0].to_string(), "~ limits.rpm: 60 -> 120");
//! assert_eq!(config.load().limits.rpm, 120);
//! # Ok(())
//! # }
//! ```
//!
//! # The pipeline
//!
//! One function runs every stage, for the first load, [`Reloader::plan`], every reload and
//! the command line ([`Pipeline`]); one worker thread owned by the reloader runs it and the
//! transaction, one request at a time; every outcome leaves through one exit, in order:
//!
//! | stage | where | |
//! |---|---|---|
//! | trigger | [`TriggerHandle`], [`Pusher`], [`Reloader::watch`] | anything that asks the worker for a reload: the watcher (one reload per logical save), a signal, `reload()`, `apply()`, `rollback_to()`, a source that pushes |
//! | read | [`source`] | [`Source`](source::Source): files, directories, defaults, environment, or what a source pushed; a transient read error (a file missing mid-replace, `EAGAIN`, `EINTR`) is retried with a bounded backoff ([`RetryPolicy`](source::RetryPolicy)) |
//! | parse | | TOML, YAML, JSON into a tree that keeps line and column of every value |
//! | merge | | later layers override earlier ones; tables merge deeply, arrays replace |
//! | deserialize | | `T` read straight from the tree: type errors carry file, line and column |
//! | validate | [`Validate`] | the JSON Schema and your rules, all problems collected, under a timeout |
//! | diff | [`diff()`] | structural, by dotted path |
//! | classify | [`Policy`] | hot, restart required (held back, pending) or denied |
//! | redact | [`Secrets`] | once, here: nothing downstream sees a secret value |
//! | prepare | [`Component`], [`Resource`] | interested components stage the new config, resources build |
//! | swap | [`Snapshot`] | the config and the resources built for it, in one atomic swap |
//! | commit | [`Staged`] | components make their staged change live; history records the version |
//! | exit | [`Observer`], [`Reloader::on_change`] | the event, numbered (`seq`), after the lock is released |
//!
//! [`Reloader::hold`] defers reloads during critical work; [`Reloader::rollback_to`]
//! re-applies an earlier version through the whole transaction.
//!
//! # Which way to hear about changes
//!
//! | need | use |
//! |---|---|
//! | read the config in a request or a loop | [`Handle::load`], once per unit of work; nothing to subscribe to |
//! | rebuild something when its part changes, from sync code | [`Reloader::on_change_at`] with the paths it depends on |
//! | build something the readers need with the config (a pool, a route table) | a [`Resource`], read with [`Snapshot::resource`] |
//! | refuse a config a part cannot take, two-phase | a [`Component`] |
//! | audit, metrics, alerts: every event, none lost, in order | an [`Observer`] |
//! | wait for a new config in async code | [`Reloader::subscribe`] (a tokio `watch` receiver) |
//! | show events live (a dashboard); losing some under load is fine | [`Reloader::events`] (a tokio broadcast) |
//!
//! Callbacks and observers run on the reload worker after the reload lock is released:
//! they may call any method of the reloader. A method that would wait for the worker
//! (`reload`, `apply`, `update`, `rollback_to`) queues its request instead and returns an
//! event whose outcome is [`Outcome::Queued`]. A slow callback or observer delays the next
//! reload, never a reader.
//!
//! Set `RUST_LOG=hotconf=debug` (with a `tracing` subscriber) to see every stage of every
//! reload. Secret values are redacted before anything is logged, at every level.
//!
//! # JSON shapes
//!
//! [`Event`], [`Status`], [`Record`] and [`Plan`] serialize to the JSON that
//! `hotconf watch --json` prints; their shapes grow by adding fields, and a field is never
//! renamed or removed.
//!
//! # Operations
//!
//! What an operator needs around a running reloader is built on [`Observer`]s and the
//! [`Control`] handle, all fed by the one exit:
//!
//! - [`Reloader::status`] and [`Reloader::attempts`]: what is live, the last attempt with its
//!   errors, every attempt by `seq` (rejected ones too, with the [`Stage`] that refused it),
//!   a live local override, the watcher's mode, the observers' health.
//! - `audit::AuditLog` ([`ReloaderBuilder::audit`], feature `audit`): one JSON Lines record
//!   per attempt, secret values as keyed HMACs.
//! - [`ReloaderBuilder::metrics`] (feature `metrics`): the reload metrics Prometheus and
//!   Caddy name, through the `metrics` facade.
//! - `alert::Alerts` (feature `alerts`): webhooks for rejected reloads, failed components and
//!   a degraded watcher, from a queue that never holds up a reload.
//! - [`Reloader::control`]: the handle the `hotconf-admin` crate serves over HTTP (status,
//!   history, reload, rollback, `PUT` a config with `If-Match`, server-sent events, a live
//!   page). `hotconf watch --admin --audit --alert-webhook` gives all of it to a service that
//!   uses hotconf only through `--on-apply`.
//!
//! # The reloader's own settings: `[hot_reload]`
//!
//! The watched config may carry a table of settings for the reloader itself (seed-style):
//!
//! ```toml
//! [hot_reload]
//! enabled = false     # pause reloads from the watcher; the table's own file stays watched
//! debounce_ms = 500   # 10 to 60000: how long the files must be quiet before a reload
//! watch_paths = ["models/openai.toml"]  # more files, layered right after this one, watched
//! ```
//!
//! It is taken out before your type is deserialized (a `#[serde(deny_unknown_fields)]`
//! config still loads, and it never shows in diffs, events or the effective config),
//! checked like the rest (an out-of-range value rejects the reload at its line and column,
//! keeping the old settings), and read again on every reload that is not rejected. Setting
//! `enabled = true` again resumes at once and applies what was saved meanwhile; manual and
//! API reloads always work. The file's values override the builder's
//! ([`ReloaderBuilder::debounce`]); an explicit override
//! ([`ReloaderBuilder::debounce_explicit`], `hotconf watch --debounce`) overrides the file.
//! [`Status::settings`] shows each value and where it came from;
//! [`ReloaderBuilder::settings_table`] renames the table or turns it off.
//!
//! # Limits
//!
//! Each document is bounded by [`Limits`]: 16 MiB, 128 levels of nesting and 100,000
//! values after YAML alias expansion by default. A document over a limit is rejected with
//! a clear error instead of exhausting memory or the stack.
//!
//! # Cargo features
//!
//! Every format, the watcher and the tokio channels are on by default. A service that reads
//! only TOML and reloads on its own trigger (a signal, an admin endpoint) builds only what
//! that needs:
//!
//! ```toml
//! hotconf = { version = "0.1", default-features = false, features = ["toml"] }
//! ```
//!
//! | feature | default | what it adds | dependencies |
//! |---|---|---|---|
//! | `toml` | on | TOML documents; [`Reloader::save`] keeps a TOML file's comments and layout | toml, toml_parser, toml_edit |
//! | `yaml` | on | YAML documents | serde-saphyr |
//! | `json` | on | JSON documents, and [`ReloaderBuilder::defaults_value`] (the value is layered as JSON) | none: our own parser |
//! | `watch` | on | [`Reloader::watch`], [`Reloader::watch_polling`], [`Reloader::unwatch`], [`ReloaderBuilder::debounce`] and [`ReloaderBuilder::ignore`] | notify |
//! | `tokio` | on | [`Reloader::subscribe`] (a tokio `watch` receiver) and [`Reloader::events`] (a `broadcast` receiver); no runtime needed | tokio with `sync` only |
//! | `json-schema` | on | [`schema::Schema`] validates the merged config against a JSON Schema, with errors located like every other problem | jsonschema |
//! | `audit` | on | [`audit::AuditLog`]: one JSON Lines record per reload attempt, secrets as keyed HMAC-SHA256, size-based rotation, fail-closed mode | hmac, sha2, getrandom |
//! | `metrics` | on | [`ReloaderBuilder::metrics`]: Prometheus-style reload metrics through the `metrics` facade, with alert rules (see [`metrics`](mod@metrics)) | metrics |
//! | `alerts` | off | `alert::Alerts`: Slack-compatible and Alertmanager webhooks for rejected reloads, failed components and a degraded watcher, over plain http | ureq without TLS |
//! | `alerts-tls` | off | https webhooks (Slack's) for `alerts` | ureq with rustls and the webpki roots |
//!
//! [`Format`](source::Format) keeps every variant whatever the features, and
//! [`Format::from_path`](source::Format::from_path) still names every extension. A document
//! whose format is not compiled in is rejected with a located problem ("YAML support is not
//! compiled in: enable the `yaml` feature of hotconf"), and a [`Dir`](source::Dir) without
//! a glob takes only the files of the compiled-in formats. Without `watch`,
//! [`Status::watching`] and [`Status::polling`] are always `false`; without `tokio`,
//! [`Observer`]s and [`Reloader::on_change`] still see every event and change. serde_json is
//! always a dependency: the effective config is a `serde_json::Value`.
//!
//! # Known problems
//!
//! - Environment overrides are read once, when the reloader is built: a process's
//!   environment cannot be changed from outside, so a new value needs a restart.
//! - [`Reloader::save`] keeps comments and layout for TOML only; YAML and JSON files are
//!   rewritten whole, and YAML comments are lost.
//! - TOML has no `null`: an `Option` field that is `None` is left out when saving TOML.
//! - Non-finite floats (`inf`, `nan` in TOML and YAML) load, reload and roll back like any
//!   value; JSON has none, so in diffs and events they show as the strings `"inf"`,
//!   `"-inf"` and `"nan"`.
//! - Network filesystems (NFS, SMB, many FUSE and container mounts, Windows paths under WSL)
//!   may deliver no file events at all. Use [`Reloader::watch_polling`] there: it looks at
//!   the files every interval and compares their contents (reading every file of the
//!   watched directories each time, so keep config files in a directory of their own).
//! - On Linux each watched directory takes one inotify watch from
//!   `fs.inotify.max_user_watches`, and each watching reloader one instance from
//!   `fs.inotify.max_user_instances`. When either runs out, or inotify fails, the watcher
//!   falls back to polling once a second and logs a warning under the `hotconf::watch`
//!   target; raise the limits with `sysctl` to get events back. A burst that overflows the
//!   kernel's event queue is logged too, and answered by re-reading every source, so no
//!   change is missed.
//! - Editors save in very different ways (in place, a temp file renamed over, a backup
//!   renamed away first, a symlink swapped), which is why directories are watched rather
//!   than files and events are coalesced until the files are quiet. A writer that pauses for
//!   longer than the debounce time in the middle of one save can still be seen as two saves:
//!   a half-written file that fails to load is retried if its size or modification time
//!   moved during the quiet window, but otherwise rejected (the completed save then
//!   applies), and one that happens to load is applied. Raise the debounce for such
//!   writers, or have them write a temp file and rename it over.
//! - notify asks inotify for opens and closes too, so another program reading files in a
//!   watched directory wakes the watcher thread briefly; reads never start a reload.
//! - Only the directories that hold the config files, the symlinks on the way to them and
//!   the nearest existing ancestor of a missing path are watched: renaming or replacing a
//!   directory further up is not seen until the next change to a watched name.
#![deny(missing_docs)]

#[cfg(feature = "alerts")]
pub mod alert;
#[cfg(feature = "audit")]
pub mod audit;
mod component;
mod deserialize;
mod diff;
mod document;
mod engine;
mod error;
mod event;
mod format;
mod layer;
mod mask;
#[cfg(feature = "metrics")]
pub mod metrics;
mod path;
mod plan;
mod policy;
mod save;
#[cfg(feature = "json-schema")]
pub mod schema;
mod serialize;
mod settings;
mod snapshot;
pub mod source;
// What the unit tests share.
#[cfg(test)]
mod testing;
mod tree;
mod trigger;
mod validate;
#[cfg(feature = "watch")]
mod watch;

pub use component::{Component, PrepareError, Resource, Staged, staged};
pub use diff::{Change, ChangeKind, apply, diff};
pub use document::Limits;
pub use engine::pipeline::Pipeline;
pub use engine::{
    ConfigView, Control, Hold, Intent, IntentRecord, LocalOverride, Observer, ObserverHealth,
    Record, Reloader, ReloaderBuilder, SourceStatus, Status, Update,
};
pub use error::{Error, Problem, ProblemKind, Problems, Result, Severity, Stage};
pub use event::{Event, FileChange, FileChangeKind, Outcome, Timestamp, Trigger, etag, parse_etag};
pub use path::{ConfigPath, Pattern, Segment};
pub use plan::{Plan, PlannedChange};
pub use policy::{Fingerprint, Policy, REDACTED, RestartMode, Rule, Secrets};
pub use settings::{Setting, SettingSource, Settings};
pub use snapshot::{
    Cached, Guard, Handle, OwnedProjected, Projected, Projection, ResourceKey, Snapshot,
};
pub use trigger::{Pusher, SourceHealth, TriggerHandle, WatcherState};
pub use validate::{Report, Validate};
