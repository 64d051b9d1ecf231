//! Keys under a prefix: which keys are documents, in which format, where the fleet's status
//! lives, and the content hash every instance and `hotconf fleet status` agree on.

use hotconf::source::Format;

/// A key prefix `P` that holds one config: every key under it is one document.
///
/// The prefix is used as given, byte for byte: `/app/` holds `/app/server.toml` but not
/// `/application.toml`; `/app` holds both. Use a trailing `/`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Prefix(String);

impl Prefix {
    /// The prefix `prefix`.
    ///
    /// # Errors
    ///
    /// An empty prefix: it would take the whole keyspace, the fleet's status included.
    pub fn new(prefix: impl Into<String>) -> Result<Self, crate::Error> {
        let prefix = prefix.into();
        if prefix.is_empty() {
            return Err(crate::Error::Usage(
                "the etcd prefix is empty; name one such as /app/".into(),
            ));
        }
        Ok(Self(prefix))
    }

    /// The prefix as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The end of the key range `[P, end)` that holds exactly the keys starting with `P`:
    /// `P` with its last byte below 0xff incremented, the rest dropped.
    pub fn range_end(&self) -> Vec<u8> {
        range_end(self.0.as_bytes())
    }

    /// Whether `key` is under this prefix.
    pub fn contains(&self, key: &str) -> bool {
        key.starts_with(&self.0)
    }

    /// The sibling prefix where instances report what they applied: `P` with `.status`
    /// appended to its last segment (`/app/` → `/app.status/`, `/app` → `/app.status/`).
    /// It is never under `P`, so the source and `push` never read or touch it.
    pub fn status(&self) -> Prefix {
        let trimmed = self.0.trim_end_matches('/');
        Prefix(format!("{trimmed}.status/"))
    }

    /// The key of one instance's status record.
    pub fn status_key(&self, instance: &str) -> String {
        format!("{}{instance}", self.status().0)
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The end of the range of keys that start with `prefix` (etcd's `WithPrefix`).
pub(crate) fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff: the range runs to the end of the keyspace.
    vec![0]
}

/// The format of a key's value, from the key's extension (`.toml`, `.yaml`/`.yml`,
/// `.json`); `None` for any other key, which is not a document.
pub fn format_of(key: &str) -> Option<Format> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let (_, extension) = name.rsplit_once('.')?;
    match extension {
        "toml" => Some(Format::Toml),
        "yaml" | "yml" => Some(Format::Yaml),
        "json" => Some(Format::Json),
        _ => None,
    }
}

/// The content hash of a config's documents: a stable 64-bit FNV-1a over each key and the
/// document's [`revision`](hotconf::source::Document::revision) (itself a hash of its bytes),
/// in key order. An instance reports the hash of what it applied (from its event's `files`
/// and `revisions`); `hotconf fleet status` computes it over what is under the prefix now;
/// equal hashes mean the instance runs exactly that content. Printed as 16 hex digits.
pub fn content_hash<'a>(documents: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    let mut documents: Vec<(&str, u64)> = documents.into_iter().collect();
    documents.sort_by(|a, b| a.0.cmp(b.0));
    let mut hash = Fnv::new();
    for (key, revision) in documents {
        hash.write(&(key.len() as u64).to_le_bytes());
        hash.write(key.as_bytes());
        hash.write(&revision.to_le_bytes());
    }
    format!("{:016x}", hash.0)
}

/// The content hash of `(key, value)` pairs as they are in etcd: what an instance that
/// applied exactly these values reports.
pub fn content_hash_of_values<'a>(values: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let revisions: Vec<(&str, u64)> = values
        .into_iter()
        .map(|(key, value)| (key, document_revision(value)))
        .collect();
    content_hash(revisions)
}

/// The content hash of the documents under `prefix` that an event names: its `files` under
/// the prefix with their `revisions`. Documents from other sources (defaults, files) are not
/// part of it.
pub fn content_hash_of_event(prefix: &Prefix, event: &hotconf::Event) -> String {
    content_hash(
        event
            .files
            .iter()
            .zip(&event.revisions)
            .filter(|(file, _)| prefix.contains(file))
            .map(|(file, revision)| (file.as_str(), *revision)),
    )
}

/// The revision hotconf gives a document with these bytes.
pub(crate) fn document_revision(bytes: &[u8]) -> u64 {
    hotconf::source::Document::new(
        hotconf::source::Origin::Defaults,
        hotconf::source::Format::Json,
        bytes,
    )
    .revision
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_end_increments_the_last_byte() {
        assert_eq!(range_end(b"/app/"), b"/app0".to_vec());
        assert_eq!(range_end(b"a\xff"), b"b".to_vec());
        assert_eq!(range_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn status_prefix_is_a_sibling() {
        let prefix = Prefix::new("/app/").unwrap();
        assert_eq!(prefix.status().as_str(), "/app.status/");
        assert!(!prefix.contains(prefix.status().as_str()));
        assert_eq!(
            Prefix::new("/app").unwrap().status().as_str(),
            "/app.status/"
        );
        assert_eq!(prefix.status_key("web-1"), "/app.status/web-1");
        assert!(Prefix::new("").is_err());
    }

    #[test]
    fn formats_come_from_the_extension() {
        assert_eq!(format_of("/app/server.toml"), Some(Format::Toml));
        assert_eq!(format_of("/app/a.yml"), Some(Format::Yaml));
        assert_eq!(format_of("/app/a.yaml"), Some(Format::Yaml));
        assert_eq!(format_of("/app/routes.json"), Some(Format::Json));
        assert_eq!(format_of("/app/README"), None);
        assert_eq!(format_of("/app.d/README"), None);
        assert_eq!(format_of("/app/notes.txt"), None);
    }

    #[test]
    fn a_prefix_displays_as_given() {
        assert_eq!(Prefix::new("/app/").unwrap().to_string(), "/app/");
    }

    /// Yields `/p/a.toml` and `/other/b.toml` as keys.
    #[derive(Debug)]
    struct Keys;

    impl hotconf::source::Source for Keys {
        fn read(
            &self,
            _: &hotconf::Limits,
        ) -> Result<Vec<hotconf::source::Document>, hotconf::Problem> {
            let key = |key: &str, text: &str| {
                hotconf::source::Document::new(
                    hotconf::source::Origin::Key(key.into()),
                    Format::Toml,
                    text.as_bytes().to_vec(),
                )
            };
            Ok(vec![
                key("/p/a.toml", "x = 1\n"),
                key("/other/b.toml", "y = 2\n"),
            ])
        }
    }

    #[test]
    fn an_events_hash_covers_its_documents_under_the_prefix_only() {
        let reloader = hotconf::Reloader::<serde_json::Value>::builder()
            .defaults(Format::Toml, "z = 3\n")
            .source(Keys)
            .build()
            .unwrap();
        let event = reloader.loaded_event();
        assert_eq!(event.files.len(), 3);
        let prefix = Prefix::new("/p/").unwrap();
        assert_eq!(
            content_hash_of_event(&prefix, &event),
            content_hash_of_values([("/p/a.toml", &b"x = 1\n"[..])])
        );
        let other = Prefix::new("/other/").unwrap();
        assert_eq!(
            content_hash_of_event(&other, &event),
            content_hash_of_values([("/other/b.toml", &b"y = 2\n"[..])])
        );
    }

    #[test]
    fn content_hash_is_order_free_and_unambiguous() {
        let hash = |pairs: &[(&str, &[u8])]| content_hash_of_values(pairs.iter().copied());
        let a = hash(&[("/p/a.toml", b"x=1"), ("/p/b.toml", b"y=2")]);
        let b = hash(&[("/p/b.toml", b"y=2"), ("/p/a.toml", b"x=1")]);
        assert_eq!(a, b);
        assert_eq!(a.len(), 16);
        let renamed = hash(&[("/p/a.toml", b"x=1"), ("/p/c.toml", b"y=2")]);
        assert_ne!(a, renamed);
        let changed = hash(&[("/p/a.toml", b"x=2"), ("/p/b.toml", b"y=2")]);
        assert_ne!(a, changed);
        assert_ne!(content_hash([]), a);
    }
}
