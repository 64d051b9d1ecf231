//! Validated publishing: check a directory exactly as instances will load it from the
//! prefix, then write it in one guarded etcd transaction.
//!
//! The directory's config files (what hotconf's [`Dir`] selects, in name order) become the
//! keys `P + file name`; an instance reading the prefix gets the same documents in the same
//! order. They are checked by the [`Pipeline`] given (its policy and schema), then written
//! in one transaction that puts the new and changed keys and deletes the keys under `P`
//! that the directory no longer has. The transaction requires every key read to still have
//! the mod revision it was read with, and no key under `P` to be newer than the read: two
//! operators cannot overwrite each other. The status prefix is never read or touched.
//!
//! A command line cannot run a service's typed [`Validate`]; a deploy tool written in Rust
//! calls [`publish`] with the service's own config type and gets it.

mod plan;

use std::path::Path;
use std::sync::Arc;

use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp};
use hotconf::source::{Dir, Document, Origin, Source};
use hotconf::{Limits, Pipeline, Problem, Problems, Validate};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) use plan::ranges;
use plan::{Changes, Remote};
pub use plan::{MAX_REQUEST_BYTES, MAX_TXN_OPS};

use crate::{Connection, Error, Prefix, content_hash_of_values};

/// What a push did.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Published {
    /// Whether anything was written: `false` when the prefix already held exactly the
    /// directory's documents.
    pub written: bool,
    /// The revision the prefix was read at (`--expect-revision`, or the latest).
    pub read_revision: i64,
    /// The revision after the push: the transaction's when it wrote, else the store's.
    pub revision: i64,
    /// The files pushed, in key order.
    pub files: Vec<String>,
    /// The keys put (new or changed), in key order.
    pub put: Vec<String>,
    /// The keys deleted, in key order.
    pub deleted: Vec<String>,
    /// The keys left as they were.
    pub unchanged: Vec<String>,
    /// The content hash instances report once they applied it (see
    /// [`content_hash`](crate::content_hash)).
    pub content_hash: String,
    /// Restart-required paths (by the pipeline's policy) the push changes, compared with
    /// what was under the prefix: instances apply the rest and hold these until a restart.
    pub pending: Vec<String>,
    /// The check's warnings.
    #[serde(skip)]
    pub warnings: Vec<Problem>,
}

/// Why a push wrote nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The directory does not load: every problem, located in its files and redacted.
    #[error("invalid config:\n{problems}")]
    Invalid {
        /// The files checked.
        files: Vec<String>,
        /// Every problem found (errors and warnings).
        problems: Problems,
    },
    /// Someone else changed the prefix since it was read: nothing was written.
    #[error(
        "conflict: the keys under {prefix} changed since revision {read_revision}; \
         nothing was written (read again and retry)"
    )]
    Conflict {
        /// The prefix.
        prefix: String,
        /// The revision the push was based on.
        read_revision: i64,
    },
    /// The push would exceed etcd's limits for one transaction; nothing was sent.
    #[error("{0}")]
    TooLarge(String),
    /// etcd could not be reached or refused a request, or an option cannot work.
    #[error(transparent)]
    Etcd(#[from] Error),
}

/// Checks `dir` with `pipeline` as config type `T`, then publishes it under `prefix` in one
/// guarded transaction; with `expect_revision`, the prefix is read at that revision and
/// the push is a [`Conflict`](PublishError::Conflict) if anything under it changed since.
///
/// ```no_run
/// use hotconf::{Pipeline, Policy};
/// use hotconf_etcd::{Connection, Prefix, publish_blocking};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pipeline = Pipeline::new().policy(Policy::new());
/// let etcd = Connection::new(["http://127.0.0.1:2379"]);
/// let done = publish_blocking::<serde_json::Value>(
///     &pipeline, "config/".as_ref(), &etcd, &Prefix::new("/app/")?, None,
/// )?;
/// println!("revision {}: {} put, {} deleted", done.revision, done.put.len(), done.deleted.len());
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`PublishError::Invalid`] when the directory does not load as `T` (nothing is sent to
/// etcd), [`PublishError::TooLarge`] over etcd 3.4's default limits ([`MAX_TXN_OPS`],
/// [`MAX_REQUEST_BYTES`]), [`PublishError::Conflict`] when the prefix changed since the
/// read, [`PublishError::Etcd`] for the rest.
pub async fn publish<T>(
    pipeline: &Pipeline,
    dir: &Path,
    connection: &Connection,
    prefix: &Prefix,
    expect_revision: Option<i64>,
) -> Result<Published, PublishError>
where
    T: DeserializeOwned + Serialize + Validate + Send + 'static,
{
    let Checked {
        files,
        documents,
        warnings,
    } = check::<T>(pipeline, dir)?;
    let local = keys(prefix, &documents)?;
    let mut client = connection.connect().await?;
    let (read_revision, remote) = read(&mut client, prefix, expect_revision).await?;
    let pending = against::<T>(pipeline, &remote, documents)?;
    let changes = plan::changes(prefix, &local, &remote);
    changes.check_limits().map_err(PublishError::TooLarge)?;
    let response = client
        .txn(transaction(&changes, read_revision))
        .await
        .map_err(|e| Error::etcd(format!("cannot write the keys under {prefix}"), e))?;
    if !response.succeeded() {
        return Err(PublishError::Conflict {
            prefix: prefix.to_string(),
            read_revision,
        });
    }
    let revision = response.header().map_or(read_revision, |h| h.revision());
    let content_hash = content_hash_of_values(local.iter().map(|(k, v)| (k.as_str(), &v[..])));
    Ok(Published {
        written: !changes.is_empty(),
        read_revision,
        revision,
        files,
        put: changes.puts.into_iter().map(|(key, _)| key).collect(),
        deleted: changes.deletes,
        unchanged: changes.unchanged,
        content_hash,
        pending,
        warnings,
    })
}

/// [`publish`] on a runtime of its own, for code that is not async (the command line).
///
/// # Errors
///
/// As [`publish`]; a runtime that cannot start is an [`Error::Io`].
pub fn publish_blocking<T>(
    pipeline: &Pipeline,
    dir: &Path,
    connection: &Connection,
    prefix: &Prefix,
    expect_revision: Option<i64>,
) -> Result<Published, PublishError>
where
    T: DeserializeOwned + Serialize + Validate + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start a runtime for etcd", e))?;
    runtime.block_on(publish::<T>(
        pipeline,
        dir,
        connection,
        prefix,
        expect_revision,
    ))
}

/// Documents read once: the pipeline checks exactly the bytes that are pushed.
#[derive(Debug)]
struct Read(Vec<Document>);

impl Source for Read {
    fn read(&self, _limits: &Limits) -> Result<Vec<Document>, Problem> {
        Ok(self.0.clone())
    }

    fn files(&self) -> Vec<std::path::PathBuf> {
        self.0
            .iter()
            .filter_map(|d| d.origin.path().map(Path::to_path_buf))
            .collect()
    }
}

type Local = Vec<(String, Arc<[u8]>)>;

/// A directory that passed the check.
struct Checked {
    files: Vec<String>,
    documents: Vec<Document>,
    warnings: Vec<Problem>,
}

/// Reads and checks the directory.
fn check<T>(pipeline: &Pipeline, dir: &Path) -> Result<Checked, PublishError>
where
    T: DeserializeOwned + Serialize + Validate + Send + 'static,
{
    let documents =
        Dir::new(dir)
            .read(&Limits::default())
            .map_err(|problem| PublishError::Invalid {
                files: vec![dir.display().to_string()],
                problems: Problems(vec![problem]),
            })?;
    let sources: Vec<Box<dyn Source>> = vec![Box::new(Read(documents.clone()))];
    let plan = pipeline.check::<T>(&sources);
    if !plan.errors.is_empty() {
        let mut problems = plan.errors;
        problems.extend(plan.warnings);
        return Err(PublishError::Invalid {
            files: plan.files,
            problems: Problems(problems),
        });
    }
    Ok(Checked {
        files: plan.files,
        documents,
        warnings: plan.warnings,
    })
}

/// The keys and values to push: `P + file name` for each document.
fn keys(prefix: &Prefix, documents: &[Document]) -> Result<Local, PublishError> {
    documents
        .iter()
        .map(|document| {
            // Dir selects UTF-8 names of files directly in the directory.
            let name = document
                .origin
                .path()
                .and_then(Path::file_name)
                .and_then(|name| name.to_str())
                .ok_or_else(|| Error::Usage(format!("{}: not a file name", document.origin)))?;
            Ok((
                format!("{}{name}", prefix.as_str()),
                Arc::clone(&document.bytes),
            ))
        })
        .collect()
}

/// Plans the directory against what the prefix holds, as an instance's reload would: a
/// change the policy denies would be rejected by every instance, so the push is refused
/// ([`PublishError::Invalid`]); the restart-required paths it changes are returned. When
/// the prefix holds nothing that loads, there is nothing to compare.
fn against<T>(
    pipeline: &Pipeline,
    remote: &[Remote],
    documents: Vec<Document>,
) -> Result<Vec<String>, PublishError>
where
    T: DeserializeOwned + Serialize + Validate + Send + 'static,
{
    let current: Vec<Document> = remote
        .iter()
        .filter_map(|r| {
            let format = crate::format_of(&r.key)?;
            Some(Document::new(
                Origin::Key(r.key.clone()),
                format,
                r.value.clone(),
            ))
        })
        .collect();
    if current.is_empty() {
        return Ok(Vec::new());
    }
    let old: Vec<Box<dyn Source>> = vec![Box::new(Read(current))];
    let new: Vec<Box<dyn Source>> = vec![Box::new(Read(documents))];
    match pipeline.diff::<T>(&old, &new) {
        Ok(plan) if !plan.errors.is_empty() => Err(PublishError::Invalid {
            files: plan.files,
            problems: Problems(plan.errors),
        }),
        Ok(plan) => Ok(plan.pending.iter().map(ToString::to_string).collect()),
        // The directory loads (checked above): what is there now does not.
        Err(_) => Ok(Vec::new()),
    }
}

/// Reads the keys under the prefix (not its status prefix) at `revision`, or the latest.
async fn read(
    client: &mut Client,
    prefix: &Prefix,
    revision: Option<i64>,
) -> Result<(i64, Vec<Remote>), PublishError> {
    let mut at = revision.unwrap_or(0);
    let mut remote = Vec::new();
    for (start, end) in plan::ranges(prefix) {
        let options = GetOptions::new().with_range(end).with_revision(at);
        let response = client.get(start, Some(options)).await.map_err(|e| {
            let when = revision.map_or(String::new(), |r| format!(" at revision {r}"));
            Error::etcd(format!("cannot read the keys under {prefix}{when}"), e)
        })?;
        // Every further range is read at the first one's revision.
        if at == 0 {
            at = response.header().map_or(0, |h| h.revision());
        }
        for kv in response.kvs() {
            remote.push(Remote {
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                value: kv.value().to_vec(),
                mod_revision: kv.mod_revision(),
            });
        }
    }
    Ok((at, remote))
}

/// The guarded transaction: every key read still at its mod revision, nothing under the
/// prefix newer than the read; then the puts and deletes.
fn transaction(changes: &Changes, read_revision: i64) -> Txn {
    let mut compares: Vec<Compare> = changes
        .guards
        .iter()
        .map(|(key, revision)| Compare::mod_revision(key.as_str(), CompareOp::Equal, *revision))
        .collect();
    compares.extend(changes.ranges.iter().map(|(start, end)| {
        Compare::mod_revision(start.clone(), CompareOp::Less, read_revision + 1)
            .with_range(end.clone())
    }));
    let mut operations: Vec<TxnOp> = changes
        .puts
        .iter()
        .map(|(key, value)| TxnOp::put(key.as_str(), value.to_vec(), None))
        .collect();
    operations.extend(
        changes
            .deletes
            .iter()
            .map(|key| TxnOp::delete(key.as_str(), None)),
    );
    Txn::new().when(compares).and_then(operations)
}
