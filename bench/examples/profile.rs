//! One reload case in a loop, for a profiler: `valgrind --tool=callgrind` counts its
//! instructions. Usage: `profile FORMAT SIZE COUNT` (e.g. `profile toml 1000 200`); one value
//! is toggled before each reload, as in the "changed" benchmark cases. A fifth argument
//! `hand` runs the hand-written reloader instead (read + parse), for the same count; `same`
//! rewrites the same bytes before each reload instead of a changed value.
//! `profile dir SIZE COUNT` reloads a directory of SIZE small TOML files (`Dir` with
//! sections) with one file toggled before each reload, as in the directories benchmark.
//!
//! ```text
//! cargo build --release --manifest-path bench/Cargo.toml --example profile
//! valgrind --tool=callgrind target/bench/release/examples/profile toml 1000 200
//! ```

use std::{env, fs, hint::black_box};

use hotconf::Reloader;
use hotconf::source::Dir;
use hotconf_bench::data::{self, Config, Fmt, Services};

fn main() {
    let args: Vec<String> = env::args().collect();
    if args.get(1).is_some_and(|s| s == "dir") {
        let size: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
        let count: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
        return dir(size, count);
    }
    let fmt = match args.get(1).map(String::as_str).unwrap_or("toml") {
        "yaml" => Fmt::Yaml,
        "json" => Fmt::Json,
        _ => Fmt::Toml,
    };
    let size: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let count: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(200);
    let hand = args.get(4).is_some_and(|s| s == "hand");
    let same = args.get(4).is_some_and(|s| s == "same");
    let (a, b) = data::texts(fmt, size);
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join(format!("config.{}", fmt.ext()));
    fs::write(&path, &a).expect("write");
    let reloader = Reloader::<Config>::builder()
        .file(&path)
        .build()
        .expect("hotconf loads the config");
    for i in 0..count {
        fs::write(&path, if i % 2 == 0 && !same { &b } else { &a }).expect("write");
        if hand {
            black_box(fmt.parse(&fs::read(&path).expect("read")));
        } else {
            black_box(reloader.reload().expect("a valid reload"));
        }
    }
}

fn dir(size: usize, count: usize) {
    let dir = tempfile::tempdir().expect("a temp dir");
    data::write_services(dir.path(), size);
    // Files younger than a second are read again on every reload: profile the steady
    // state, where only the changed file is read.
    std::thread::sleep(hotconf_bench::dirs::SETTLED);
    let reloader = Reloader::<Services>::builder()
        .source(Dir::new(dir.path()).sections(true))
        .build()
        .expect("hotconf loads the directory");
    let changed = size / 2;
    let path = dir
        .path()
        .join(format!("{}.toml", data::service_name(changed)));
    for i in 0..count {
        let weight = if i % 2 == 0 { 2 } else { 1 };
        fs::write(&path, data::service_text(changed, weight)).expect("write");
        black_box(reloader.reload().expect("a valid reload"));
    }
}
