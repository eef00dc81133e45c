//! Which creation-backtrace frames a report shows, in real user crates.
//!
//! Builds small crates that depend on leakcheck by path, each leaking a
//! thread through a helper function, with `[profile.dev] debug` set to `true`,
//! `"line-tables-only"` and `"limited"`, and checks that the helper's frame is
//! shown and that no frame of std, libtest, tokio or leakcheck is. The crates
//! are named to trip a rule that hides frames by how their names start:
//!
//! - a package whose integration test file is `tests/test.rs`, which makes a
//!   crate named `test`, with the helper in that file;
//! - `tokio_app`, `std_ext` and `core_utils`, with the helper in the library.
//!
//! Building leakcheck and its dependencies three times takes minutes on two
//! cores, so the test is ignored by default: `scripts/frames-check.sh` runs
//! it, and CI runs that script. The crates are written under
//! `CARGO_TARGET_TMPDIR` with their own target directory, which later runs
//! reuse.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The crates, as (package, crate that holds the helper, helper's file).
const CRATES: &[(&str, &str, &str)] = &[
    ("app", "test", "tests/test.rs"),
    ("tokio_app", "tokio_app", "src/lib.rs"),
    ("std_ext", "std_ext", "src/lib.rs"),
    ("core_utils", "core_utils", "src/lib.rs"),
];

/// The `[profile.dev] debug` values, as written in Cargo.toml, and a folder
/// name for each.
const DEBUG: &[(&str, &str)] = &[
    ("true", "full"),
    ("\"line-tables-only\"", "line-tables-only"),
    ("\"limited\"", "limited"),
];

/// More shown frames than this means machinery frames leaked into the
/// report: the helper, the test function and its closure are what is left.
const MOST_SHOWN: usize = 5;

const HELPER: &str = r#"
#[inline(never)]
pub fn spawn_helper(rx: std::sync::mpsc::Receiver<()>) -> std::thread::JoinHandle<()> {
    leakcheck::thread::spawn(move || {
        let _ = rx.recv();
    })
}
"#;

/// The test every crate runs: leak through the helper, print the frames the
/// report shows.
fn leak_test(helper_path: &str) -> String {
    format!(
        r#"
#[test]
fn leaks_a_thread() {{
    let guard = leakcheck::Options::new()
        .settle(std::time::Duration::ZERO)
        .verify_none();
    let (keep, rx) = std::sync::mpsc::channel::<()>();
    let worker = {helper_path}(rx);
    let report = guard.check().unwrap_err();
    let trace = report.stragglers()[0].backtrace().expect("captured by default");
    for frame in trace.frames() {{
        println!(
            "SHOWN\t{{}}\t{{}}",
            frame.function().unwrap_or(""),
            frame.file().map(|f| f.display().to_string()).unwrap_or_default()
        );
    }}
    println!("HIDDEN\t{{}}", trace.hidden_frames());
    drop(keep);
    worker.join().unwrap();
}}
"#
    )
}

/// Writes `text` to `path` unless it already holds it, so that a later run
/// finds the crates unchanged and builds nothing.
fn write(path: &Path, text: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return;
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Writes the workspace of the four crates for one `debug` value.
fn workspace(root: &Path, debug: &str) {
    let leakcheck = env!("CARGO_MANIFEST_DIR");
    let members: Vec<String> = CRATES.iter().map(|(p, _, _)| format!("{p:?}")).collect();
    write(
        &root.join("Cargo.toml"),
        &format!(
            "[workspace]\nmembers = [{}]\nresolver = \"2\"\n\n[profile.dev]\ndebug = {debug}\n",
            members.join(", ")
        ),
    );
    // leakcheck's own lock file, so the crates build with the versions its
    // suite uses and need no registry look-up.
    write(
        &root.join("Cargo.lock"),
        &std::fs::read_to_string(Path::new(leakcheck).join("Cargo.lock")).unwrap(),
    );
    for &(package, krate, helper_file) in CRATES {
        let dir = root.join(package);
        write(
            &dir.join("Cargo.toml"),
            &format!(
                "[package]\nname = {package:?}\nversion = \"0.1.0\"\nedition = \"2021\"\n\
                 publish = false\n\n[dependencies]\nleakcheck = {{ path = {leakcheck:?} }}\n"
            ),
        );
        if helper_file == "src/lib.rs" {
            write(&dir.join("src/lib.rs"), HELPER);
            write(
                &dir.join("tests/leak.rs"),
                &leak_test(&format!("{krate}::spawn_helper")),
            );
        } else {
            write(&dir.join("src/lib.rs"), "");
            write(
                &dir.join(helper_file),
                &format!("{HELPER}{}", leak_test("spawn_helper")),
            );
        }
    }
}

/// The shown frames each crate's test printed, as (function, file).
fn run(root: &Path) -> Vec<(String, Vec<(String, String)>)> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut out = Vec::new();
    for &(package, _, _) in CRATES {
        let output = Command::new(&cargo)
            .args(["test", "--quiet", "-p", package, "--", "--nocapture"])
            .current_dir(root)
            .env("CARGO_TARGET_DIR", root.join("target"))
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("RUSTFLAGS")
            .env_remove("LEAKCHECK")
            .env_remove("LEAKCHECK_BACKTRACE")
            .output()
            .expect("run cargo");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "cargo test -p {package} in {}:\n{stdout}\n{}",
            root.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let shown = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("SHOWN\t"))
            .map(|l| {
                let (function, file) = l.split_once('\t').unwrap();
                (function.to_string(), file.to_string())
            })
            .collect();
        out.push((package.to_string(), shown));
    }
    out
}

/// Whether a shown frame is one that should have been hidden.
fn is_machinery(function: &str, file: &str) -> bool {
    let own_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let function = function.trim_start_matches('<');
    [
        "std::",
        "core::",
        "alloc::",
        "tokio::",
        "leakcheck::",
        "backtrace::",
    ]
    .iter()
    .any(|p| function.starts_with(p))
        || file.starts_with("/rustc/")
        || file.contains("/rustlib/src/")
        || file.contains("/registry/src/")
        || Path::new(file).starts_with(&own_src)
}

#[test]
#[ignore = "builds leakcheck three times (minutes); run by scripts/frames-check.sh"]
fn user_frames_are_shown_and_machinery_hidden() {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("frames-check");
    let mut failures = String::new();
    let mut table = String::new();
    for &(debug, folder) in DEBUG {
        let root = base.join(folder);
        workspace(&root, debug);
        for (package, shown) in run(&root) {
            let (_, krate, helper_file) = CRATES.iter().find(|c| c.0 == package).unwrap();
            let helper = shown.iter().any(|(function, file)| {
                (function == "spawn_helper" || function == &format!("{krate}::spawn_helper"))
                    && file.ends_with(helper_file)
            });
            let machinery: Vec<_> = shown
                .iter()
                .filter(|(function, file)| is_machinery(function, file))
                .collect();
            let _ = writeln!(
                table,
                "debug = {debug:<18} {package:<10} helper shown: {helper:<5}  shown: {}  machinery shown: {}",
                shown.len(),
                machinery.len()
            );
            if !helper || !machinery.is_empty() || shown.len() > MOST_SHOWN {
                let _ = writeln!(
                    failures,
                    "debug = {debug}, {package}: helper shown: {helper}, machinery shown: \
                     {machinery:#?}, all shown: {shown:#?}"
                );
            }
        }
    }
    println!("{table}");
    assert!(failures.is_empty(), "{table}\n{failures}");
}
