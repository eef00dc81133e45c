//! `cargo leakcheck test` and `nextest` end to end, with a stand-in for
//! cargo: a script that records how it was called, then runs this test
//! binary's child tests, which leak through leakcheck for real and write
//! their reports where cargo-leakcheck told them to. The run-wide summary
//! must repeat what the child's own test binary printed, line for line, and
//! the runner's exit status must come back unchanged.
#![cfg(unix)]

use leakcheck::leak_check;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "support/leaks.rs"]
mod leaks;
use leaks::{block, is_child, leak_a, leak_b, site_line, CHILD, FILE, TOOL};

#[leak_check(settle_ms = 0)]
fn child_leaks_at_a() {
    if is_child() {
        leak_a();
    }
}

#[leak_check(settle_ms = 0)]
fn child_leaks_at_a_twice() {
    if is_child() {
        leak_a();
        leak_a();
    }
}

#[leak_check(settle_ms = 0)]
fn child_leaks_at_b() {
    if is_child() {
        leak_b();
    }
}

#[leak_check(settle_ms = 0)]
fn child_is_clean() {}

/// A scratch directory of this test's own.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cargo-leakcheck-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A stand-in for cargo in `dir`: `cargo metadata` names `dir/target` as
/// the target directory; any other call records its arguments and
/// environment, then runs `then` (a shell command).
fn fake_cargo(dir: &Path, then: &str) -> PathBuf {
    let script = dir.join("cargo");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             if [ \"$1\" = metadata ]; then\n\
             \x20 printf '{{\"target_directory\":\"%s\"}}' '{target}'\n\
             \x20 exit 0\n\
             fi\n\
             printf '%s\\n' \"$@\" > '{log}/args'\n\
             env > '{log}/env'\n\
             {then}\n",
            target = dir.join("target").display(),
            log = dir.display(),
        ),
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&script, permissions).unwrap();
    script
}

/// Runs the leaky child tests of this binary, as a test runner would.
fn run_children() -> String {
    format!(
        "{CHILD}=1 exec '{}' child_ --test-threads=1",
        std::env::current_exe().unwrap().display()
    )
}

/// Runs cargo-leakcheck with `cargo` as its cargo, from `dir`, with no
/// leakcheck or rustflags settings but `vars`.
fn tool(dir: &Path, cargo: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(TOOL);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("LEAKCHECK")
            || name.starts_with("CARGO_LEAKCHECK")
            || name.contains("RUSTFLAGS")
            || name == "GITHUB_ACTIONS"
        {
            command.env_remove(&*name);
        }
    }
    command
        .args(args)
        .current_dir(dir)
        .env("CARGO", cargo)
        .envs(vars.iter().copied())
        .output()
        .expect("run cargo-leakcheck")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn recorded(dir: &Path, what: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(what))
        .unwrap_or_else(|error| panic!("the stand-in recorded no {what}: {error}"))
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_leaky_run_ends_with_the_run_wide_summary_and_the_runners_status() {
    let dir = scratch("leaky-run");
    let cargo = fake_cargo(&dir, &run_children());
    // A report of an earlier run must not be counted again.
    let reports = dir.join("target/leakcheck/leakcheck-reports");
    std::fs::create_dir_all(&reports).unwrap();
    std::fs::write(reports.join("earlier-1.json"), "{}").unwrap();

    let output = tool(
        &dir,
        &cargo,
        &["leakcheck", "test", "-p", "x", "--", "--nocapture"],
        &[],
    );
    let text = stderr(&output);
    // libtest's exit code for failed tests, passed on.
    assert_eq!(output.status.code(), Some(101), "{text}");

    let file = FILE;
    let expected = [
        "leakcheck run summary: 3 tests leaked 4 threads, from 2 creation sites".to_owned(),
        format!(
            "  2 tests, 3 threads spawned at {file}:{}:5 (state: running)",
            site_line("a")
        ),
        format!(
            "  1 test, 1 thread spawned at {file}:{}:5 (state: running)",
            site_line("b")
        ),
        "  reports: target/leakcheck/leakcheck-reports (3 files)".to_owned(),
    ];
    assert_eq!(block(&text, "leakcheck run summary:"), expected, "{text}");
    // The child binary's own summary, on the same stderr, says the same.
    let own: Vec<String> = block(&text, "leakcheck summary:")
        .into_iter()
        .map(|line| line.replace("leakcheck summary:", "leakcheck run summary:"))
        .collect();
    assert_eq!(own, expected[..3], "{text}");
    assert!(!reports.join("earlier-1.json").exists());

    assert_eq!(
        recorded(&dir, "args"),
        [
            "test",
            "--config",
            r#"build.rustflags=["--cfg","tokio_unstable"]"#,
            "-p",
            "x",
            "--",
            "--nocapture"
        ]
    );
    let env = recorded(&dir, "env");
    let target = dir.join("target/leakcheck");
    assert!(
        env.contains(&format!("CARGO_TARGET_DIR={}", target.display())),
        "{env:#?}"
    );
    assert!(
        env.contains(&format!("LEAKCHECK_REPORT_DIR={}", reports.display())),
        "{env:#?}"
    );
    assert!(
        text.starts_with(
            "cargo-leakcheck: cargo test -p x -- --nocapture in target/leakcheck, \
             --cfg tokio_unstable added to build.rustflags; \
             reports to target/leakcheck/leakcheck-reports\n"
        ),
        "{text}"
    );
}

#[test]
fn warn_mode_passes_and_says_so_and_a_users_report_dir_keeps_its_files() {
    let dir = scratch("warn-run");
    let cargo = fake_cargo(&dir, &run_children());
    let reports = dir.join("my-reports");
    std::fs::create_dir_all(&reports).unwrap();
    // The user's directory holds another run's report: kept, not counted.
    let other = reports.join("other-run-1.json");
    std::fs::write(&other, "not a report").unwrap();

    let output = tool(
        &dir,
        &cargo,
        &["nextest", "--no-fail-fast"],
        &[
            ("LEAKCHECK", "warn"),
            ("LEAKCHECK_REPORT_DIR", "my-reports"),
            ("RUSTFLAGS", "-C debuginfo=1"),
            ("CARGO_LEAKCHECK_TARGET_DIR", "elsewhere"),
        ],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_eq!(
        block(&text, "leakcheck run summary:")[0],
        "leakcheck run summary: 3 tests leaked 4 threads, from 2 creation sites \
         (LEAKCHECK=warn: no test failed for it)",
        "{text}"
    );
    assert!(
        text.contains("\n  reports: my-reports (3 files)\n"),
        "{text}"
    );
    assert!(other.exists());

    assert_eq!(recorded(&dir, "args"), ["nextest", "run", "--no-fail-fast"]);
    let env = recorded(&dir, "env");
    for expected in [
        "RUSTFLAGS=-C debuginfo=1 --cfg tokio_unstable".to_owned(),
        format!("CARGO_TARGET_DIR={}", dir.join("elsewhere").display()),
        format!("LEAKCHECK_REPORT_DIR={}", reports.display()),
    ] {
        assert!(env.contains(&expected), "no {expected} in {env:#?}");
    }
}

#[test]
fn the_runners_exit_status_is_passed_on_when_nothing_leaked() {
    let dir = scratch("status");
    for code in [0, 3, 101] {
        let cargo = fake_cargo(&dir, &format!("exit {code}"));
        let output = tool(&dir, &cargo, &["test"], &[]);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(code), "{text}");
        assert!(
            text.ends_with(
                "\nleakcheck run summary: no leak reports in target/leakcheck/leakcheck-reports\n"
            ),
            "{text}"
        );
    }
    // Killed by a signal: 128 plus its number, as a shell says.
    let cargo = fake_cargo(&dir, "kill -TERM $$");
    assert_eq!(
        tool(&dir, &cargo, &["test"], &[]).status.code(),
        Some(128 + 15)
    );
}

#[test]
fn a_runner_that_cannot_start_is_named() {
    let dir = scratch("no-cargo");
    let missing = dir.join("no-such-cargo");
    let output = tool(
        &dir,
        &missing,
        &["test"],
        &[("CARGO_LEAKCHECK_TARGET_DIR", "t")],
    );
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains(&format!(
            "cargo-leakcheck: could not run `{}`: ",
            missing.display()
        )),
        "{text}"
    );
}

/// `baseline` adopts a leaky suite as it is: it adds one rule per leaking
/// site to the ignore file, keeps what was there, and lists the rules that
/// matched nothing. The next run passes, and lists them again.
#[test]
fn baseline_accepts_todays_leaks_and_the_next_run_passes() {
    let dir = scratch("baseline");
    let cargo = fake_cargo(&dir, &run_children());
    let file = dir.join("accepted.ignore");
    std::fs::write(&file, "name fixed-long-ago   # its leak was fixed\n").unwrap();
    let vars = [("LEAKCHECK_IGNORE_FILE", file.to_str().unwrap())];

    let output = tool(&dir, &cargo, &["leakcheck", "baseline"], &vars);
    let text = stderr(&output);
    // Under LEAKCHECK=warn, the leaks fail no test.
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(recorded(&dir, "env").contains(&"LEAKCHECK=warn".to_owned()));
    let source = FILE;
    let (a, b) = (site_line("a"), site_line("b"));
    let rule_a = format!("location {source}:{a}   # 2 tests, 3 threads");
    let rule_b = format!("location {source}:{b}   # 1 test, 1 thread");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!(
            "name fixed-long-ago   # its leak was fixed\n\n\
             # Added by `cargo leakcheck baseline`.\n{rule_a}\n{rule_b}\n"
        )
    );
    // Shown from the workspace root, here the working directory.
    let shown = "accepted.ignore";
    assert_eq!(
        block(&text, "cargo-leakcheck baseline:"),
        [
            format!("cargo-leakcheck baseline: 2 rules added to {shown}"),
            format!("  {rule_a}"),
            format!("  {rule_b}"),
        ],
        "{text}"
    );
    // The old rule, listed as matching nothing, out of `rules` in the file.
    let stale = |rules: usize| {
        [
            format!(
                "leakcheck ignore file: 1 rule of {rules} in {shown} matched nothing in this \
                 run; delete it if its leak is fixed:"
            ),
            format!("  {shown}:1: name fixed-long-ago"),
        ]
    };
    assert_eq!(block(&text, "leakcheck ignore file:"), stale(1), "{text}");

    // The checks now accept those leaks and the run passes; the stale rule
    // is listed again, and the rules that matched are not.
    let output = tool(&dir, &cargo, &["leakcheck", "test"], &vars);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("leakcheck run summary: no leak reports in"),
        "{text}"
    );
    assert_eq!(block(&text, "leakcheck ignore file:"), stale(3), "{text}");
}
