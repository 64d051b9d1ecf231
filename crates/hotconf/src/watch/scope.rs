//! What the watcher looks at: the directories to watch, the entries in each that matter, and
//! how the files looked (to tell a file that is still being written).
//!
//! A file is never watched by its inode alone: editors replace it by renaming and
//! Kubernetes swaps a symlink one level up, and an inode watch goes deaf after the first
//! such save. Instead every name on the way to the file is followed: each symlink is a name
//! in a directory that must be watched, and so is the final file. A path that does not
//! exist yet is a name awaited in its nearest existing ancestor.
//!
//! Resolving reads the filesystem (stat, readlink); matching an event against a [`Scope`]
//! is pure.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use notify::EventKind;
use notify::event::{AccessKind, AccessMode, ModifyKind};

use crate::source::{Dir, WatchTarget, glob_match};

/// Symlinks followed on the way to one file before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// The directories to watch and, in each, what matters.
#[derive(Debug, Default)]
pub(crate) struct Scope {
    dirs: BTreeMap<PathBuf, Entries>,
}

/// What matters in one watched directory.
#[derive(Debug, Default)]
struct Entries {
    /// Names on the way to a config file: the file, a symlink, a directory not there yet.
    names: BTreeSet<OsString>,
    /// Directory sources reading this directory: any entry they select matters.
    selections: Vec<Dir>,
}

/// Where following a path's names ended.
#[derive(Debug, PartialEq)]
enum End {
    /// At an existing entry, by its path with every symlink resolved.
    Exists(PathBuf),
    /// At a name that does not exist (yet) in an existing directory.
    Missing { dir: PathBuf, name: OsString },
    /// In a symlink loop or at an unreadable link.
    Broken,
}

/// The names followed to reach a path.
#[derive(Debug)]
struct Walk {
    /// Each symlink passed: its directory and name.
    links: Vec<(PathBuf, OsString)>,
    end: End,
}

/// One step of a path, owned so that link targets can be spliced in.
enum Part {
    Root(OsString),
    Up,
    Name(OsString),
}

/// The steps of `path`, last first (a stack).
fn parts_reversed(path: &Path) -> impl Iterator<Item = Part> + '_ {
    path.components()
        .rev()
        .filter_map(|component| match component {
            Component::Prefix(_) | Component::RootDir => {
                Some(Part::Root(component.as_os_str().to_owned()))
            }
            Component::CurDir => None,
            Component::ParentDir => Some(Part::Up),
            Component::Normal(name) => Some(Part::Name(name.to_owned())),
        })
}

/// Follows `path` (absolute) name by name, resolving symlinks as `open` would.
fn walk(path: &Path) -> Walk {
    let mut pending: Vec<Part> = parts_reversed(path).collect();
    let mut at = PathBuf::new();
    let mut links = Vec::new();
    let walk = |links, end| Walk { links, end };
    while let Some(part) = pending.pop() {
        let name = match part {
            // Pushing a root replaces the path: an absolute link target starts over.
            Part::Root(root) => {
                at.push(root);
                continue;
            }
            Part::Up => {
                // `at` holds no symlinks, so going up lexically is going up for real.
                at.pop();
                continue;
            }
            Part::Name(name) => name,
        };
        let next = at.join(&name);
        match fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links.push((at.clone(), name));
                if links.len() > MAX_LINKS {
                    return walk(links, End::Broken);
                }
                match fs::read_link(&next) {
                    Ok(target) => pending.extend(parts_reversed(&target)),
                    Err(_) => return walk(links, End::Broken),
                }
            }
            Ok(_) => at = next,
            Err(_) => return walk(links, End::Missing { dir: at, name }),
        }
    }
    walk(links, End::Exists(at))
}

impl Scope {
    /// Resolves `targets` against the filesystem as it is now; relative paths are taken
    /// from `base`.
    pub(crate) fn resolve(targets: &[WatchTarget], base: &Path) -> Self {
        let mut scope = Self::default();
        for target in targets {
            match target {
                WatchTarget::File(path) => scope.add_file(&base.join(path)),
                WatchTarget::Dir(dir) => {
                    // The directory itself is watched (its removal is an event of its own),
                    // not its parent: every entry it selects matters.
                    if let End::Exists(resolved) = scope.follow(&base.join(dir.path())) {
                        scope.entries(resolved).selections.push(dir.clone());
                    }
                    // Entries that are symlinks (a ConfigMap's `key -> ..data/key`) change
                    // when their links change: follow each like a file of its own.
                    for file in dir.list().unwrap_or_default() {
                        scope.add_file(&base.join(file));
                    }
                }
            }
        }
        scope
    }

    /// Adds every name on the way to the file at `path`, the file's own name included.
    fn add_file(&mut self, path: &Path) {
        if let End::Exists(resolved) = self.follow(path)
            && let (Some(dir), Some(name)) = (resolved.parent(), resolved.file_name())
        {
            self.entries(dir.to_path_buf())
                .names
                .insert(name.to_owned());
        }
    }

    /// Adds the symlinks on the way to `path`, or the name it waits for; where it ended.
    fn follow(&mut self, path: &Path) -> End {
        let Walk { links, end } = walk(path);
        for (dir, name) in links {
            self.entries(dir).names.insert(name);
        }
        if let End::Missing { dir, name } = &end {
            self.entries(dir.clone()).names.insert(name.clone());
        }
        end
    }

    fn entries(&mut self, dir: PathBuf) -> &mut Entries {
        self.dirs.entry(dir).or_default()
    }

    /// The directories to watch, each on its own (not recursively).
    pub(crate) fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.keys().map(PathBuf::as_path)
    }

    /// Whether `path` is one of the watched directories.
    pub(crate) fn watches(&self, path: &Path) -> bool {
        self.dirs.contains_key(path)
    }

    /// Whether a filesystem event can change what the sources read. Reads (open, close
    /// without writing) never do: the reload's own reads must not start another reload.
    /// Names matching an `ignore` glob only matter when a source names them exactly.
    pub(crate) fn is_relevant(&self, event: &notify::Event, ignore: &[String]) -> bool {
        let kind_counts = match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        };
        kind_counts
            && event
                .paths
                .iter()
                .any(|path| self.matters(path, &event.kind, ignore))
    }

    fn matters(&self, path: &Path, kind: &EventKind, ignore: &[String]) -> bool {
        if self.watches(path) {
            // The watched directory itself: only its going or coming back matters, not its
            // timestamps (which change with every entry).
            return matches!(
                kind,
                EventKind::Remove(_)
                    | EventKind::Create(_)
                    | EventKind::Modify(ModifyKind::Name(_))
            );
        }
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        let Some(entries) = self.dirs.get(dir) else {
            return false;
        };
        if entries.names.contains(name) {
            return true;
        }
        selected(&entries.selections, name, ignore)
    }
}

/// Whether a directory source would read an entry of this name.
fn selected(selections: &[Dir], name: &OsStr, ignore: &[String]) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    !ignore.iter().any(|glob| glob_match(glob, name))
        && selections.iter().any(|dir| dir.selects(name))
}

/// Size, modification time and identity of each file the targets read, to tell whether
/// files moved while a batch was collected.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Stamps(Vec<(PathBuf, Option<Stamp>)>);

#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamps {
    /// How the targets' files look now (following symlinks, like a read).
    pub(crate) fn take(targets: &[WatchTarget]) -> Self {
        let mut files = Vec::new();
        for target in targets {
            match target {
                WatchTarget::File(path) => files.push(path.clone()),
                WatchTarget::Dir(dir) => files.extend(dir.list().unwrap_or_default()),
            }
        }
        Self(
            files
                .into_iter()
                .map(|path| {
                    let stamp = fs::metadata(&path).ok().map(|meta| Stamp {
                        len: meta.len(),
                        modified: meta.modified().ok(),
                        inode: inode(&meta),
                    });
                    (path, stamp)
                })
                .collect(),
        )
    }
}

/// A file's identity, to tell a directory replaced by another of the same name.
#[cfg(unix)]
pub(crate) fn inode(meta: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino() ^ meta.dev().rotate_left(32)
}

#[cfg(not(unix))]
pub(crate) fn inode(meta: &fs::Metadata) -> u64 {
    // No portable identity: creation time stands in (a recreated directory gets a new one).
    meta.created()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
#[cfg(unix)] // symlinks in the fixtures
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind, RenameMode};
    use std::os::unix::fs::symlink;

    fn names(scope: &Scope, dir: &Path) -> Vec<String> {
        scope.dirs[dir]
            .names
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect()
    }

    fn event(kind: EventKind, path: &Path) -> notify::Event {
        notify::Event::new(kind).add_path(path.to_path_buf())
    }

    fn modified(path: &Path) -> notify::Event {
        event(EventKind::Modify(ModifyKind::Data(DataChange::Any)), path)
    }

    /// A real temp dir, resolved (macOS and some CI hosts put temp dirs behind a symlink).
    fn tempdir() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn a_file_is_watched_through_its_directory() {
        let (_guard, root) = tempdir();
        fs::write(root.join("app.toml"), "a = 1").unwrap();
        let scope = Scope::resolve(&[WatchTarget::File(root.join("app.toml"))], &root);
        assert_eq!(scope.dirs().collect::<Vec<_>>(), [root.as_path()]);
        assert_eq!(names(&scope, &root), ["app.toml"]);

        let app = root.join("app.toml");
        assert!(scope.is_relevant(&modified(&app), &[]));
        assert!(!scope.is_relevant(&modified(&root.join("other.toml")), &[]));
        // A read of the file is not a change.
        let read = event(EventKind::Access(AccessKind::Close(AccessMode::Read)), &app);
        assert!(!scope.is_relevant(&read, &[]));
        let open = event(EventKind::Access(AccessKind::Open(AccessMode::Any)), &app);
        assert!(!scope.is_relevant(&open, &[]));
        let written = event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &app,
        );
        assert!(scope.is_relevant(&written, &[]));
        // A rename onto the file names it as the second path.
        let mut renamed = notify::Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)));
        renamed = renamed
            .add_path(root.join(".app.toml.tmp"))
            .add_path(app.clone());
        assert!(scope.is_relevant(&renamed, &[]));
        // The directory's own timestamps are not a change; its removal is.
        let touched = event(
            EventKind::Modify(ModifyKind::Metadata(notify::event::MetadataKind::Any)),
            &root,
        );
        assert!(!scope.is_relevant(&touched, &[]));
        assert!(scope.is_relevant(&event(EventKind::Remove(RemoveKind::Folder), &root), &[]));
    }

    #[test]
    fn a_missing_path_is_awaited_in_its_nearest_existing_ancestor() {
        let (_guard, root) = tempdir();
        let file = root.join("conf/app.d/app.toml");
        let scope = Scope::resolve(&[WatchTarget::File(file.clone())], &root);
        assert_eq!(scope.dirs().collect::<Vec<_>>(), [root.as_path()]);
        assert_eq!(names(&scope, &root), ["conf"]);
        let created = event(EventKind::Create(CreateKind::Folder), &root.join("conf"));
        assert!(scope.is_relevant(&created, &[]));

        fs::create_dir_all(root.join("conf/app.d")).unwrap();
        let scope = Scope::resolve(&[WatchTarget::File(file)], &root);
        let dir = root.join("conf/app.d");
        assert_eq!(scope.dirs().collect::<Vec<_>>(), [dir.as_path()]);
        assert_eq!(names(&scope, &dir), ["app.toml"]);
    }

    #[test]
    fn relative_paths_resolve_from_the_base() {
        let (_guard, root) = tempdir();
        fs::create_dir(root.join("conf")).unwrap();
        let scope = Scope::resolve(&[WatchTarget::File("conf/../conf/app.toml".into())], &root);
        let dir = root.join("conf");
        assert_eq!(scope.dirs().collect::<Vec<_>>(), [dir.as_path()]);
        assert_eq!(names(&scope, &dir), ["app.toml"]);
    }

    #[test]
    fn a_kubernetes_configmap_is_followed_through_both_links() {
        // kubelet's AtomicWriter layout: key -> ..data/key, ..data -> ..<timestamp>.
        let (_guard, root) = tempdir();
        let stamp = root.join("..2026_11_22_10_00_00.1");
        fs::create_dir(&stamp).unwrap();
        fs::write(stamp.join("app.yaml"), "a: 1").unwrap();
        symlink("..2026_11_22_10_00_00.1", root.join("..data")).unwrap();
        symlink("..data/app.yaml", root.join("app.yaml")).unwrap();

        for target in [
            WatchTarget::File(root.join("app.yaml")),
            WatchTarget::Dir(Dir::new(&root)),
        ] {
            let scope = Scope::resolve(std::slice::from_ref(&target), &root);
            assert_eq!(
                scope.dirs().collect::<Vec<_>>(),
                [root.as_path(), stamp.as_path()],
                "{target:?}"
            );
            assert_eq!(names(&scope, &root), ["..data", "app.yaml"]);
            assert_eq!(names(&scope, &stamp), ["app.yaml"]);
            // The update renames ..data_tmp over ..data: the visible link never changes.
            let swapped = event(
                EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                &root.join("..data"),
            );
            assert!(scope.is_relevant(&swapped, &[]), "{target:?}");
            // Staging litter alone is not a change.
            let staged = event(EventKind::Create(CreateKind::Any), &root.join("..data_tmp"));
            assert!(!scope.is_relevant(&staged, &[]), "{target:?}");
        }
    }

    #[test]
    fn a_retargeted_symlink_moves_the_watch() {
        let (_guard, root) = tempdir();
        for version in ["v1", "v2"] {
            fs::create_dir(root.join(version)).unwrap();
            fs::write(root.join(version).join("app.toml"), "a = 1").unwrap();
        }
        symlink(root.join("v1/app.toml"), root.join("app.toml")).unwrap();
        let target = [WatchTarget::File(root.join("app.toml"))];
        let scope = Scope::resolve(&target, &root);
        assert_eq!(
            scope.dirs().collect::<Vec<_>>(),
            [root.clone(), root.join("v1")]
        );

        fs::remove_file(root.join("app.toml")).unwrap();
        symlink(root.join("v2/app.toml"), root.join("app.toml")).unwrap();
        let scope = Scope::resolve(&target, &root);
        assert_eq!(
            scope.dirs().collect::<Vec<_>>(),
            [root.clone(), root.join("v2")]
        );
        assert!(scope.is_relevant(&modified(&root.join("v2/app.toml")), &[]));
    }

    #[test]
    fn symlink_loops_end_without_hanging() {
        let (_guard, root) = tempdir();
        symlink("b", root.join("a")).unwrap();
        symlink("a", root.join("b")).unwrap();
        let scope = Scope::resolve(&[WatchTarget::File(root.join("a"))], &root);
        assert_eq!(names(&scope, &root), ["a", "b"]);
    }

    #[test]
    fn a_directory_source_selects_new_files_but_not_litter() {
        let (_guard, root) = tempdir();
        let scope = Scope::resolve(&[WatchTarget::Dir(Dir::new(&root).glob("*.yaml"))], &root);
        assert_eq!(scope.dirs().collect::<Vec<_>>(), [root.as_path()]);
        let created = |name: &str| event(EventKind::Create(CreateKind::File), &root.join(name));
        assert!(scope.is_relevant(&created("new.yaml"), &[]));
        for litter in [
            ".new.yaml.swp",
            "new.yaml~",
            "4913",
            ".hidden.yaml",
            "new.toml",
        ] {
            assert!(!scope.is_relevant(&created(litter), &[]), "{litter}");
        }
        let ignore = vec!["*.bak.yaml".to_owned()];
        assert!(!scope.is_relevant(&created("old.bak.yaml"), &ignore));
        assert!(scope.is_relevant(&created("new.yaml"), &ignore));
    }

    #[test]
    fn an_ignore_glob_does_not_hide_a_file_named_exactly() {
        let (_guard, root) = tempdir();
        let file = root.join("settings.tmp");
        let scope = Scope::resolve(&[WatchTarget::File(file.clone())], &root);
        assert!(scope.is_relevant(&modified(&file), &["*.tmp".to_owned()]));
    }

    #[test]
    fn stamps_change_with_size_time_and_identity() {
        let (_guard, root) = tempdir();
        let file = root.join("app.toml");
        let targets = [WatchTarget::File(file.clone())];
        let missing = Stamps::take(&targets);
        fs::write(&file, "a = 1").unwrap();
        let written = Stamps::take(&targets);
        assert_ne!(missing, written);
        assert_eq!(written, Stamps::take(&targets));
        fs::write(&file, "a = 12").unwrap();
        assert_ne!(written, Stamps::take(&targets));
    }
}
