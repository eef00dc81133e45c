//! Reading the JSON reports that leakcheck writes into
//! `LEAKCHECK_REPORT_DIR`, one file per leaking test, in the format of its
//! `docs/report-format.md`. Only what a summary or a list of accepted leaks
//! needs is kept.

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The newest format version this reader understands.
pub const FORMAT_VERSION: u64 = 1;

/// One test's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The test that leaked; `None` for a check outside a named test, such
    /// as the whole-binary check at exit.
    pub test: Option<String>,
    /// The file name of the test executable that wrote the report.
    pub binary: Option<String>,
    /// Written under `LEAKCHECK=warn`: the leak failed no test.
    pub warn: bool,
    pub leaks: Vec<Leak>,
    pub untracked_tasks: u64,
    pub untracked_threads: u64,
}

/// One straggler of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// `task`, `blocking_task`, `local_task` or `thread`.
    pub kind: String,
    pub name: Option<String>,
    /// `stuck`, `waiting`, `runnable`, `busy`, `not_started`, `running` or
    /// `unknown`.
    pub state: String,
    pub site: Site,
    /// tokio's task dump of where the task is suspended, when known.
    pub suspended_at: Option<String>,
}

/// A spawn site: ordered by file, line, then column, as leakcheck orders
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Site {
    pub file: String,
    pub line: u64,
    pub column: u64,
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The reports of a directory, and the files in it that are not readable
/// reports.
#[derive(Debug, Default)]
pub struct ReportDir {
    pub reports: Vec<Report>,
    /// Each `*.json` file that could not be read, with why.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// The `*.json` files of a directory and when each was last written, to
/// tell a run's reports from those already there.
#[derive(Debug, Default, Clone)]
pub struct Listing(HashMap<PathBuf, Option<SystemTime>>);

impl Listing {
    /// The JSON files in `dir` now; empty when `dir` does not exist.
    pub fn of(dir: &Path) -> std::io::Result<Listing> {
        let mut files = HashMap::new();
        let notes = crate::accepted::notes(dir)?;
        for path in json_files(dir)?.into_iter().chain(notes) {
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            files.insert(path, modified);
        }
        Ok(Listing(files))
    }

    /// Whether `path` was listed and has not been written since.
    pub fn has_unchanged(&self, path: &Path) -> bool {
        match self.0.get(path) {
            Some(before) => {
                let now = std::fs::metadata(path).and_then(|m| m.modified()).ok();
                *before == now
            }
            None => false,
        }
    }
}

/// Reads every `*.json` file directly in `dir`, in name order, leaving out
/// those in `except` that have not changed since it was taken. Other files
/// and subdirectories are not reports and are left alone.
pub fn read_dir(dir: &Path, except: &Listing) -> std::io::Result<ReportDir> {
    let mut read = ReportDir::default();
    for path in json_files(dir)? {
        if except.has_unchanged(&path) {
            continue;
        }
        match std::fs::read_to_string(&path)
            .map_err(|error| error.to_string())
            .and_then(|text| parse(&text))
        {
            Ok(report) => read.reports.push(report),
            Err(why) => read.unreadable.push((path, why)),
        }
    }
    Ok(read)
}

fn json_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    files_in(dir, |name| name.ends_with(".json"))
}

/// The files directly in `dir` whose names `wanted` accepts, in name order;
/// none when `dir` does not exist.
pub fn files_in(dir: &Path, wanted: impl Fn(&str) -> bool) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let name_wanted = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(&wanted);
        if name_wanted && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Parses one report. The error says which field is wrong and what was
/// expected.
pub fn parse(text: &str) -> Result<Report, String> {
    let doc: Value = serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
    if doc.get("format").and_then(Value::as_str) != Some("leakcheck-report") {
        return Err(r#"not a leakcheck report: `format` is not "leakcheck-report""#.to_owned());
    }
    let version = number(&doc, "version")?;
    if version > FORMAT_VERSION {
        return Err(format!(
            "format version {version} is newer than this cargo-leakcheck reads \
             (up to {FORMAT_VERSION}); install a newer cargo-leakcheck"
        ));
    }
    let counts = doc
        .get("counts")
        .ok_or_else(|| "`counts` is missing".to_owned())?;
    let stragglers = doc
        .get("stragglers")
        .and_then(Value::as_array)
        .ok_or_else(|| "`stragglers` is missing or not an array".to_owned())?;
    let mut leaks = Vec::with_capacity(stragglers.len());
    for (i, straggler) in stragglers.iter().enumerate() {
        let at = |field: &str| format!("stragglers[{i}].{field}");
        let spawn = straggler
            .get("spawn")
            .ok_or_else(|| format!("`{}` is missing", at("spawn")))?;
        leaks.push(Leak {
            kind: string(straggler, "kind", &at("kind"))?,
            name: optional_string(straggler, "name", &at("name"))?,
            state: string(straggler, "state", &at("state"))?,
            site: Site {
                file: string(spawn, "file", &at("spawn.file"))?,
                line: number_at(spawn, "line", &at("spawn.line"))?,
                column: number_at(spawn, "column", &at("spawn.column"))?,
            },
            suspended_at: optional_string(straggler, "suspended_at", &at("suspended_at"))?,
        });
    }
    Ok(Report {
        test: optional_string(&doc, "test", "test")?,
        binary: optional_string(&doc, "binary", "binary")?,
        // Absent in reports written before the field was added.
        warn: match doc.get("warn") {
            None => false,
            Some(Value::Bool(warn)) => *warn,
            Some(_) => return Err("`warn` is not true or false".to_owned()),
        },
        leaks,
        untracked_tasks: number_at(counts, "untracked_task", "counts.untracked_task")?,
        untracked_threads: number_at(counts, "untracked_thread", "counts.untracked_thread")?,
    })
}

fn number(value: &Value, field: &str) -> Result<u64, String> {
    number_at(value, field, field)
}

fn number_at(value: &Value, field: &str, path: &str) -> Result<u64, String> {
    value
        .get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("`{path}` is missing or not a whole number"))
}

fn string(value: &Value, field: &str, path: &str) -> Result<String, String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("`{path}` is missing or not a string"))
}

/// A string or null; a field added after the first reports may be absent.
fn optional_string(value: &Value, field: &str, path: &str) -> Result<Option<String>, String> {
    match value.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{path}` is not a string or null")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"format":"leakcheck-report","version":1,"test":"net::tests::accept","binary":"net-0a1b","warn":true,"waited_ms":500.1,
        "counts":{"task":1,"blocking_task":0,"local_task":0,"thread":0,"untracked_task":2,"untracked_thread":0},
        "stragglers":[{"kind":"task","name":"accept-loop","state":"waiting","spawn":{"file":"src/net.rs","line":41,"column":9},
        "age_ms":501.0,"task_id":"17","suspended_at":null,"figures":{"polls":3,"wakes":2,"polls_while_settling":0,"idle_ms":498.1,"detail":null},"backtrace":null}],
        "untracked_threads":[],"backtraces":[],"notes":[]}"#;

    #[test]
    fn a_report_is_read_with_its_sites() {
        let report = parse(ONE).unwrap();
        assert_eq!(
            report,
            Report {
                test: Some("net::tests::accept".into()),
                binary: Some("net-0a1b".into()),
                warn: true,
                leaks: vec![Leak {
                    kind: "task".into(),
                    name: Some("accept-loop".into()),
                    state: "waiting".into(),
                    site: Site {
                        file: "src/net.rs".into(),
                        line: 41,
                        column: 9
                    },
                    suspended_at: None,
                }],
                untracked_tasks: 2,
                untracked_threads: 0,
            }
        );
    }

    #[test]
    fn fields_added_within_version_1_may_be_absent() {
        let old = ONE
            .replace(r#""binary":"net-0a1b","warn":true,"#, "")
            .replace(r#""suspended_at":null,"#, "");
        let report = parse(&old).unwrap();
        assert_eq!((report.binary, report.warn), (None, false));
        assert_eq!(report.leaks[0].suspended_at, None);
    }

    #[test]
    fn a_bad_report_says_which_field_is_wrong() {
        assert!(parse("{").unwrap_err().starts_with("not JSON: "));
        assert_eq!(
            parse(r#"{"format":"other"}"#).unwrap_err(),
            r#"not a leakcheck report: `format` is not "leakcheck-report""#
        );
        assert_eq!(
            parse(&ONE.replace(r#""version":1"#, r#""version":2"#)).unwrap_err(),
            "format version 2 is newer than this cargo-leakcheck reads (up to 1); install a newer cargo-leakcheck"
        );
        assert_eq!(
            parse(&ONE.replace(r#""line":41"#, r#""line":"41""#)).unwrap_err(),
            "`stragglers[0].spawn.line` is missing or not a whole number"
        );
        assert_eq!(
            parse(&ONE.replace(r#""warn":true"#, r#""warn":1"#)).unwrap_err(),
            "`warn` is not true or false"
        );
    }
}
