//! etcd for hotconf: a key prefix as a config source, validated publishing, and fleet status.
//!
//! A service that runs as many instances keeps its config under an etcd key prefix `P`:
//! each key under it ending in `.toml`, `.yaml`/`.yml` or `.json` is one document, in key
//! order, like the files of a directory. This crate gives the three sides of that:
//!
//! | piece | what it does |
//! |---|---|
//! | [`EtcdSource`] | a hotconf [`Source`](hotconf::source::Source): reads `P` at one revision, watches from the next and pushes every change (one reload per etcd transaction), survives reconnects, compaction, restores and outages, and can start from a last-known-good cache |
//! | [`Reporter`] | an [`Observer`](hotconf::Observer) that writes what this instance applied under `P.status/<instance>` on a lease (the fleet's ACK/NACK) |
//! | [`fleet_status`] | reads `P` and the records: each live instance SYNCED, PENDING, NACKED (with its located errors) or RESTART |
//! | [`publish`] | checks a directory exactly as instances will load it (the same pipeline, your typed `Validate` included), then writes it in one guarded transaction |
//! | [`WriteTo`] | writes the applied documents to a directory, for programs that read files |
//!
//! Errors in a value point into etcd like a file's: `/app/limits.toml:3:7: limits.rpm: …`.
//! The `hotconf` command (built with `--features etcd`) wraps them as `hotconf watch --etcd`,
//! `hotconf push` and `hotconf fleet status`.
//!
//! ```no_run
//! use hotconf::Reloader;
//! use hotconf_etcd::{Connection, EtcdSource, Prefix, Reporter};
//!
//! # #[derive(serde::Deserialize, serde::Serialize)]
//! # struct AppConfig { rpm: u32 }
//! # impl hotconf::Validate for AppConfig {}
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let etcd = Connection::new(["http://127.0.0.1:2379"]);
//! let source = EtcdSource::new(etcd.clone(), Prefix::new("/app/")?)
//!     .cache("/var/cache/app/last-good.json");
//! let reporter = Reporter::builder(etcd, source.tracker()).instance("web-1").build()?;
//! let reloader = Reloader::<AppConfig>::builder()
//!     .source(source)
//!     .observer(reporter)
//!     .build()?;
//! let rpm = reloader.handle().load().rpm;
//! # let _ = rpm;
//! # Ok(())
//! # }
//! ```
//!
//! Everything long-running (the watch, the reporter's lease) runs on threads of its own
//! with a small tokio runtime each: the service needs no runtime, and a slow etcd never
//! holds up a reload. Tests start a real etcd (Debian's `etcd-server`) on free ports; the
//! crate needs `protoc` to build.
#![deny(missing_docs)]

mod connect;
mod error;
mod fleet;
mod keys;
mod publish;
pub mod source;
mod tracker;
mod write_to;

pub use connect::{Connection, Tls};
pub use error::Error;
pub use fleet::{
    FleetStatus, Instance, Located, Record, Reporter, ReporterBuilder, State, fleet_status,
    fleet_status_blocking,
};
pub use keys::{Prefix, content_hash, content_hash_of_event, content_hash_of_values, format_of};
pub use publish::{
    MAX_REQUEST_BYTES, MAX_TXN_OPS, PublishError, Published, publish, publish_blocking,
};
pub use source::EtcdSource;
pub use tracker::{Snapshot, Tracker};
pub use write_to::{WriteTo, Written};
