//! The side outputs for CI: the JSON report written into
//! `LEAKCHECK_REPORT_DIR`, and the GitHub annotations printed with
//! `GITHUB_ACTIONS=true`.
//!
//! leakcheck reads its environment once per process, so each case runs a
//! child test of this binary in a subprocess with the environment it needs.
//! A child test does nothing unless `LC_TEST_CHILD` names it (a `LEAKCHECK_*`
//! name would be rejected as an unknown variable).

use leakcheck::task::Builder as TaskBuilder;
use leakcheck::Options;
use serde_json::Value;
use std::ffi::OsString;
use std::future::pending;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[path = "support/sites.rs"]
mod sites;

/// Names the child test that should run in a subprocess.
const CHILD: &str = "LC_TEST_CHILD";
/// How long a child may take before it is killed and the test fails.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);
/// A budget that a check must not wait out: the children's leaks are stuck.
const LONG_SETTLE: Duration = Duration::from_secs(5);
/// This file, to find the exact line and column of each marked spawn.
const SOURCE: &str = include_str!("ci_outputs.rs");

// ---- running a child -----------------------------------------------------------------

struct Child {
    status: ExitStatus,
    pid: u32,
    stdout: String,
    stderr: String,
}

impl Child {
    /// The `::error` workflow commands the child printed, one per line, from
    /// where each starts (see `annotations_start_their_line_*`).
    fn annotations(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter_map(|l| l.find("::error").map(|at| &l[at..]))
            .collect()
    }

    fn context(&self) -> String {
        format!(
            "child {} exited with {}\n--- stdout\n{}\n--- stderr\n{}",
            self.pid, self.status, self.stdout, self.stderr
        )
    }
}

/// Runs the child test `test` of this binary, one test at a time, with
/// `vars` set, and every `LEAKCHECK*` and `GITHUB_*` variable of this
/// process removed.
fn run_child(test: &str, vars: &[(&str, OsString)]) -> Child {
    run_child_with(test, vars, &["--test-threads=1"])
}

/// `run_child` with `LEAKCHECK_BACKTRACE=off`, for tests that do not look
/// at backtraces: a failing child then skips resolving symbols for its
/// report, about a second of work.
fn run_child_quickly(test: &str, vars: &[(&str, OsString)]) -> Child {
    run_child_quickly_with(test, vars, &["--test-threads=1"])
}

fn run_child_quickly_with(test: &str, vars: &[(&str, OsString)], args: &[&str]) -> Child {
    let mut vars = vars.to_vec();
    vars.push(("LEAKCHECK_BACKTRACE", "off".into()));
    run_child_with(test, &vars, args)
}

fn run_child_with(test: &str, vars: &[(&str, OsString)], args: &[&str]) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    for (name, _) in std::env::vars_os() {
        let name_str = name.to_string_lossy();
        if name_str.starts_with("LEAKCHECK") || name_str.starts_with("GITHUB_") {
            command.env_remove(&name);
        }
    }
    command
        .args(["--exact", test, "--nocapture"])
        .args(args)
        .env(CHILD, test)
        .env("RUST_BACKTRACE", "0")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in vars {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("run the test binary");
    let pid = child.id();
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "child `{test}` did not finish in {CHILD_TIMEOUT:?}; stderr:\n{}",
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Child {
        status,
        pid,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn is_child(test: &str) -> bool {
    std::env::var(CHILD).as_deref() == Ok(test)
}

/// A fresh directory for one test's reports, removed when dropped, even
/// when the test fails.
struct TempDir(PathBuf);

impl TempDir {
    fn clear(&self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        self.clear();
    }
}

/// A fresh directory for one test's reports, and the path inside it to
/// give as `LEAKCHECK_REPORT_DIR`: not created, so that leakcheck has to.
fn report_dir(test: &str) -> (TempDir, PathBuf) {
    let base = std::env::temp_dir().join(format!("leakcheck-ci-{test}-{}", std::process::id()));
    let base = TempDir(base);
    base.clear();
    let dir = base.0.join("nested").join("leaks");
    (base, dir)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

#[track_caller]
fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e}; files: {:?}",
            path.display(),
            files_in(path.parent().unwrap())
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

// ---- sites and paths -----------------------------------------------------------------

/// The line and column of the spawn call on the line that ends with
/// `// site:<marker>`; `call` is the text the call starts with.
#[track_caller]
fn site(marker: &str, call: &str) -> (u32, u32) {
    sites::site_in(SOURCE, marker, call)
}

/// The package's directory, which is the repository's root here.
fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository root as leakcheck finds it without `GITHUB_WORKSPACE`:
/// the nearest ancestor of the working directory with a `.git`.
fn repository_root() -> Option<PathBuf> {
    package_dir()
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .map(Path::to_path_buf)
}

/// This file's path relative to `root`.
fn this_file_under(root: &Path) -> String {
    let absolute = package_dir().join(file!());
    absolute
        .strip_prefix(root)
        .unwrap_or_else(|_| panic!("{} is not under {}", absolute.display(), root.display()))
        .to_string_lossy()
        .into_owned()
}

// ---- workflow commands ---------------------------------------------------------------

/// One `::error` workflow command, split into its properties and message,
/// still escaped.
struct Annotation {
    properties: Vec<(String, String)>,
    message: String,
}

impl Annotation {
    #[track_caller]
    fn parse(line: &str) -> Self {
        let rest = line
            .strip_prefix("::error ")
            .unwrap_or_else(|| panic!("not an ::error command: {line}"));
        // Colons in properties are escaped, so the first `::` ends them.
        let (properties, message) = rest
            .split_once("::")
            .unwrap_or_else(|| panic!("no message: {line}"));
        let properties = properties
            .split(',')
            .map(|pair| {
                let (key, value) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("bad property `{pair}` in {line}"));
                (key.to_owned(), value.to_owned())
            })
            .collect();
        let annotation = Self {
            properties,
            message: message.to_owned(),
        };
        for (key, value) in &annotation.properties {
            assert_escaped(
                value,
                &['%', '\r', '\n', ':', ','],
                &format!("property {key}"),
            );
        }
        assert_escaped(&annotation.message, &['%', '\r', '\n'], "message");
        annotation
    }

    fn keys(&self) -> Vec<&str> {
        self.properties.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// A property's value, still escaped.
    #[track_caller]
    fn raw(&self, key: &str) -> &str {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no property `{key}`"))
    }

    #[track_caller]
    fn property(&self, key: &str) -> String {
        unescape(self.raw(key))
    }
}

/// Every `%` starts one of the escapes GitHub defines for `escaped`
/// characters, and none of those characters is left raw (but `%`).
#[track_caller]
fn assert_escaped(text: &str, escaped: &[char], what: &str) {
    for c in escaped.iter().filter(|c| **c != '%') {
        assert!(!text.contains(*c), "{what} has a raw {c:?}: {text}");
    }
    let codes: Vec<String> = escaped
        .iter()
        .map(|c| format!("%{:02X}", u32::from(*c)))
        .collect();
    for (at, _) in text.match_indices('%') {
        assert!(
            codes
                .iter()
                .any(|code| text[at..].starts_with(code.as_str())),
            "{what} has a bad escape at {at}: {text}"
        );
    }
}

fn unescape(text: &str) -> String {
    text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
}

/// Asserts there is exactly one annotation per `(line, column, tasks)` site,
/// on `file`, naming `test`.
#[track_caller]
fn assert_annotations(child: &Child, file: &str, test: &str, sites: &[((u32, u32), &str)]) {
    let lines = child.annotations();
    assert_eq!(
        lines.len(),
        sites.len(),
        "one per site:\n{}",
        child.context()
    );
    let annotations: Vec<Annotation> = lines.iter().map(|l| Annotation::parse(l)).collect();
    for ((line, column), what) in sites {
        let found: Vec<&Annotation> = annotations
            .iter()
            .filter(|a| a.raw("line") == line.to_string())
            .collect();
        assert_eq!(found.len(), 1, "line {line}:\n{}", child.context());
        let annotation = found[0];
        assert_eq!(annotation.keys(), ["file", "line", "col", "title"]);
        assert_eq!(annotation.property("file"), file, "{}", child.context());
        assert_eq!(annotation.raw("col"), column.to_string());
        let title = annotation.property("title");
        assert_eq!(title, format!("leakcheck: {what} leaked by {test}"));
        let message = unescape(&annotation.message);
        assert!(
            message.contains(&format!("{what} spawned here")),
            "{message}"
        );
        assert!(message.contains(&format!("test `{test}`")), "{message}");
        assert!(message.contains("(state: stuck)"), "{message}");
    }
}

// ---- a dropped guard -----------------------------------------------------------------

mod children {
    use super::*;

    /// Leaks three stuck tasks from two sites; the guard's drop fails the
    /// test.
    #[test]
    fn dropped_guard_two_sites() {
        if !is_child("children::dropped_guard_two_sites") {
            return;
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let _guard = Options::new().settle(LONG_SETTLE).verify_none();
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let task = TaskBuilder::new().spawn_on(pending::<()>(), rt.handle()); // site:ci-a
            tasks.push(task.unwrap());
        }
        let task = TaskBuilder::new().spawn_on(pending::<()>(), rt.handle()); // site:ci-b
        tasks.push(task.unwrap());
    }

    /// The same through `#[leak_check]`.
    #[leakcheck::leak_check(settle_ms = 5000)]
    async fn leak_check_attribute() {
        if !is_child("children::leak_check_attribute") {
            return;
        }
        leakcheck::spawn(pending::<()>()); // site:ci-attr
    }

    /// A report the test handles itself: leakcheck writes nothing.
    #[test]
    fn handled_error() {
        if !is_child("children::handled_error") {
            return;
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let guard = Options::new().settle(LONG_SETTLE).verify_none();
        let _task = TaskBuilder::new().spawn_on(pending::<()>(), rt.handle()); // site:ci-handled
        let report = guard.check().unwrap_err();
        assert_eq!(report.stragglers().len(), 1);
        println!("child handled the report");
    }

    /// The same, published twice: the second file does not overwrite the
    /// first.
    #[test]
    fn published_error() {
        if !is_child("children::published_error") {
            return;
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let guard = Options::new().settle(LONG_SETTLE).verify_none();
        let _task = TaskBuilder::new().spawn_on(pending::<()>(), rt.handle()); // site:ci-published
        let report = guard.check().unwrap_err();
        report.publish();
        report.publish();
        println!("child published the report");
    }

    /// A guard opened on a thread whose name needs escaping everywhere.
    #[test]
    fn odd_thread_name() {
        if !is_child("children::odd_thread_name") {
            return;
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        let checked = std::thread::Builder::new()
            .name(super::ODD_NAME.to_owned())
            .spawn(move || {
                let _guard = Options::new().settle(LONG_SETTLE).verify_none();
                let at = &handle;
                let _task = TaskBuilder::new().spawn_on(pending::<()>(), at); // site:ci-odd
            })
            .unwrap()
            .join();
        if let Err(panic) = checked {
            std::panic::resume_unwind(panic);
        }
    }
}

/// A test name with every character a workflow command escapes.
const ODD_NAME: &str = "odd, name: 100%\nline two";

fn github(workspace: Option<&Path>) -> Vec<(&'static str, OsString)> {
    let mut vars = vec![("GITHUB_ACTIONS", "true".into())];
    if let Some(workspace) = workspace {
        vars.push(("GITHUB_WORKSPACE", workspace.into()));
    }
    vars
}

#[test]
fn a_dropped_guard_writes_the_json_report_and_one_annotation_per_site() {
    const TEST: &str = "children::dropped_guard_two_sites";
    let (_base, dir) = report_dir("dropped-guard");
    let mut vars = github(None);
    vars.push(("LEAKCHECK_REPORT_DIR", dir.clone().into()));
    let child = run_child(TEST, &vars);
    assert_eq!(child.status.code(), Some(101), "{}", child.context());
    assert!(child
        .stderr
        .contains(&format!("leakcheck: test `{TEST}` leaked 3 tasks")));

    // <test path with :: as __>-<pid>.json
    let name = format!("children__dropped_guard_two_sites-{}.json", child.pid);
    assert_eq!(
        files_in(&dir),
        std::slice::from_ref(&name),
        "{}",
        child.context()
    );
    let doc = read_json(&dir.join(&name));
    assert_eq!(doc["format"], "leakcheck-report");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["test"], TEST);
    assert_eq!(doc["counts"]["task"], 3);
    let lines: Vec<&Value> = doc["stragglers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["spawn"]["line"])
        .collect();
    let (a, b) = (site("ci-a", "spawn_on("), site("ci-b", "spawn_on("));
    assert_eq!(lines.iter().filter(|l| **l == a.0).count(), 2);
    assert_eq!(lines.iter().filter(|l| **l == b.0).count(), 1);

    let file = match repository_root() {
        Some(root) => this_file_under(&root),
        None => file!().to_owned(),
    };
    assert_annotations(&child, &file, TEST, &[(a, "2 tasks"), (b, "1 task")]);
}

#[test]
fn leak_check_attribute_writes_the_same_outputs() {
    const TEST: &str = "children::leak_check_attribute";
    let (_base, dir) = report_dir("attribute");
    let mut vars = github(None);
    vars.push(("LEAKCHECK_REPORT_DIR", dir.clone().into()));
    let child = run_child(TEST, &vars);
    assert_eq!(child.status.code(), Some(101), "{}", child.context());

    let name = format!("children__leak_check_attribute-{}.json", child.pid);
    assert_eq!(
        files_in(&dir),
        std::slice::from_ref(&name),
        "{}",
        child.context()
    );
    let doc = read_json(&dir.join(&name));
    assert_eq!(doc["test"], TEST);
    assert_eq!(doc["stragglers"][0]["state"], "stuck");
    let at = site("ci-attr", "leakcheck::spawn(");
    assert_eq!(doc["stragglers"][0]["spawn"]["line"], at.0);
    assert_eq!(doc["stragglers"][0]["spawn"]["column"], at.1);

    let file = match repository_root() {
        Some(root) => this_file_under(&root),
        None => file!().to_owned(),
    };
    assert_annotations(&child, &file, TEST, &[(at, "1 task")]);
}

// ---- paths relative to the repository ------------------------------------------------

#[test]
fn github_workspace_at_the_repository_root() {
    const TEST: &str = "children::leak_check_attribute";
    let root = repository_root().unwrap_or_else(package_dir);
    let child = run_child_quickly(TEST, &github(Some(&root)));
    assert_eq!(child.status.code(), Some(101), "{}", child.context());
    let at = site("ci-attr", "leakcheck::spawn(");
    assert_annotations(&child, &this_file_under(&root), TEST, &[(at, "1 task")]);
    if root == package_dir() {
        assert_eq!(
            child.annotations()[0].split(',').next(),
            Some("::error file=tests/ci_outputs.rs")
        );
    }
}

/// With the workspace one level up, the path gains the repository
/// directory's name.
#[test]
fn github_workspace_above_the_repository_root() {
    const TEST: &str = "children::leak_check_attribute";
    let root = repository_root().unwrap_or_else(package_dir);
    let parent = root
        .parent()
        .expect("the repository has a parent directory");
    let child = run_child_quickly(TEST, &github(Some(parent)));
    assert_eq!(child.status.code(), Some(101), "{}", child.context());
    let expected = this_file_under(parent);
    let repo_name = root.file_name().unwrap().to_string_lossy();
    assert!(expected.starts_with(&format!("{repo_name}/")), "{expected}");
    assert!(expected.ends_with("tests/ci_outputs.rs"), "{expected}");
    let at = site("ci-attr", "leakcheck::spawn(");
    assert_annotations(&child, &expected, TEST, &[(at, "1 task")]);
}

/// GitHub sets an absolute `GITHUB_WORKSPACE`; a relative one is ignored
/// and the `.git` directory decides.
#[test]
fn a_relative_github_workspace_is_ignored() {
    const TEST: &str = "children::leak_check_attribute";
    let child = run_child_quickly(TEST, &github(Some(Path::new("somewhere/else"))));
    assert_eq!(child.status.code(), Some(101), "{}", child.context());
    let file = match repository_root() {
        Some(root) => this_file_under(&root),
        None => file!().to_owned(),
    };
    let at = site("ci-attr", "leakcheck::spawn(");
    assert_annotations(&child, &file, TEST, &[(at, "1 task")]);
}

// ---- when nothing is written ---------------------------------------------------------

#[test]
fn without_github_actions_there_are_no_annotations() {
    const TEST: &str = "children::leak_check_attribute";
    let (base, dir) = report_dir("no-github");
    for github_actions in [None, Some("false"), Some("1")] {
        base.clear();
        let mut vars = vec![("LEAKCHECK_REPORT_DIR", dir.clone().into())];
        if let Some(value) = github_actions {
            vars.push(("GITHUB_ACTIONS", value.into()));
        }
        let child = run_child_quickly(TEST, &vars);
        assert_eq!(child.status.code(), Some(101), "{}", child.context());
        assert_eq!(
            child.annotations(),
            Vec::<&str>::new(),
            "{}",
            child.context()
        );
        assert!(!child.stdout.contains("::error"), "{}", child.context());
        assert_eq!(files_in(&dir).len(), 1, "{}", child.context());
    }
}

#[test]
fn without_a_report_dir_only_annotations_are_printed() {
    const TEST: &str = "children::leak_check_attribute";
    let child = run_child_quickly(TEST, &github(None));
    assert_eq!(child.status.code(), Some(101), "{}", child.context());
    assert_eq!(child.annotations().len(), 1, "{}", child.context());
    assert!(!child.stderr.contains("could not write the JSON report"));
}

#[test]
fn a_handled_report_writes_nothing() {
    const TEST: &str = "children::handled_error";
    let (_base, dir) = report_dir("handled");
    let mut vars = github(None);
    vars.push(("LEAKCHECK_REPORT_DIR", dir.clone().into()));
    let child = run_child(TEST, &vars);
    assert!(child.status.success(), "{}", child.context());
    assert!(
        child.stdout.contains("child handled the report"),
        "{}",
        child.context()
    );
    assert_eq!(
        child.annotations(),
        Vec::<&str>::new(),
        "{}",
        child.context()
    );
    assert!(!dir.exists(), "{:?}", files_in(&dir));
}

#[test]
fn a_handled_report_is_written_when_published() {
    const TEST: &str = "children::published_error";
    let (_base, dir) = report_dir("published");
    let mut vars = github(None);
    vars.push(("LEAKCHECK_REPORT_DIR", dir.clone().into()));
    let child = run_child(TEST, &vars);
    assert!(child.status.success(), "{}", child.context());
    assert!(child.stdout.contains("child published the report"));

    let stem = format!("children__published_error-{}", child.pid);
    let first = format!("{stem}.json");
    let files = files_in(&dir);
    assert_eq!(files.len(), 2, "one file per publish: {files:?}");
    assert!(files.contains(&first), "{files:?}");
    for file in &files {
        assert!(
            file.starts_with(&stem) && file.ends_with(".json"),
            "{files:?}"
        );
        let doc = read_json(&dir.join(file));
        assert_eq!(doc["test"], TEST);
        assert_eq!(doc["counts"]["task"], 1);
    }
    let file = match repository_root() {
        Some(root) => this_file_under(&root),
        None => file!().to_owned(),
    };
    let at = site("ci-published", "spawn_on(");
    // Published twice: the same annotation twice.
    let lines = child.annotations();
    assert_eq!(lines.len(), 2, "{}", child.context());
    assert_eq!(lines[0], lines[1]);
    let annotation = Annotation::parse(lines[0]);
    assert_eq!(annotation.property("file"), file);
    assert_eq!(annotation.raw("line"), at.0.to_string());
    assert_eq!(annotation.raw("col"), at.1.to_string());
}

// ---- escaping ------------------------------------------------------------------------

/// `%`, `:`, `,` and newlines are escaped in properties; `%` and newlines in
/// the message. The JSON file's name is made safe; its content is exact.
#[test]
fn names_are_escaped_in_annotations_and_file_names() {
    const TEST: &str = "children::odd_thread_name";
    let (_base, dir) = report_dir("odd");
    let mut vars = github(None);
    vars.push(("LEAKCHECK_REPORT_DIR", dir.clone().into()));
    let child = run_child_quickly(TEST, &vars);
    assert_eq!(child.status.code(), Some(101), "{}", child.context());

    let lines = child.annotations();
    assert_eq!(lines.len(), 1, "{}", child.context());
    let annotation = Annotation::parse(lines[0]);
    let title = annotation.raw("title");
    assert_eq!(
        title,
        "leakcheck%3A 1 task leaked by odd%2C name%3A 100%25%0Aline two"
    );
    assert_eq!(
        annotation.property("title"),
        format!("leakcheck: 1 task leaked by {ODD_NAME}")
    );
    // In the message, `:` and `,` stay as they are.
    assert!(
        annotation
            .message
            .contains("test `odd, name: 100%25%0Aline two`"),
        "{}",
        annotation.message
    );
    let at = site("ci-odd", "spawn_on(");
    assert_eq!(annotation.raw("line"), at.0.to_string());

    let files = files_in(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = &files[0];
    assert!(name.ends_with(&format!("-{}.json", child.pid)), "{name}");
    assert!(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)),
        "{name}"
    );
    let doc = read_json(&dir.join(name));
    assert_eq!(doc["test"], ODD_NAME);
}

// ---- where an annotation starts ------------------------------------------------------

/// GitHub only reads a workflow command at the start of a line.
#[track_caller]
fn assert_annotations_start_their_line(child: &Child) {
    assert_eq!(child.status.code(), Some(101), "{}", child.context());
    let lines: Vec<&str> = child
        .stdout
        .lines()
        .filter(|l| l.contains("::error"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", child.context());
    assert!(lines[0].starts_with("::error file="), "{}", child.context());
}

/// With the test harness's parallel output, the annotation has a line of
/// its own.
#[test]
fn annotations_start_their_line_with_parallel_test_output() {
    let child = run_child_quickly_with(
        "children::leak_check_attribute",
        &github(None),
        &["--test-threads=2"],
    );
    assert_annotations_start_their_line(&child);
}

/// One test at a time (`--test-threads=1`, `RUST_TEST_THREADS=1`, the mode
/// in which leakcheck's OS-thread check is on by default), the harness has
/// already printed `test <name> ... ` when the test fails: the annotation
/// must still start a line of its own.
#[test]
fn annotations_start_their_line_one_test_at_a_time() {
    let child = run_child_quickly("children::leak_check_attribute", &github(None));
    assert_annotations_start_their_line(&child);
}
