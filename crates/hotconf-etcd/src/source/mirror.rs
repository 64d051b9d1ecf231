//! The source's copy of the documents under the prefix: built from a range read, kept
//! current by watch events, turned into documents in key order.

use std::collections::BTreeMap;
use std::sync::Arc;

use hotconf::source::{Document, Origin};

use crate::keys::format_of;

/// One change a watch reported: a put (`value` is `Some`) or a delete, at `revision`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) revision: i64,
}

/// The documents under the prefix as of `revision`, and the cluster they were read from.
#[derive(Clone, Debug, Default)]
pub(crate) struct Mirror {
    /// Document keys (known extension, UTF-8) and their values.
    keys: BTreeMap<String, Arc<[u8]>>,
    /// Every change up to and including this revision is in `keys`.
    revision: i64,
    /// The cluster id of the etcd the documents came from; 0 when not known.
    cluster: u64,
}

impl Mirror {
    /// The documents of a range read at `revision` from `cluster`. Keys that are not
    /// documents are left out.
    pub(crate) fn read<'a>(
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        revision: i64,
        cluster: u64,
    ) -> Self {
        let keys = pairs
            .into_iter()
            .filter_map(|(key, value)| Some((document_key(key)?, Arc::from(value))))
            .collect();
        Self {
            keys,
            revision,
            cluster,
        }
    }

    /// A mirror of values already vetted (the cache's).
    pub(crate) fn from_values(
        values: Vec<(String, Arc<[u8]>)>,
        revision: i64,
        cluster: u64,
    ) -> Self {
        Self {
            keys: values.into_iter().collect(),
            revision,
            cluster,
        }
    }

    /// Applies one watch response's changes (one revision, or several in order). Changes at
    /// or below the mirror's revision are already in it (a resync read past them) and are
    /// skipped. Returns whether a document changed; the revision moves to the newest change
    /// either way.
    pub(crate) fn apply<'a>(&mut self, changes: impl IntoIterator<Item = Change<'a>>) -> bool {
        let seen = self.revision;
        let mut changed = false;
        for change in changes {
            if change.revision <= seen {
                continue;
            }
            self.revision = self.revision.max(change.revision);
            let Some(key) = document_key(change.key) else {
                continue;
            };
            changed |= match change.value {
                Some(value) => {
                    let value: Arc<[u8]> = Arc::from(value);
                    self.keys.insert(key, Arc::clone(&value)).as_deref() != Some(&*value)
                }
                None => self.keys.remove(&key).is_some(),
            };
        }
        changed
    }

    /// etcd says every change up to `revision` was delivered (a progress notification).
    pub(crate) fn progress(&mut self, revision: i64) {
        self.revision = self.revision.max(revision);
    }

    /// The revision every change up to which is in the mirror.
    pub(crate) fn revision(&self) -> i64 {
        self.revision
    }

    /// The cluster the documents were read from; 0 when not known.
    pub(crate) fn cluster(&self) -> u64 {
        self.cluster
    }

    /// The keys and values, in key order.
    pub(crate) fn values(&self) -> Vec<(String, Arc<[u8]>)> {
        self.keys
            .iter()
            .map(|(key, value)| (key.clone(), Arc::clone(value)))
            .collect()
    }

    /// One document per key, in key order, each with the key as its origin.
    pub(crate) fn documents(&self) -> Vec<Document> {
        self.keys
            .iter()
            .filter_map(|(key, value)| {
                let format = format_of(key)?;
                Some(Document::new(
                    Origin::Key(key.clone()),
                    format,
                    Arc::clone(value),
                ))
            })
            .collect()
    }
}

/// The key as a document's name: UTF-8 with a known extension, or `None`.
fn document_key(key: &[u8]) -> Option<String> {
    let key = std::str::from_utf8(key).ok()?;
    format_of(key)?;
    Some(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotconf::source::Format;

    fn put<'a>(key: &'a str, value: &'a str, revision: i64) -> Change<'a> {
        Change {
            key: key.as_bytes(),
            value: Some(value.as_bytes()),
            revision,
        }
    }

    fn del(key: &str, revision: i64) -> Change<'_> {
        Change {
            key: key.as_bytes(),
            value: None,
            revision,
        }
    }

    fn mirror(pairs: &[(&str, &str)], revision: i64) -> Mirror {
        Mirror::read(
            pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
            revision,
            7,
        )
    }

    fn keys(mirror: &Mirror) -> Vec<(String, String)> {
        mirror
            .values()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.to_vec()).unwrap()))
            .collect()
    }

    #[test]
    fn a_read_keeps_documents_in_key_order_and_drops_other_keys() {
        let m = mirror(
            &[
                ("/app/b.yaml", "b: 1"),
                ("/app/README", "x"),
                ("/app/a.toml", "a = 1"),
                ("/app/c.json", "{}"),
            ],
            5,
        );
        let documents = m.documents();
        let origins: Vec<String> = documents.iter().map(|d| d.origin.to_string()).collect();
        assert_eq!(origins, ["/app/a.toml", "/app/b.yaml", "/app/c.json"]);
        let formats: Vec<Format> = documents.iter().map(|d| d.format).collect();
        assert_eq!(formats, [Format::Toml, Format::Yaml, Format::Json]);
        assert_eq!(&*documents[0].bytes, b"a = 1");
        assert_eq!((m.revision(), m.cluster()), (5, 7));
        // Invalid UTF-8 is not a document name.
        let m = Mirror::read([(&b"/app/\xff.toml"[..], &b"x = 1"[..])], 1, 0);
        assert!(m.values().is_empty());
    }

    #[test]
    fn changes_apply_in_order_and_report_whether_a_document_changed() {
        let mut m = mirror(&[("/app/a.toml", "a = 1")], 5);
        // A transaction: one revision, several keys.
        assert!(m.apply([
            put("/app/a.toml", "a = 2", 6),
            put("/app/b.toml", "b = 1", 6)
        ]));
        assert_eq!(m.revision(), 6);
        assert_eq!(
            keys(&m),
            [
                ("/app/a.toml".into(), "a = 2".into()),
                ("/app/b.toml".into(), "b = 1".into())
            ]
        );
        // The same value again changes nothing, but the revision moves.
        assert!(!m.apply([put("/app/a.toml", "a = 2", 7)]));
        assert_eq!(m.revision(), 7);
        // A key that is no document moves the revision only.
        assert!(!m.apply([put("/app/notes.txt", "hi", 8)]));
        assert_eq!(m.revision(), 8);
        // Deleting a missing key changes nothing; deleting a present one does.
        assert!(!m.apply([del("/app/zzz.toml", 9)]));
        assert!(m.apply([del("/app/b.toml", 10)]));
        assert_eq!(keys(&m), [("/app/a.toml".into(), "a = 2".into())]);
        assert_eq!(m.revision(), 10);
    }

    #[test]
    fn changes_a_read_already_holds_are_skipped() {
        // Read at 10: b was put at 8 and deleted at 9, a put at 10.
        let mut m = mirror(&[("/app/a.toml", "a = 10")], 10);
        // The watch delivers the old history late: none of it may come back.
        assert!(!m.apply([put("/app/b.toml", "b = 8", 8), del("/app/b.toml", 9)]));
        assert!(!m.apply([put("/app/a.toml", "a = 9", 10)]));
        assert_eq!(keys(&m), [("/app/a.toml".into(), "a = 10".into())]);
        assert_eq!(m.revision(), 10);
        // Every change of one response past the read applies, even after the first moved
        // the revision.
        assert!(m.apply([
            put("/app/a.toml", "a = 11", 11),
            put("/app/c.toml", "c = 11", 11)
        ]));
        assert_eq!(keys(&m).len(), 2);
    }

    #[test]
    fn progress_only_moves_forward() {
        let mut m = mirror(&[], 10);
        m.progress(12);
        assert_eq!(m.revision(), 12);
        m.progress(11);
        assert_eq!(m.revision(), 12);
    }
}
