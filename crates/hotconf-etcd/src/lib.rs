//! etcd for hotconf: a key prefix as a config source, validated publishing, and fleet status.
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
