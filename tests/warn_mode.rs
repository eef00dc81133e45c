//! `LEAKCHECK=warn` and the summary a test binary prints when it exits.
//!
//! The child tests leak on purpose and do nothing unless `LC_WARN_CHILD`
//! is set; the parent tests run this binary again with a filter that
//! selects them, and check how it ends and the summary's lines exactly.

use leakcheck::{leak_check, Options};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

const CHILD: &str = "LC_WARN_CHILD";

fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// The line of this file that ends with `// @site:<what>`.
fn site_line(what: &str) -> u32 {
    let marker = format!("// @{}:{what}", "site");
    let at = include_str!("warn_mode.rs")
        .lines()
        .position(|line| line.trim_end().ends_with(&marker))
        .unwrap_or_else(|| panic!("no {marker}"));
    u32::try_from(at + 1).expect("a small file")
}

/// A thread that waits for ever: its sender is leaked, never used.
fn park_forever(stopped: mpsc::Receiver<()>) {
    let _ = stopped.recv();
}

fn leak_a() {
    let (keep, stopped) = mpsc::channel::<()>();
    std::mem::forget(keep);
    leakcheck::thread::spawn(move || park_forever(stopped)); // @site:a
}

fn leak_b() {
    let (keep, stopped) = mpsc::channel::<()>();
    std::mem::forget(keep);
    leakcheck::thread::spawn(move || park_forever(stopped)); // @site:b
}

fn leak_c() {
    let (keep, stopped) = mpsc::channel::<()>();
    std::mem::forget(keep);
    leakcheck::thread::spawn(move || park_forever(stopped)); // @site:c
}

#[leak_check(settle_ms = 20)]
fn child_set_leaks_at_a() {
    if is_child() {
        leak_a();
    }
}

#[leak_check(settle_ms = 20)]
fn child_set_leaks_at_a_twice() {
    if is_child() {
        leak_a();
        leak_a();
    }
}

#[leak_check(settle_ms = 20)]
fn child_set_leaks_at_b() {
    if is_child() {
        leak_b();
    }
}

#[leak_check(settle_ms = 20)]
fn child_set_is_clean() {}

/// A thousand checks, each a test of its own name, leaking from 3 sites.
#[test]
fn child_thousand_leaks_from_three_sites() {
    if !is_child() {
        return;
    }
    for i in 0..1000 {
        std::thread::Builder::new()
            .name(format!("thousand-{i:04}"))
            .spawn(move || {
                let guard = Options::new().settle(Duration::ZERO).verify_none();
                [leak_a, leak_b, leak_c][i % 3]();
                if let Err(report) = guard.check() {
                    report.publish();
                }
            })
            .expect("spawn")
            .join()
            .expect("the check does not panic");
    }
}

fn run(filter: &str, vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command.args([filter, "--test-threads=2"]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LEAKCHECK") || name == "GITHUB_ACTIONS" {
            command.env_remove(name);
        }
    }
    command.env(CHILD, "1").envs(vars.iter().copied());
    command.output().expect("run the test binary")
}

/// The summary's lines: from its headline to the end of stderr.
fn summary(output: &Output) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let start = stderr
        .find("leakcheck summary:")
        .unwrap_or_else(|| panic!("no summary in:\n{stderr}"));
    stderr[start..].lines().map(str::to_owned).collect()
}

#[track_caller]
fn assert_site_line(line: &str, tests: &str, units: &str, site: &str) {
    let prefix = format!(
        "  {tests}, {units} spawned at tests/warn_mode.rs:{}:",
        site_line(site)
    );
    assert!(
        line.starts_with(&prefix) && line.ends_with(" (state: running)"),
        "{line:?} is not {prefix:?}…"
    );
}

#[track_caller]
fn assert_set_summary(output: &Output, warn: bool) {
    let lines = summary(output);
    let suffix = if warn {
        " (LEAKCHECK=warn: no test failed for it)"
    } else {
        ""
    };
    assert_eq!(
        lines[0],
        format!("leakcheck summary: 3 tests leaked 4 threads, from 2 creation sites{suffix}"),
        "{lines:#?}"
    );
    assert_site_line(&lines[1], "2 tests", "3 threads", "a");
    assert_site_line(&lines[2], "1 test", "1 thread", "b");
    assert_eq!(lines.len(), 3, "{lines:#?}");
}

#[test]
fn leaking_tests_fail_and_the_binary_prints_a_summary() {
    if is_child() {
        return;
    }
    let output = run("child_set_", &[]);
    assert_eq!(output.status.code(), Some(101), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("3 failed"));
    assert_set_summary(&output, false);
}

#[test]
fn warn_mode_reports_without_failing() {
    if is_child() {
        return;
    }
    let output = run(
        "child_set_",
        &[("LEAKCHECK", "warn"), ("GITHUB_ACTIONS", "true")],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("4 passed; 0 failed"), "{stdout}");
    // Every report is printed, and each site is annotated as a warning.
    assert_eq!(
        stderr
            .matches("LEAKCHECK=warn, so this leak does not fail the test")
            .count(),
        3,
        "{stderr}"
    );
    assert!(stdout.contains("::warning file="), "{stdout}");
    assert!(!stdout.contains("::error"), "{stdout}");
    assert_set_summary(&output, true);
}

#[test]
fn a_thousand_leaking_tests_from_three_sites_give_three_site_lines() {
    if is_child() {
        return;
    }
    let output = run("child_thousand_", &[]);
    assert!(output.status.success(), "{output:?}");
    let lines = summary(&output);
    assert_eq!(
        lines[0],
        "leakcheck summary: 1000 tests leaked 1000 threads, from 3 creation sites"
    );
    assert_eq!(lines.len(), 4, "{lines:#?}");
    // Most tests first: site a has the extra one (0, 3, … 999).
    assert_site_line(&lines[1], "334 tests", "334 threads", "a");
    for site in ["b", "c"] {
        let at = format!("tests/warn_mode.rs:{}:", site_line(site));
        let line = lines[2..]
            .iter()
            .find(|line| line.contains(&at))
            .unwrap_or_else(|| panic!("no line for {at} in {lines:#?}"));
        assert_site_line(line, "333 tests", "333 threads", site);
    }
}

/// A clean binary prints no summary.
#[test]
fn a_clean_binary_prints_no_summary() {
    if is_child() {
        return;
    }
    let output = run("child_set_is_clean", &[]);
    assert!(output.status.success(), "{output:?}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("leakcheck summary"));
}
