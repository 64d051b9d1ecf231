//! The log file: appends whole lines, rotates by size, and keeps its own health. A failure
//! is counted and reported, never raised to the reload that caused the record.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// How a [`Writer`] is doing, for [`Observer::health`](crate::Observer).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Health {
    /// Records written.
    pub(crate) records: u64,
    /// Records that could not be written (or synced).
    pub(crate) write_failures: u64,
    /// Why the last write failed, while no write has succeeded since.
    pub(crate) error: Option<String>,
}

/// The open log and what rotation needs to know of it.
struct Open {
    file: File,
    /// Bytes in the file: its size when opened plus what was written since.
    size: u64,
    /// Only a regular file is rotated: never rename `/dev/null` or a pipe.
    regular: bool,
    /// Which file it is, to see that the path now names another one (or none).
    id: Option<FileId>,
}

/// Device and inode: what a path names.
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(metadata: &fs::Metadata) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    Some((metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
fn file_id(_metadata: &fs::Metadata) -> Option<FileId> {
    None
}

pub(crate) struct Writer {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    open: Mutex<Option<Open>>,
    health: Mutex<Health>,
}

impl Writer {
    pub(crate) fn new(path: PathBuf, max_bytes: u64, keep: usize) -> Self {
        Self {
            path,
            max_bytes,
            keep,
            open: Mutex::new(None),
            health: Mutex::new(Health::default()),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn health(&self) -> Health {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Opens (creating) the log now, so that a path that can never work is known at start.
    pub(crate) fn open_now(&self) -> io::Result<()> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.is_none() {
            *open = Some(self.open_file()?);
        }
        Ok(())
    }

    /// Appends `line` and a newline in one write; with `sync`, waits until it is on disk.
    /// Counts the outcome; the error is returned for a caller that must refuse on it.
    pub(crate) fn append(&self, line: &str, sync: bool) -> Result<(), String> {
        let result = self.try_append(line, sync);
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(()) => {
                health.records += 1;
                if health.error.take().is_some() {
                    tracing::info!(target: "hotconf::audit", path = %self.path.display(), failures = health.write_failures, "audit log writable again");
                }
                Ok(())
            }
            Err(error) => {
                health.write_failures += 1;
                let message = format!(
                    "cannot write the audit log {}: {error}",
                    self.path.display()
                );
                // Once per streak of failures: a full disk must not flood the logs.
                if health.error.is_none() {
                    tracing::error!(target: "hotconf::audit", path = %self.path.display(), %error, "cannot write the audit log; reloads go on without it");
                }
                health.error = Some(message.clone());
                Err(message)
            }
        }
    }

    fn try_append(&self, line: &str, sync: bool) -> io::Result<()> {
        let mut record = String::with_capacity(line.len() + 1);
        record.push_str(line);
        record.push('\n');
        let length = record.len() as u64;
        let mut guard = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        // A log removed or renamed by someone else (logrotate, an operator) is not written
        // to where no one looks: the path is opened again.
        let current = fs::metadata(&self.path).ok().as_ref().and_then(file_id);
        let mut open = match guard.take() {
            Some(open) if open.id.is_none() || open.id == current => open,
            _ => self.open_file()?,
        };
        if open.regular && open.size > 0 && open.size.saturating_add(length) > self.max_bytes {
            match self.rotate() {
                Ok(()) => open = self.open_file()?,
                // The record matters more than the size: it goes to the current file.
                Err(error) => {
                    tracing::warn!(target: "hotconf::audit", path = %self.path.display(), %error, "cannot rotate the audit log; appending to it as it is");
                }
            }
        }
        // One write per record, so that a record is never interleaved or split by ours.
        open.file.write_all(record.as_bytes())?;
        open.file.flush()?;
        if sync {
            open.file.sync_data()?;
        }
        open.size = open.size.saturating_add(length);
        // Kept open only after a success: after a failure the next record reopens the path,
        // which finds a log that was moved away or a directory that came back.
        *guard = Some(open);
        Ok(())
    }

    fn open_file(&self) -> io::Result<Open> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&self.path)?;
        let metadata = file.metadata()?;
        Ok(Open {
            file,
            size: metadata.len(),
            regular: metadata.is_file(),
            id: file_id(&metadata),
        })
    }

    /// `log.k` is dropped, `log.i` becomes `log.i+1`, `log` becomes `log.1`.
    fn rotate(&self) -> io::Result<()> {
        if self.keep == 0 {
            return fs::remove_file(&self.path);
        }
        ignore_missing(fs::remove_file(self.rotated(self.keep)))?;
        for index in (1..self.keep).rev() {
            ignore_missing(fs::rename(self.rotated(index), self.rotated(index + 1)))?;
        }
        fs::rename(&self.path, self.rotated(1))
    }

    /// `log.N`.
    pub(crate) fn rotated(&self, index: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{index}"));
        PathBuf::from(name)
    }
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn rotation_keeps_k_files_and_loses_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::new(dir.path().join("audit.jsonl"), 100, 3);
        // 10 records of 40 bytes: 2 per file, 5 files' worth.
        let records: Vec<String> = (0..10).map(|i| format!("{i:0>39}")).collect();
        for record in &records {
            writer.append(record, false).unwrap();
        }
        let mut files: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                "audit.jsonl",
                "audit.jsonl.1",
                "audit.jsonl.2",
                "audit.jsonl.3"
            ]
        );
        let mut kept = Vec::new();
        for index in (1..=3).rev() {
            kept.extend(lines(&writer.rotated(index)));
        }
        kept.extend(lines(writer.path()));
        assert_eq!(
            kept,
            records[2..],
            "oldest first, none lost but the dropped file"
        );
        for file in &files {
            let size = fs::metadata(dir.path().join(file)).unwrap().len();
            assert!(size <= 100, "{file}: {size} bytes");
        }
        assert_eq!(writer.health().records, 10);
    }

    #[test]
    fn a_record_larger_than_the_limit_gets_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::new(dir.path().join("a.log"), 10, 2);
        writer.append("x", false).unwrap();
        writer.append(&"y".repeat(30), false).unwrap();
        writer.append("z", false).unwrap();
        assert_eq!(lines(&writer.rotated(2)), ["x"]);
        // Into a new log: nothing to rotate away.
        let fresh = Writer::new(dir.path().join("b.log"), 10, 2);
        fresh.append(&"w".repeat(30), false).unwrap();
        assert!(!fresh.rotated(1).exists());
        assert_eq!(lines(&writer.rotated(1)), ["y".repeat(30)]);
        assert_eq!(lines(writer.path()), ["z"]);
    }

    #[test]
    fn an_existing_log_is_appended_to_and_its_size_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        fs::write(&path, "old\n").unwrap();
        let writer = Writer::new(path.clone(), 8, 1);
        writer.append("new", false).unwrap();
        assert_eq!(lines(&path), ["old", "new"]);
        writer.append("more", false).unwrap();
        assert_eq!(lines(&writer.rotated(1)), ["old", "new"]);
        assert_eq!(lines(&path), ["more"]);
    }

    #[test]
    fn with_keep_zero_a_full_log_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::new(dir.path().join("a.log"), 4, 0);
        writer.append("one", false).unwrap();
        writer.append("two", false).unwrap();
        assert_eq!(lines(writer.path()), ["two"]);
        assert!(!writer.rotated(1).exists());
    }

    /// Devices behind a symlink of our own: were they rotated, the link would be renamed,
    /// never the device.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_is_counted_and_devices_are_never_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join("full");
        std::os::unix::fs::symlink("/dev/full", &full).unwrap();
        let writer = Writer::new(full.clone(), 1, 2);
        for _ in 0..3 {
            let error = writer.append("{}", false).unwrap_err();
            assert!(error.contains(&full.display().to_string()), "{error}");
            assert!(error.contains("os error 28"), "{error}");
        }
        let health = writer.health();
        assert_eq!((health.records, health.write_failures), (0, 3));
        assert!(health.error.is_some());

        let null = dir.path().join("null");
        std::os::unix::fs::symlink("/dev/null", &null).unwrap();
        let writer = Writer::new(null.clone(), 1, 2);
        for _ in 0..3 {
            writer.append("{}", false).unwrap();
        }
        assert_eq!(writer.health().records, 3);
        assert!(null.exists() && !writer.rotated(1).exists(), "not rotated");
    }

    #[cfg(unix)]
    #[test]
    fn a_log_moved_away_or_removed_is_started_again_at_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let writer = Writer::new(path.clone(), 1000, 1);
        writer.append("one", false).unwrap();
        let moved = dir.path().join("moved.log");
        fs::rename(&path, &moved).unwrap();
        writer.append("two", false).unwrap();
        fs::remove_file(&path).unwrap();
        writer.append("three", false).unwrap();
        assert_eq!(lines(&moved), ["one"]);
        assert_eq!(lines(&path), ["three"]);
        // logrotate's `create`: moved away, and a new empty file made in its place.
        fs::rename(&path, &moved).unwrap();
        fs::write(&path, "").unwrap();
        writer.append("four", false).unwrap();
        assert_eq!(lines(&moved), ["three"]);
        assert_eq!(lines(&path), ["four"]);
    }

    #[test]
    fn a_failure_streak_ends_with_the_next_write_that_works() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("a.log");
        let writer = Writer::new(path.clone(), 1000, 1);
        assert!(
            writer
                .append("lost", false)
                .unwrap_err()
                .contains("os error")
        );
        assert!(writer.open_now().is_err());
        fs::create_dir(dir.path().join("sub")).unwrap();
        writer.append("kept", false).unwrap();
        let health = writer.health();
        assert_eq!(
            health,
            Health {
                records: 1,
                write_failures: 1,
                error: None
            }
        );
        assert_eq!(lines(&path), ["kept"]);
    }
}
