//! The interleaving runner: every case of a group runs once per round, in a rotating order
//! (A B C, B C A, C A B, …), so that a burst of machine noise lands on every case alike
//! instead of on whichever one Criterion happened to be running.

use std::time::{Duration, Instant};

/// How long to measure: `--quick` while developing, the full run for BENCHMARKS.md.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Rounds run and thrown away (the first one also sizes the batches).
    pub warmup: usize,
    /// Rounds measured; the medians are over these.
    pub rounds: usize,
    /// How long one batch of a fast case should take.
    pub batch: Duration,
    /// A group stops adding rounds past this (never below `min_rounds`).
    pub budget: Duration,
    /// The fewest measured rounds, whatever the budget.
    pub min_rounds: usize,
    /// Whether this is the quick run.
    pub quick: bool,
}

impl Settings {
    /// The settings for `--quick` or the full run.
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                warmup: 1,
                rounds: 5,
                batch: Duration::from_millis(2),
                budget: Duration::from_secs(3),
                min_rounds: 3,
                quick,
            }
        } else {
            Self {
                warmup: 3,
                rounds: 21,
                batch: Duration::from_millis(10),
                budget: Duration::from_secs(25),
                min_rounds: 7,
                quick,
            }
        }
    }
}

/// One contender: `run(iters)` does `iters` iterations and returns the time spent in the
/// timed part only (set-up such as writing the next file is left out).
pub struct Case<'a> {
    /// Shown in the tables.
    pub name: String,
    run: Box<dyn FnMut(u64) -> Duration + 'a>,
}

impl<'a> Case<'a> {
    /// A case whose closure times itself.
    pub fn timed(name: impl Into<String>, run: impl FnMut(u64) -> Duration + 'a) -> Self {
        Self {
            name: name.into(),
            run: Box::new(run),
        }
    }

    /// A case whose every iteration is timed whole.
    pub fn plain(name: impl Into<String>, mut op: impl FnMut() + 'a) -> Self {
        Self::timed(name, move |iters| {
            let start = Instant::now();
            for _ in 0..iters {
                op();
            }
            start.elapsed()
        })
    }
}

/// The result of one case in a group.
#[derive(Clone, Debug)]
pub struct Row {
    /// The case's name.
    pub name: String,
    /// Median time of one iteration over the measured rounds, in seconds.
    pub median: f64,
    /// Median over the rounds of (this case / the baseline in the same round).
    pub ratio: f64,
    /// Rounds measured.
    pub rounds: usize,
}

/// A measured group: the first row is the baseline.
#[derive(Clone, Debug)]
pub struct Group {
    /// What the group measures.
    pub title: String,
    /// One row per case, in the order given; `rows[baseline]` has ratio 1.
    pub rows: Vec<Row>,
    /// Index of the baseline row.
    pub baseline: usize,
}

impl Group {
    /// The row named `name`.
    pub fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }
}

/// Runs `cases` round-robin and reports each one's median and its ratio to
/// `cases[baseline]`.
pub fn compare(
    settings: &Settings,
    title: &str,
    baseline: usize,
    mut cases: Vec<Case<'_>>,
) -> Group {
    let n = cases.len();
    // Size the batches: as many iterations as fit in `settings.batch`.
    let mut iters = vec![1u64; n];
    let mut once_each = Vec::with_capacity(n);
    for (i, case) in cases.iter_mut().enumerate() {
        // Sized on the wall time, untimed set-up (writing the next file, starting reader
        // threads) included, so a case whose set-up dominates still takes its turn often;
        // ten times more iterations until a call takes a tenth of a batch and its timed
        // part at least 100 µs (so per-batch costs such as a new thread's first touch of
        // its caches do not show in the time of one iteration).
        let mut k = 1u64;
        let wall = loop {
            let start = Instant::now();
            let timed = (case.run)(k);
            let wall = start.elapsed().max(Duration::from_nanos(1));
            let enough = wall * 10 >= settings.batch && timed >= Duration::from_micros(100);
            if enough || k >= 10_000_000 {
                break wall;
            }
            k *= 10;
        };
        once_each.push(wall / u32::try_from(k).unwrap_or(u32::MAX));
        let fit = u128::from(k) * settings.batch.as_nanos() / wall.as_nanos();
        iters[i] = u64::try_from(fit)
            .unwrap_or(u64::MAX)
            .clamp(k, 50_000_000.max(k));
    }
    // Groups whose cases take seconds were warmed by the sizing round already.
    let slow = once_each.iter().sum::<Duration>() > Duration::from_secs(1);
    let warmup = if slow {
        settings.warmup.min(1)
    } else {
        settings.warmup
    };
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); n];
    let started = Instant::now();
    let total = warmup + settings.rounds;
    for round in 0..total {
        let measured = round >= warmup;
        for k in 0..n {
            let i = (round + k) % n;
            let elapsed = (cases[i].run)(iters[i]);
            if measured {
                samples[i].push(elapsed.as_secs_f64() / iters[i] as f64);
            }
        }
        let done = samples[0].len();
        if done >= settings.min_rounds && started.elapsed() > settings.budget {
            break;
        }
    }
    let rounds = samples[0].len();
    let rows = cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let ratios: Vec<f64> = samples[i]
                .iter()
                .zip(&samples[baseline])
                .map(|(a, b)| a / b)
                .collect();
            Row {
                name: case.name.clone(),
                median: median(samples[i].clone()),
                ratio: median(ratios),
                rounds,
            }
        })
        .collect();
    let group = Group {
        title: title.to_owned(),
        rows,
        baseline,
    };
    print(&group);
    group
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn print(group: &Group) {
    println!("\n{} ({} rounds)", group.title, group.rows[0].rounds);
    for row in &group.rows {
        println!(
            "  {:<44} {:>12}  {:>6.2}×",
            row.name,
            duration(row.median),
            row.ratio
        );
    }
}

/// A duration in seconds, with a unit that suits it: ns, µs, ms or s.
pub fn duration(seconds: f64) -> String {
    let ns = seconds * 1e9;
    if ns < 10.0 {
        return format!("{ns:.2} ns");
    }
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}
