//! Where a failed check's report goes besides the test's panic message: a
//! JSON file per test for CI artifacts, and GitHub annotations that put the
//! leak on the spawn line of a pull request's diff.

use super::{by_site, count_by_kind, LeakReport};
use crate::config::EnvConfig;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Writes the side outputs the environment asks for. Failures to write are
/// reported on stderr and never fail the test a second way.
pub(crate) fn publish(report: &LeakReport, config: &EnvConfig) {
    if let Some(dir) = &config.report_dir {
        if let Err(error) = write_json(report, dir) {
            let _ = writeln!(
                std::io::stderr(),
                "leakcheck: could not write the JSON report to {}: {error}",
                dir.display()
            );
        }
    }
    if config.github_actions {
        let root = repository_root(config.github_workspace.as_deref());
        let mut out = std::io::stdout().lock();
        // Workflow commands must start a line; libtest may have left one
        // open (`test name ... `).
        let _ = writeln!(out);
        for line in annotations(report, root.as_deref(), config.warn) {
            let _ = writeln!(out, "{line}");
        }
    }
}

fn write_json(report: &LeakReport, dir: &Path) -> std::io::Result<PathBuf> {
    static WRITTEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    std::fs::create_dir_all(dir)?;
    let base = file_stem(report.test_name());
    let stem = {
        let mut written = WRITTEN.lock();
        let written = written.get_or_insert_with(HashSet::new);
        let mut stem = base.clone();
        let mut n = 1;
        while !written.insert(stem.clone()) {
            n += 1;
            stem = format!("{base}-{n}");
        }
        stem
    };
    let path = dir.join(format!("{stem}.json"));
    std::fs::write(&path, report.to_json())?;
    Ok(path)
}

/// A file name from a test path: `net::tests::accept_loop` becomes
/// `net__tests__accept_loop`.
pub(crate) fn file_stem(test: Option<&str>) -> String {
    let test = test.unwrap_or("unnamed-test");
    let stem: String = test
        .replace("::", "__")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}-{}", stem, std::process::id())
}

/// One `::error` workflow command per creation site, or `::warning` when
/// leaks do not fail tests (`LEAKCHECK=warn`).
pub(crate) fn annotations(
    report: &LeakReport,
    repo_root: Option<&Path>,
    warn: bool,
) -> Vec<String> {
    let level = if warn { "warning" } else { "error" };
    let test = report.test_name().unwrap_or("a test");
    let mut lines = Vec::new();
    for group in by_site(report.stragglers()) {
        let first = group.members[0];
        let file = repository_path(group.location.file(), repo_root);
        let what = super::group::counted(group.members.len(), group.kind);
        let title = format!("leakcheck: {what} leaked by {test}");
        let message = format!(
            "{what} spawned here outlived test `{test}` (state: {}). Run the test to see the full report.",
            first.state()
        );
        lines.push(format!(
            "::{level} file={},line={},col={},title={}::{}",
            escape_property(&file),
            group.location.line(),
            group.location.column(),
            escape_property(&title),
            escape_data(&message)
        ));
    }
    if report.untracked_tasks() > 0 || !report.untracked_threads().is_empty() {
        let mut message =
            format!("test `{test}` leaked work that leakcheck's wrappers did not spawn");
        if !report.stragglers().is_empty() {
            message.push_str(&format!(" besides {}", count_by_kind(report.stragglers())));
        }
        lines.push(format!(
            "::{level} title={}::{}",
            escape_property(&format!("leakcheck: untracked leak in {test}")),
            escape_data(&message)
        ));
    }
    lines
}

/// The root of the repository: `GITHUB_WORKSPACE` in GitHub Actions, else
/// the nearest ancestor of the working directory with a `.git`.
fn repository_root(workspace: Option<&Path>) -> Option<PathBuf> {
    if let Some(workspace) = workspace {
        return Some(workspace.to_path_buf());
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .find(|dir| dir.join(".git").exists())
        .map(Path::to_path_buf)
}

/// `Location::file()` is relative to the directory rustc ran in, which for a
/// workspace member is the workspace root, while tests run in the package's
/// own directory. Find the ancestor in which the file exists, then express
/// it relative to the repository root.
pub(crate) fn repository_path(file: &str, repo_root: Option<&Path>) -> String {
    let path = Path::new(file);
    let absolute = if path.is_absolute() {
        Some(path.to_path_buf())
    } else {
        std::env::current_dir().ok().and_then(|cwd| {
            cwd.ancestors()
                .map(|dir| dir.join(path))
                .find(|candidate| candidate.is_file())
        })
    };
    match (absolute, repo_root) {
        (Some(absolute), Some(root)) => absolute
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_else(|_| file.to_owned()),
        _ => file.to_owned(),
    }
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_the_workflow_command_rules() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn file_stems_are_safe_names() {
        let stem = file_stem(Some("net::tests::accept loop"));
        assert!(stem.starts_with("net__tests__accept_loop-"), "{stem}");
    }
}
