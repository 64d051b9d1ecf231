//! The crate's error type.

/// What went wrong talking to etcd or with the options given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Options that cannot work: no endpoint, an empty prefix, TLS without the feature.
    #[error("{0}")]
    Usage(String),
    /// etcd could not be reached, or refused a request; the message says what was asked.
    #[error("{context}: {source}")]
    Etcd {
        /// What was being done.
        context: String,
        /// The client's error.
        #[source]
        source: etcd_client::Error,
    },
    /// A local file (the last-known-good cache, `--write-to`) could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn etcd(context: impl Into<String>, source: etcd_client::Error) -> Self {
        Self::Etcd {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
