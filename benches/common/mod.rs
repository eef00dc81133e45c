//! Machinery shared by `benches/spawn.rs` and `benches/check.rs`.
//!
//! # One process per configuration
//!
//! leakcheck reads its configuration once per process (`LEAKCHECK_BACKTRACE`,
//! `LEAKCHECK_DETAIL`), and tracking, once on, stays on. So each bench binary
//! is a *parent* that runs nothing itself: it starts one child process of the
//! same executable per *role* (a set of benchmarks that share one
//! configuration), passes its own command line through (criterion's filter,
//! `--bench`, `--test`, `--list`...), sets the role's environment, waits, and
//! prints one table of every child's results. A child knows its role from
//! `LC_BENCH_ROLE` (deliberately not `LEAKCHECK_*`: leakcheck rejects unknown
//! `LEAKCHECK_*` variables). A role none of whose benchmark ids matches the
//! filter is not started.
//!
//! To run a child directly, under a profiler for instance:
//! `LC_BENCH_ROLE=main target/release/deps/spawn-<hash> --bench --profile-time 5 B2/`
//!
//! # Ratios from interleaved pairs
//!
//! The machine is shared and noisy, so every timing figure with a baseline is
//! a ratio measured in pairs: each criterion sample runs the baseline and the
//! subject for the same iteration count, in four alternating chunks (ABBA,
//! with the order flipped from one sample to the next), and the ratio of that
//! sample is subject time over baseline time. Noise that lasts longer than a
//! few milliseconds hits both sides alike. The table gives the median ratio
//! over the samples, with the interquartile range and the extremes. criterion
//! itself reports (and stores) the subject's time per iteration.
//!
//! # Filters
//!
//! The positional filter is criterion's regex, matched against
//! `group/function` ids such as `B2/current-thread`. The measures that are
//! not criterion benchmarks (B6 cold, B8) and the choice of child processes
//! match it as a plain substring; a filter with regex syntax starts every
//! role and leaves the choice to criterion.

#![allow(dead_code)]

pub mod alloc;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// The variable that tells a child process its role.
pub const ROLE_VAR: &str = "LC_BENCH_ROLE";
/// The file children append their result lines to.
const RESULTS_VAR: &str = "LC_BENCH_RESULTS";
/// Which of several runs of the same role this child is (0-based).
const RUN_VAR: &str = "LC_BENCH_RUN";

/// leakcheck's own variables that the roles control; a parent never passes
/// the caller's values of these through.
const CONTROLLED: &[&str] = &["LEAKCHECK_BACKTRACE", "LEAKCHECK_DETAIL"];

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

/// What `cargo bench` / `cargo test --benches` asked for.
#[derive(Debug, Clone)]
pub struct Args {
    /// `--bench`: cargo bench passes it, cargo test does not.
    pub bench: bool,
    pub test: bool,
    pub list: bool,
    pub profile: bool,
    pub filter: Option<String>,
}

/// Criterion options that take a value, so that value is not the filter.
const VALUED: &[&str] = &[
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--save-baseline",
    "--baseline",
    "--baseline-lenient",
    "--load-baseline",
    "--profile-time",
    "--color",
    "-c",
    "--plotting-backend",
    "--output-format",
    "--format",
];

impl Args {
    pub fn parse() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut parsed = Args {
            bench: false,
            test: false,
            list: false,
            profile: false,
            filter: None,
        };
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            match arg.as_str() {
                "--bench" => parsed.bench = true,
                "--test" => parsed.test = true,
                "--list" => parsed.list = true,
                "--profile-time" => parsed.profile = true,
                _ if VALUED.contains(&arg.as_str()) => i += 1,
                _ if arg.starts_with('-') => {}
                _ => parsed.filter = Some(arg.clone()),
            }
            i += 1;
        }
        parsed
    }

    /// True when the benchmarks are really measured (not `cargo test
    /// --benches`, `--test`, `--list` or `--profile-time`).
    pub fn measuring(&self) -> bool {
        self.bench && !self.test && !self.list && !self.profile
    }

    /// Whether the filter selects the benchmark `id` (`group/function`).
    pub fn selects(&self, id: &str) -> bool {
        match &self.filter {
            None => true,
            Some(f) if f.contains(|c| "^$|()[]*+?.\\{}".contains(c)) => true,
            Some(f) => id.contains(f.as_str()),
        }
    }
}

/// This process's role, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// Which run of its role this child is.
pub fn run_index() -> usize {
    std::env::var(RUN_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// The parent
// ---------------------------------------------------------------------------

/// A set of benchmarks that run together in one child process.
pub struct Role {
    pub name: &'static str,
    /// leakcheck's environment for this role.
    pub env: &'static [(&'static str, &'static str)],
    /// The ids (`group/function`) it may run, for the filter.
    pub ids: &'static [&'static str],
    /// How many fresh processes to start (more than one for cold-start
    /// figures).
    pub runs: usize,
    /// Fewer processes when not measuring.
    pub test_runs: usize,
}

/// Runs every selected role in its own child process, then prints the table.
/// Exits non-zero if a child failed.
pub fn parent(bench: &str, roles: &[Role]) {
    let args = Args::parse();
    let exe = std::env::current_exe().expect("the bench executable's path");
    let results = results_path(bench);
    std::fs::write(&results, "").expect("create the results file");
    let mut failed = Vec::new();
    for role in roles {
        if !role.ids.iter().any(|id| args.selects(id)) {
            continue;
        }
        let runs = if args.measuring() {
            role.runs
        } else {
            role.test_runs
        };
        for run in 0..runs {
            let mut command = Command::new(&exe);
            command
                .args(std::env::args_os().skip(1))
                .env(ROLE_VAR, role.name)
                .env(RESULTS_VAR, &results)
                .env(RUN_VAR, run.to_string());
            for var in CONTROLLED {
                command.env_remove(var);
            }
            for (var, value) in role.env {
                command.env(var, value);
            }
            let status = command.status().expect("start a bench child process");
            if !status.success() {
                failed.push(format!("{} (run {run}): {status}", role.name));
            }
        }
    }
    if !args.list {
        let lines = std::fs::read_to_string(&results).unwrap_or_default();
        print_table(bench, &lines, args.measuring());
    }
    let _ = std::fs::remove_file(&results);
    if !failed.is_empty() {
        eprintln!(
            "leakcheck bench: child processes failed: {}",
            failed.join("; ")
        );
        std::process::exit(1);
    }
}

fn results_path(bench: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "leakcheck-bench-{bench}-{}.tsv",
        std::process::id()
    ))
}

// ---------------------------------------------------------------------------
// Result lines, written by children, tabulated by the parent
// ---------------------------------------------------------------------------

/// One line of the results table.
pub struct Row {
    /// The benchmark id, `group/function`.
    pub id: String,
    pub figure: String,
    pub spread: String,
    /// The baseline's and the subject's absolute figures, or other context.
    pub detail: String,
    pub target: String,
    pub verdict: String,
}

fn clean(field: &str) -> String {
    field.replace(['\t', '\n'], " ")
}

fn append(line: &str) {
    let Some(path) = std::env::var_os(RESULTS_VAR) else {
        // A child run by hand: print the line instead.
        println!("result: {line}");
        return;
    };
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(PathBuf::from(path))
        .expect("open the results file");
    writeln!(file, "{line}").expect("write the results file");
}

/// Adds a finished row to the table.
pub fn row(row: Row) {
    append(&format!(
        "row\t{}\t{}\t{}\t{}\t{}\t{}",
        clean(&row.id),
        clean(&row.figure),
        clean(&row.spread),
        clean(&row.detail),
        clean(&row.target),
        clean(&row.verdict)
    ));
}

/// Adds one sample of a measure taken once per process (a cold start); the
/// parent aggregates the samples of one id into a row. `limit` is in `unit`s.
pub fn sample(id: &str, unit: Unit, value: f64, limit: Option<f64>, target: &str) {
    append(&format!(
        "sample\t{}\t{}\t{}\t{}\t{}",
        clean(id),
        unit.name(),
        value,
        limit.map_or(String::from("-"), |l| l.to_string()),
        clean(target)
    ));
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unit {
    Nanos,
    Bytes,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Nanos => "ns",
            Unit::Bytes => "B",
        }
    }

    fn parse(name: &str) -> Self {
        match name {
            "B" => Unit::Bytes,
            _ => Unit::Nanos,
        }
    }

    pub fn show(self, value: f64) -> String {
        match self {
            Unit::Nanos => human_ns(value),
            Unit::Bytes => format!("{value:.0} B"),
        }
    }
}

/// The samples of one measure taken once per process, gathered.
struct Samples {
    id: String,
    unit: Unit,
    values: Vec<f64>,
    limit: Option<f64>,
    target: String,
}

fn print_table(bench: &str, lines: &str, measuring: bool) {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut samples: Vec<Samples> = Vec::new();
    for line in lines.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["row", rest @ ..] => rows.push(rest.iter().map(|f| f.to_string()).collect()),
            ["sample", id, unit, value, limit, target] => {
                let value: f64 = value.parse().unwrap_or(f64::NAN);
                let limit = limit.parse().ok();
                match samples.iter_mut().find(|s| s.id == *id) {
                    Some(entry) => entry.values.push(value),
                    None => samples.push(Samples {
                        id: id.to_string(),
                        unit: Unit::parse(unit),
                        values: vec![value],
                        limit,
                        target: target.to_string(),
                    }),
                }
            }
            _ => {}
        }
    }
    for Samples {
        id,
        unit,
        values,
        limit,
        target,
    } in samples
    {
        let stats = Stats::of(&values);
        let verdict = if !measuring {
            "not measured (test mode)".to_owned()
        } else {
            verdict_at_most(stats.median, limit)
        };
        rows.push(vec![
            id,
            unit.show(stats.median),
            format!(
                "range {}–{} (n={}, one per fresh process)",
                unit.show(stats.min),
                unit.show(stats.max),
                stats.n
            ),
            String::new(),
            target,
            verdict,
        ]);
    }
    println!();
    println!("<!-- leakcheck-bench {bench} -->");
    println!("| id | figure (median) | spread | detail | target | met? |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        println!("| {} |", row.join(" | "));
    }
    println!("<!-- /leakcheck-bench {bench} -->");
}

pub fn verdict_at_most(value: f64, limit: Option<f64>) -> String {
    match limit {
        None => "reported".to_owned(),
        Some(limit) if value <= limit => "met".to_owned(),
        Some(_) => "**MISSED**".to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

pub struct Stats {
    pub n: usize,
    pub min: f64,
    pub p25: f64,
    pub median: f64,
    pub p75: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(values: &[f64]) -> Self {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| -> f64 {
            if v.is_empty() {
                return f64::NAN;
            }
            let at = p * (v.len() - 1) as f64;
            let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (at - lo as f64)
        };
        Stats {
            n: v.len(),
            min: q(0.0),
            p25: q(0.25),
            median: q(0.5),
            p75: q(0.75),
            max: q(1.0),
        }
    }
}

pub fn human_ns(ns: f64) -> String {
    if !ns.is_finite() {
        "n/a".to_owned()
    } else if ns.abs() < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns.abs() < 1_000_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns.abs() < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

// ---------------------------------------------------------------------------
// Criterion, with paired and absolute series
// ---------------------------------------------------------------------------

/// The criterion driver of a child process.
pub fn criterion() -> Criterion {
    Criterion::default()
        .without_plots()
        .nresamples(20_000)
        .configure_from_args()
}

/// How a group samples. Flat sampling keeps every sample's iteration count
/// equal, so each paired sample weighs the same.
pub struct Plan {
    pub samples: usize,
    pub warm_up: Duration,
    pub measure: Duration,
}

/// The plan for sub-microsecond to tens-of-microseconds operations.
pub const FAST: Plan = Plan {
    samples: 40,
    warm_up: Duration::from_millis(700),
    measure: Duration::from_secs(8),
};

pub fn group<'a>(c: &'a mut Criterion, name: &str, plan: &Plan) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    apply(&mut group, plan);
    group
}

/// Sets the group's sampling for the benchmarks added next.
fn apply(group: &mut BenchmarkGroup<'_, WallTime>, plan: &Plan) {
    group
        .sample_size(plan.samples)
        .warm_up_time(plan.warm_up)
        .measurement_time(plan.measure)
        .sampling_mode(SamplingMode::Flat);
}

/// What a target says about a measure.
#[derive(Clone, Copy)]
pub enum Target {
    /// The median ratio must be at most this.
    RatioAtMost(f64),
    /// The median time per iteration must be at most this many nanoseconds.
    NanosAtMost(f64),
    /// No target: report the figure.
    Report,
}

impl Target {
    fn text(self) -> String {
        match self {
            Target::RatioAtMost(r) => format!("≤ {r}×"),
            Target::NanosAtMost(ns) => format!("≤ {}", human_ns(ns)),
            Target::Report => "report".to_owned(),
        }
    }

    fn limit(self) -> Option<f64> {
        match self {
            Target::RatioAtMost(l) | Target::NanosAtMost(l) => Some(l),
            Target::Report => None,
        }
    }
}

/// What a series is called and judged by.
#[derive(Clone)]
pub struct Spec {
    /// The baseline's name, for paired series.
    pub baseline: &'static str,
    /// The subject's name.
    pub subject: &'static str,
    pub target: Target,
    /// Also report the subject's extra time per iteration (B3).
    pub show_extra: bool,
}

struct Series {
    id: String,
    spec: Spec,
    keep: usize,
    paired: bool,
    /// (iterations, baseline ns, subject ns).
    samples: Vec<(u64, f64, f64)>,
}

static SERIES: Mutex<Vec<Series>> = Mutex::new(Vec::new());

fn push(id: &str, iters: u64, base: Duration, subject: Duration) {
    let mut all = SERIES.lock().unwrap();
    if let Some(series) = all.iter_mut().find(|s| s.id == id) {
        series
            .samples
            .push((iters, base.as_nanos() as f64, subject.as_nanos() as f64));
    }
}

fn register(id: &str, spec: Spec, keep: usize, paired: bool) {
    SERIES.lock().unwrap().push(Series {
        id: id.to_owned(),
        spec,
        keep,
        paired,
        samples: Vec::new(),
    });
}

/// Runs `base` and `subject` for `iters` iterations in total each, in four
/// alternating chunks; `flip` swaps which one goes first.
pub fn interleave(
    iters: u64,
    flip: bool,
    base: &mut dyn FnMut(u64) -> Duration,
    subject: &mut dyn FnMut(u64) -> Duration,
) -> (Duration, Duration) {
    let chunks = if iters >= 4 { 4 } else { 1 };
    let mut b = Duration::ZERO;
    let mut s = Duration::ZERO;
    for chunk in 0..chunks {
        let n = iters / chunks + u64::from(chunk < iters % chunks);
        // ABBA, or BAAB when flipped.
        let base_first = (chunk == 0 || chunk == 3) != flip;
        if base_first {
            b += base(n);
            s += subject(n);
        } else {
            s += subject(n);
            b += base(n);
        }
    }
    (b, s)
}

/// A paired benchmark: criterion times the subject; the table gets the
/// subject/baseline ratio of every sample. `base` and `subject` run the
/// operation `n` times and return the time it took.
pub fn bench_paired(
    group: &mut BenchmarkGroup<'_, WallTime>,
    group_name: &str,
    function: &str,
    plan: &Plan,
    spec: Spec,
    mut base: impl FnMut(u64) -> Duration,
    mut subject: impl FnMut(u64) -> Duration,
) {
    let id = format!("{group_name}/{function}");
    if !Args::parse().selects(&id) {
        return;
    }
    register(&id, spec, plan.samples, true);
    apply(group, plan);
    let mut flip = false;
    group.bench_function(function, |b| {
        b.iter_custom(|iters| {
            flip = !flip;
            let (bt, st) = interleave(iters, flip, &mut base, &mut subject);
            push(&id, iters, bt, st);
            st
        })
    });
}

/// An absolute benchmark: `routine` runs the operation `n` times and returns
/// the time to count.
pub fn bench_absolute(
    group: &mut BenchmarkGroup<'_, WallTime>,
    group_name: &str,
    function: &str,
    plan: &Plan,
    spec: Spec,
    mut routine: impl FnMut(u64) -> Duration,
) {
    let id = format!("{group_name}/{function}");
    if !Args::parse().selects(&id) {
        return;
    }
    register(&id, spec, plan.samples, false);
    apply(group, plan);
    group.bench_function(function, |b| {
        b.iter_custom(|iters| {
            let t = routine(iters);
            push(&id, iters, Duration::ZERO, t);
            t
        })
    });
}

/// Per-iteration statistics of a finished series: (baseline ns, subject ns,
/// ratios), over the measured samples only (criterion's warm-up calls come
/// first and are dropped).
pub fn series_stats(id: &str) -> Option<(Stats, Stats, Stats)> {
    let all = SERIES.lock().unwrap();
    let series = all.iter().find(|s| s.id == id)?;
    let skip = series.samples.len().saturating_sub(series.keep);
    let kept = &series.samples[skip..];
    let base: Vec<f64> = kept.iter().map(|(n, b, _)| b / *n as f64).collect();
    let subject: Vec<f64> = kept.iter().map(|(n, _, s)| s / *n as f64).collect();
    let ratio: Vec<f64> = kept.iter().map(|(_, b, s)| s / b).collect();
    Some((Stats::of(&base), Stats::of(&subject), Stats::of(&ratio)))
}

/// Turns every series into a row of the table. Call once, at the end of a
/// child's `main`.
pub fn finish(c: Criterion) {
    c.final_summary();
    let measuring = Args::parse().measuring();
    let all = std::mem::take(&mut *SERIES.lock().unwrap());
    for series in all {
        let skip = series.samples.len().saturating_sub(series.keep);
        let kept = &series.samples[skip..];
        if kept.is_empty() {
            continue;
        }
        let spec = &series.spec;
        if !measuring {
            row(Row {
                id: series.id.clone(),
                figure: "ran once".to_owned(),
                spread: String::new(),
                detail: String::new(),
                target: spec.target.text(),
                verdict: "not measured (test mode)".to_owned(),
            });
            continue;
        }
        let per = |f: &dyn Fn(&(u64, f64, f64)) -> f64| -> Stats {
            Stats::of(&kept.iter().map(f).collect::<Vec<_>>())
        };
        let subject = per(&|(n, _, s)| s / *n as f64);
        if series.paired && matches!(spec.target, Target::NanosAtMost(_)) {
            // The baseline is only a reference run alongside, to tell the
            // subject's own changes from the machine's: the figure is the
            // subject's absolute time.
            let base = per(&|(n, b, _)| b / *n as f64);
            let ratio = per(&|(_, b, s)| s / b);
            row(Row {
                id: series.id.clone(),
                figure: human_ns(subject.median),
                spread: format!(
                    "IQR {}–{}, range {}–{} (n={})",
                    human_ns(subject.p25),
                    human_ns(subject.p75),
                    human_ns(subject.min),
                    human_ns(subject.max),
                    subject.n
                ),
                detail: format!(
                    "{}; {:.3}× the reference ({} {})",
                    spec.subject,
                    ratio.median,
                    spec.baseline,
                    human_ns(base.median)
                ),
                target: spec.target.text(),
                verdict: verdict_at_most(subject.median, spec.target.limit()),
            });
        } else if series.paired {
            let base = per(&|(n, b, _)| b / *n as f64);
            let ratio = per(&|(_, b, s)| s / b);
            let mut detail = format!(
                "{} {} vs {} {} per op",
                spec.baseline,
                human_ns(base.median),
                spec.subject,
                human_ns(subject.median)
            );
            let mut figure = format!("{:.3}×", ratio.median);
            if spec.show_extra {
                let extra = per(&|(n, b, s)| (s - b) / *n as f64);
                let _ = write!(
                    figure,
                    " ({}{} per op)",
                    if extra.median >= 0.0 { "+" } else { "" },
                    human_ns(extra.median)
                );
                let _ = write!(
                    detail,
                    "; extra per op IQR {}–{}",
                    human_ns(extra.p25),
                    human_ns(extra.p75)
                );
            }
            row(Row {
                id: series.id.clone(),
                figure,
                spread: format!(
                    "IQR {:.3}–{:.3}, range {:.3}–{:.3} (n={})",
                    ratio.p25, ratio.p75, ratio.min, ratio.max, ratio.n
                ),
                detail,
                target: spec.target.text(),
                verdict: verdict_at_most(ratio.median, spec.target.limit()),
            });
        } else {
            row(Row {
                id: series.id.clone(),
                figure: human_ns(subject.median),
                spread: format!(
                    "IQR {}–{}, range {}–{} (n={})",
                    human_ns(subject.p25),
                    human_ns(subject.p75),
                    human_ns(subject.min),
                    human_ns(subject.max),
                    subject.n
                ),
                detail: spec.subject.to_owned(),
                target: spec.target.text(),
                verdict: verdict_at_most(subject.median, spec.target.limit()),
            });
        }
    }
}

/// Prints the ids of measures that are not criterion benchmarks, for `--list`.
pub fn list(ids: &[&str]) {
    for id in ids {
        println!("{id}: bench");
    }
}

/// The environment a role expects, checked at the child's start.
pub fn expect_env(var: &str, value: Option<&str>) {
    let actual = std::env::var_os(var);
    assert_eq!(
        actual.as_deref(),
        value.map(OsString::from).as_deref(),
        "bench child for role {:?}: {var} is not as the role sets it",
        role()
    );
}
