//! What a directory source remembers between reads: each file's stamp (identity, size and
//! times) with the document last read from it, so that a reload re-reads only the files
//! that changed.
//!
//! A file is skipped only when nothing says it may have changed: no watcher event named
//! it, no full re-read was asked for (an explicit full reload, a signal, a lost event
//! queue), and its device, inode, size, `mtime` and `ctime` (nanoseconds) are those of the
//! read the document came from. `ctime` is the one a tool cannot set back (`cp -p` and
//! `rsync -t` restore `mtime` only), and a rename, a replacement or a Kubernetes `..data`
//! swap changes the inode the name leads to.
//!
//! Two writes within one tick of the filesystem's clock can leave the same stamp. So a
//! stamp is trusted only when its times lie at least [`SETTLE`] before the read began (a
//! write after the read then gets a later time), and never when its `ctime` has no
//! sub-second part, which is what a filesystem with coarse timestamps gives: such files are
//! read on every reload.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::document::Document;

/// How long before the read a file's times must lie for its stamp to be trusted: far over
/// the kernel's timestamp tick (a jiffy, at most 10 ms) and a little clock adjustment.
pub(super) const SETTLE: Duration = Duration::from_secs(1);

/// What changes whenever a file's content may have: the file the name leads to, its size,
/// and its modification and change times in nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i128,
    ctime: i128,
}

impl Stamp {
    /// The stamp of a file's metadata (following symlinks); `None` where the platform does
    /// not tell inode and change time, whose files are then read on every reload.
    #[cfg(unix)]
    pub(super) fn of(metadata: &Metadata) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let nanos = |secs: i64, nsecs: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsecs);
        // A filesystem with coarse timestamps gives whole seconds: two writes in one
        // second would leave the same stamp. (A fine one gives zero nanoseconds once in a
        // billion writes: that file is read again, nothing worse.)
        if metadata.ctime_nsec() == 0 {
            return None;
        }
        Some(Self {
            dev: metadata.dev(),
            ino: metadata.ino(),
            size: metadata.size(),
            mtime: nanos(metadata.mtime(), metadata.mtime_nsec()),
            ctime: nanos(metadata.ctime(), metadata.ctime_nsec()),
        })
    }

    /// See the unix version: without a change time, nothing is skipped.
    #[cfg(not(unix))]
    pub(super) fn of(metadata: &Metadata) -> Option<Self> {
        let _ = metadata;
        None
    }

    /// Whether a write after `began` is sure to change this stamp: both times lie at least
    /// [`SETTLE`] before it. A time in the future (a clock set back, `touch -d` ahead) is
    /// not trusted either.
    pub(super) fn settled(&self, began: SystemTime) -> bool {
        let Ok(began) = began.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let limit = i128::try_from(began.saturating_sub(SETTLE).as_nanos()).unwrap_or(0);
        self.mtime <= limit && self.ctime <= limit
    }
}

/// The cache one [`Dir`](super::Dir) and its clones share (the watcher holds a clone).
#[derive(Default)]
pub(super) struct Cache {
    state: Mutex<State>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A directory may hold thousands of files: their count says enough.
        let state = self.state();
        f.debug_struct("Cache")
            .field("files", &state.files.len())
            .field("reads", &state.reads)
            .finish_non_exhaustive()
    }
}

/// Each file by name: its settled stamp and the document last read from it (hashed with
/// foldhash: every reload looks each name up and stores it again).
pub(super) type Files = HashMap<String, (Stamp, Document), foldhash::fast::RandomState>;

#[derive(Default)]
struct State {
    files: Files,
    /// The file names watcher events named since the last read began.
    named: HashSet<OsString>,
    /// The next read re-reads every file.
    full: bool,
    /// Files read from disk, over the cache's life.
    reads: u64,
}

/// What a read may skip, taken when it begins; given back when it fails, so that a failed
/// read loses no mark.
#[derive(Debug)]
pub(super) struct Marks {
    named: HashSet<OsString>,
    full: bool,
}

impl Marks {
    /// Whether the file `name` may be skipped if its stamp is unchanged: no full re-read
    /// was asked for and no event named it.
    pub(super) fn may_skip(&self, name: &str) -> bool {
        !self.full && !self.named.contains(OsStr::new(name))
    }
}

impl Cache {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every field is assigned whole: a panic while holding the lock cannot leave the
        // state half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A watcher event named `name`: its file is read by the next read whatever its stamp.
    #[cfg(feature = "watch")]
    pub(super) fn name(&self, name: OsString) {
        self.state().named.insert(name);
    }

    /// The next read re-reads every file.
    pub(super) fn forget(&self) {
        self.state().full = true;
    }

    /// Takes the marks and the files for a read that begins now. (A read that runs at the
    /// same time on a clone finds no files and reads them all.)
    pub(super) fn begin(&self) -> (Marks, Files) {
        let mut state = self.state();
        let marks = Marks {
            named: std::mem::take(&mut state.named),
            full: std::mem::take(&mut state.full),
        };
        (marks, std::mem::take(&mut state.files))
    }

    /// A read that failed: its marks stand for the next one.
    pub(super) fn restore(&self, marks: Marks) {
        let mut state = self.state();
        state.named.extend(marks.named);
        state.full |= marks.full;
    }

    /// Keeps what a read found (every entry pairs a stamp with a document read after it
    /// was taken), and counts the files it read from disk.
    pub(super) fn end(&self, files: Files, reads: u64) {
        let mut state = self.state();
        state.files = files;
        state.reads += reads;
    }

    /// Files read from disk so far.
    pub(super) fn reads(&self) -> u64 {
        self.state().reads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(mtime: i128, ctime: i128) -> Stamp {
        Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime,
            ctime,
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_stamp_holds_the_files_times_in_nanoseconds() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        std::fs::write(&path, "x = 1\n").unwrap();
        let written = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_times(std::fs::FileTimes::new().set_modified(written))
            .unwrap();
        let metadata = std::fs::metadata(&path).unwrap();
        match Stamp::of(&metadata) {
            Some(stamp) => {
                assert_eq!(stamp.mtime, 1_700_000_000_123_456_789);
                let ctime = i128::from(metadata.ctime()) * 1_000_000_000
                    + i128::from(metadata.ctime_nsec());
                assert_eq!(stamp.ctime, ctime);
                assert_eq!((stamp.ino, stamp.size), (metadata.ino(), 6));
            }
            // Only a filesystem with whole-second times gives no stamp.
            None => assert_eq!(metadata.ctime_nsec(), 0),
        }
    }

    #[test]
    fn a_failed_read_gives_its_full_reread_back() {
        let cache = Cache::default();
        let (marks, _) = cache.begin();
        assert!(marks.may_skip("a.toml"));
        cache.forget();
        let (marks, _) = cache.begin();
        assert!(!marks.may_skip("a.toml"));
        // The read failed: the next one still reads every file, and only that one does.
        cache.restore(marks);
        let (marks, _) = cache.begin();
        assert!(!marks.may_skip("a.toml"));
        let (marks, _) = cache.begin();
        assert!(marks.may_skip("a.toml"));
    }

    #[test]
    fn debug_shows_counts_not_files() {
        let cache = Cache::default();
        cache.end(Files::default(), 3);
        assert_eq!(format!("{cache:?}"), "Cache { files: 0, reads: 3, .. }");
    }

    #[test]
    fn only_times_well_before_the_read_are_trusted() {
        let began = UNIX_EPOCH + Duration::from_secs(100);
        let second = 1_000_000_000;
        let cases = [
            (98 * second, 98 * second, true),
            (99 * second, 99 * second, true),
            (99 * second + 1, 98 * second, false),
            (98 * second, 99 * second + 1, false),
            (98 * second, 100 * second, false),
            (200 * second, 98 * second, false),
        ];
        for (mtime, ctime, trusted) in cases {
            assert_eq!(
                stamp(mtime, ctime).settled(began),
                trusted,
                "mtime {mtime} ctime {ctime}"
            );
        }
        assert!(!stamp(0, 0).settled(UNIX_EPOCH - Duration::from_secs(1)));
    }

    #[cfg(feature = "watch")]
    #[test]
    fn a_failed_read_gives_its_marks_back() {
        let cache = Cache::default();
        cache.name("a.toml".into());
        cache.forget();
        let (marks, _) = cache.begin();
        assert!(!marks.may_skip("a.toml") && !marks.may_skip("c.toml"));
        let (empty, _) = cache.begin();
        assert!(empty.may_skip("a.toml"));
        cache.name("b.toml".into());
        cache.restore(marks);
        let (mut again, _) = cache.begin();
        again.full = false;
        assert!(!again.may_skip("a.toml") && !again.may_skip("b.toml"));
        assert!(again.may_skip("c.toml"));
    }
}
