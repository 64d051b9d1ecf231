//! The last-known-good cache: the documents last read from etcd, in a local file, so that
//! an instance can start while etcd is unreachable.
//!
//! The file is JSON: the prefix, the revision and cluster id the documents were read at,
//! their content hash and the keys with their values. It is written atomically (a temp
//! file in the same directory, synced, then renamed over the old one) with mode 0600: the
//! values may hold secrets. A file that does not parse, names another prefix or whose
//! values do not match its hash is refused, never read as an empty config.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::mirror::Mirror;
use crate::keys::{Prefix, content_hash_of_values};
use crate::{Error, format_of};

/// The layout's version; a file of another version is refused.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct File {
    hotconf_etcd_cache: u32,
    prefix: String,
    revision: i64,
    cluster_id: u64,
    hash: String,
    documents: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    #[serde(flatten)]
    value: Value,
}

/// A value as text when it is UTF-8 (every parsable document is), as bytes otherwise.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Value {
    Text(String),
    Bytes(Vec<u8>),
}

/// Writes `mirror` to `path` atomically, readable by its owner only.
pub(crate) fn write(path: &Path, prefix: &Prefix, mirror: &Mirror) -> Result<(), Error> {
    let values = mirror.values();
    let file = File {
        hotconf_etcd_cache: VERSION,
        prefix: prefix.as_str().to_owned(),
        revision: mirror.revision(),
        cluster_id: mirror.cluster(),
        hash: content_hash_of_values(values.iter().map(|(k, v)| (k.as_str(), &**v))),
        documents: values
            .iter()
            .map(|(key, value)| Entry {
                key: key.clone(),
                value: match std::str::from_utf8(value) {
                    Ok(text) => Value::Text(text.to_owned()),
                    Err(_) => Value::Bytes(value.to_vec()),
                },
            })
            .collect(),
    };
    let context =
        |what: &str| format!("cannot {what} the last-known-good cache {}", path.display());
    let bytes = serde_json::to_vec(&file)
        .map_err(|e| Error::io(context("encode"), std::io::Error::other(e)))?;
    let name = path
        .file_name()
        .ok_or_else(|| Error::Usage(format!("{} names no file", path.display())))?;
    let mut temp_name = name.to_owned();
    // Unique per write: a reload's read and the watch thread may write at once.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let write = WRITES.fetch_add(1, Ordering::Relaxed);
    temp_name.push(format!(".tmp-{}-{write}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options.open(&temp)?;
        out.write_all(&bytes)?;
        out.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        Error::io(context("write"), e)
    })
}

/// Reads the cache at `path` for `prefix`.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read, does not parse, is for another prefix, or
/// its values do not match its hash.
pub(crate) fn read(path: &Path, prefix: &Prefix) -> Result<Mirror, Error> {
    let corrupt = |why: String| {
        Error::io(
            format!("the last-known-good cache {} is unusable", path.display()),
            std::io::Error::new(std::io::ErrorKind::InvalidData, why),
        )
    };
    let bytes = std::fs::read(path).map_err(|e| {
        Error::io(
            format!("cannot read the last-known-good cache {}", path.display()),
            e,
        )
    })?;
    // serde_json's messages give a position, never the text.
    let file: File = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if file.hotconf_etcd_cache != VERSION {
        return Err(corrupt(format!(
            "layout version {} (expected {VERSION})",
            file.hotconf_etcd_cache
        )));
    }
    if file.prefix != prefix.as_str() {
        return Err(corrupt(format!(
            "it holds prefix {}, not {prefix}",
            file.prefix
        )));
    }
    let mut values: Vec<(String, Arc<[u8]>)> = Vec::with_capacity(file.documents.len());
    for entry in file.documents {
        if !prefix.contains(&entry.key) || format_of(&entry.key).is_none() {
            return Err(corrupt(format!(
                "{} is not a document under {prefix}",
                entry.key
            )));
        }
        let value: Arc<[u8]> = match entry.value {
            Value::Text(text) => Arc::from(text.into_bytes()),
            Value::Bytes(bytes) => Arc::from(bytes),
        };
        values.push((entry.key, value));
    }
    let hash = content_hash_of_values(values.iter().map(|(k, v)| (k.as_str(), &**v)));
    if hash != file.hash {
        return Err(corrupt(
            "its documents do not match its content hash".to_owned(),
        ));
    }
    Ok(Mirror::from_values(values, file.revision, file.cluster_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix() -> Prefix {
        Prefix::new("/app/").unwrap()
    }

    fn sample() -> Mirror {
        Mirror::read(
            [
                (&b"/app/a.toml"[..], &b"password = \"hunter2\"\n"[..]),
                (&b"/app/b.json"[..], &b"{\"x\": \xff}"[..]),
            ],
            42,
            9,
        )
    }

    #[test]
    fn round_trips_text_and_bytes_with_revision_and_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lkg.json");
        write(&path, &prefix(), &sample()).unwrap();
        let back = read(&path, &prefix()).unwrap();
        assert_eq!(back.values(), sample().values());
        assert_eq!((back.revision(), back.cluster()), (42, 9));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        // Writing again replaces it.
        let other = Mirror::read([(&b"/app/c.yaml"[..], &b"c: 1"[..])], 43, 9);
        write(&path, &prefix(), &other).unwrap();
        assert_eq!(read(&path, &prefix()).unwrap().values(), other.values());
    }

    #[test]
    fn a_damaged_cache_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lkg.json");
        write(&path, &prefix(), &sample()).unwrap();
        let good = std::fs::read_to_string(&path).unwrap();
        let cases = [
            ("truncated", good[..good.len() / 2].to_owned()),
            ("edited", good.replace("hunter2", "hunter3")),
            ("empty", String::new()),
            (
                "version",
                good.replace("\"hotconf_etcd_cache\":1", "\"hotconf_etcd_cache\":2"),
            ),
            ("foreign key", good.replace("/app/a.toml", "/etc/a.toml")),
        ];
        for (name, text) in cases {
            std::fs::write(&path, &text).unwrap();
            let Err(error) = read(&path, &prefix()) else {
                panic!("{name}: a damaged cache was read");
            };
            let message = format!("{error}");
            assert!(message.contains("lkg.json"), "{name}: {message}");
            assert!(!message.contains("hunter"), "{name}: {message}");
        }
        // Another prefix's cache is not this one's.
        write(&path, &prefix(), &sample()).unwrap();
        let other = Prefix::new("/other/").unwrap();
        let error = read(&path, &other).err().unwrap();
        assert!(format!("{error}").contains("/app/"), "{error}");
        // A missing file is an error too (the caller decides whether to look).
        assert!(read(&dir.path().join("missing.json"), &prefix()).is_err());
    }
}
