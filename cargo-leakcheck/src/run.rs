//! Running a suite with full visibility: the target directory, the cfg,
//! the report directory, the runner, and the summary at the end.

use crate::accepted;
use crate::cli::Runner;
use crate::reports::{self, Listing};
use crate::rustflags;
use crate::summary;
use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Overrides where the instrumented build goes.
pub const TARGET_DIR_VAR: &str = "CARGO_LEAKCHECK_TARGET_DIR";
/// The directory inside the target directory that reports go to.
pub const REPORTS: &str = "leakcheck-reports";

/// Why cargo-leakcheck itself could not do what it was asked.
pub struct Failure(pub String);

/// Runs the suite and returns the exit code to leave with: the runner's.
pub fn run(runner: Runner, args: Vec<OsString>) -> Result<i32, Failure> {
    let run = execute(runner, &args, &[])?;
    match run.reports() {
        Ok(read) => eprint!(
            "\n{}",
            summary::render_dir(&read, &shown(&run.report_dir, &run.cwd))
        ),
        Err(error) => eprintln!(
            "\ncargo-leakcheck: could not read the reports in {}: {error}",
            run.report_dir.display()
        ),
    }
    if let Some(file) = run.ignore_file(&args)? {
        eprint!("{}", file.stale_section(&run));
    }
    Ok(run.code)
}

/// Runs `cargo test` with `LEAKCHECK=warn`, so that every leak is reported
/// and none fails a test, then adds a rule to the project's ignore file for
/// each spawn site that leaked. Rules already there are kept, and those that
/// matched nothing are listed.
pub fn baseline(args: Vec<OsString>) -> Result<i32, Failure> {
    let run = execute(Runner::Test, &args, &[("LEAKCHECK", "warn")])?;
    let read = run.reports().map_err(|error| {
        Failure(format!(
            "could not read the reports in {}: {error}",
            run.report_dir.display()
        ))
    })?;
    if !read.unreadable.is_empty() {
        eprint!(
            "\n{}",
            summary::render_dir(&read, &shown(&run.report_dir, &run.cwd))
        );
        return Err(Failure(
            "some reports could not be read, so the baseline would be incomplete; nothing was written"
                .to_owned(),
        ));
    }
    let Some(file) = run.ignore_file(&args)? else {
        return Err(Failure(
            "LEAKCHECK_IGNORE_FILE is `off`, so there is no ignore file to write; \
             unset it, or set it to a path"
                .to_owned(),
        ));
    };
    eprint!(
        "\n{}",
        summary::render_dir(&read, &shown(&run.report_dir, &run.cwd))
    );
    let baseline = accepted::baseline(&read.reports);
    let written = accepted::with_rules(&file.text, &baseline.rules);
    if written != file.text {
        std::fs::write(&file.path, &written).map_err(|error| {
            Failure(format!("could not write {}: {error}", file.path.display()))
        })?;
    }
    eprintln!(
        "\ncargo-leakcheck baseline: {} added to {}",
        match baseline.rules.len() {
            1 => "1 rule".to_owned(),
            n => format!("{n} rules"),
        },
        file.shown
    );
    for rule in &baseline.rules {
        eprintln!("  {rule}");
    }
    if baseline.count_only_tests > 0 {
        eprintln!(
            "  {} leaked work that only a count saw, which no rule can name: put \
             `#[leak_check]` above their `#[tokio::test]` to see where it was spawned \
             (location rules match only where a spawn site is known: under \
             `cargo leakcheck`, or with `--cfg tokio_unstable` set for good)",
            match baseline.count_only_tests {
                1 => "1 test".to_owned(),
                n => format!("{n} tests"),
            }
        );
    }
    eprint!("{}", file.stale_section(&run));
    Ok(run.code)
}

/// A finished run of the suite.
struct Finished {
    code: i32,
    cwd: PathBuf,
    report_dir: PathBuf,
    /// The report directory as it was before the run.
    before: Listing,
}

impl Finished {
    fn reports(&self) -> std::io::Result<reports::ReportDir> {
        reports::read_dir(&self.report_dir, &self.before)
    }

    /// The ignore file the run's checks read, if any.
    fn ignore_file(&self, args: &[OsString]) -> Result<Option<IgnoreFile>, Failure> {
        let setting = non_empty_var("LEAKCHECK_IGNORE_FILE")?
            .map(|value| {
                value
                    .into_string()
                    .map_err(|_| Failure("LEAKCHECK_IGNORE_FILE is not valid UTF-8".to_owned()))
            })
            .transpose()?;
        let root = workspace_root(&cargo(), args, &self.cwd)?;
        let Some(path) = accepted::locate(&root, setting.as_deref()) else {
            return Ok(None);
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => {
                return Err(Failure(format!(
                    "could not read the ignore file {}: {error}",
                    path.display()
                )))
            }
        };
        let shown = match path.strip_prefix(&root) {
            Ok(relative) => relative.display().to_string(),
            Err(_) => path.display().to_string(),
        };
        Ok(Some(IgnoreFile { path, shown, text }))
    }
}

/// The project's ignore file as the run found it.
struct IgnoreFile {
    path: PathBuf,
    shown: String,
    text: String,
}

impl IgnoreFile {
    fn stale_section(&self, run: &Finished) -> String {
        let rules = accepted::rules(&self.text);
        let matched = accepted::matched_lines(&run.report_dir, &self.path, |note| {
            !run.before.has_unchanged(note)
        });
        accepted::stale_section(&self.shown, &rules, &matched)
    }
}

fn execute(runner: Runner, args: &[OsString], extra: &[(&str, &str)]) -> Result<Finished, Failure> {
    let cwd = current_dir()?;
    let cargo = cargo();
    let target_dir = target_dir(&cargo, args, &cwd)?;
    let (report_dir, before) = match non_empty_var("LEAKCHECK_REPORT_DIR")? {
        // The user's directory may hold reports of other runs: only files
        // written during this one are summarised.
        Some(dir) => {
            let dir = cwd.join(dir);
            let before = Listing::of(&dir)
                .map_err(|error| Failure(format!("could not list {}: {error}", dir.display())))?;
            (dir, before)
        }
        None => {
            let dir = target_dir.join(REPORTS);
            empty_report_dir(&dir)?;
            (dir, Listing::default())
        }
    };
    let vars: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    let plan = rustflags::plan(
        |name| std::env::var_os(name),
        &vars,
        &rustflags::config_files(&cwd, cargo_home.as_deref()),
    )
    .map_err(Failure)?;

    let mut command = Command::new(&cargo);
    command.args(runner.cargo_args());
    for value in &plan.config {
        command.arg("--config").arg(value);
    }
    command
        .args(args)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("LEAKCHECK_REPORT_DIR", &report_dir)
        .envs(plan.env.iter().map(|(name, value)| (name, value)))
        .envs(extra.iter().copied());
    eprintln!(
        "cargo-leakcheck: cargo {}{}{} in {}, {}; reports to {}",
        runner.cargo_args().join(" "),
        if args.is_empty() { "" } else { " " },
        args.iter()
            .map(|arg| arg.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        shown(&target_dir, &cwd),
        plan.said,
        shown(&report_dir, &cwd),
    );
    if !extra.is_empty() {
        let set: Vec<String> = extra
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        eprintln!("cargo-leakcheck: with {}", set.join(" "));
    }
    let status = command.status().map_err(|error| {
        Failure(format!(
            "could not run `{}`: {error}",
            Path::new(&cargo).display()
        ))
    })?;
    Ok(Finished {
        code: exit_code(status),
        cwd,
        report_dir,
        before,
    })
}

/// Summarises a report directory on stdout. Exits 0 when every report in
/// it was read.
pub fn summary(dir: Option<PathBuf>) -> Result<i32, Failure> {
    let cwd = current_dir()?;
    let dir = match (dir, non_empty_var("LEAKCHECK_REPORT_DIR")?) {
        (Some(dir), _) => cwd.join(dir),
        (None, Some(dir)) => cwd.join(dir),
        (None, None) => target_dir(&cargo(), &[], &cwd)?.join(REPORTS),
    };
    if !dir.is_dir() {
        return Err(Failure(format!(
            "the report directory {} does not exist; give the LEAKCHECK_REPORT_DIR of a run, \
             or run `cargo leakcheck test` first",
            dir.display()
        )));
    }
    let read = reports::read_dir(&dir, &Listing::default())
        .map_err(|error| Failure(format!("could not read {}: {error}", dir.display())))?;
    print!("{}", summary::render_dir(&read, &shown(&dir, &cwd)));
    Ok(if read.unreadable.is_empty() { 0 } else { 2 })
}

fn current_dir() -> Result<PathBuf, Failure> {
    std::env::current_dir()
        .map_err(|error| Failure(format!("the current directory is not readable: {error}")))
}

/// The cargo that ran us, as cargo tells its subcommands.
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A variable's value; set but empty is an error, since it can only be a
/// mistake.
fn non_empty_var(name: &str) -> Result<Option<OsString>, Failure> {
    match std::env::var_os(name) {
        Some(value) if value.is_empty() => Err(Failure(format!(
            "{name} is set but empty; set it to a directory, or unset it"
        ))),
        other => Ok(other),
    }
}

/// `CARGO_LEAKCHECK_TARGET_DIR`, else `leakcheck` in cargo's own target
/// directory (which honours `CARGO_TARGET_DIR`, `build.target-dir` and a
/// `--manifest-path` among the user's arguments).
fn target_dir(cargo: &OsStr, args: &[OsString], cwd: &Path) -> Result<PathBuf, Failure> {
    if let Some(dir) = non_empty_var(TARGET_DIR_VAR)? {
        return Ok(cwd.join(dir));
    }
    let doc = metadata(cargo, args)?;
    let dir = doc
        .get("target_directory")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure("`cargo metadata` named no `target_directory`".to_owned()))?;
    Ok(cwd.join(dir).join("leakcheck"))
}

/// The workspace root, where leakcheck looks for the project's ignore
/// file; the working directory if cargo names none.
fn workspace_root(cargo: &OsStr, args: &[OsString], cwd: &Path) -> Result<PathBuf, Failure> {
    let doc = metadata(cargo, args)?;
    Ok(match doc.get("workspace_root").and_then(Value::as_str) {
        Some(root) => cwd.join(root),
        None => cwd.to_path_buf(),
    })
}

/// `cargo metadata` for the workspace the user's arguments name.
fn metadata(cargo: &OsStr, args: &[OsString]) -> Result<Value, Failure> {
    let mut metadata = Command::new(cargo);
    metadata.args(["metadata", "--format-version", "1", "--no-deps"]);
    if let Some(manifest) = manifest_path(args) {
        metadata.arg("--manifest-path").arg(manifest);
    }
    let output = metadata.output().map_err(|error| {
        Failure(format!(
            "could not run `{} metadata` to find the target directory: {error}",
            Path::new(cargo).display()
        ))
    })?;
    if !output.status.success() {
        return Err(Failure(format!(
            "`cargo metadata` could not find the target directory ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        )));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|error| Failure(format!("`cargo metadata` printed no JSON: {error}")))
}

/// `--manifest-path P` or `--manifest-path=P` before any `--`.
fn manifest_path(args: &[OsString]) -> Option<OsString> {
    let mut args = args.iter().take_while(|arg| *arg != "--");
    while let Some(arg) = args.next() {
        if arg == "--manifest-path" {
            return args.next().cloned();
        }
        if let Some(path) = arg
            .to_str()
            .and_then(|a| a.strip_prefix("--manifest-path="))
        {
            return Some(path.into());
        }
    }
    None
}

/// Makes `dir` exist with no report in it: the reports of an earlier run
/// would be counted again.
fn empty_report_dir(dir: &Path) -> Result<(), Failure> {
    let failed = |error: std::io::Error| {
        Failure(format!(
            "could not prepare the report directory {}: {error}",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    let earlier = reports::files_in(dir, |name| {
        name.ends_with(".json") || name.starts_with(accepted::MATCHES_PREFIX)
    })
    .map_err(failed)?;
    for path in earlier {
        std::fs::remove_file(&path).map_err(failed)?;
    }
    Ok(())
}

/// `path` relative to `cwd` when it is inside it, for shorter lines.
fn shown(path: &Path, cwd: &Path) -> String {
    match path.strip_prefix(cwd) {
        Ok(relative) if !relative.as_os_str().is_empty() => relative.display().to_string(),
        _ => path.display().to_string(),
    }
}

/// The runner's exit code; killed by a signal, 128 plus the signal, as a
/// shell reports it.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_path_is_found_in_either_spelling() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            manifest_path(&args(&["-p", "x", "--manifest-path", "a/Cargo.toml"])),
            Some("a/Cargo.toml".into())
        );
        assert_eq!(
            manifest_path(&args(&["--manifest-path=b/Cargo.toml"])),
            Some("b/Cargo.toml".into())
        );
        assert_eq!(manifest_path(&args(&["--", "--manifest-path", "c"])), None);
    }

    #[test]
    fn paths_inside_the_working_directory_are_shown_relative() {
        let cwd = Path::new("/ws");
        assert_eq!(
            shown(Path::new("/ws/target/leakcheck"), cwd),
            "target/leakcheck"
        );
        assert_eq!(shown(Path::new("/elsewhere/t"), cwd), "/elsewhere/t");
        assert_eq!(shown(Path::new("/ws"), cwd), "/ws");
    }
}
