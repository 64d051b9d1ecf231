//! One reload of one file, by every contender, in every format and size, with one value
//! changed and with the same bytes.

use std::fs;
use std::hash::{DefaultHasher, Hasher};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hotconf::Reloader;
use hotswap_config::prelude::HotswapConfig;

use crate::data::{self, Config, Fmt};
use crate::runner::{self, Case, Group, Settings};

/// The sizes measured, with their names.
pub const SIZES: [(&str, usize); 3] = [("1 KB", 1_000), ("100 KB", 100_000), ("1 MB", 1_000_000)];

/// Case names (the report and the targets look rows up by them).
pub const HAND: &str = "hand-written (read + parse + store)";
/// See [`HAND`].
pub const SKIP: &str = "hand-written, skips equal bytes";
/// See [`HAND`].
pub const HOTCONF: &str = "hotconf `reload()`";
/// See [`HAND`].
pub const HOTSWAP: &str = "hotswap-config 0.2.2 `reload()`";
/// See [`HAND`].
pub const FLOOR: &str = "read + hash (the same-bytes floor)";
/// See [`HAND`]: the hand-written reloader run by a thread that the caller wakes and waits
/// for, as a `reload()` call is served by hotconf's reload worker (1 KB only).
pub const HAND_ON_WORKER: &str = "hand-written, on a worker thread";
/// See [`HAND`]: [`FLOOR`] run by a worker thread (1 KB only).
pub const FLOOR_ON_WORKER: &str = "read + hash, on a worker thread";

/// Every reload group: for each format and size, "changed" then "same bytes".
pub fn run(settings: &Settings, root: &Path, rt: &tokio::runtime::Runtime) -> Vec<Group> {
    let mut groups = Vec::new();
    for (size_name, size) in SIZES {
        for fmt in Fmt::ALL {
            let (a, b) = data::texts(fmt, size);
            let label = format!("{size_name} {} ({} bytes)", fmt.name(), a.len());
            for changed in [true, false] {
                let dir = root.join(format!(
                    "reload-{}-{size}-{}",
                    fmt.ext(),
                    if changed { "changed" } else { "same" }
                ));
                fs::create_dir_all(&dir).expect("case dir");
                let title = format!(
                    "reload, {label}, {}",
                    if changed {
                        "one value changed"
                    } else {
                        "same bytes"
                    }
                );
                groups.push(group(settings, &title, &dir, fmt, &a, &b, changed, rt));
            }
        }
    }
    groups
}

/// A file for one case, with the first text in it.
fn case_file(dir: &Path, case: &str, fmt: Fmt, text: &str) -> PathBuf {
    let sub = dir.join(case);
    fs::create_dir_all(&sub).expect("case dir");
    let path = sub.join(format!("app.{}", fmt.ext()));
    fs::write(&path, text).expect("write the config");
    path
}

/// Alternates the two texts (`changed`) or rewrites the same one, outside the timing.
struct Writer<'t> {
    path: PathBuf,
    texts: [&'t str; 2],
    flip: bool,
    changed: bool,
}

impl Writer<'_> {
    fn next(&mut self) {
        if self.changed {
            self.flip = !self.flip;
        }
        let text = self.texts[usize::from(self.flip)];
        fs::write(&self.path, text).expect("write the config");
    }
}

/// Times `op` once per iteration, after `writer.next()`.
fn per_write<'a>(name: &str, mut writer: Writer<'a>, mut op: impl FnMut(&Path) + 'a) -> Case<'a> {
    Case::timed(name, move |iters| {
        let mut spent = Duration::ZERO;
        for _ in 0..iters {
            writer.next();
            let start = Instant::now();
            op(&writer.path);
            spent += start.elapsed();
        }
        spent
    })
}

/// What the worker thread of [`on_worker`] does with the file.
#[derive(Clone, Copy)]
enum Work {
    /// Read, parse and store, as [`HAND`].
    Reload,
    /// Read and hash, as [`FLOOR`].
    ReadAndHash,
}

/// A case whose work runs on a thread of its own: each iteration sends the path to the
/// thread and waits for its answer, one round trip between two threads, as a `reload()`
/// call makes to hotconf's reload worker. The thread ends with the case.
fn on_worker<'a>(
    name: &str,
    writer: Writer<'a>,
    fmt: Fmt,
    initial: &Config,
    work: Work,
) -> Case<'a> {
    let (jobs, inbox) = mpsc::channel::<PathBuf>();
    let (answer, answers) = mpsc::channel::<()>();
    let swap = ArcSwap::from_pointee(initial.clone());
    std::thread::spawn(move || {
        while let Ok(path) = inbox.recv() {
            let bytes = fs::read(&path).expect("read");
            match work {
                Work::Reload => swap.store(Arc::new(fmt.parse(&bytes))),
                Work::ReadAndHash => {
                    let mut hasher = DefaultHasher::new();
                    hasher.write(&bytes);
                    black_box(hasher.finish());
                }
            }
            if answer.send(()).is_err() {
                break;
            }
        }
    });
    per_write(name, writer, move |path| {
        jobs.send(path.to_owned()).expect("the worker thread runs");
        answers.recv().expect("the worker thread answers");
    })
}

#[allow(clippy::too_many_arguments)]
fn group(
    settings: &Settings,
    title: &str,
    dir: &Path,
    fmt: Fmt,
    a: &str,
    b: &str,
    changed: bool,
    rt: &tokio::runtime::Runtime,
) -> Group {
    let writer = |case: &str| Writer {
        path: case_file(dir, case, fmt, a),
        texts: [a, b],
        flip: false,
        changed,
    };
    let initial = fmt.parse(a.as_bytes());

    // fs::read + parse + ArcSwap::store.
    let hand = {
        let swap = ArcSwap::from_pointee(initial.clone());
        per_write(HAND, writer("hand"), move |path| {
            let bytes = fs::read(path).expect("read");
            swap.store(Arc::new(fmt.parse(&bytes)));
        })
    };
    // The same, skipping the parse when the bytes equal the last ones.
    let skip = {
        let swap = ArcSwap::from_pointee(initial.clone());
        let mut last = a.as_bytes().to_vec();
        per_write(SKIP, writer("skip"), move |path| {
            let bytes = fs::read(path).expect("read");
            if bytes != last {
                swap.store(Arc::new(fmt.parse(&bytes)));
                last = bytes;
            }
        })
    };
    let hotconf = {
        let w = writer("hotconf");
        let reloader = Reloader::<Config>::builder()
            .file(&w.path)
            .build()
            .expect("hotconf loads the config");
        per_write(HOTCONF, w, move |_| {
            black_box(reloader.reload().expect("a valid reload"));
        })
    };
    let hotswap = {
        let w = writer("hotswap");
        let config: HotswapConfig<Config> = rt
            .block_on(HotswapConfig::builder().with_file(&w.path).build())
            .expect("hotswap-config loads the config");
        assert_eq!(
            *config.get(),
            initial,
            "hotswap-config reads the same config"
        );
        per_write(HOTSWAP, w, move |_| {
            rt.block_on(config.reload()).expect("a valid reload");
        })
    };
    // The cost of being served by a thread matters where the work is small.
    let small = a.len() < 10_000;
    if changed {
        let mut cases = vec![hand, skip, hotconf, hotswap];
        if small {
            let w = writer("hand-worker");
            cases.push(on_worker(HAND_ON_WORKER, w, fmt, &initial, Work::Reload));
        }
        runner::compare(settings, title, 0, cases)
    } else {
        let floor = per_write(FLOOR, writer("floor"), |path| {
            let bytes = fs::read(path).expect("read");
            let mut hasher = DefaultHasher::new();
            hasher.write(&bytes);
            black_box(hasher.finish());
        });
        let mut cases = vec![floor, hand, skip, hotconf, hotswap];
        if small {
            let w = writer("floor-worker");
            cases.push(on_worker(
                FLOOR_ON_WORKER,
                w,
                fmt,
                &initial,
                Work::ReadAndHash,
            ));
        }
        runner::compare(settings, title, 0, cases)
    }
}
