//! Peak memory of `check` on a large TOML file, minus the same on a one-line file.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hotconf::Pipeline;
use hotconf::source::{File, Source};

use crate::runner::median;
use crate::sys;

/// One way of running `check`.
#[derive(Clone, Debug)]
pub struct Peak {
    /// What ran.
    pub what: String,
    /// Peak RSS on the one-line file, KiB (median of the runs).
    pub tiny_kib: f64,
    /// Peak RSS on the large file, KiB.
    pub big_kib: f64,
    /// Size of the large file, bytes.
    pub input_bytes: u64,
    /// Runs of each.
    pub runs: usize,
}

impl Peak {
    /// The extra peak over the input size.
    pub fn ratio(&self) -> f64 {
        (self.big_kib - self.tiny_kib) * 1024.0 / self.input_bytes as f64
    }
}

/// Writes a TOML file of 1,000 tables × 100 keys (100,000 keys, about 1.5 MB).
pub fn big_toml(path: &Path) -> u64 {
    let mut text = String::with_capacity(1_600_000);
    for t in 0..1_000 {
        writeln!(text, "[t{t:04}]").expect("write to a string");
        for k in 0..100 {
            writeln!(text, "key_{k:03} = {}", t * 100 + k).expect("write to a string");
        }
    }
    fs::write(path, &text).expect("write the large file");
    text.len() as u64
}

/// In a child: what `hotconf check FILE` does to the file (the CLI checks an untyped
/// config, which keeps nothing but the located tree, under the default policy).
pub fn child(path: &str) {
    let sources: Vec<Box<dyn Source>> = vec![Box::new(File::new(path))];
    let plan = Pipeline::new().check::<Untyped>(&sources);
    assert!(plan.errors.is_empty(), "the generated file checks clean");
    // The high-water mark of this process's own memory (exec started it afresh; getrusage's
    // maxrss would also count the parent's pages at the spawn).
    println!("hwm_kib={}", sys::hwm_kib());
}

/// In a child: runs `command…` and prints its peak RSS (`maxrss_kib=`) and `ok=`. This
/// process is small and fresh, so the kernel's figure for its child is not raised by the
/// benchmark's own large resident set.
pub fn relay(command: &[String]) {
    let (program, args) = command.split_first().expect("a command to run");
    let (kib, ok) = sys::peak_rss_kib(Command::new(program).args(args));
    println!("maxrss_kib={kib}");
    println!("ok={ok}");
}

/// Runs this binary with `args` and returns the number after `key=` in its output.
fn child_figure(args: &[&std::ffi::OsStr], key: &str) -> u64 {
    let exe = std::env::current_exe().expect("this binary");
    let output = Command::new(exe)
        .arg("--child")
        .args(args)
        .output()
        .expect("run a child");
    assert!(output.status.success(), "child {args:?} failed: {output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("ok=false"), "child {args:?} failed: {text}");
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// Measures the in-process `Pipeline::check` child and, when given, the CLI binary.
pub fn run(quick: bool, root: &Path, cli: Option<PathBuf>) -> Vec<Peak> {
    let tiny = root.join("tiny.toml");
    fs::write(&tiny, "n = 1\n").expect("write the one-line file");
    let big = root.join("big.toml");
    let input_bytes = big_toml(&big);
    let runs = if quick { 2 } else { 5 };
    let mut peaks = vec![measure(
        "`Pipeline::check` in a child of the bench binary (its VmHWM)",
        runs,
        input_bytes,
        |file| child_figure(&["check".as_ref(), file.as_os_str()], "hwm_kib"),
        &tiny,
        &big,
    )];
    if let Some(cli) = cli {
        peaks.push(measure(
            "`hotconf check FILE` (the CLI, release build; wait4 maxrss)",
            runs,
            input_bytes,
            |file| {
                child_figure(
                    &[
                        "peak".as_ref(),
                        cli.as_os_str(),
                        "check".as_ref(),
                        file.as_os_str(),
                    ],
                    "maxrss_kib",
                )
            },
            &tiny,
            &big,
        ));
    }
    peaks
}

fn measure(
    what: &str,
    runs: usize,
    input_bytes: u64,
    peak_kib: impl Fn(&Path) -> u64,
    tiny: &Path,
    big: &Path,
) -> Peak {
    let mut tiny_kib = Vec::new();
    let mut big_kib = Vec::new();
    for _ in 0..runs {
        for (file, into) in [(tiny, &mut tiny_kib), (big, &mut big_kib)] {
            into.push(peak_kib(file) as f64);
        }
    }
    let peak = Peak {
        what: what.to_owned(),
        tiny_kib: median(tiny_kib),
        big_kib: median(big_kib),
        input_bytes,
        runs,
    };
    println!("memory: {peak:?}, extra = {:.1}× the input", peak.ratio());
    peak
}

/// The CLI's config type for `check` (a copy of it): accepts any document, keeps nothing.
struct Untyped;

impl<'de> serde::Deserialize<'de> for Untyped {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Untyped)
    }
}

impl serde::Serialize for Untyped {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl hotconf::Validate for Untyped {}
