//! The tables for BENCHMARKS.md, one markdown file per section; `scripts/bench.sh` puts
//! each between its marker comments.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::memory::Peak;
use crate::runner::{Group, Row, duration};
use crate::watch::Watching;
use crate::{dirs, read, reload};

/// Everything one run measured (a section left out by `--only` is empty).
#[derive(Debug, Default)]
pub struct Results {
    /// Reload groups, "changed" then "same bytes" per format and size.
    pub reload: Vec<Group>,
    /// Directory groups.
    pub dirs: Vec<Group>,
    /// Read groups and the writer's rate.
    pub read: Vec<Group>,
    /// Notes on the read groups.
    pub read_notes: Vec<String>,
    /// Watcher figures.
    pub watch: Option<Watching>,
    /// Memory figures.
    pub memory: Vec<Peak>,
}

fn cell(row: Option<&Row>) -> String {
    match row {
        Some(r) => format!("{} ({:.2}×)", duration(r.median), r.ratio),
        None => "—".into(),
    }
}

/// Writes `reload.md`, `dirs.md`, `read.md`, `watch.md`, `memory.md` and `targets.md`.
pub fn write(out: &Path, results: &Results) {
    fs::create_dir_all(out).expect("the output dir");
    let put = |name: &str, text: String| {
        fs::write(out.join(name), text).expect("write a table");
    };
    if !results.reload.is_empty() {
        put("reload.md", reload_tables(&results.reload));
    }
    if !results.dirs.is_empty() {
        put("dirs.md", group_tables(&results.dirs));
    }
    if !results.read.is_empty() {
        put("read.md", read_table(&results.read, &results.read_notes));
    }
    if let Some(w) = &results.watch {
        put("watch.md", watch_tables(w));
    }
    if !results.memory.is_empty() {
        put("memory.md", memory_table(&results.memory));
    }
    // The verdicts need every section; a partial run leaves the old ones.
    let complete = !results.reload.is_empty()
        && !results.dirs.is_empty()
        && !results.read.is_empty()
        && results.watch.is_some()
        && !results.memory.is_empty();
    if complete {
        put("targets.md", targets(results));
    }
}

fn reload_tables(groups: &[Group]) -> String {
    let mut s = String::new();
    s.push_str("One value changed (ratio to the hand-written reloader):\n\n");
    s.push_str("| file | hand-written | hand-written, skips equal bytes | hand-written, on a worker thread | hotconf `reload()` | hotswap-config 0.2.2 `reload()` |\n|---|---:|---:|---:|---:|---:|\n");
    for g in groups.iter().filter(|g| g.title.ends_with("changed")) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | **{}** | {} |",
            label(&g.title),
            cell(g.row(reload::HAND)),
            cell(g.row(reload::SKIP)),
            cell(g.row(reload::HAND_ON_WORKER)),
            cell(g.row(reload::HOTCONF)),
            cell(g.row(reload::HOTSWAP)),
        );
    }
    s.push_str("\nSame bytes rewritten (ratio to a read plus a hash of the file):\n\n");
    s.push_str("| file | read + hash | read + hash, on a worker thread | hand-written | hand-written, skips equal bytes | hotconf `reload()` | hotswap-config 0.2.2 `reload()` |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for g in groups.iter().filter(|g| g.title.ends_with("same bytes")) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | **{}** | {} |",
            label(&g.title),
            cell(g.row(reload::FLOOR)),
            cell(g.row(reload::FLOOR_ON_WORKER)),
            cell(g.row(reload::HAND)),
            cell(g.row(reload::SKIP)),
            cell(g.row(reload::HOTCONF)),
            cell(g.row(reload::HOTSWAP)),
        );
    }
    let rounds: Vec<usize> = groups.iter().map(|g| g.rows[0].rounds).collect();
    let _ = writeln!(
        s,
        "\nMedians over {}–{} measured rounds per row.",
        rounds.iter().min().unwrap_or(&0),
        rounds.iter().max().unwrap_or(&0)
    );
    s
}

/// "reload, 1 KB TOML (1012 bytes), one value changed" → "1 KB TOML (1012 bytes)".
fn label(title: &str) -> &str {
    let rest = title.strip_prefix("reload, ").unwrap_or(title);
    rest.rsplit_once(", ").map_or(rest, |(l, _)| l)
}

fn group_tables(groups: &[Group]) -> String {
    let mut s = String::from("| work | contender | median (ratio) |\n|---|---|---:|\n");
    for g in groups {
        for r in &g.rows {
            let _ = writeln!(s, "| {} | {} | {} |", g.title, r.name, cell(Some(r)));
        }
    }
    let _ = writeln!(
        s,
        "\nRatios are to the first contender of each work; medians over {} measured rounds or fewer.",
        groups.first().map_or(0, |g| g.rows[0].rounds)
    );
    s
}

fn read_table(groups: &[Group], notes: &[String]) -> String {
    let mut s = String::from("| reader (read one field) |");
    for g in groups {
        let _ = write!(s, " {} |", g.title.trim_start_matches("read one field, "));
    }
    s.push_str("\n|---|");
    s.push_str(&"---:|".repeat(groups.len()));
    s.push('\n');
    for (i, row) in groups[0].rows.iter().enumerate() {
        let _ = write!(s, "| {} |", row.name);
        for g in groups {
            let _ = write!(s, " {} |", cell(g.rows.get(i)));
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "\nRatios are to raw `ArcSwap::load` in the same column. Each reader thread times its own reads in its own CPU time (CLOCK_THREAD_CPUTIME_ID, so time spent preempted does not count); with 2 threads the figure is their mean. {}",
        notes.join("; ")
    );
    s
}

fn watch_tables(w: &Watching) -> String {
    let mut s = format!(
        "Save → visible: each library watches one TOML file; {} saves per row, each after the last one was visible and {} ms of quiet. Measured from the save's return to `load()`/`get()` returning the new value (polled every 50 µs). hotconf's debounce is a quiet window (a reload once the files have been quiet that long); hotswap-config's fires on the first event and only delays the ones that follow within the window, so it can read a half-written file (its failed reloads are counted from its stderr).\n\n",
        w.latency.first().map_or(0, |l| l.saves),
        crate::watch::DEBOUNCE.as_millis() * 3 / 2,
    );
    s.push_str("| writer | watcher | debounce | p50 | p99 | max | never visible | failed reloads reported |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    for l in &w.latency {
        let _ = writeln!(
            s,
            "| {} | {} | {} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} of {} | {} |",
            l.writer, l.who, l.debounce_ms, l.p50, l.p99, l.max, l.missed, l.saves, l.failed
        );
    }
    let _ = writeln!(
        s,
        "\nIdle: a fresh process per row, idle for {} s after start-up; CPU time is user + system from getrusage.\n",
        w.idle_secs
    );
    s.push_str("| process | CPU time | CPU share | RSS |\n|---|---:|---:|---:|\n");
    for i in &w.idle {
        let _ = writeln!(
            s,
            "| {} | {:.0} µs | {:.4} % | {:.0} KiB |",
            i.who,
            i.cpu_us,
            i.cpu_us / (w.idle_secs as f64 * 1e6) * 100.0,
            i.rss_kib
        );
    }
    let _ = writeln!(
        s,
        "\nStorm: {} writes in place, as fast as one thread can, to the watched file.\n",
        w.writes
    );
    s.push_str("| watcher | the writes took | last write → visible | reloads applied by then | reloads applied within 1 s more | failed reloads reported |\n|---|---:|---:|---:|---:|---:|\n");
    for st in &w.storm {
        let _ = writeln!(
            s,
            "| {} | {:.0} ms | {:.1} ms | {} | {} | {} |",
            st.who, st.storm_ms, st.visible_ms, st.reloads, st.reloads_after, st.failed
        );
    }
    s
}

fn memory_table(peaks: &[Peak]) -> String {
    let mut s = String::from(
        "| what | input | peak RSS, one-line file | peak RSS, 100,000 keys | extra peak | extra / input |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for p in peaks {
        let _ = writeln!(
            s,
            "| {} | {:.2} MB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1}× |",
            p.what,
            p.input_bytes as f64 / 1e6,
            p.tiny_kib / 1024.0,
            p.big_kib / 1024.0,
            (p.big_kib - p.tiny_kib) / 1024.0,
            p.ratio()
        );
    }
    let _ = writeln!(
        s,
        "\nPeak RSS: the `Pipeline::check` child reports its own VmHWM (/proc/self/status); the CLI runs under a small relay process that reads its `ru_maxrss` from wait4 (a child spawned straight from the large benchmark process would inherit that process's high-water mark). Medians of {} runs each, one-line and large file interleaved.",
        peaks.first().map_or(0, |p| p.runs)
    );
    s
}

/// Ratio of hotconf to the baseline in the group whose title starts with `prefix` and
/// ends with `suffix`.
fn ratio(groups: &[Group], prefix: &str, suffix: &str, name: &str) -> Option<f64> {
    groups
        .iter()
        .find(|g| g.title.starts_with(prefix) && g.title.ends_with(suffix))
        .and_then(|g| g.row(name))
        .map(|r| r.ratio)
}

fn verdict(value: Option<f64>, limit: f64) -> (String, &'static str) {
    match value {
        Some(v) if v.is_finite() => (
            format!("{v:.2}×"),
            if v <= limit { "met" } else { "**missed**" },
        ),
        _ => ("not measured".into(), "—"),
    }
}

fn targets(results: &Results) -> String {
    let mut s = String::from("| target | limit | this run | verdict |\n|---|---:|---:|---|\n");
    let mut line = |target: String, limit: f64, value: Option<f64>| {
        let (figure, v) = verdict(value, limit);
        let _ = writeln!(s, "| {target} | ≤ {limit}× | {figure} | {v} |");
    };
    let r = &results.reload;
    for fmt in ["TOML", "YAML"] {
        line(
            format!("1 KB {fmt}, one value changed: hotconf / hand-written"),
            1.3,
            ratio(
                r,
                &format!("reload, 1 KB {fmt}"),
                "changed",
                reload::HOTCONF,
            ),
        );
        line(
            format!("1 KB {fmt}, same bytes: hotconf / (read + hash)"),
            1.5,
            ratio(
                r,
                &format!("reload, 1 KB {fmt}"),
                "same bytes",
                reload::HOTCONF,
            ),
        );
    }
    for fmt in ["TOML", "YAML", "JSON"] {
        line(
            format!("1 MB {fmt}, one value changed: hotconf / hand-written"),
            1.5,
            ratio(
                r,
                &format!("reload, 1 MB {fmt}"),
                "changed",
                reload::HOTCONF,
            ),
        );
    }
    line(
        "10,000-file directory, one changed: hotconf / hand-written incremental".into(),
        1.0,
        ratio(
            &results.dirs,
            "directory of 10000",
            "one changed",
            dirs::HOTCONF,
        ),
    );
    line(
        "memory: extra peak of `check` on 100,000 keys / input size".into(),
        10.0,
        results.memory.last().map(Peak::ratio),
    );
    let reads = &results.read;
    for threads in ["1 thread,", "2 threads,"] {
        let prefix = format!("read one field, {threads}");
        let cached = reads
            .iter()
            .find(|g| g.title.starts_with(&prefix) && g.title.ends_with("no writer"))
            .and_then(|g| Some(g.row(read::CACHED)?.median / g.row(read::CACHE)?.median));
        line(
            format!(
                "cached reader / `arc_swap::Cache::load`, {}",
                threads.trim_end_matches(',')
            ),
            2.0,
            cached,
        );
        line(
            format!(
                "`load()` / raw `ArcSwap::load`, {}",
                threads.trim_end_matches(',')
            ),
            1.1,
            ratio(reads, &prefix, "no writer", read::LOAD),
        );
    }
    // Never slower than hotswap-config: hotconf's median over hotswap-config's, every case.
    let mut worst: Option<(f64, String)> = None;
    let mut slower = Vec::new();
    let mut compare = |case: String, ours: f64, theirs: f64| {
        let q = ours / theirs;
        if q > 1.0 {
            slower.push(format!("{case} ({q:.2}×)"));
        }
        if worst.as_ref().is_none_or(|(w, _)| q > *w) {
            worst = Some((q, case));
        }
    };
    for g in r {
        if let (Some(a), Some(b)) = (g.row(reload::HOTCONF), g.row(reload::HOTSWAP)) {
            compare(
                label(&g.title).to_owned()
                    + if g.title.ends_with("changed") {
                        ", changed"
                    } else {
                        ", same bytes"
                    },
                a.median,
                b.median,
            );
        }
    }
    for g in reads {
        if let (Some(a), Some(b)) = (g.row(read::LOAD), g.row(read::HOTSWAP)) {
            compare(g.title.clone(), a.median, b.median);
        }
    }
    if let Some(w) = &results.watch {
        for writer in ["in place", "rename"] {
            let of = |who: &str| {
                w.latency
                    .iter()
                    .find(|l| l.writer == writer && l.who.starts_with(who))
            };
            if let (Some(a), Some(b)) = (of("hotconf"), of("hotswap")) {
                let theirs = if b.missed * 2 > b.saves {
                    f64::INFINITY
                } else {
                    b.p50
                };
                compare(format!("save → visible p50, {writer}"), a.p50, theirs);
            }
        }
        if let (Some(a), Some(b)) = (w.storm.first(), w.storm.get(1)) {
            compare(
                "storm, last write → visible".into(),
                a.visible_ms,
                b.visible_ms,
            );
        }
    }
    let (figure, v) = match &worst {
        Some((q, case)) => (
            format!("worst {q:.2}× ({case})"),
            if slower.is_empty() {
                "met"
            } else {
                "**missed**"
            },
        ),
        None => ("not measured".into(), "—"),
    };
    let _ = writeln!(
        s,
        "| never slower than hotswap-config (hotconf / hotswap-config, every reload, read, latency and storm case) | ≤ 1× | {figure} | {v} |"
    );
    if !slower.is_empty() {
        let _ = writeln!(s, "\nSlower than hotswap-config in: {}.", slower.join("; "));
    }
    s
}
