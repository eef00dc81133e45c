//! `cargo leakcheck summary`, and what cargo-leakcheck says about bad input.
//!
//! The summary is checked on real reports: a child run of this binary
//! leaks from 1,000 checks at 3 sites into a report directory, and the
//! summary of that directory must say what the child's own test binary
//! said, line for line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

#[path = "support/leaks.rs"]
mod leaks;
use leaks::{block, is_child, leak_a, leak_b, leak_c, site_line, CHILD, FILE, TOOL};

/// A thousand checks, each on a thread named as a test of its own, leaking
/// from 3 sites: 334 from a, 333 each from b and c.
#[test]
fn child_thousand_leaks_from_three_sites() {
    if !is_child() {
        return;
    }
    for i in 0..1000 {
        std::thread::Builder::new()
            .name(format!("thousand-{i:04}"))
            .spawn(move || {
                let guard = leakcheck::Options::new()
                    .settle(Duration::ZERO)
                    .verify_none();
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

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cargo-leakcheck-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tool(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(TOOL);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("LEAKCHECK") || name.starts_with("CARGO_LEAKCHECK") {
            command.env_remove(&*name);
        }
    }
    command
        .args(args)
        .envs(vars.iter().copied())
        .output()
        .expect("run cargo-leakcheck")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_thousand_reports_from_three_sites_give_three_site_lines() {
    let dir = scratch("thousand");
    let mut child = Command::new(std::env::current_exe().unwrap());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LEAKCHECK") || name == "GITHUB_ACTIONS" {
            child.env_remove(name);
        }
    }
    let child = child
        .args(["--exact", "child_thousand_leaks_from_three_sites"])
        .env(CHILD, "1")
        .env("LEAKCHECK_REPORT_DIR", &dir)
        .output()
        .expect("run the child");
    let child_err = text(&child.stderr);
    assert!(child.status.success(), "{child_err}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1000);

    let output = tool(&["summary", dir.to_str().unwrap()], &[]);
    let summary = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let at = |site: &str| format!("spawned at {FILE}:{}:5 (state: running)", site_line(site));
    let expected = [
        "leakcheck run summary: 1000 tests leaked 1000 threads, from 3 creation sites".to_owned(),
        format!("  334 tests, 334 threads {}", at("a")),
        format!("  333 tests, 333 threads {}", at("b")),
        format!("  333 tests, 333 threads {}", at("c")),
        format!("  reports: {} (1000 files)", dir.display()),
    ];
    assert_eq!(block(&summary, "leakcheck run summary:"), expected);
    assert_eq!(summary.lines().count(), expected.len(), "{summary}");
    // The child's test binary printed its own summary of the same leaks.
    let own: Vec<String> = block(&child_err, "leakcheck summary:")
        .into_iter()
        .map(|line| line.replace("leakcheck summary:", "leakcheck run summary:"))
        .collect();
    assert_eq!(own, expected[..4]);

    // The default directory is LEAKCHECK_REPORT_DIR's.
    let output = tool(
        &["leakcheck", "summary"],
        &[("LEAKCHECK_REPORT_DIR", dir.to_str().unwrap())],
    );
    assert_eq!(
        block(&text(&output.stdout), "leakcheck run summary:"),
        expected
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_that_are_not_reports_are_named_and_fail_the_summary() {
    let dir = scratch("unreadable");
    std::fs::write(
        dir.join("cut-short-1.json"),
        r#"{"format":"leakcheck-report","#,
    )
    .unwrap();
    std::fs::write(dir.join("other-2.json"), r#"{"format":"sarif"}"#).unwrap();
    std::fs::write(dir.join("notes.txt"), "not JSON, not read").unwrap();
    let output = tool(&["summary", dir.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(2));
    let shown = dir.display();
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(
        lines[0],
        format!("leakcheck run summary: no leak reports in {shown}")
    );
    assert_eq!(
        lines[1],
        format!("  2 files in {shown} could not be read as leakcheck reports:")
    );
    // The rest of the line is serde_json's own words.
    assert!(
        lines[2].starts_with("    cut-short-1.json: not JSON: EOF while parsing"),
        "{stdout}"
    );
    assert_eq!(
        lines[3],
        r#"    other-2.json: not a leakcheck report: `format` is not "leakcheck-report""#
    );
}

#[test]
fn bad_input_is_named_with_what_is_accepted() {
    let accepted = "expected `test`, `nextest`, `baseline`, `summary`, `help` or `--version`";
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], String);
    let cases: [Case; 6] = [
        (&[], &[], format!("no command given; {accepted}")),
        (&["leakcheck"], &[], format!("no command given; {accepted}")),
        (
            &["leakcheck", "tets"],
            &[],
            format!("unknown command `tets`; {accepted}"),
        ),
        (
            &["summary", "a", "b"],
            &[],
            "`summary` takes at most one argument, the report directory, got 2: `a` `b`".to_owned(),
        ),
        (
            &["summary", "/no/such/leakcheck/dir"],
            &[],
            "the report directory /no/such/leakcheck/dir does not exist; give the \
             LEAKCHECK_REPORT_DIR of a run, or run `cargo leakcheck test` first"
                .to_owned(),
        ),
        (
            &["test", "-p", "x"],
            &[("CARGO_LEAKCHECK_TARGET_DIR", "")],
            "CARGO_LEAKCHECK_TARGET_DIR is set but empty; set it to a directory, or unset it"
                .to_owned(),
        ),
    ];
    for (args, vars, message) in cases {
        let output = tool(args, vars);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = text(&output.stderr);
        assert_eq!(
            stderr.lines().next(),
            Some(format!("cargo-leakcheck: {message}").as_str()),
            "{args:?}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    let output = tool(&["summary"], &[("LEAKCHECK_REPORT_DIR", "")]);
    assert_eq!(
        text(&output.stderr),
        "cargo-leakcheck: LEAKCHECK_REPORT_DIR is set but empty; set it to a directory, or unset it\n"
    );
}

#[test]
fn help_and_version_answer_on_stdout() {
    for args in [
        &["help"][..],
        &["leakcheck", "--help"],
        &["-h"],
        &["summary", "--help"],
    ] {
        let output = tool(args, &[]);
        assert!(output.status.success(), "{args:?}");
        let usage = text(&output.stdout);
        assert!(
            usage.contains("\n    cargo leakcheck test [ARGS]...  "),
            "{usage}"
        );
        assert!(
            usage.contains("\n    cargo leakcheck summary [DIR]  "),
            "{usage}"
        );
    }
    let output = tool(&["--version"], &[]);
    assert_eq!(
        text(&output.stdout),
        format!("cargo-leakcheck {}\n", env!("CARGO_PKG_VERSION"))
    );
}
