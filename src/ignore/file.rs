//! The project's ignore file: the leaks a project accepts, kept in one place
//! and used by every check of every test binary in the workspace.
//!
//! It is `leakcheck.ignore` at the workspace root, or the file
//! `LEAKCHECK_IGNORE_FILE` names. Each line is one rule, a comment or blank:
//!
//! ```text
//! # The pool's reaper outlives each test by design.
//! location src/pool.rs:88
//! name metrics-flusher
//! frame hyper::client::pool
//! ```
//!
//! It is read once per process. A line that is not a rule is an error naming
//! the file, the line and what is accepted, which every guard reports, as it
//! does a bad environment variable. So that the list only shrinks, the first
//! time each rule matches a straggler is noted in `LEAKCHECK_REPORT_DIR`,
//! where the run-wide summary finds the rules that matched nothing.

use super::{LocationPattern, Rule, LOCATION_FORMS};
use crate::config::{self, IgnoreFile};
use crate::report::Straggler;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The file's name at the workspace root.
pub(crate) const FILE_NAME: &str = "leakcheck.ignore";

/// The rules of the project's ignore file.
#[derive(Debug)]
pub(crate) struct ProjectFile {
    /// The path as reports show it, relative to the workspace root.
    shown: String,
    path: PathBuf,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    line: usize,
    /// The rule as written, without its comment.
    text: String,
    rule: Rule,
    matched: AtomicBool,
}

/// The project's file, read on first use: `Ok(None)` when there is none, an
/// error naming the file and line when it is not valid.
pub(crate) fn project() -> &'static Result<Option<ProjectFile>, String> {
    static FILE: OnceLock<Result<Option<ProjectFile>, String>> = OnceLock::new();
    FILE.get_or_init(load)
}

/// Whether a rule of the project's file matches `straggler`.
pub(crate) fn accepts(straggler: &Straggler) -> bool {
    let Ok(Some(file)) = project() else {
        return false;
    };
    let Some(entry) = file.entries.iter().find(|e| e.rule.matches(straggler)) else {
        return false;
    };
    if !entry.matched.swap(true, Ordering::Relaxed) {
        note_match(file, entry);
    }
    true
}

fn load() -> Result<Option<ProjectFile>, String> {
    let setting = config::get()
        .as_ref()
        .map_or(IgnoreFile::Found, |config| config.ignore_file.clone());
    let root = crate::capture::workspace_root();
    let (path, must_exist) = match setting {
        IgnoreFile::Off => return Ok(None),
        IgnoreFile::Found => match root {
            Some(root) => (root.join(FILE_NAME), false),
            None => return Ok(None),
        },
        IgnoreFile::At(path) => match root {
            Some(root) if path.is_relative() => (root.join(path), true),
            _ => (path, true),
        },
    };
    let shown = crate::capture::display_path(&path).into_owned();
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| format!("leakcheck: {shown} is not valid UTF-8"))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !must_exist => {
            return Ok(None)
        }
        Err(error) => {
            return Err(format!(
                "leakcheck: the ignore file {shown} cannot be read: {error}{}",
                if must_exist {
                    " (LEAKCHECK_IGNORE_FILE names it; set it to `off` for no file)"
                } else {
                    ""
                }
            ))
        }
    };
    let entries = parse(&shown, &text)?;
    Ok(Some(ProjectFile {
        shown,
        path,
        entries,
    }))
}

/// What a line may be, for error messages.
const LINE_FORMS: &str = "each line is a rule (`name NAME`, where a trailing `*` matches a \
                          prefix; `location FILE[:LINE[:COL]]`; or `frame PART_OF_A_FUNCTION_PATH`), \
                          a comment starting with `#`, or blank";

fn parse(shown: &str, text: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let text = without_comment(raw).trim();
        if text.is_empty() {
            continue;
        }
        let bad = |problem: String| format!("leakcheck: {shown}:{line}: {problem}; {LINE_FORMS}");
        let (kind, pattern) = match text.split_once(char::is_whitespace) {
            Some((kind, pattern)) => (kind, pattern.trim()),
            None => (text, ""),
        };
        let rule = match kind {
            "name" => Rule::name(pattern)
                .map_err(|why| bad(format!("`name {pattern}` is not a rule: {why}")))?,
            "frame" => Rule::frame(pattern)
                .map_err(|why| bad(format!("`frame {pattern}` is not a rule: {why}")))?,
            "location" => LocationPattern::parse(pattern)
                .map(Rule::Location)
                .map_err(|why| {
                    bad(format!(
                        "`location {pattern}` is not a rule: {why} (a location is {LOCATION_FORMS})"
                    ))
                })?,
            other => return Err(bad(format!("`{other}` is not a kind of rule"))),
        };
        entries.push(Entry {
            line,
            text: format!("{kind} {pattern}"),
            rule,
            matched: AtomicBool::new(false),
        });
    }
    Ok(entries)
}

/// The line up to a `#` that starts it or follows white space.
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

/// Notes in `LEAKCHECK_REPORT_DIR` that a rule matched, for the run-wide
/// summary: one file per process, a line per rule, so processes never
/// write to the same file.
fn note_match(file: &ProjectFile, entry: &Entry) {
    let Some(dir) = config::get()
        .as_ref()
        .ok()
        .and_then(|config| config.report_dir.as_deref())
    else {
        return;
    };
    let _ = write_match(dir, file, entry);
}

fn write_match(dir: &Path, file: &ProjectFile, entry: &Entry) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = format!("ignore-matches-{}.txt", std::process::id());
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))?;
    // A line is written whole by one `write` on a file opened to append.
    let line = format!(
        "{}\t{}\t{}\t{}\n",
        file.path.display(),
        file.shown,
        entry.line,
        entry.text
    );
    out.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<(usize, String)> {
        parse("leakcheck.ignore", text)
            .unwrap()
            .into_iter()
            .map(|entry| (entry.line, entry.text))
            .collect()
    }

    #[test]
    fn rules_comments_and_blank_lines() {
        let text = "# accepted leaks\n\nlocation src/pool.rs:88   # the reaper\n\
                    name  metrics-*\nframe hyper::client::pool\nname a#b\n";
        assert_eq!(
            rules(text),
            [
                (3, "location src/pool.rs:88".to_owned()),
                (4, "name metrics-*".to_owned()),
                (5, "frame hyper::client::pool".to_owned()),
                (6, "name a#b".to_owned()),
            ]
        );
    }

    #[test]
    fn a_bad_line_names_the_file_the_line_and_what_is_accepted() {
        for (text, line, problem) in [
            ("nmae reaper", 1, "`nmae` is not a kind of rule"),
            (
                "\n\nname",
                3,
                "`name ` is not a rule: it would match no name",
            ),
            (
                "name *",
                1,
                "`name *` is not a rule: it would match no name or every name",
            ),
            (
                "# x\nlocation :12",
                2,
                "`location :12` is not a rule: the file part is empty",
            ),
            ("location a.rs:0", 1, "the line must be a number"),
            (
                "frame",
                1,
                "`frame ` is not a rule: it would match every frame",
            ),
        ] {
            let error = parse("leakcheck.ignore", text).unwrap_err();
            assert!(
                error.starts_with(&format!("leakcheck: leakcheck.ignore:{line}: ")),
                "{error}"
            );
            assert!(error.contains(problem), "{error}");
            assert!(error.contains(LINE_FORMS), "{error}");
        }
    }
}
