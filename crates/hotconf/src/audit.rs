//! The audit log: one JSON Lines record per reload attempt, append-only, secrets as keyed
//! HMACs (feature `audit`, on by default).
//!
//! An [`AuditLog`] is an [`Observer`]: it sees every attempt in `seq` order and appends one
//! line for each (every outcome but `detected`), flushed before the next reload starts.
//! [`ReloaderBuilder::audit`] registers it, and makes the pipeline write secret values in
//! the log's HMAC form.
//!
//! ```
//! use hotconf::Reloader;
//! use hotconf::audit::{AuditLog, hash_value};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let config = dir.path().join("app.toml");
//! std::fs::write(&config, "[db]\npassword = \"first-pass\"\n")?;
//! let path = dir.path().join("audit.jsonl");
//!
//! let log = AuditLog::builder(&path) // the key: audit.jsonl.key, made on first use
//!     .max_bytes(10 << 20)
//!     .keep(5)
//!     .build()?;
//! let key = log.key().clone();
//! let reloader = Reloader::<serde_json::Value>::builder()
//!     .file(&config) // keys named like `password` are secret by default
//!     .audit(log)
//!     .build()?;
//!
//! std::fs::write(&config, "[db]\npassword = \"second-pass\"\n")?;
//! reloader.reload()?;
//!
//! let text = std::fs::read_to_string(&path)?;
//! let records: Vec<serde_json::Value> =
//!     text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
//! assert_eq!(records[0]["outcome"], "loaded");
//! assert_eq!(records[1]["outcome"], "applied");
//! // The new password is in the log only as its HMAC.
//! let change = &records[1]["changes"][0];
//! assert_eq!(change["new"], hash_value(&key, &"second-pass".into()));
//! assert!(!text.contains("first-pass") && !text.contains("second-pass"));
//! # Ok(())
//! # }
//! ```
//!
//! # Records
//!
//! ```json
//! {"time":"2026-11-22T10:00:00.000Z","seq":7,"config":"app","trigger":"api","by":"api 127.0.0.1:51234",
//!  "version_before":3,"version_after":4,"outcome":"applied",
//!  "files":[{"file":"config/app.toml","hash":"8c3f0e1d2b4a5968"}],
//!  "changes":[{"path":"db.password","kind":"modified","old":"hmac-sha256:5bdc…","new":"hmac-sha256:77ae…"}],
//!  "pending":[],"errors":[],"warnings":[],"duration_us":412}
//! ```
//!
//! | field | |
//! |---|---|
//! | `time` | when the attempt finished, UTC, RFC 3339 with milliseconds |
//! | `seq` | the event's number ([`Event::seq`](crate::Event::seq)); not on intent records |
//! | `config` | the reloader's name ([`ReloaderBuilder::name`], `config` by default); not when the log was added as a plain observer |
//! | `trigger`, `by` | what started the attempt and who asked, when known (`null` otherwise) |
//! | `version_before`, `version_after` | the versions active before and after |
//! | `outcome` | `loaded`, `applied`, `rejected`, `unchanged`, `restart_required`, `deferred`, or `intent` |
//! | `stage` | on `rejected`: the stage that refused it (`read`, `parse`, `validate`, … `audit`) |
//! | `files` | the documents read, each with a keyed hash of its content (16 hex digits: the same content gives the same hash under the same key) |
//! | `changes` | the diff; a secret's value is `"hmac-sha256:<64 hex>"`, never in clear |
//! | `pending` | restart-required paths waiting for a restart |
//! | `errors`, `warnings` | located problems: `file`, `line`, `column`, `path`, `message`, and `kind` (the stage's problem kind) |
//! | `duration_us` | how long the attempt took |
//!
//! Records grow by adding fields only; a field is never renamed or removed. An attempt
//! record has every field above but `stage` (rejected ones only); an intent record (see
//! [Fail-closed](#fail-closed)) has no `seq`, `stage`, `pending`, `errors`, `warnings` or
//! `duration_us`: it is written before the attempt ends. `seq` has gaps: the `detected`
//! events between attempts are numbered too, and have no record.
//!
//! # The key
//!
//! A secret value is written as HMAC-SHA256 keyed with the key file's key, over the
//! value's canonical bytes (see [`hash_value`]). The same value gives the same HMAC, so
//! an operator can tell that a secret changed, and which known value it now has
//! (`echo -n 'candidate' | hotconf audit-hash --key-file K`), but cannot read it back.
//! The key file holds hex digits (at least 32 bytes); without
//! [`AuditLogBuilder::key_file`] it is `<log path>.key`, created with 32 random bytes and
//! mode 0600 the first time, and read on every later start. An existing key file is
//! never overwritten. Keep it as secret as the values: with it, a short secret can be
//! guessed from its HMAC. The files' content hashes are keyed the same way: a plain hash
//! of a file that holds a secret would let anyone who knows the rest of the file test
//! guesses at the secret.
//!
//! # Rotation
//!
//! When a record would take the log past [`AuditLogBuilder::max_bytes`] (10 MiB by
//! default), the log is renamed `<path>.1`, older ones shift up to
//! `<path>.<keep>` ([`AuditLogBuilder::keep`], 5 by default), the oldest is removed, and a
//! new log is started. A record is never split between files. Only regular files rotate.
//!
//! # When the log cannot be written
//!
//! A full disk, a path under a file, a directory in the log's place, a permission denied:
//! the record is lost, the reload goes on as if there were no log. The failure is counted
//! and logged once per streak (target `hotconf::audit`, without the record), and
//! [`Observer::health`] says so (`"ok": false` with the error, the path, the
//! `write_failures` and the `records` written), which the reloader's status lists. The
//! next record that can be written makes it healthy again. A log that was renamed or
//! removed by someone else is started again at its path with the next record.
//!
//! # Fail-closed
//!
//! With [`AuditLogBuilder::fail_closed`], every change about to apply (a reload, an
//! [`apply`](crate::Reloader::apply), a rollback, an admin change; not the first load,
//! which has no old config to keep) is first written to the log as an intent record
//! (`"outcome":"intent"`, with the versions, trigger, `by`, files and changes) and synced
//! to disk, after the components have prepared and before the swap. If that fails, the
//! change is rejected at stage `audit` and the old config stays live: nothing runs that
//! the log has not recorded. [`AuditLogBuilder::build`] then also opens the log at once,
//! so that a path that can never be written fails at start.
//!
//! Other records are written with one `write` each and not synced: a crash of the machine
//! (not of the process) can lose the last ones from the page cache.

mod key;
mod record;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    Event, Fingerprint, Intent, IntentRecord, Observer, ObserverHealth, ReloaderBuilder, Validate,
};

pub use key::{AuditKey, HMAC_PREFIX, hash_value};
use record::Attempt;
use writer::Writer;

/// Why an [`AuditLog`] could not be set up. Each names the path and the OS error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The key file could not be read or created.
    #[error("audit key file {}: {source}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The key file does not hold a key.
    #[error("audit key file {}: not a valid key: {reason}", path.display())]
    InvalidKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it (never its content).
        reason: String,
    },
    /// A fail-closed log could not be opened.
    #[error("audit log {}: {source}", path.display())]
    Open {
        /// The log.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Builds an [`AuditLog`]; from [`AuditLog::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct AuditLogBuilder {
    path: PathBuf,
    key_file: Option<PathBuf>,
    max_bytes: u64,
    keep: usize,
    fail_closed: bool,
}

impl AuditLogBuilder {
    /// The key file. By default it is `<log path>.key`, created when missing; one given
    /// here must exist.
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// Rotates the log before a record would take it past this size; 10 MiB by default.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// How many rotated logs to keep (`<path>.1` … `<path>.<keep>`); 5 by default. With 0
    /// a full log is removed.
    pub fn keep(mut self, files: usize) -> Self {
        self.keep = files;
        self
    }

    /// Writes and syncs an intent record before every swap, and rejects the reload when it
    /// cannot (see [Fail-closed](self#fail-closed)). Off by default.
    pub fn fail_closed(mut self, fail_closed: bool) -> Self {
        self.fail_closed = fail_closed;
        self
    }

    /// Reads the key file, or creates it when it is the default one and missing.
    ///
    /// The log itself is opened with the first record, and a failure to write it never
    /// fails a reload; a fail-closed log is opened here.
    ///
    /// # Errors
    ///
    /// [`AuditError::Key`] when the key file cannot be read or created (a `key_file` given
    /// must exist), [`AuditError::InvalidKey`] when it holds no valid key,
    /// [`AuditError::Open`] when a fail-closed log cannot be opened.
    pub fn build(self) -> Result<AuditLog, AuditError> {
        let key = match &self.key_file {
            Some(path) => AuditKey::load(path)?,
            None => {
                let mut path = self.path.clone().into_os_string();
                path.push(".key");
                AuditKey::load_or_create(Path::new(&path))?
            }
        };
        let writer = Writer::new(self.path.clone(), self.max_bytes, self.keep);
        if self.fail_closed {
            writer.open_now().map_err(|source| AuditError::Open {
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(AuditLog {
            shared: Arc::new(Shared {
                writer,
                key,
                fail_closed: self.fail_closed,
            }),
        })
    }
}

/// The audit log: an [`Observer`] that appends one JSON Lines record per reload attempt,
/// secrets as keyed HMACs. See the [module docs](self).
///
/// Cheap to clone: clones share the file, the key and the health.
#[derive(Clone)]
pub struct AuditLog {
    shared: Arc<Shared>,
}

struct Shared {
    writer: Writer,
    key: AuditKey,
    fail_closed: bool,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.shared.writer.path())
            .field("key", &self.shared.key)
            .field("fail_closed", &self.shared.fail_closed)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// A builder for a log at `path`.
    pub fn builder(path: impl Into<PathBuf>) -> AuditLogBuilder {
        AuditLogBuilder {
            path: path.into(),
            key_file: None,
            max_bytes: 10 << 20,
            keep: 5,
            fail_closed: false,
        }
    }

    /// The function that writes a secret value as this log's HMAC: what
    /// [`ReloaderBuilder::audit`] gives the pipeline.
    pub fn fingerprint(&self) -> Fingerprint {
        let key = self.shared.key.clone();
        Arc::new(move |value: &serde_json::Value| hash_value(&key, value))
    }

    /// The key of this log's HMACs.
    pub fn key(&self) -> &AuditKey {
        &self.shared.key
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        self.shared.writer.path()
    }

    /// Whether reloads wait for an intent record (see [Fail-closed](self#fail-closed)).
    pub fn is_fail_closed(&self) -> bool {
        self.shared.fail_closed
    }

    /// How the log is doing: what [`Observer::health`] reports, and the reloader's
    /// [`Status::observers`](crate::Status::observers) lists. Not ok while the last record
    /// could not be written; `detail` holds the `path`, the `write_failures` so far and the
    /// `records` written.
    pub fn health(&self) -> ObserverHealth {
        let health = self.shared.writer.health();
        ObserverHealth::new("audit", health.error.is_none(), health.error).with_detail(
            serde_json::json!({
                "path": self.path().display().to_string(),
                "write_failures": health.write_failures,
                "records": health.records,
            }),
        )
    }

    fn append(
        &self,
        attempt: &Attempt<'_>,
        config: Option<&str>,
        sync: bool,
    ) -> Result<(), String> {
        let key = &self.shared.key;
        let line = attempt.to_line(config, &|revision| key::hash_revision(key, revision));
        let written = self.shared.writer.append(&line, sync);
        #[cfg(feature = "metrics")]
        if written.is_err() {
            crate::metrics::audit_write_failed(config.unwrap_or("config"));
        }
        written
    }

    fn record(&self, event: &Event, config: Option<&str>) {
        if let Some(attempt) = Attempt::of_event(event) {
            // A failure is counted and reported by health(); the reload is not ours to fail.
            let _ = self.append(&attempt, config, false);
        }
    }
}

/// Records without a `config` name; [`ReloaderBuilder::audit`] registers the log with the
/// reloader's name.
impl Observer for AuditLog {
    fn observe(&self, event: &Event) {
        self.record(event, None);
    }

    fn health(&self) -> Option<ObserverHealth> {
        Some(AuditLog::health(self))
    }
}

/// The log as one reloader's observer: its records carry the reloader's name.
struct Named {
    log: AuditLog,
    config: String,
}

impl Observer for Named {
    fn observe(&self, event: &Event) {
        self.log.record(event, Some(&self.config));
    }

    fn health(&self) -> Option<ObserverHealth> {
        Some(self.log.health())
    }
}

/// The fail-closed step: an intent record, synced, before the swap.
struct FailClosed(Named);

impl Intent for FailClosed {
    fn intent(&self, intent: &IntentRecord) -> Result<(), String> {
        let Named { log, config } = &self.0;
        log.append(&Attempt::of_intent(intent), Some(config), true)
    }
}

impl<T> ReloaderBuilder<T>
where
    T: DeserializeOwned + Serialize + Validate + Send + Sync + 'static,
{
    /// Writes every reload attempt to `log` (see [`audit`](crate::audit)): registers it as
    /// an observer, gives the pipeline its [`fingerprint`](AuditLog::fingerprint) so that
    /// secrets reach it as HMACs, and, when the log is fail-closed, makes writing the
    /// intent record a step of every reload, before the swap.
    pub fn audit(self, log: AuditLog) -> Self {
        let config = self.config_name().to_owned();
        let mut builder = self.fingerprint(log.fingerprint());
        if log.is_fail_closed() {
            let named = Named {
                log: log.clone(),
                config: config.clone(),
            };
            builder = builder.intent(Arc::new(FailClosed(named)));
        }
        builder.observer_arc(Arc::new(Named { log, config }))
    }
}
