//! Directories of small TOML files: one file changed, and the first load.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hotconf::Reloader;
use hotconf::source::Dir;

use crate::data::{self, Service, Services};
use crate::runner::{self, Case, Group, Settings};

/// Case names.
pub const HAND: &str = "hand-written incremental (read all, parse the changed one, patch, store)";
/// See [`HAND`].
pub const HOTCONF: &str = "hotconf `Dir` `reload()`";
/// See [`HAND`].
pub const HAND_FIRST: &str = "hand-written (read + parse every file, store)";
/// See [`HAND`].
pub const HOTCONF_FIRST: &str = "hotconf `Dir` first load (`build()`)";

/// The file the "changed" cases toggle.
const CHANGED: usize = 500;

/// The directory sizes measured.
pub const COUNTS: [usize; 2] = [1_000, 10_000];

/// How old a directory's files are before its cases start, as in a service whose files were
/// written long before one of them changes: `Dir` trusts a file's stamp only once its times
/// lie a second before the read (a write within one tick of the clock can leave the same
/// stamp), and reads younger files again. Without the wait, the first rounds of a case read
/// every file and the median moved with how many rounds fell in that second.
pub const SETTLED: Duration = Duration::from_millis(1_100);

/// One-changed groups for 1,000 and 10,000 files, then the first load of 10,000.
pub fn run(settings: &Settings, root: &Path) -> Vec<Group> {
    let mut groups = Vec::new();
    let mut first_dir = None;
    for count in COUNTS {
        let hand_dir = make(root, &format!("dir-{count}-hand"), count);
        let hotconf_dir = make(root, &format!("dir-{count}-hotconf"), count);
        std::thread::sleep(SETTLED);
        let hand = {
            let mut reloader = Incremental::new(hand_dir.clone());
            toggled(HAND, &hand_dir, move || reloader.reload())
        };
        let hotconf = {
            let reloader = Reloader::<Services>::builder()
                .source(Dir::new(&hotconf_dir).sections(true))
                .build()
                .expect("hotconf loads the directory");
            assert_eq!(reloader.current().0.len(), count);
            toggled(HOTCONF, &hotconf_dir, move || {
                black_box(reloader.reload().expect("a valid reload"));
            })
        };
        let title = format!("directory of {count} small TOML files, one changed");
        groups.push(runner::compare(settings, &title, 0, vec![hand, hotconf]));
        first_dir = Some(hand_dir);
    }
    let dir = first_dir.expect("a directory was made");
    let count = COUNTS[COUNTS.len() - 1];
    let hand = {
        let dir = dir.clone();
        Case::plain(HAND_FIRST, move || {
            let mut loader = Incremental::new(dir.clone());
            loader.reload();
            assert_eq!(loader.swap.load().0.len(), count);
        })
    };
    let hotconf = Case::plain(HOTCONF_FIRST, move || {
        let reloader = Reloader::<Services>::builder()
            .source(Dir::new(&dir).sections(true))
            .build()
            .expect("hotconf loads the directory");
        black_box(reloader.current());
    });
    let title = format!("first load of a directory of {count} small TOML files");
    groups.push(runner::compare(settings, &title, 0, vec![hand, hotconf]));
    groups
}

fn make(root: &Path, name: &str, count: usize) -> PathBuf {
    let dir = root.join(name);
    fs::create_dir_all(&dir).expect("case dir");
    data::write_services(&dir, count);
    dir
}

/// Toggles the weight of one file (outside the timing), then times `reload`.
fn toggled<'a>(name: &str, dir: &Path, mut reload: impl FnMut() + 'a) -> Case<'a> {
    let path = dir.join(format!("{}.toml", data::service_name(CHANGED)));
    let mut weight = 1;
    Case::timed(name, move |iters| {
        let mut spent = Duration::ZERO;
        for _ in 0..iters {
            weight = 3 - weight;
            fs::write(&path, data::service_text(CHANGED, weight)).expect("write");
            let start = Instant::now();
            reload();
            spent += start.elapsed();
        }
        spent
    })
}

/// The hand-written incremental reloader: reads every file, parses only those whose bytes
/// differ from the last read, patches its own map and stores a copy.
struct Incremental {
    dir: PathBuf,
    bytes: HashMap<String, Vec<u8>>,
    map: BTreeMap<String, Service>,
    swap: ArcSwap<Services>,
}

impl Incremental {
    fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            bytes: HashMap::new(),
            map: BTreeMap::new(),
            swap: ArcSwap::from_pointee(Services(BTreeMap::new())),
        }
    }

    fn reload(&mut self) {
        let mut changed = false;
        for entry in fs::read_dir(&self.dir).expect("list the directory") {
            let path = entry.expect("a directory entry").path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let bytes = fs::read(&path).expect("read a service file");
            if self.bytes.get(stem) == Some(&bytes) {
                continue;
            }
            let text = std::str::from_utf8(&bytes).expect("UTF-8");
            let service: Service = toml::from_str(text).expect("a valid service file");
            self.map.insert(stem.to_owned(), service);
            self.bytes.insert(stem.to_owned(), bytes);
            changed = true;
        }
        if changed {
            self.swap.store(Arc::new(Services(self.map.clone())));
        }
    }
}
