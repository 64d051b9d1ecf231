//! The audit log's keyed HMACs (feature `audit`, on by default).
//!
//! A secret value is written to the audit log as HMAC-SHA256 keyed with the key file's key,
//! over the value's canonical bytes (see [`hash_value`]): the same value gives the same
//! HMAC, so an operator can tell that a secret changed, and which known value it now has
//! (`echo -n 'candidate' | hotconf audit-hash --key-file K`), but cannot read it back.

mod key;

use std::path::PathBuf;

pub use key::{AuditKey, HMAC_PREFIX, hash_value};

/// Why the audit key (or log) could not be set up. Each names the path and the OS error.
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
