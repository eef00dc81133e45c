//! Running one test of the current binary again, alone, in a child process,
//! to see how it ends and what it prints.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `test` of this binary alone in a child process, with every
/// `LEAKCHECK*` variable of this process removed, `marker=test` set (so that
/// the child test knows it is the child) and then `vars`.
pub fn run_child(marker: &str, test: &str, vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command.args(["--exact", test, "--test-threads=1", "--nocapture"]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LEAKCHECK") {
            command.env_remove(name);
        }
    }
    command.env(marker, test).envs(vars.iter().copied());
    command.output().expect("run the test binary")
}

/// Whether this process is the child that should run `test`.
pub fn is_child(marker: &str, test: &str) -> bool {
    std::env::var(marker).as_deref() == Ok(test)
}

/// Everything the child printed, stdout then stderr.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The names of this binary's tests, sorted, as `--list` gives them with
/// `extra` arguments (`--ignored`, say): a test registered twice is there
/// twice.
pub fn listed_tests(extra: &[&str]) -> Vec<String> {
    let output = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--list", "--format=terse"])
        .args(extra)
        .output()
        .expect("list the tests");
    let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect();
    names.sort_unstable();
    names
}
