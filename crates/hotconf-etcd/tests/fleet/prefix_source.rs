//! A test-only source over a prefix: reads it with etcd-client on every reload, records
//! what it read in a Tracker, and yields documents with `Origin::Key`, in key order, as the
//! real EtcdSource does (without its watch: tests reload by hand).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use hotconf::source::{Document, Origin, Source};
use hotconf::{Limits, Problem, ProblemKind};
use hotconf_etcd::{Connection, Prefix, Tracker, format_of};

#[derive(Debug)]
pub struct PrefixSource {
    connection: Connection,
    tracker: Tracker,
}

impl PrefixSource {
    pub fn new(endpoint: &str, prefix: &str) -> Self {
        Self {
            connection: Connection::new([endpoint.to_owned()]),
            tracker: Tracker::new(Prefix::new(prefix).unwrap()),
        }
    }

    pub fn tracker(&self) -> Tracker {
        self.tracker.clone()
    }

    pub fn connection(&self) -> Connection {
        self.connection.clone()
    }
}

impl Source for PrefixSource {
    fn read(&self, _limits: &Limits) -> Result<Vec<Document>, Problem> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let prefix = self.tracker.prefix().as_str().to_owned();
        let (revision, values) = runtime
            .block_on(async {
                let mut client = self.connection.connect().await?;
                let options = etcd_client::GetOptions::new().with_prefix();
                let response = client
                    .get(prefix.as_str(), Some(options))
                    .await
                    .map_err(|e| hotconf_etcd::Error::Usage(format!("get: {e}")))?;
                let revision = response.header().unwrap().revision();
                let values: Vec<(String, Arc<[u8]>)> = response
                    .kvs()
                    .iter()
                    .map(|kv| (kv.key_str().unwrap().to_owned(), Arc::from(kv.value())))
                    .filter(|(key, _)| format_of(key).is_some())
                    .collect();
                Ok::<_, hotconf_etcd::Error>((revision, values))
            })
            .map_err(|e| Problem::error(ProblemKind::Io, e.to_string()))?;
        self.tracker.record(revision, values.clone());
        Ok(values
            .into_iter()
            .map(|(key, value)| {
                let format = format_of(&key).unwrap();
                Document::new(Origin::Key(key), format, value)
            })
            .collect())
    }
}
