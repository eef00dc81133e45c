//! The project's ignore file, as a whole run sees it: the rules that
//! matched nothing in the run, and `baseline`, which adds a rule for each
//! leak the run found so that a suite can be adopted as it is and no new
//! leak gets in.
//!
//! leakcheck notes the first match of each rule in each test process in the
//! report directory (`ignore-matches-<pid>.txt`: the file's path, the path
//! as shown, the line and the rule, tab-separated). A rule no process noted
//! matched nothing in the run.

use crate::reports::Report;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The file's name at the workspace root, as leakcheck looks for it.
pub const FILE_NAME: &str = "leakcheck.ignore";
/// The prefix of the files in which test processes note matched rules.
pub const MATCHES_PREFIX: &str = "ignore-matches-";

/// The ignore file the run's checks read, as leakcheck finds it:
/// `LEAKCHECK_IGNORE_FILE` (`off` for none; relative to the workspace
/// root), else `leakcheck.ignore` at the workspace root. `None` when the
/// checks read no file.
pub fn locate(root: &Path, setting: Option<&str>) -> Option<PathBuf> {
    match setting {
        Some("off") => None,
        Some(path) => Some(root.join(path)),
        None => Some(root.join(FILE_NAME)),
    }
}

/// One rule of the file: its line and its text without the comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub line: usize,
    pub text: String,
}

/// The rules of an ignore file's text, as leakcheck reads them. Lines that
/// are not rules are leakcheck's to report: every check fails on them.
pub fn rules(text: &str) -> Vec<Rule> {
    let mut rules = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let text = without_comment(raw).trim();
        if text.is_empty() {
            continue;
        }
        let (kind, pattern) = text
            .split_once(char::is_whitespace)
            .map_or((text, ""), |(kind, pattern)| (kind, pattern.trim()));
        rules.push(Rule {
            line: index + 1,
            text: format!("{kind} {pattern}"),
        });
    }
    rules
}

/// The line up to a `#` that starts it or follows white space: the rule
/// leakcheck's own reader of the file follows (`src/ignore/file.rs`).
fn without_comment(line: &str) -> &str {
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        if c == '#' && previous.is_whitespace() {
            return &line[..at];
        }
        previous = c;
    }
    line
}

/// The files in `dir` in which test processes noted matched rules.
pub fn notes(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    crate::reports::files_in(dir, |name| {
        name.starts_with(MATCHES_PREFIX) && name.ends_with(".txt")
    })
}

/// The lines of `file` that some process noted as matched, from the notes
/// in `dir` (all of them, or those `keep` accepts).
pub fn matched_lines(dir: &Path, file: &Path, keep: impl Fn(&Path) -> bool) -> HashSet<usize> {
    let mut lines = HashSet::new();
    for path in notes(dir).unwrap_or_default() {
        if !keep(&path) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for note in text.lines() {
            let fields: Vec<&str> = note.split('\t').collect();
            if let [noted, _, line, _] = fields.as_slice() {
                if same_file(Path::new(noted), file) {
                    if let Ok(line) = line.parse() {
                        lines.insert(line);
                    }
                }
            }
        }
    }
    lines
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(a), Ok(b)) if a == b
        )
}

/// The lines to add to the run's summary about the ignore file: the rules
/// that matched nothing, or nothing when every rule matched.
pub fn stale_section(shown: &str, rules: &[Rule], matched: &HashSet<usize>) -> String {
    let stale: Vec<&Rule> = rules
        .iter()
        .filter(|rule| !matched.contains(&rule.line))
        .collect();
    let mut out = String::new();
    if stale.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "leakcheck ignore file: {} of {} in {shown} matched nothing in this run; \
         delete {} if {} leak is fixed:",
        count(stale.len(), "rule"),
        rules.len(),
        if stale.len() == 1 { "it" } else { "them" },
        if stale.len() == 1 { "its" } else { "their" },
    );
    for rule in stale {
        let _ = writeln!(out, "  {shown}:{}: {}", rule.line, rule.text);
    }
    out
}

/// What `baseline` adds to the file for the leaks of `reports`: one
/// `location` rule per spawn site, most tests first, each with a comment
/// of what leaked there; and how many leaks only a count saw, which no
/// rule can name.
pub struct Baseline {
    pub rules: Vec<String>,
    pub count_only_tests: usize,
}

pub fn baseline(reports: &[Report]) -> Baseline {
    #[derive(Default)]
    struct At {
        tests: HashSet<(Option<String>, Option<String>)>,
        units: BTreeMap<String, u64>,
    }
    let mut sites: BTreeMap<(String, u64), At> = BTreeMap::new();
    let mut count_only = HashSet::new();
    for report in reports {
        let test = (report.binary.clone(), report.test.clone());
        if report.untracked_tasks > 0 || report.untracked_threads > 0 {
            count_only.insert(test.clone());
        }
        for leak in &report.leaks {
            let at = sites
                .entry((leak.site.file.clone(), leak.site.line))
                .or_default();
            at.tests.insert(test.clone());
            *at.units.entry(leak.kind.clone()).or_default() += 1;
        }
    }
    let mut ordered: Vec<_> = sites.into_iter().collect();
    // Most tests first; then by file and line, as the map had them.
    ordered.sort_by_key(|(_, at)| std::cmp::Reverse(at.tests.len()));
    let rules = ordered
        .into_iter()
        .map(|((file, line), at)| {
            let units: Vec<String> = at
                .units
                .iter()
                .map(|(kind, n)| count(*n as usize, &kind.replace('_', " ")))
                .collect();
            format!(
                "location {file}:{line}   # {}, {}",
                count(at.tests.len(), "test"),
                units.join(" and ")
            )
        })
        .collect();
    Baseline {
        rules,
        count_only_tests: count_only.len(),
    }
}

/// `text` with `rules` appended under a heading, ready to be written back.
pub fn with_rules(text: &str, rules: &[String]) -> String {
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str(
            "# Leaks this project accepts, read by every leakcheck check in the workspace.\n\
             # One rule per line: `location FILE[:LINE[:COL]]`, `name NAME` or `frame PATH`.\n\
             # Delete a rule when its leak is fixed; `cargo leakcheck test` lists the rules\n\
             # that matched nothing.\n",
        );
    }
    if !rules.is_empty() {
        out.push_str("\n# Added by `cargo leakcheck baseline`.\n");
        for rule in rules {
            out.push_str(rule);
            out.push('\n');
        }
    }
    out
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::{Leak, Site};

    #[test]
    fn rules_are_read_as_leakcheck_reads_them() {
        let text = "# header\n\nlocation src/a.rs:3   # why\nname  pool-*\nname a#b\n";
        assert_eq!(
            rules(text),
            [
                Rule {
                    line: 3,
                    text: "location src/a.rs:3".into()
                },
                Rule {
                    line: 4,
                    text: "name pool-*".into()
                },
                Rule {
                    line: 5,
                    text: "name a#b".into()
                },
            ]
        );
    }

    #[test]
    fn only_rules_that_matched_nothing_are_listed() {
        let rules = rules("location src/a.rs:3\nname pool-*\nframe x::y\n");
        let matched: HashSet<usize> = [2].into();
        assert_eq!(
            stale_section("leakcheck.ignore", &rules, &matched),
            "leakcheck ignore file: 2 rules of 3 in leakcheck.ignore matched nothing in this run; \
             delete them if their leak is fixed:\n  leakcheck.ignore:1: location src/a.rs:3\n  \
             leakcheck.ignore:3: frame x::y\n"
        );
        let all: HashSet<usize> = [1, 2, 3].into();
        assert_eq!(stale_section("f", &rules, &all), "");
    }

    fn report(test: &str, sites: &[(&str, u64, &str)], untracked: u64) -> Report {
        Report {
            test: Some(test.into()),
            binary: Some("suite-1".into()),
            warn: true,
            leaks: sites
                .iter()
                .map(|(file, line, kind)| Leak {
                    kind: (*kind).into(),
                    name: None,
                    state: "waiting".into(),
                    site: Site {
                        file: (*file).into(),
                        line: *line,
                        column: 5,
                    },
                    suspended_at: None,
                })
                .collect(),
            untracked_tasks: untracked,
            untracked_threads: 0,
        }
    }

    #[test]
    fn a_baseline_has_one_rule_per_site_most_tests_first() {
        let reports = [
            report("a", &[("src/x.rs", 9, "thread")], 0),
            report("b", &[("src/y.rs", 4, "task"), ("src/y.rs", 4, "task")], 0),
            report("c", &[("src/y.rs", 4, "blocking_task")], 2),
        ];
        let baseline = baseline(&reports);
        assert_eq!(
            baseline.rules,
            [
                "location src/y.rs:4   # 2 tests, 1 blocking task and 2 tasks",
                "location src/x.rs:9   # 1 test, 1 thread",
            ]
        );
        assert_eq!(baseline.count_only_tests, 1);
        let written = with_rules("location src/z.rs:1\n", &baseline.rules);
        assert!(
            written.starts_with("location src/z.rs:1\n\n# Added by `cargo leakcheck baseline`.\n")
        );
        assert!(with_rules("", &[]).starts_with("# Leaks this project accepts"));
    }
}
