//! etcd for hotconf: a key prefix as a config source, validated publishing, and fleet status.
#![deny(missing_docs)]

mod connect;
mod error;
mod keys;

pub use connect::{Connection, Tls};
pub use error::Error;
pub use keys::{Prefix, content_hash, format_of};
