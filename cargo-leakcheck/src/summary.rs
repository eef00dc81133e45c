//! The run-wide summary: the reports of every test binary of a run joined
//! into the text a test binary prints for its own leaks when it exits (the
//! same headline, and the same line per creation site, most tests first), so
//! that thousands of leaking tests still fit on a screen.

use crate::reports::{Report, ReportDir, Site};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

/// How many site lines a summary shows before it says how many it left out;
/// a test binary's own summary shows as many.
pub const MAX_SITES: usize = 20;

/// A test, told apart from a test of the same name in another binary.
type TestId = (Option<String>, Option<String>);

/// A kind of work, ordered as leakcheck orders them (tasks, blocking tasks,
/// local tasks, threads), with kinds added later after those.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Kind {
    rank: u8,
    name: String,
}

impl Kind {
    fn new(name: &str) -> Kind {
        let rank = match name {
            "task" => 0,
            "blocking_task" => 1,
            "local_task" => 2,
            "thread" => 3,
            _ => 4,
        };
        Kind {
            rank,
            name: name.to_owned(),
        }
    }

    /// "1 task", "3 blocking tasks".
    fn counted(&self, n: u64) -> String {
        plural(n, &self.name.replace('_', " "))
    }
}

/// The states, most telling first: on a tie, the one named.
const STATES: [&str; 7] = [
    "stuck",
    "waiting",
    "runnable",
    "busy",
    "not_started",
    "running",
    "unknown",
];

fn state_text(state: &str) -> String {
    match state {
        "not_started" => "not yet started".to_owned(),
        other => other.replace('_', " "),
    }
}

#[derive(Default)]
struct SiteTally {
    tests: HashSet<TestId>,
    units: u64,
    states: HashMap<String, u64>,
    suspended: HashMap<String, u64>,
}

/// The leaks of a set of reports, by creation site.
#[derive(Default)]
pub struct Summary {
    reports: usize,
    warn_reports: usize,
    tests: HashSet<TestId>,
    units: BTreeMap<Kind, u64>,
    untracked_tasks: u64,
    untracked_threads: u64,
    sites: HashMap<(Kind, Site), SiteTally>,
}

impl Summary {
    /// Tallies `reports`; `cwd` shortens the paths of suspension points.
    pub fn of(reports: &[Report], cwd: Option<&Path>) -> Summary {
        let mut summary = Summary::default();
        for report in reports {
            let test: TestId = (report.binary.clone(), report.test.clone());
            summary.reports += 1;
            summary.warn_reports += usize::from(report.warn);
            summary.tests.insert(test.clone());
            summary.untracked_tasks += report.untracked_tasks;
            summary.untracked_threads += report.untracked_threads;
            for leak in &report.leaks {
                let kind = Kind::new(&leak.kind);
                *summary.units.entry(kind.clone()).or_default() += 1;
                let site = summary.sites.entry((kind, leak.site.clone())).or_default();
                site.tests.insert(test.clone());
                site.units += 1;
                *site.states.entry(leak.state.clone()).or_default() += 1;
                if let Some(point) = leak
                    .suspended_at
                    .as_deref()
                    .and_then(|trace| suspension_point(trace, cwd))
                {
                    *site.suspended.entry(point).or_default() += 1;
                }
            }
        }
        summary
    }

    /// The headline and one line per site, at most [`MAX_SITES`] of them;
    /// empty when there is no report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.reports == 0 {
            return out;
        }
        let mut what: Vec<String> = self
            .units
            .iter()
            .map(|(kind, n)| kind.counted(*n))
            .collect();
        if self.untracked_tasks > 0 {
            what.push(plural(self.untracked_tasks, "untracked task"));
        }
        if self.untracked_threads > 0 {
            what.push(plural(self.untracked_threads, "untracked thread"));
        }
        let mode = if self.warn_reports == self.reports {
            " (LEAKCHECK=warn: no test failed for it)".to_owned()
        } else if self.warn_reports > 0 {
            format!(
                " ({} of {} written under LEAKCHECK=warn)",
                self.warn_reports,
                plural(self.reports as u64, "report")
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "leakcheck run summary: {} leaked {}, from {}{mode}",
            plural(self.tests.len() as u64, "test"),
            what.join(" and "),
            plural(self.sites.len() as u64, "creation site"),
        );
        // Most tests first, as a test binary orders its own summary
        // (leakcheck's `src/report/summary.rs`).
        let mut sites: Vec<(&(Kind, Site), &SiteTally)> = self.sites.iter().collect();
        sites.sort_by(|(a_key, a), (b_key, b)| {
            b.tests
                .len()
                .cmp(&a.tests.len())
                .then(b.units.cmp(&a.units))
                .then(a_key.1.cmp(&b_key.1))
                .then(a_key.0.cmp(&b_key.0))
        });
        for ((kind, site), tally) in sites.iter().take(MAX_SITES) {
            let _ = write!(
                out,
                "  {}, {} spawned at {site} (state: {}",
                plural(tally.tests.len() as u64, "test"),
                kind.counted(tally.units),
                state_text(&most_common(&tally.states, |state| {
                    STATES
                        .iter()
                        .position(|known| *known == state)
                        .unwrap_or(STATES.len())
                })),
            );
            if !tally.suspended.is_empty() {
                let _ = write!(
                    out,
                    "; suspended in {}",
                    most_common(&tally.suspended, |_| 0)
                );
            }
            out.push_str(")\n");
        }
        if sites.len() > MAX_SITES {
            let _ = writeln!(
                out,
                "  and {} more",
                plural((sites.len() - MAX_SITES) as u64, "creation site")
            );
        }
        if self.untracked_tasks > 0 || self.untracked_threads > 0 {
            let _ = writeln!(
                out,
                "  untracked work has no known site: see each test's report for how to see it"
            );
        }
        out
    }
}

/// The summary of a report directory, then where the reports are and any
/// file in it that is not a readable report, at most five of them by name.
pub fn render_dir(read: &ReportDir, dir: &str) -> String {
    let mut out = Summary::of(&read.reports, std::env::current_dir().ok().as_deref()).render();
    if read.reports.is_empty() {
        let _ = writeln!(out, "leakcheck run summary: no leak reports in {dir}");
    } else {
        let _ = writeln!(
            out,
            "  reports: {dir} ({})",
            plural(read.reports.len() as u64, "file")
        );
    }
    if !read.unreadable.is_empty() {
        let _ = writeln!(
            out,
            "  {} in {dir} could not be read as leakcheck reports:",
            plural(read.unreadable.len() as u64, "file")
        );
        for (path, why) in read.unreadable.iter().take(5) {
            let name = path.file_name().unwrap_or(path.as_os_str());
            let _ = writeln!(out, "    {}: {why}", name.to_string_lossy());
        }
        if read.unreadable.len() > 5 {
            let _ = writeln!(out, "    and {} more", read.unreadable.len() - 5);
        }
    }
    out
}

/// The most frequent key; ties go to the lowest `rank`, then the first in
/// name order, so that the result does not depend on the order of reports.
fn most_common(counts: &HashMap<String, u64>, rank: impl Fn(&str) -> usize) -> String {
    counts
        .iter()
        .max_by(|(a, a_n), (b, b_n)| {
            a_n.cmp(b_n)
                .then_with(|| rank(b).cmp(&rank(a)))
                .then_with(|| b.cmp(a))
        })
        .map(|(key, _)| key.clone())
        .unwrap_or_default()
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Where a task waits, in one line, from tokio's task dump: the deepest
/// frame of the user's own code (not the Rust library's, nor a crate from
/// cargo's registry or git cache) that every suspended branch of the task
/// passes through, as `function at file:line:col`.
///
/// A dump is a tree, one frame a line, from the task's outermost future
/// down to each leaf future it waits on, indented by depth.
pub fn suspension_point(trace: &str, cwd: Option<&Path>) -> Option<String> {
    let mut stack: Vec<(usize, &str)> = Vec::new();
    let mut paths: Vec<Vec<&str>> = Vec::new();
    let mut leaf = false;
    for line in trace.lines() {
        let frame = line.trim_start_matches(|c: char| c.is_whitespace() || "│├└╼─".contains(c));
        if frame.is_empty() {
            continue;
        }
        let depth = line.chars().count() - frame.chars().count();
        while stack.last().is_some_and(|(above, _)| *above >= depth) {
            if leaf {
                paths.push(stack.iter().map(|(_, frame)| *frame).collect());
                leaf = false;
            }
            stack.pop();
        }
        stack.push((depth, frame));
        leaf = true;
    }
    if leaf {
        paths.push(stack.iter().map(|(_, frame)| *frame).collect());
    }
    let users: Vec<Vec<&str>> = paths
        .iter()
        .map(|path| path.iter().copied().filter(|f| is_users(f)).collect())
        .collect();
    let first = users.first()?;
    let common = (0..first.len())
        .take_while(|&i| users.iter().all(|path| path.get(i) == Some(&first[i])))
        .count();
    let frame = first.get(common.checked_sub(1)?)?;
    let (function, place) = frame.split_once(" at ")?;
    let place = match cwd.and_then(|cwd| place.strip_prefix(cwd.to_str()?)) {
        Some(relative) => relative.trim_start_matches('/'),
        None => place,
    };
    Some(format!("{function} at {place}"))
}

/// A frame of the user's code: it has a file, outside the Rust library's
/// sources and cargo's registry and git caches, and is not leakcheck's task
/// wrapper (which is the user's own path dependency in leakcheck's tests).
fn is_users(frame: &str) -> bool {
    let Some((function, place)) = frame.split_once(" at ") else {
        return false;
    };
    if function.trim_start_matches('<').starts_with("leakcheck::") {
        return false;
    }
    let place = place.replace('\\', "/");
    !(place.starts_with("/rustc/")
        || place.contains("/lib/rustlib/")
        || place.contains("/registry/src/")
        || place.contains("/git/checkouts/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::Leak;

    fn leak(kind: &str, file: &str, line: u64, state: &str) -> Leak {
        Leak {
            kind: kind.into(),
            name: None,
            state: state.into(),
            site: Site {
                file: file.into(),
                line,
                column: 5,
            },
            suspended_at: None,
        }
    }

    fn report(test: &str, leaks: Vec<Leak>) -> Report {
        Report {
            test: Some(test.into()),
            binary: Some("suite-0a1b".into()),
            warn: false,
            leaks,
            untracked_tasks: 0,
            untracked_threads: 0,
        }
    }

    fn lines(summary: &Summary) -> Vec<String> {
        summary.render().lines().map(str::to_owned).collect()
    }

    #[test]
    fn sites_are_ordered_by_tests_then_units_then_site() {
        let reports = vec![
            report("a", vec![leak("thread", "tests/x.rs", 9, "running")]),
            report(
                "b",
                vec![
                    leak("task", "tests/x.rs", 20, "waiting"),
                    leak("task", "tests/x.rs", 20, "stuck"),
                    leak("task", "tests/x.rs", 20, "stuck"),
                ],
            ),
            report("c", vec![leak("task", "tests/x.rs", 20, "waiting")]),
            report("d", vec![leak("thread", "tests/a.rs", 9, "running")]),
        ];
        assert_eq!(
            lines(&Summary::of(&reports, None)),
            [
                "leakcheck run summary: 4 tests leaked 4 tasks and 2 threads, from 3 creation sites",
                "  2 tests, 4 tasks spawned at tests/x.rs:20:5 (state: stuck)",
                "  1 test, 1 thread spawned at tests/a.rs:9:5 (state: running)",
                "  1 test, 1 thread spawned at tests/x.rs:9:5 (state: running)",
            ]
        );
    }

    #[test]
    fn a_test_of_one_name_in_two_binaries_is_two_tests() {
        let mut other = report("a", vec![leak("thread", "tests/x.rs", 9, "running")]);
        other.binary = Some("other-9f8e".into());
        let reports = vec![
            report("a", vec![leak("thread", "tests/x.rs", 9, "running")]),
            report("a", vec![leak("thread", "tests/x.rs", 9, "running")]),
            other,
        ];
        assert_eq!(
            lines(&Summary::of(&reports, None))[1],
            "  2 tests, 3 threads spawned at tests/x.rs:9:5 (state: running)"
        );
    }

    #[test]
    fn many_sites_are_cut_to_twenty_lines_and_untracked_work_is_counted() {
        let mut reports: Vec<Report> = (1..=25)
            .map(|line| {
                report(
                    &format!("t{line}"),
                    vec![leak("blocking_task", "src/lib.rs", line, "running")],
                )
            })
            .collect();
        reports[0].untracked_tasks = 2;
        reports[1].untracked_threads = 1;
        for report in &mut reports {
            report.warn = true;
        }
        let lines = lines(&Summary::of(&reports, None));
        assert_eq!(
            lines[0],
            "leakcheck run summary: 25 tests leaked 25 blocking tasks and 2 untracked tasks \
             and 1 untracked thread, from 25 creation sites (LEAKCHECK=warn: no test failed for it)"
        );
        assert_eq!(
            lines[1],
            "  1 test, 1 blocking task spawned at src/lib.rs:1:5 (state: running)"
        );
        assert_eq!(lines.len(), 1 + MAX_SITES + 2, "{lines:#?}");
        assert_eq!(lines[MAX_SITES + 1], "  and 5 creation sites more");
        assert_eq!(
            lines[MAX_SITES + 2],
            "  untracked work has no known site: see each test's report for how to see it"
        );
        reports[3].warn = false;
        assert!(Summary::of(&reports, None)
            .render()
            .starts_with("leakcheck run summary: 25 tests leaked 25 blocking tasks and 2 untracked tasks and 1 untracked thread, from 25 creation sites (24 of 25 reports written under LEAKCHECK=warn)\n"));
    }

    #[test]
    fn not_started_and_new_kinds_read_as_words() {
        let reports = vec![report(
            "a",
            vec![
                leak("local_task", "src/a.rs", 1, "not_started"),
                leak("fiber", "src/a.rs", 2, "parked_deeply"),
            ],
        )];
        assert_eq!(
            lines(&Summary::of(&reports, None)),
            [
                "leakcheck run summary: 1 test leaked 1 local task and 1 fiber, from 2 creation sites",
                "  1 test, 1 local task spawned at src/a.rs:1:5 (state: not yet started)",
                "  1 test, 1 fiber spawned at src/a.rs:2:5 (state: parked deeply)",
            ]
        );
    }

    /// Two tasks' traces as tokio 1.54 printed them: a tree from the task's
    /// future down, `├╼`/`└╼` and no-break spaces, each name without its
    /// last segment. `serve` calls `handle`, whose `select!` waits on a
    /// ticker and on `next_line`; the other task waits in `next_line` only.
    const DUMP: &str = "\
╼\u{a0}dumpx::serve at /tmp/dumpx/src/main.rs:20:16
\u{a0}\u{a0}└╼\u{a0}dumpx::handle at /tmp/dumpx/src/main.rs:12:9
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}└╼\u{a0}<core::future::poll_fn::PollFn<F> as core::future::future::Future> at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/future/poll_fn.rs:151:9
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}├╼\u{a0}dumpx::handle::{{closure}} at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/macros/select.rs:710:49
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}│\u{a0}\u{a0}└╼\u{a0}<&mut F as core::future::future::Future> at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/future/future.rs:121:9
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}│\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}└╼\u{a0}<core::pin::Pin<P> as core::future::future::Future> at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/future/future.rs:133:9
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}│\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}└╼\u{a0}dumpx::next_line at /tmp/dumpx/src/main.rs:5:16
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}│\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}└╼\u{a0}<tokio::sync::oneshot::Receiver<T> as core::future::future::Future> at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/sync/oneshot.rs:1287:36
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}│\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}└╼\u{a0}tokio::sync::oneshot::Inner<T> at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/sync/oneshot.rs:1318:16
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}└╼\u{a0}dumpx::handle::{{closure}} at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/macros/select.rs:710:49
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}└╼\u{a0}tokio::time::interval::Interval::tick at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/time/interval.rs:442:17
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}└╼\u{a0}<core::future::poll_fn::PollFn<F> as core::future::future::Future> at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/future/poll_fn.rs:151:9
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}└╼\u{a0}tokio::time::interval::Interval::tick::{{closure}} at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/time/interval.rs:440:41
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}└╼\u{a0}tokio::time::interval::Interval at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/time/interval.rs:459:42
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}└╼\u{a0}<core::pin::Pin<P> as core::future::future::Future> at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/future/future.rs:133:9
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}└╼\u{a0}<tokio::time::sleep::Sleep as core::future::future::Future> at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/time/sleep.rs:457:27
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}└╼\u{a0}tokio::time::sleep::Sleep at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/time/sleep.rs:384:16";
    const DUMP_ONE_BRANCH: &str = "\
╼\u{a0}dumpx::main::{{closure}} at /tmp/dumpx/src/main.rs:29:50
\u{a0}\u{a0}└╼\u{a0}dumpx::next_line at /tmp/dumpx/src/main.rs:5:16
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}└╼\u{a0}<tokio::sync::oneshot::Receiver<T> as core::future::future::Future> at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/sync/oneshot.rs:1287:36
\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}└╼\u{a0}tokio::sync::oneshot::Inner<T> at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/sync/oneshot.rs:1318:16";

    #[test]
    fn the_suspension_point_is_the_deepest_user_frame_every_branch_shares() {
        let cwd = Some(Path::new("/tmp/dumpx"));
        assert_eq!(
            suspension_point(DUMP, cwd).as_deref(),
            Some("dumpx::handle at src/main.rs:12:9")
        );
        assert_eq!(
            suspension_point(DUMP_ONE_BRANCH, None).as_deref(),
            Some("dumpx::next_line at /tmp/dumpx/src/main.rs:5:16")
        );
        // The select! branch that waits on `next_line`, alone.
        let branch: Vec<&str> = DUMP.lines().take(9).collect();
        assert!(branch[8].contains("oneshot::Inner"), "{branch:#?}");
        assert_eq!(
            suspension_point(&branch.join("\n"), cwd).as_deref(),
            Some("dumpx::next_line at src/main.rs:5:16")
        );
        // leakcheck's wrapper is never the answer, even as a path dependency.
        let wrapped = "╼\u{a0}<leakcheck::task::Tracked<F> as core::future::future::Future> at /ws/src/task.rs:80:9
\u{a0}\u{a0}├╼\u{a0}app::read at /ws/app/src/lib.rs:3:5
\u{a0}\u{a0}└╼\u{a0}app::write at /ws/app/src/lib.rs:9:5";
        assert_eq!(suspension_point(wrapped, None), None);
        let only_tokio = DUMP_ONE_BRANCH.lines().last().unwrap();
        assert_eq!(suspension_point(only_tokio, None), None);
        assert_eq!(suspension_point("", None), None);
    }

    #[test]
    fn a_site_line_shows_where_its_tasks_are_suspended() {
        let mut reports = vec![
            report("a", vec![leak("task", "src/main.rs", 28, "waiting")]),
            report("b", vec![leak("task", "src/main.rs", 28, "waiting")]),
            report("c", vec![leak("task", "src/main.rs", 28, "waiting")]),
        ];
        reports[0].leaks[0].suspended_at = Some(DUMP.to_owned());
        reports[1].leaks[0].suspended_at = Some(DUMP.to_owned());
        reports[2].leaks[0].suspended_at = Some(DUMP_ONE_BRANCH.to_owned());
        assert_eq!(
            lines(&Summary::of(&reports, Some(Path::new("/tmp/dumpx"))))[1],
            "  3 tests, 3 tasks spawned at src/main.rs:28:5 \
             (state: waiting; suspended in dumpx::handle at src/main.rs:12:9)"
        );
    }
}
