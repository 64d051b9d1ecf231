//! Saving: the effective config back to its file, atomically, keeping TOML comments.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::source::Format;

/// Serializes `config` in `format` and writes it over `path` atomically. The top-level
/// table `keep` (the reloader's settings, which the config never holds) stays as the file
/// has it.
pub(crate) fn save<T: Serialize>(
    path: &Path,
    format: Format,
    config: &T,
    keep: Option<&str>,
) -> Result<()> {
    let unsaveable = |e: &dyn std::fmt::Display| Error::Unsaveable(format!("{format}: {e}"));
    // A file this build could not read back is not written.
    #[cfg(not(all(feature = "toml", feature = "yaml", feature = "json")))]
    if !format.is_compiled_in() {
        return Err(Error::Unsaveable(format.not_compiled_in()));
    }
    let text = match format {
        #[cfg(feature = "toml")]
        Format::Toml => {
            let fresh = toml::to_string_pretty(config).map_err(|e| unsaveable(&e))?;
            match fs::read_to_string(path) {
                Ok(existing) => keep_layout(&existing, &fresh, keep).unwrap_or(fresh),
                Err(_) => fresh,
            }
        }
        Format::Json => {
            let mut value = serde_json::to_value(config).map_err(|e| unsaveable(&e))?;
            if let (Some((name, table)), Some(map)) =
                (kept(path, format, keep), value.as_object_mut())
            {
                map.insert(name, table);
            }
            let mut text = serde_json::to_string_pretty(&value).map_err(|e| unsaveable(&e))?;
            text.push('\n');
            text
        }
        #[cfg(feature = "yaml")]
        Format::Yaml => {
            let mut text = serde_saphyr::to_string(config).map_err(|e| unsaveable(&e))?;
            // A block mapping at the top: the table is one more entry at its end.
            if let Some((name, table)) = kept(path, format, keep) {
                let entry = serde_json::json!({ name: table });
                let entry = serde_saphyr::to_string(&entry).map_err(|e| unsaveable(&e))?;
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&entry);
            }
            text
        }
        Format::Env => {
            return Err(Error::Unsaveable(
                "environment variables cannot be saved".into(),
            ));
        }
        // Answered above; kept so that the match needs no panic.
        #[cfg(not(all(feature = "toml", feature = "yaml")))]
        format => return Err(Error::Unsaveable(format.not_compiled_in())),
    };
    let target = real_path(path);
    write_atomically(&target, text.as_bytes()).map_err(|source| Error::Save {
        path: target,
        source,
    })
}

/// The table `keep` as the file at `path` has it now, as JSON, to write it back.
fn kept(path: &Path, format: Format, keep: Option<&str>) -> Option<(String, serde_json::Value)> {
    let name = keep?;
    let bytes = fs::read(path).ok()?;
    let document = crate::source::Document::new(
        crate::source::Origin::File(path.to_path_buf()),
        format,
        bytes,
    );
    let tree = crate::format::parse(&document, 0, &crate::Limits::default()).ok()?;
    let mut at = crate::ConfigPath::root();
    at.push(crate::Segment::Key(name.to_owned()));
    Some((name.to_owned(), tree.get(&at)?.to_json()))
}

/// The file a symlinked config points at, so saving replaces the content, not the link.
fn real_path(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(feature = "toml")]
/// `fresh`'s values laid into `existing`'s document, so comments, key order and formatting
/// of unchanged entries survive. `None` when `existing` does not parse.
fn keep_layout(existing: &str, fresh: &str, keep: Option<&str>) -> Option<String> {
    let mut document: toml_edit::DocumentMut = existing.parse().ok()?;
    let fresh: toml_edit::DocumentMut = fresh.parse().ok()?;
    merge_table(document.as_table_mut(), fresh.as_table(), keep);
    Some(document.to_string())
}

#[cfg(feature = "toml")]
fn merge_table(old: &mut toml_edit::Table, new: &toml_edit::Table, keep: Option<&str>) {
    let gone: Vec<String> = old
        .iter()
        .filter(|(key, _)| !new.contains_key(key) && Some(*key) != keep)
        .map(|(key, _)| key.to_owned())
        .collect();
    for key in gone {
        old.remove(&key);
    }
    for (key, item) in new.iter() {
        match (old.get_mut(key), item) {
            (Some(toml_edit::Item::Table(old_table)), toml_edit::Item::Table(new_table)) => {
                merge_table(old_table, new_table, None);
            }
            (Some(toml_edit::Item::Value(old_value)), toml_edit::Item::Value(new_value)) => {
                if bare(old_value) != bare(new_value) {
                    let decor = old_value.decor().clone();
                    *old_value = new_value.clone();
                    *old_value.decor_mut() = decor;
                }
            }
            (Some(slot), _) => *slot = item.clone(),
            (None, _) => {
                old.insert(key, item.clone());
            }
        }
    }
}

#[cfg(feature = "toml")]
/// A value's text without its surrounding whitespace and comments.
fn bare(value: &toml_edit::Value) -> String {
    let mut value = value.clone();
    value.decor_mut().clear();
    value.to_string()
}

/// Writes a temp file in the same directory, syncs it, gives it the old file's permissions
/// and renames it over `path`: readers see the old or the new content, never a mix.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    // The `.tmp` suffix is in the watchers' default ignore list.
    let temp = dir.join(format!(
        ".{}.{}.hotconf.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let permissions = fs::metadata(path).ok().map(|m| m.permissions());
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        if let Some(permissions) = permissions {
            file.set_permissions(permissions)?;
        }
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result?;
    // Make the rename itself durable; not every platform can sync a directory.
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "toml")]
    #[test]
    fn toml_keeps_comments_and_unchanged_layout() {
        let existing = "# service config\n[limits]\n# requests per minute\nrpm = 60 # tuned\nburst = 5\nold = 1\n\n[server]\nlisten = \"0.0.0.0:80\"\n";
        let fresh = "[limits]\nrpm = 120\nburst = 5\n\n[server]\nlisten = \"0.0.0.0:80\"\nname = \"edge\"\n";
        let merged = keep_layout(existing, fresh, None).unwrap();
        assert_eq!(
            merged,
            "# service config\n[limits]\n# requests per minute\nrpm = 120 # tuned\nburst = 5\n\n[server]\nlisten = \"0.0.0.0:80\"\nname = \"edge\"\n"
        );
    }

    #[test]
    fn atomic_write_keeps_permissions_and_leaves_no_temp_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.toml");
        fs::write(&path, "a = 1\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&path, b"a = 2\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "a = 2\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
