//! etcd for hotconf: a key prefix as a config source, validated publishing, and fleet status.
#![deny(missing_docs)]

mod connect;
mod error;
mod keys;
pub mod source;
mod tracker;

pub use connect::{Connection, Tls};
pub use error::Error;
pub use keys::{Prefix, content_hash, content_hash_of_event, content_hash_of_values, format_of};
pub use source::EtcdSource;
pub use tracker::{Snapshot, Tracker};
