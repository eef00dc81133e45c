//! Configuration from the environment, read once per process.
//!
//! Every `LEAKCHECK*` variable is validated. A bad value, or a variable
//! leakcheck does not know, is an error that the first guard turns into a
//! panic naming the variable, the value and what is accepted: a typo in CI
//! configuration must not quietly change what is checked.
//!
//! This module sits at the bottom of the crate and imports nothing of it:
//! reading a setting never starts anything. The features a setting turns on
//! read it from where they live.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// How much of a creation backtrace the wrappers capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BacktraceMode {
    /// No backtrace; the spawn site (`file:line:col`) only.
    Off,
    /// One backtrace per creation site per scope; later spawns from the same
    /// site share it.
    Site,
    /// A backtrace for every spawn.
    Full,
}

/// The settings read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvConfig {
    pub(crate) enabled: bool,
    /// `LEAKCHECK=warn`: checks report as usual and never fail a test.
    pub(crate) warn: bool,
    pub(crate) settle: Option<Duration>,
    pub(crate) backtrace: BacktraceMode,
    pub(crate) detail: bool,
    /// `LEAKCHECK_REPORT_DIR`: where failing checks write their JSON report.
    pub(crate) report_dir: Option<PathBuf>,
    /// `GITHUB_ACTIONS=true`: print workflow annotations for leaks.
    pub(crate) github_actions: bool,
    /// `GITHUB_WORKSPACE`: the repository root in GitHub Actions.
    pub(crate) github_workspace: Option<PathBuf>,
    /// `LEAKCHECK_AT_EXIT`: check the whole binary when it exits.
    pub(crate) at_exit: bool,
    /// `LEAKCHECK_OS_THREADS`: `None` is `auto`.
    pub(crate) os_threads: Option<bool>,
    /// `LEAKCHECK_THREAD_HOOK`: see threads created by any code.
    pub(crate) thread_hook: bool,
    /// `LEAKCHECK_IGNORE_FILE`: the project's ignore file.
    pub(crate) ignore_file: IgnoreFile,
}

/// Which project ignore file the checks read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum IgnoreFile {
    /// `leakcheck.ignore` at the workspace root, if there is one.
    #[default]
    Found,
    /// This file, which must exist; relative paths are from the workspace
    /// root.
    At(PathBuf),
    /// None: every leak is reported, accepted or not.
    Off,
}

impl Default for EnvConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            warn: false,
            settle: None,
            backtrace: BacktraceMode::Site,
            detail: false,
            report_dir: None,
            github_actions: false,
            github_workspace: None,
            at_exit: false,
            os_threads: None,
            thread_hook: true,
            ignore_file: IgnoreFile::Found,
        }
    }
}

/// A `LEAKCHECK*` variable with a value leakcheck cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    var: String,
    value: String,
    problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "leakcheck: environment variable {}={:?} is invalid: {}",
            self.var, self.value, self.problem
        )
    }
}

/// The longest settle budget accepted from the environment: ten minutes.
const MAX_SETTLE_MS: u64 = 600_000;

/// The variables leakcheck reads, with what each accepts.
const VARIABLES: &[(&str, &str)] = &[
    ("LEAKCHECK", "`on`, `off` (also `1` or `0`) or `warn`"),
    (
        "LEAKCHECK_SETTLE_MS",
        "a whole number of milliseconds from 0 to 600000",
    ),
    ("LEAKCHECK_BACKTRACE", "`off`, `site` or `full`"),
    ("LEAKCHECK_DETAIL", "`on` or `off` (also `1` or `0`)"),
    (
        "LEAKCHECK_REPORT_DIR",
        "a directory path, created if missing",
    ),
    ("LEAKCHECK_AT_EXIT", "`on` or `off` (also `1` or `0`)"),
    (
        "LEAKCHECK_OS_THREADS",
        "`auto` (on when one test runs at a time), `on` or `off` (also `1` or `0`)",
    ),
    ("LEAKCHECK_THREAD_HOOK", "`on` or `off` (also `1` or `0`)"),
    (
        "LEAKCHECK_IGNORE_FILE",
        "a file path (relative paths are from the workspace root), or `off`",
    ),
];

fn accepted(var: &str) -> &'static str {
    VARIABLES
        .iter()
        .find(|(name, _)| *name == var)
        .map_or("", |(_, accepted)| accepted)
}

fn invalid(var: &str, value: &str) -> ConfigError {
    ConfigError {
        var: var.to_owned(),
        value: value.to_owned(),
        problem: format!("expected {}", accepted(var)),
    }
}

impl EnvConfig {
    /// Parses the given variables, as `(name, value)` pairs of the whole
    /// environment.
    pub(crate) fn from_vars<I>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (OsString, OsString)>,
    {
        let mut config = EnvConfig::default();
        for (name, value) in vars {
            // Nearly every variable is neither ours nor the CI platform's:
            // skip it on its first bytes, which an unoptimised test build
            // does faster than anything below.
            let bytes = name.as_encoded_bytes();
            if !(bytes.starts_with(b"LEAKCHECK") || bytes.starts_with(b"GITHUB_")) {
                continue;
            }
            let Some(name) = name.to_str() else { continue };
            // Variables of the CI platform: read, never rejected.
            match name {
                "GITHUB_ACTIONS" => {
                    config.github_actions = value == "true";
                    continue;
                }
                "GITHUB_WORKSPACE" => {
                    config.github_workspace =
                        Some(PathBuf::from(value)).filter(|p| p.is_absolute());
                    continue;
                }
                _ => {}
            }
            if name != "LEAKCHECK" && !name.starts_with("LEAKCHECK_") {
                continue;
            }
            let value = match value.into_string() {
                Ok(value) => value,
                Err(raw) => {
                    return Err(ConfigError {
                        var: name.to_owned(),
                        value: raw.to_string_lossy().into_owned(),
                        problem: format!("it is not valid UTF-8; expected {}", accepted(name)),
                    })
                }
            };
            match name {
                "LEAKCHECK" => {
                    config.warn = value == "warn";
                    config.enabled = config.warn || switch(name, &value)?;
                }
                "LEAKCHECK_DETAIL" => config.detail = switch(name, &value)?,
                "LEAKCHECK_AT_EXIT" => config.at_exit = switch(name, &value)?,
                "LEAKCHECK_THREAD_HOOK" => config.thread_hook = switch(name, &value)?,
                "LEAKCHECK_OS_THREADS" => {
                    config.os_threads = match value.as_str() {
                        "auto" => None,
                        _ => Some(switch(name, &value)?),
                    }
                }
                "LEAKCHECK_REPORT_DIR" => {
                    if value.trim().is_empty() {
                        return Err(invalid(name, &value));
                    }
                    config.report_dir = Some(PathBuf::from(value));
                }
                "LEAKCHECK_IGNORE_FILE" => {
                    config.ignore_file = match value.as_str() {
                        "off" => IgnoreFile::Off,
                        v if v.trim().is_empty() => return Err(invalid(name, &value)),
                        v => IgnoreFile::At(PathBuf::from(v)),
                    }
                }
                "LEAKCHECK_SETTLE_MS" => {
                    let ms = Some(value.as_str())
                        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|v| v.parse::<u64>().ok())
                        .filter(|ms| *ms <= MAX_SETTLE_MS)
                        .ok_or_else(|| invalid(name, &value))?;
                    config.settle = Some(Duration::from_millis(ms));
                }
                "LEAKCHECK_BACKTRACE" => {
                    config.backtrace = match value.as_str() {
                        "off" => BacktraceMode::Off,
                        "site" => BacktraceMode::Site,
                        "full" => BacktraceMode::Full,
                        _ => return Err(invalid(name, &value)),
                    }
                }
                _ => {
                    let known: Vec<&str> = VARIABLES.iter().map(|(name, _)| *name).collect();
                    return Err(ConfigError {
                        var: name.to_owned(),
                        value,
                        problem: format!(
                            "leakcheck has no such variable; the ones it reads are {}",
                            known.join(", ")
                        ),
                    });
                }
            }
        }
        Ok(config)
    }
}

fn switch(var: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "on" | "1" => Ok(true),
        "off" | "0" => Ok(false),
        _ => Err(invalid(var, value)),
    }
}

/// The process's configuration, read on first use.
pub(crate) fn get() -> &'static Result<EnvConfig, ConfigError> {
    static CONFIG: OnceLock<Result<EnvConfig, ConfigError>> = OnceLock::new();
    CONFIG.get_or_init(|| EnvConfig::from_vars(std::env::vars_os()))
}

/// The backtrace mode for the spawn path, which never fails: a bad variable
/// is reported by the guard, and spawning carries on with the default.
pub(crate) fn backtrace_mode() -> BacktraceMode {
    static MODE: OnceLock<BacktraceMode> = OnceLock::new();
    *MODE.get_or_init(|| get().as_ref().map_or(BacktraceMode::Site, |c| c.backtrace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<EnvConfig, ConfigError> {
        EnvConfig::from_vars(vars.iter().map(|(k, v)| (k.into(), v.into())))
    }

    #[test]
    fn defaults_and_valid_values() {
        assert_eq!(parse(&[("PATH", "/bin")]), Ok(EnvConfig::default()));
        let config = parse(&[
            ("LEAKCHECK", "off"),
            ("LEAKCHECK_SETTLE_MS", "250"),
            ("LEAKCHECK_BACKTRACE", "full"),
        ])
        .unwrap();
        assert!(!config.enabled);
        assert_eq!(config.settle, Some(Duration::from_millis(250)));
        assert_eq!(config.backtrace, BacktraceMode::Full);
    }

    #[test]
    fn bad_values_name_the_variable_the_value_and_what_is_accepted() {
        let cases = [
            ("LEAKCHECK", "", "`on`, `off` (also `1` or `0`) or `warn`"),
            (
                "LEAKCHECK",
                "yes",
                "`on`, `off` (also `1` or `0`) or `warn`",
            ),
            ("LEAKCHECK_SETTLE_MS", "", "from 0 to 600000"),
            ("LEAKCHECK_SETTLE_MS", "-5", "from 0 to 600000"),
            (
                "LEAKCHECK_SETTLE_MS",
                "99999999999999999999",
                "from 0 to 600000",
            ),
            ("LEAKCHECK_SETTLE_MS", "600001", "from 0 to 600000"),
            ("LEAKCHECK_BACKTRACE", "short", "`off`, `site` or `full`"),
            ("LEAKCHECK_SETLE_MS", "5", "no such variable"),
        ];
        for (var, value, expected) in cases {
            let message = parse(&[(var, value)]).unwrap_err().to_string();
            assert!(message.contains(var), "{message}");
            assert!(message.contains(&format!("{value:?}")), "{message}");
            assert!(message.contains(expected), "{message}");
        }
    }
}
