//! The project's ignore file: one place for the leaks a project accepts,
//! read by every check, with a bad line reported by file and line, and each
//! rule's first match noted for the run-wide summary.
//!
//! Each case runs a child test of this binary with its own ignore file.

use child::{is_child, run_child, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

#[path = "support/child.rs"]
mod child;

const CHILD: &str = "LC_IGNORE_FILE_CHILD";
const LEAKY: &str = "child_leaks_a_named_thread";

/// The line of the first occurrence of `marker` in this file.
fn line_of(marker: &str) -> u32 {
    let at = include_str!("ignore_file.rs")
        .lines()
        .position(|line| line.contains(marker) && !line.contains("line_of("))
        .unwrap_or_else(|| panic!("no {marker:?} in this file"));
    u32::try_from(at + 1).expect("a small file")
}

/// A fresh directory under the target directory, for one case's files.
fn scratch(case: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ignore-file-{case}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

#[test]
fn child_leaks_a_named_thread() {
    if !is_child(CHILD, LEAKY) {
        return;
    }
    let guard = leakcheck::Options::new()
        .settle(Duration::from_millis(20))
        .verify_none();
    let (keep, stop) = mpsc::channel::<()>();
    leakcheck::thread::Builder::new()
        .name("accepted-worker".into())
        .spawn(move || {
            let _ = stop.recv();
        }) // SPAWN: the leaked worker
        .expect("the OS starts the thread");
    guard.check().unwrap_or_else(|report| panic!("{report}"));
    drop(keep);
}

fn run_with_file(case: &str, rules: &str) -> (Output, PathBuf) {
    let dir = scratch(case);
    let file = dir.join("accepted.ignore");
    std::fs::write(&file, rules).expect("write the ignore file");
    let reports = dir.join("reports");
    let output = run_child(
        CHILD,
        LEAKY,
        &[
            (
                "LEAKCHECK_IGNORE_FILE",
                file.to_str().expect("a UTF-8 path"),
            ),
            (
                "LEAKCHECK_REPORT_DIR",
                reports.to_str().expect("a UTF-8 path"),
            ),
        ],
    );
    (output, reports)
}

/// The lines the child noted as matched, without the file's path.
fn matched(reports: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(reports).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("ignore-matches-") {
            let text = std::fs::read_to_string(entry.path()).expect("read the matches");
            lines.extend(text.lines().map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                assert_eq!(fields.len(), 4, "{line:?}");
                format!("{}:{} {}", fields[1], fields[2], fields[3])
            }));
        }
    }
    lines.sort();
    lines
}

#[test]
fn without_a_rule_the_leak_fails_the_test() {
    let (output, _) = run_with_file("none", "# nothing accepted yet\n");
    let text = text(&output);
    assert!(!output.status.success(), "{text}");
    let site = format!(
        "tests/ignore_file.rs:{}",
        line_of("SPAWN: the leaked worker") - 2
    );
    assert!(
        text.contains(&format!("1 thread spawned at {site}")),
        "{text}"
    );
}

#[test]
fn a_location_rule_accepts_the_leak_and_notes_the_match() {
    let spawn = line_of("SPAWN: the leaked worker") - 2;
    let rules = format!(
        "# accepted leaks\n\nlocation tests/ignore_file.rs:{spawn}   # the worker\nname never-spawned\n"
    );
    let (output, reports) = run_with_file("location", &rules);
    let text = text(&output);
    assert!(output.status.success(), "{text}");
    assert!(!text.contains("leaked"), "{text}");
    // The rule that matched is noted; the one that matched nothing is not,
    // which is how the run-wide summary finds it stale.
    assert_eq!(
        matched(&reports),
        [format!(
            "{}:3 location tests/ignore_file.rs:{spawn}",
            scratch_path("location").display()
        )]
    );
}

#[test]
fn name_and_frame_rules_accept_the_leak() {
    for (case, rule) in [
        ("name", "name accepted-*"),
        ("frame", "frame ignore_file::child_leaks_a_named_thread"),
    ] {
        let (output, reports) = run_with_file(case, &format!("{rule}\n"));
        let text = text(&output);
        assert!(output.status.success(), "{case}: {text}");
        assert_eq!(matched(&reports).len(), 1, "{case}: {text}");
    }
}

#[test]
fn a_bad_line_fails_every_check_naming_the_file_and_line() {
    let (output, _) = run_with_file("malformed", "location src/pool.rs:88\nnmae reaper\n");
    let text = text(&output);
    assert!(!output.status.success(), "{text}");
    let file = scratch_path("malformed");
    assert!(
        text.contains(&format!(
            "leakcheck: {}:2: `nmae` is not a kind of rule; each line is a rule (`name NAME`",
            file.display()
        )),
        "{text}"
    );
}

fn scratch_path(case: &str) -> PathBuf {
    shown(
        &Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("ignore-file-{case}"))
            .join("accepted.ignore"),
    )
}

/// A path as reports show it: relative to the workspace root, this package.
fn shown(path: &Path) -> PathBuf {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .to_path_buf()
}

#[test]
fn a_missing_named_file_is_an_error_not_an_empty_list() {
    let missing = scratch("missing").join("no-such.ignore");
    let output = run_child(
        CHILD,
        LEAKY,
        &[(
            "LEAKCHECK_IGNORE_FILE",
            missing.to_str().expect("a UTF-8 path"),
        )],
    );
    let text = text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "leakcheck: the ignore file {} cannot be read",
            shown(&missing).display()
        )),
        "{text}"
    );
    assert!(text.contains("set it to `off` for no file"), "{text}");
}

/// Without the variable, the file is `leakcheck.ignore` at the workspace
/// root: the nearest directory up from the working directory whose
/// `Cargo.toml` has a `[workspace]` table.
#[test]
fn leakcheck_ignore_at_the_workspace_root_is_found() {
    let root = scratch("discovered");
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"member\"]\n",
    )
    .unwrap();
    std::fs::write(root.join("leakcheck.ignore"), "name accepted-worker\n").unwrap();
    let member = root.join("member");
    std::fs::create_dir_all(&member).unwrap();
    std::fs::write(member.join("Cargo.toml"), "[package]\nname = \"member\"\n").unwrap();
    let run = |cwd: &Path| {
        let mut command = Command::new(std::env::current_exe().expect("the test binary"));
        command.args(["--exact", LEAKY, "--test-threads=1", "--nocapture"]);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("LEAKCHECK") {
                command.env_remove(name);
            }
        }
        command.env(CHILD, LEAKY).current_dir(cwd);
        command.output().expect("run the test binary")
    };
    let output = run(&member);
    assert!(output.status.success(), "{}", text(&output));
    // Outside that workspace, the same leak fails.
    let elsewhere = scratch("undiscovered");
    std::fs::write(elsewhere.join("Cargo.toml"), "[workspace]\n").unwrap();
    let output = run(&elsewhere);
    assert!(!output.status.success(), "{}", text(&output));
}
