//! The audit key: a file of hex digits, generated once beside the log, and the keyed
//! HMAC-SHA256 that stands for a secret value in the log.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::AuditError;

/// Random bytes in a generated key, and the fewest a key file may hold.
const KEY_BYTES: usize = 32;

/// What every HMAC written by the audit log starts with.
pub const HMAC_PREFIX: &str = "hmac-sha256:";

/// The key of the audit log's HMACs, read from a key file.
///
/// A key file holds at least 32 bytes written as hex digits (64 or more, an even number),
/// optionally followed by a newline: what `openssl rand -hex 32` prints. The key is the
/// bytes the digits stand for. Its [`Debug`](fmt::Debug) output shows the path only.
#[derive(Clone)]
pub struct AuditKey {
    bytes: Vec<u8>,
    path: PathBuf,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditKey")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AuditKey {
    /// Reads the key file at `path`.
    ///
    /// # Errors
    ///
    /// [`AuditError::Key`] when the file cannot be read, naming the path and the OS error;
    /// [`AuditError::InvalidKey`] when it does not hold a valid key.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|source| AuditError::Key {
            path: path.to_path_buf(),
            source,
        })?;
        let bytes = decode(text.trim_end_matches(['\n', '\r'])).map_err(|reason| {
            AuditError::InvalidKey {
                path: path.to_path_buf(),
                reason,
            }
        })?;
        warn_if_readable_by_others(path);
        Ok(Self {
            bytes,
            path: path.to_path_buf(),
        })
    }

    /// Reads the key file at `path`, or creates it with 32 random bytes (mode 0600 on Unix)
    /// when there is none. An existing file is never overwritten.
    pub(crate) fn load_or_create(path: &Path) -> Result<Self, AuditError> {
        match create(path) {
            Ok(()) => {}
            // Someone else's key, or ours from an earlier start: use it.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(AuditError::Key {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        Self::load(path)
    }

    /// The key file this key was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes a new key file; `AlreadyExists` when there is one.
fn create(path: &Path) -> io::Result<()> {
    let mut bytes = [0u8; KEY_BYTES];
    getrandom::fill(&mut bytes).map_err(|error| io::Error::other(error.to_string()))?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let written = file
        .write_all(format!("{}\n", hex(&bytes)).as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(error) = written {
        // The file is ours and holds no valid key: leave nothing half-written behind.
        drop(file);
        let _ = fs::remove_file(path);
        return Err(error);
    }
    // The new name must survive a crash too, or the next start makes another key.
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty())
        && let Ok(dir) = fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = fs::metadata(path) {
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(target: "hotconf::audit", path = %path.display(), mode = format!("{:o}", mode & 0o777), "the audit key file can be read by others than its owner: chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// The key's bytes from its hex digits.
fn decode(text: &str) -> Result<Vec<u8>, String> {
    if text.is_empty() {
        return Err("the file is empty".into());
    }
    if let Some(bad) = text.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "expected hex digits only, found {}",
            if bad.is_whitespace() {
                "whitespace".to_owned()
            } else {
                // Never echo the key's text: one character of it says little, but say
                // only what kind of character it is.
                "a character that is not a hex digit".to_owned()
            }
        ));
    }
    if !text.len().is_multiple_of(2) {
        return Err("an odd number of hex digits".into());
    }
    let bytes: Vec<u8> = text
        .as_bytes()
        .chunks(2)
        .map(|pair| (nibble(pair[0]) << 4) | nibble(pair[1]))
        .collect();
    if bytes.len() < KEY_BYTES {
        return Err(format!(
            "{} bytes is too short: a key needs at least {KEY_BYTES} (64 hex digits)",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// The value of one hex digit (checked by the caller).
fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// Lowercase hex digits.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The HMAC that stands for `value` in the audit log: `hmac-sha256:<64 lowercase hex>`.
///
/// HMAC-SHA256 keyed with `key`, over the value's canonical bytes: a string's UTF-8 bytes,
/// any other value's compact JSON text. So the number `1234` and the string `"1234"` hash
/// alike, and `hotconf audit-hash --key-file K` (which reads a string) prints the same
/// HMAC for either. A secret that is a whole table hashes as its JSON with the keys in the
/// order the config file wrote them.
///
/// ```no_run
/// use hotconf::audit::{AuditKey, hash_value};
///
/// let key = AuditKey::load("/var/log/app/audit.jsonl.key")?;
/// let hmac = hash_value(&key, &serde_json::json!("hunter2"));
/// assert!(hmac.starts_with("hmac-sha256:"));
/// # Ok::<(), hotconf::audit::AuditError>(())
/// ```
pub fn hash_value(key: &AuditKey, value: &Value) -> String {
    let text;
    let bytes = match value {
        Value::String(string) => string.as_bytes(),
        other => {
            text = other.to_string();
            text.as_bytes()
        }
    };
    hash_bytes(&key.bytes, bytes)
}

/// A document's content hash as the log writes it: 16 hex digits of the HMAC of its
/// revision. The revision is an unkeyed hash of bytes that may hold a secret; written as
/// it is, it would let anyone who knows the rest of the file test guesses at a short
/// secret, where the HMAC needs the key.
pub(crate) fn hash_revision(key: &AuditKey, revision: u64) -> String {
    let mut message = *b"revision\0\0\0\0\0\0\0\0";
    message[8..].copy_from_slice(&revision.to_be_bytes());
    let hmac = hash_bytes(&key.bytes, &message);
    hmac.get(HMAC_PREFIX.len()..HMAC_PREFIX.len() + 16)
        .unwrap_or_default()
        .to_owned()
}

/// HMAC-SHA256 of `bytes` under `key`, with its prefix.
fn hash_bytes(key: &[u8], bytes: &[u8]) -> String {
    // HMAC takes a key of any length: this never fails; an empty MAC would only make the
    // record say nothing, never leak.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return HMAC_PREFIX.to_owned();
    };
    mac.update(bytes);
    format!("{HMAC_PREFIX}{}", hex(&mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn key(bytes: &[u8]) -> AuditKey {
        AuditKey {
            bytes: bytes.to_vec(),
            path: PathBuf::from("k"),
        }
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        // Key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            hash_value(&key(b"Jefe"), &json!("what do ya want for nothing?")),
            "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn canonical_bytes_make_a_number_and_its_string_alike() {
        let k = key(&[7; 32]);
        assert_eq!(hash_value(&k, &json!(1234)), hash_value(&k, &json!("1234")));
        assert_eq!(hash_value(&k, &json!(true)), hash_value(&k, &json!("true")));
        assert_eq!(
            hash_value(&k, &json!({"a": [1, "b"]})),
            hash_value(&k, &json!(r#"{"a":[1,"b"]}"#))
        );
        assert_ne!(hash_value(&k, &json!("a")), hash_value(&k, &json!("b")));
        assert_ne!(
            hash_value(&k, &json!("a")),
            hash_value(&key(&[8; 32]), &json!("a")),
            "another key, another HMAC"
        );
        let hmac = hash_value(&k, &json!("hunter2"));
        let digits = hmac.strip_prefix(HMAC_PREFIX).unwrap();
        assert_eq!(digits.len(), 64);
        assert!(digits.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    }

    #[test]
    fn revisions_are_keyed_too() {
        let (a, b) = (key(&[1; 32]), key(&[2; 32]));
        let hash = hash_revision(&a, 0xabc);
        assert_eq!(hash.len(), 16);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(hash, hash_revision(&a, 0xabc));
        assert_ne!(hash, hash_revision(&a, 0xabd));
        assert_ne!(hash, hash_revision(&b, 0xabc));
        assert_ne!(hash, format!("{:016x}", 0xabc));
    }

    #[test]
    fn key_files_are_decoded_and_checked() {
        let good = "00".repeat(31) + "aF";
        let bytes = decode(&good).unwrap();
        assert_eq!(bytes.len(), 32);
        assert_eq!(bytes[31], 0xaf);
        assert_eq!(
            decode(&"ab".repeat(40)).unwrap().len(),
            40,
            "longer is fine"
        );
        let digits = "0123456789abcdefABCDEF".to_owned() + &"00".repeat(21);
        assert_eq!(
            decode(&digits).unwrap()[..12],
            [
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xab, 0xcd, 0xef, 0x00
            ]
        );
        let cases = [
            ("", "empty"),
            ("ab", "too short"),
            (&*"a".repeat(65), "odd number"),
            (&*("zz".to_owned() + &"00".repeat(31)), "not a hex digit"),
            (&*("00".repeat(16) + " " + &"00".repeat(16)), "whitespace"),
        ];
        for (text, why) in cases {
            let error = decode(text).unwrap_err();
            assert!(error.contains(why), "{text:?}: {error}");
        }
    }

    #[test]
    fn a_generated_key_is_kept_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        let first = AuditKey::load_or_create(&path).unwrap();
        assert_eq!(first.bytes.len(), 32);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65, "64 hex digits and a newline");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = AuditKey::load_or_create(&path).unwrap();
        assert_eq!(again.bytes, first.bytes);
        assert_eq!(fs::read_to_string(&path).unwrap(), text);

        let other = AuditKey::load_or_create(&dir.path().join("other.key")).unwrap();
        assert_ne!(other.bytes, first.bytes, "random, not a constant");
    }

    #[test]
    fn key_errors_name_the_path_and_never_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing").join("audit.key");
        let error = AuditKey::load_or_create(&missing).unwrap_err().to_string();
        assert!(error.contains(&missing.display().to_string()), "{error}");
        assert!(error.contains("os error"), "{error}");

        let bad = dir.path().join("bad.key");
        fs::write(&bad, "secretsecretsecret").unwrap();
        let error = AuditKey::load(&bad).unwrap_err().to_string();
        assert!(error.contains(&bad.display().to_string()), "{error}");
        assert!(!error.contains("secret"), "{error}");
        assert!(
            format!(
                "{:?}",
                AuditKey::load_or_create(&dir.path().join("k")).unwrap()
            )
            .contains("AuditKey")
        );
    }
}
