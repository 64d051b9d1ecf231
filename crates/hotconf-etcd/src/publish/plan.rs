//! What a push writes: the pure part. Given the documents of a directory and the keys under
//! the prefix as read at one revision, which keys to put, which to delete, which to leave,
//! what guards the transaction, and whether it fits etcd's limits.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::keys::{Prefix, range_end};

/// etcd 3.4's default `--max-txn-ops`: at most this many compares, and this many operations
/// in each branch of a transaction.
pub const MAX_TXN_OPS: usize = 128;

/// etcd 3.4's default `--max-request-bytes`: 1.5 MiB per request.
pub const MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// A key as read from etcd.
#[derive(Clone, Debug)]
pub(crate) struct Remote {
    pub(crate) key: String,
    pub(crate) value: Vec<u8>,
    pub(crate) mod_revision: i64,
}

/// One transaction's content.
#[derive(Clone, Debug, Default)]
pub(crate) struct Changes {
    /// New or changed keys and their values, in key order.
    pub(crate) puts: Vec<(String, Arc<[u8]>)>,
    /// Keys under the prefix that the directory no longer has, in key order.
    pub(crate) deletes: Vec<String>,
    /// Keys whose value is already the file's.
    pub(crate) unchanged: Vec<String>,
    /// Every key read, with the mod revision it had: the transaction requires each to
    /// still have it (a key deleted or changed since fails the compare).
    pub(crate) guards: Vec<(String, i64)>,
    /// The key ranges that make up the prefix (without the status prefix when it lies
    /// inside): the transaction requires no key in them to be newer than the read.
    pub(crate) ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Changes {
    /// Whether the transaction writes nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.deletes.is_empty()
    }

    /// How many compares the transaction has.
    pub(crate) fn compares(&self) -> usize {
        self.guards.len() + self.ranges.len()
    }

    /// How many operations it runs when the compares hold.
    pub(crate) fn operations(&self) -> usize {
        self.puts.len() + self.deletes.len()
    }

    /// An upper bound of the transaction's encoded size in bytes (protobuf: a tag, a
    /// length and the bytes per field, a little over for the numbers).
    pub(crate) fn request_bytes(&self) -> usize {
        let field = |len: usize| 2 + varint_len(len) + len;
        // Result, target and revision: three small fields, at most 2 + 10 bytes each.
        let numbers = 36;
        let compares: usize = self
            .guards
            .iter()
            .map(|(key, _)| field(field(key.len()) + numbers))
            .chain(
                self.ranges
                    .iter()
                    .map(|(key, end)| field(field(key.len()) + field(end.len()) + numbers)),
            )
            .sum();
        let puts: usize = self
            .puts
            .iter()
            .map(|(key, value)| field(field(field(key.len()) + field(value.len()))))
            .sum();
        let deletes: usize = self
            .deletes
            .iter()
            .map(|key| field(field(field(key.len()))))
            .sum();
        // The raft request's own header.
        64 + compares + puts + deletes
    }

    /// Refuses a transaction etcd would refuse, with what to do about it.
    pub(crate) fn check_limits(&self) -> Result<(), String> {
        if self.operations() > MAX_TXN_OPS {
            return Err(format!(
                "the push needs {} operations ({} puts, {} deletes) in one transaction; \
                 etcd allows {MAX_TXN_OPS} (--max-txn-ops): split the config into fewer files",
                self.operations(),
                self.puts.len(),
                self.deletes.len()
            ));
        }
        if self.compares() > MAX_TXN_OPS {
            return Err(format!(
                "the push needs {} compares (one per key under the prefix) in one \
                 transaction; etcd allows {MAX_TXN_OPS} (--max-txn-ops): the prefix holds \
                 too many keys",
                self.compares()
            ));
        }
        let bytes = self.request_bytes();
        if bytes > MAX_REQUEST_BYTES {
            return Err(format!(
                "the push is about {bytes} bytes in one request; etcd allows {MAX_REQUEST_BYTES} \
                 (1.5 MiB, --max-request-bytes): make the config smaller"
            ));
        }
        Ok(())
    }
}

/// The key ranges of `prefix`, leaving out its status prefix when that lies inside it
/// (`/app` holds `/app.status/`; `/app/` does not): `[start, end)` pairs.
pub(crate) fn ranges(prefix: &Prefix) -> Vec<(Vec<u8>, Vec<u8>)> {
    let start = prefix.as_str().as_bytes().to_vec();
    let end = prefix.range_end();
    let status = prefix.status();
    let status_start = status.as_str().as_bytes().to_vec();
    if !prefix.contains(status.as_str()) {
        return vec![(start, end)];
    }
    let status_end = range_end(&status_start);
    let mut ranges = Vec::new();
    if start < status_start {
        ranges.push((start, status_start));
    }
    if status_end < end || end == [0] {
        ranges.push((status_end, end));
    }
    ranges
}

/// What writing `local` (key and value, in key order) over `remote` takes.
pub(crate) fn changes(
    prefix: &Prefix,
    local: &[(String, Arc<[u8]>)],
    remote: &[Remote],
) -> Changes {
    let existing: BTreeMap<&str, &Remote> = remote.iter().map(|r| (r.key.as_str(), r)).collect();
    let mut changes = Changes {
        ranges: ranges(prefix),
        guards: remote
            .iter()
            .map(|r| (r.key.clone(), r.mod_revision))
            .collect(),
        ..Changes::default()
    };
    for (key, value) in local {
        match existing.get(key.as_str()) {
            Some(remote) if remote.value.as_slice() == &value[..] => {
                changes.unchanged.push(key.clone());
            }
            _ => changes.puts.push((key.clone(), Arc::clone(value))),
        }
    }
    let wanted: std::collections::BTreeSet<&str> = local.iter().map(|(k, _)| k.as_str()).collect();
    changes.deletes = remote
        .iter()
        .filter(|r| !wanted.contains(r.key.as_str()))
        .map(|r| r.key.clone())
        .collect();
    changes.deletes.sort();
    changes
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(pairs: &[(&str, &str)]) -> Vec<(String, Arc<[u8]>)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Arc::from(v.as_bytes())))
            .collect()
    }

    fn remote(pairs: &[(&str, &str, i64)]) -> Vec<Remote> {
        pairs
            .iter()
            .map(|(k, v, r)| Remote {
                key: (*k).to_owned(),
                value: v.as_bytes().to_vec(),
                mod_revision: *r,
            })
            .collect()
    }

    #[test]
    fn puts_new_and_changed_deletes_stale_and_guards_every_key_read() {
        let prefix = Prefix::new("/app/").unwrap();
        let changes = changes(
            &prefix,
            &local(&[
                ("/app/a.toml", "x = 1"),
                ("/app/b.toml", "y = 2"),
                ("/app/c.toml", "z = 3"),
            ]),
            &remote(&[
                ("/app/a.toml", "x = 1", 4),
                ("/app/b.toml", "y = 1", 5),
                ("/app/old.toml", "", 6),
            ]),
        );
        let puts: Vec<&str> = changes.puts.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(puts, ["/app/b.toml", "/app/c.toml"]);
        assert_eq!(changes.deletes, ["/app/old.toml"]);
        assert_eq!(changes.unchanged, ["/app/a.toml"]);
        assert_eq!(
            changes.guards,
            [
                ("/app/a.toml".to_owned(), 4),
                ("/app/b.toml".to_owned(), 5),
                ("/app/old.toml".to_owned(), 6)
            ]
        );
        assert_eq!(changes.compares(), 4);
        assert_eq!(changes.operations(), 3);
        assert!(!changes.is_empty());
    }

    #[test]
    fn identical_content_writes_nothing() {
        let prefix = Prefix::new("/app/").unwrap();
        let changes = changes(
            &prefix,
            &local(&[("/app/a.toml", "x = 1")]),
            &remote(&[("/app/a.toml", "x = 1", 4)]),
        );
        assert!(changes.is_empty());
        assert_eq!(changes.operations(), 0);
        assert_eq!(changes.unchanged, ["/app/a.toml"]);
    }

    #[test]
    fn the_status_prefix_is_cut_out_of_a_prefix_that_holds_it() {
        let slash = Prefix::new("/app/").unwrap();
        assert_eq!(ranges(&slash), vec![(b"/app/".to_vec(), b"/app0".to_vec())]);
        let bare = Prefix::new("/app").unwrap();
        assert_eq!(
            ranges(&bare),
            vec![
                (b"/app".to_vec(), b"/app.status/".to_vec()),
                (b"/app.status0".to_vec(), b"/apq".to_vec()),
            ]
        );
    }

    #[test]
    fn limits_count_operations_compares_and_bytes() {
        let prefix = Prefix::new("/p/").unwrap();
        let many: Vec<(String, Arc<[u8]>)> = (0..=MAX_TXN_OPS)
            .map(|i| (format!("/p/{i:03}.toml"), Arc::from(&b"x = 1"[..])))
            .collect();
        let error = changes(&prefix, &many, &[]).check_limits().unwrap_err();
        assert!(
            error.contains("129 operations") && error.contains("128"),
            "{error}"
        );
        assert!(
            changes(&prefix, &many[..MAX_TXN_OPS], &[])
                .check_limits()
                .is_ok()
        );

        let read: Vec<Remote> = (0..MAX_TXN_OPS)
            .map(|i| Remote {
                key: format!("/p/{i:03}.toml"),
                value: b"x = 1".to_vec(),
                mod_revision: 2,
            })
            .collect();
        // 128 keys read plus the range: one compare too many, even with nothing to write.
        let error = changes(&prefix, &many[..MAX_TXN_OPS], &read)
            .check_limits()
            .unwrap_err();
        assert!(error.contains("129 compares"), "{error}");

        let big = local(&[("/p/big.json", &"x".repeat(MAX_REQUEST_BYTES))]);
        let error = changes(&prefix, &big, &[]).check_limits().unwrap_err();
        assert!(error.contains("1.5 MiB"), "{error}");
        let fits = local(&[("/p/big.json", &"x".repeat(MAX_REQUEST_BYTES - 200))]);
        assert!(changes(&prefix, &fits, &[]).check_limits().is_ok());
    }

    #[test]
    fn request_bytes_bound_the_values() {
        let prefix = Prefix::new("/p/").unwrap();
        let one = changes(&prefix, &local(&[("/p/a.json", "{}")]), &[]);
        let two = changes(
            &prefix,
            &local(&[("/p/a.json", "{}"), ("/p/b.json", "{}")]),
            &[],
        );
        assert!(one.request_bytes() > "/p/a.json{}".len());
        assert!(two.request_bytes() > one.request_bytes());
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(16_384), 3);
    }
}
