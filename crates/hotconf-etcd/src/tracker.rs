//! What an [`EtcdSource`](crate::EtcdSource) has read, shared with the fleet reporter and
//! `--write-to`: for each set of documents, its content hash, its etcd revision and the
//! values themselves.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use crate::keys::{Prefix, content_hash, document_revision};

/// How many sets of documents a tracker remembers: enough for every attempt the worker may
/// still be reporting, bounded so a busy prefix costs nothing.
const KEEP: usize = 16;

/// One set of documents as read from etcd at one revision.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Snapshot {
    /// The etcd revision the documents were read at (the store's header revision).
    pub revision: i64,
    /// [`content_hash`](crate::content_hash) of the documents.
    pub hash: String,
    /// The keys and values, in key order.
    pub documents: Vec<(String, Arc<[u8]>)>,
}

/// A shared, bounded record of the document sets a source read; cheap to clone.
#[derive(Clone, Debug)]
pub struct Tracker {
    prefix: Prefix,
    seen: Arc<Mutex<VecDeque<Snapshot>>>,
}

impl Tracker {
    /// An empty tracker for `prefix`.
    pub fn new(prefix: Prefix) -> Self {
        Self {
            prefix,
            seen: Arc::default(),
        }
    }

    /// The prefix the source reads.
    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// Records the documents read at `revision`; returns their content hash. Recording the
    /// same content again moves it to the newest place with the newer revision.
    pub fn record(&self, revision: i64, documents: Vec<(String, Arc<[u8]>)>) -> String {
        let hash = content_hash(
            documents
                .iter()
                .map(|(key, value)| (key.as_str(), document_revision(value))),
        );
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|snapshot| snapshot.hash != hash);
        if seen.len() == KEEP {
            seen.pop_front();
        }
        seen.push_back(Snapshot {
            revision,
            hash: hash.clone(),
            documents,
        });
        hash
    }

    /// The newest set of documents with this content hash, if still remembered.
    pub fn get(&self, hash: &str) -> Option<Snapshot> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.iter().rev().find(|s| s.hash == hash).cloned()
    }

    /// The newest set of documents recorded.
    pub fn latest(&self) -> Option<Snapshot> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.back().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(pairs: &[(&str, &str)]) -> Vec<(String, Arc<[u8]>)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Arc::from(v.as_bytes())))
            .collect()
    }

    #[test]
    fn finds_a_set_by_hash_and_forgets_the_oldest() {
        let tracker = Tracker::new(Prefix::new("/p/").unwrap());
        let first = tracker.record(5, docs(&[("/p/a.toml", "x = 1")]));
        let second = tracker.record(6, docs(&[("/p/a.toml", "x = 2")]));
        assert_ne!(first, second);
        assert_eq!(tracker.get(&first).unwrap().revision, 5);
        assert_eq!(tracker.latest().unwrap().hash, second);
        // The same content again, at a later revision, is the newest.
        assert_eq!(tracker.record(9, docs(&[("/p/a.toml", "x = 1")])), first);
        assert_eq!(tracker.get(&first).unwrap().revision, 9);
        assert_eq!(tracker.latest().unwrap().revision, 9);
        for i in 0..KEEP {
            tracker.record(
                10 + i as i64,
                docs(&[("/p/a.toml", &format!("x = {}", 100 + i))]),
            );
        }
        assert!(tracker.get(&first).is_none());
        assert!(tracker.get(&second).is_none());
    }
}
