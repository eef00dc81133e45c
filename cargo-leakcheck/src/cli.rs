//! The command line: which command to run, and the arguments it passes on.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// What `cargo leakcheck` was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Run the suite with a test runner, passing `args` on unchanged.
    Run { runner: Runner, args: Vec<OsString> },
    /// Run `cargo test` in warn mode and add the leaks found to the
    /// project's ignore file.
    Baseline { args: Vec<OsString> },
    /// Summarise the reports in a directory, or in the default one.
    Summary { dir: Option<PathBuf> },
    /// Print the usage text.
    Help,
    /// Print the version.
    Version,
}

/// The test runners `cargo leakcheck` drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// `cargo test`.
    Test,
    /// `cargo nextest run`.
    Nextest,
}

impl Runner {
    /// The cargo subcommand and its own subcommand, if any.
    pub fn cargo_args(self) -> &'static [&'static str] {
        match self {
            Runner::Test => &["test"],
            Runner::Nextest => &["nextest", "run"],
        }
    }
}

/// Bad command-line input: what was wrong, and what is accepted.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const COMMANDS: &str = "`test`, `nextest`, `baseline`, `summary`, `help` or `--version`";

pub const USAGE: &str = "\
cargo-leakcheck: run a test suite with leakcheck's full visibility

Usage:
    cargo leakcheck test [ARGS]...      `cargo test ARGS` with --cfg tokio_unstable
    cargo leakcheck nextest [ARGS]...   `cargo nextest run ARGS`, the same way
    cargo leakcheck baseline [ARGS]...  `cargo test ARGS` with LEAKCHECK=warn, then a rule in
                                        leakcheck.ignore for each site that leaked
    cargo leakcheck summary [DIR]       the run-wide summary of the JSON reports in DIR
    cargo leakcheck help                this text (also -h, --help)
    cargo leakcheck --version           the version (also -V)

`test` and `nextest` build in a target directory of their own
($CARGO_LEAKCHECK_TARGET_DIR, else `leakcheck` inside cargo's target
directory), add `--cfg tokio_unstable` to the rustflags you already have,
point LEAKCHECK_REPORT_DIR at `leakcheck-reports` inside that directory
(emptied first) unless you set it, pass ARGS on unchanged, print the
run-wide summary of the reports, and exit with the test runner's status.

After `test` and `nextest`, the rules of the project's ignore file
(leakcheck.ignore at the workspace root, or $LEAKCHECK_IGNORE_FILE) that
matched nothing in the run are listed, so that the list only shrinks.
`baseline` keeps the rules already there and adds one `location` rule per
spawn site that leaked; run it on the whole suite, then commit the file.

`summary` reads DIR, else $LEAKCHECK_REPORT_DIR, else the directory the last
`test` or `nextest` run wrote to.
";

/// Parses the arguments after the program name. Run as `cargo leakcheck`,
/// cargo passes `leakcheck` first; run as `cargo-leakcheck`, it is absent.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut args = args.into_iter().peekable();
    if args.peek().is_some_and(|first| first == "leakcheck") {
        args.next();
    }
    let Some(command) = args.next() else {
        return Err(UsageError(format!("no command given; expected {COMMANDS}")));
    };
    let rest: Vec<OsString> = args.collect();
    match command.to_str() {
        Some("test") => Ok(Command::Run {
            runner: Runner::Test,
            args: rest,
        }),
        Some("nextest") => Ok(Command::Run {
            runner: Runner::Nextest,
            args: rest,
        }),
        Some("baseline") => Ok(Command::Baseline { args: rest }),
        Some("summary") => summary(rest),
        Some("help" | "-h" | "--help") => Ok(Command::Help),
        Some("--version" | "-V") => Ok(Command::Version),
        _ => Err(UsageError(format!(
            "unknown command `{}`; expected {COMMANDS}",
            command.to_string_lossy()
        ))),
    }
}

fn summary(args: Vec<OsString>) -> Result<Command, UsageError> {
    if args.iter().any(|arg| arg == "-h" || arg == "--help") {
        return Ok(Command::Help);
    }
    if let Some(option) = args
        .iter()
        .find(|arg| arg.to_string_lossy().starts_with('-'))
    {
        return Err(UsageError(format!(
            "`summary` takes no options, got `{}`; it takes one optional argument, the report directory",
            option.to_string_lossy()
        )));
    }
    match args.as_slice() {
        [] => Ok(Command::Summary { dir: None }),
        [dir] if dir.is_empty() => Err(UsageError(
            "`summary` was given an empty directory name; give a report directory, or nothing for the default one"
                .to_owned(),
        )),
        [dir] => Ok(Command::Summary {
            dir: Some(PathBuf::from(dir)),
        }),
        _ => Err(UsageError(format!(
            "`summary` takes at most one argument, the report directory, got {}: {}",
            args.len(),
            args.iter()
                .map(|arg| format!("`{}`", arg.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(" ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn both_invocations_are_understood() {
        let expected = Command::Run {
            runner: Runner::Test,
            args: vec!["-p".into(), "x".into(), "--".into(), "--nocapture".into()],
        };
        assert_eq!(
            parse_strs(&["leakcheck", "test", "-p", "x", "--", "--nocapture"]),
            Ok(expected)
        );
        assert_eq!(
            parse_strs(&["nextest", "--workspace"]),
            Ok(Command::Run {
                runner: Runner::Nextest,
                args: vec!["--workspace".into()]
            })
        );
    }

    #[test]
    fn runner_arguments_that_look_like_ours_are_passed_on() {
        assert_eq!(
            parse_strs(&["test", "--help"]),
            Ok(Command::Run {
                runner: Runner::Test,
                args: vec!["--help".into()]
            })
        );
    }

    #[test]
    fn summary_takes_one_optional_directory() {
        assert_eq!(parse_strs(&["summary"]), Ok(Command::Summary { dir: None }));
        assert_eq!(
            parse_strs(&["summary", "target/leaks"]),
            Ok(Command::Summary {
                dir: Some("target/leaks".into())
            })
        );
        assert_eq!(parse_strs(&["summary", "--help"]), Ok(Command::Help));
    }

    #[test]
    fn bad_input_names_what_was_wrong_and_what_is_accepted() {
        let error = |args: &[&str]| parse_strs(args).unwrap_err().0;
        assert_eq!(
            error(&[]),
            "no command given; expected `test`, `nextest`, `baseline`, `summary`, `help` or `--version`"
        );
        assert_eq!(
            error(&["leakcheck"]),
            "no command given; expected `test`, `nextest`, `baseline`, `summary`, `help` or `--version`"
        );
        assert_eq!(
            error(&["tset"]),
            "unknown command `tset`; expected `test`, `nextest`, `baseline`, `summary`, `help` or `--version`"
        );
        assert_eq!(
            error(&["summary", "a", "b"]),
            "`summary` takes at most one argument, the report directory, got 2: `a` `b`"
        );
        assert_eq!(
            error(&["summary", "--json"]),
            "`summary` takes no options, got `--json`; it takes one optional argument, the report directory"
        );
        assert!(error(&["summary", ""]).contains("empty directory name"));
    }
}
