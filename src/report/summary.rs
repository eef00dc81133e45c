//! One summary of a test binary's leaks, printed when it exits: how many
//! tests leaked how much, and one line per creation site, most tests first,
//! so that a suite with thousands of leaking tests fits on a screen.
//!
//! Every report that leakcheck publishes (each test it fails, or warns about
//! under `LEAKCHECK=warn`) is tallied here. The summary is written from an
//! `atexit` handler, after `main` has returned, so it takes no lock it might
//! wait on, writes with raw `write(2)`, and nothing in it may unwind.

use super::{counted, LeakReport, Site};
use crate::registry::{Kind, State};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

/// How many site lines a summary shows before it says how many it left out.
const MAX_SITES: usize = 20;

#[derive(Default)]
struct Tally {
    tests: HashSet<String>,
    units: BTreeMap<Kind, usize>,
    untracked_tasks: usize,
    untracked_threads: usize,
    sites: HashMap<(Kind, Site), SiteTally>,
}

struct SiteTally {
    tests: HashSet<String>,
    units: usize,
    /// The state of the first straggler seen from the site.
    state: State,
}

static TALLY: Mutex<Option<Tally>> = Mutex::new(None);

/// Adds a published report to the binary's summary.
pub(crate) fn record(report: &LeakReport) {
    let test = report.test_name().unwrap_or("an unnamed test").to_owned();
    let mut tally = TALLY.lock();
    let first = tally.is_none();
    let tally = tally.get_or_insert_with(Tally::default);
    tally.tests.insert(test.clone());
    tally.untracked_tasks += report.untracked_tasks();
    tally.untracked_threads += report.untracked_threads().len();
    for straggler in report.stragglers() {
        *tally.units.entry(straggler.kind()).or_default() += 1;
        let site = tally
            .sites
            .entry((straggler.kind(), straggler.location().clone()))
            .or_insert_with(|| SiteTally {
                tests: HashSet::new(),
                units: 0,
                state: straggler.state(),
            });
        site.tests.insert(test.clone());
        site.units += 1;
    }
    if first {
        install();
    }
}

fn install() {
    #[cfg(unix)]
    {
        extern "C" fn print() {
            // A panic must not cross into libc.
            if let Ok(Some(text)) = std::panic::catch_unwind(summary) {
                crate::sys::write_stderr(text.as_bytes());
            }
        }
        crate::sys::at_exit(print);
    }
}

/// The summary's text, or `None` when nothing leaked or the tally is busy
/// (a test still recording as the process exits).
fn summary() -> Option<String> {
    let tally = TALLY.try_lock()?;
    let tally = tally.as_ref()?;
    Some(render(tally, warn()))
}

fn warn() -> bool {
    crate::config::get()
        .as_ref()
        .is_ok_and(|config| config.warn)
}

fn render(tally: &Tally, warn: bool) -> String {
    let mut what: Vec<String> = tally
        .units
        .iter()
        .map(|(kind, n)| counted(*n, *kind))
        .collect();
    if tally.untracked_tasks > 0 {
        what.push(plural(tally.untracked_tasks, "untracked task"));
    }
    if tally.untracked_threads > 0 {
        what.push(plural(tally.untracked_threads, "untracked thread"));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nleakcheck summary: {} leaked {}, from {}{}",
        plural(tally.tests.len(), "test"),
        what.join(" and "),
        plural(tally.sites.len(), "creation site"),
        if warn {
            " (LEAKCHECK=warn: no test failed for it)"
        } else {
            ""
        }
    );
    let mut sites: Vec<(&(Kind, Site), &SiteTally)> = tally.sites.iter().collect();
    sites.sort_by(|(a_key, a), (b_key, b)| {
        b.tests
            .len()
            .cmp(&a.tests.len())
            .then(b.units.cmp(&a.units))
            .then(a_key.1.cmp(&b_key.1))
            .then(a_key.0.cmp(&b_key.0))
    });
    for ((kind, site), counts) in sites.iter().take(MAX_SITES) {
        let _ = writeln!(
            out,
            "  {}, {} spawned at {site} (state: {})",
            plural(counts.tests.len(), "test"),
            counted(counts.units, *kind),
            counts.state,
        );
    }
    if sites.len() > MAX_SITES {
        let _ = writeln!(
            out,
            "  and {} more",
            plural(sites.len() - MAX_SITES, "creation site")
        );
    }
    if tally.untracked_tasks > 0 || tally.untracked_threads > 0 {
        let _ = writeln!(
            out,
            "  untracked work has no known site: see each test's report for how to see it"
        );
    }
    out
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
