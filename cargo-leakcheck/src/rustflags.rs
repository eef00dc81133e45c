//! Adding `--cfg tokio_unstable` to the rustflags a build already has.
//!
//! Cargo takes a build's rustflags from the first of these that is set:
//! `CARGO_ENCODED_RUSTFLAGS`, `RUSTFLAGS`, then `target.<triple>.rustflags`
//! and `target.<cfg>.rustflags` (joined), then `build.rustflags`. The cfg is
//! added to the one in force: appended to either variable, or, when neither
//! is set, given as `--config` values that cargo joins with the arrays of
//! the same keys in its config files and `CARGO_BUILD_RUSTFLAGS`: to
//! `build.rustflags`, and to every `target.*.rustflags` key the config
//! files set. `CARGO_TARGET_<TRIPLE>_RUSTFLAGS` variables get it appended.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

const CFG: &str = "tokio_unstable";
const CONFIG_VALUE: &str = r#"rustflags=["--cfg","tokio_unstable"]"#;

/// What to change to add the cfg.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Environment variables to set for the build.
    pub env: Vec<(String, OsString)>,
    /// `--config KEY=VALUE` arguments for cargo.
    pub config: Vec<String>,
    /// What was done, for the line printed before the run.
    pub said: String,
}

/// Plans the change, given the environment and cargo's config files. The
/// error names a config file whose rustflags cargo could not join with it.
pub fn plan(
    var: impl Fn(&str) -> Option<OsString>,
    vars: &[String],
    config_files: &[PathBuf],
) -> Result<Plan, String> {
    if let Some(encoded) = var("CARGO_ENCODED_RUSTFLAGS") {
        let text = encoded.to_string_lossy().into_owned();
        let flags: Vec<&str> = if text.is_empty() {
            Vec::new()
        } else {
            text.split('\x1f').collect()
        };
        if has_cfg(&flags) {
            return Ok(Plan {
                said: "CARGO_ENCODED_RUSTFLAGS already has --cfg tokio_unstable".to_owned(),
                ..Plan::default()
            });
        }
        let mut value = text.clone();
        if !value.is_empty() {
            value.push('\x1f');
        }
        value.push_str("--cfg\x1ftokio_unstable");
        return Ok(Plan {
            env: vec![("CARGO_ENCODED_RUSTFLAGS".to_owned(), value.into())],
            said: "--cfg tokio_unstable added to CARGO_ENCODED_RUSTFLAGS".to_owned(),
            ..Plan::default()
        });
    }
    if let Some(flags) = var("RUSTFLAGS") {
        return Ok(match appended(&flags) {
            None => Plan {
                said: "RUSTFLAGS already has --cfg tokio_unstable".to_owned(),
                ..Plan::default()
            },
            Some(value) => Plan {
                env: vec![("RUSTFLAGS".to_owned(), value)],
                said: "--cfg tokio_unstable added to RUSTFLAGS".to_owned(),
                ..Plan::default()
            },
        });
    }
    let mut plan = Plan {
        config: vec![format!("build.{CONFIG_VALUE}")],
        ..Plan::default()
    };
    let mut targets: Vec<String> = Vec::new();
    for name in vars {
        if name.starts_with("CARGO_TARGET_") && name.ends_with("_RUSTFLAGS") {
            if let Some(value) = var(name).and_then(|flags| appended(&flags)) {
                plan.env.push((name.clone(), value));
            }
            targets.push(name.clone());
        }
    }
    for file in config_files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for setting in rustflags_settings(&text) {
            let key = format!("{}.rustflags", setting.table);
            if setting.string {
                return Err(format!(
                    "{} sets `{key}` as one string, which cargo cannot join with the \
                     array that adds --cfg tokio_unstable; write it as an array \
                     (rustflags = [\"-C\", \"target-cpu=native\"]), or set RUSTFLAGS",
                    file.display()
                ));
            }
            if setting.table == "build" {
                continue;
            }
            let config = format!("{}.{CONFIG_VALUE}", setting.table);
            if !plan.config.contains(&config) {
                plan.config.push(config);
                targets.push(key);
            }
        }
    }
    plan.said = if targets.is_empty() {
        "--cfg tokio_unstable added to build.rustflags".to_owned()
    } else {
        format!(
            "--cfg tokio_unstable added to build.rustflags and {}",
            targets.join(", ")
        )
    };
    Ok(plan)
}

/// Space-separated flags with the cfg appended, or `None` when it is there.
fn appended(flags: &OsString) -> Option<OsString> {
    let text = flags.to_string_lossy();
    if has_cfg(&text.split_whitespace().collect::<Vec<_>>()) {
        return None;
    }
    let mut value = flags.clone();
    if !text.trim().is_empty() {
        value.push(" ");
    }
    value.push("--cfg tokio_unstable");
    Some(value)
}

fn has_cfg(flags: &[&str]) -> bool {
    flags
        .windows(2)
        .any(|pair| pair[0] == "--cfg" && pair[1] == CFG)
        || flags.iter().any(|flag| *flag == format!("--cfg={CFG}"))
}

/// Cargo's config files for a build started in `cwd`: `.cargo/config.toml`
/// (or the older `.cargo/config`) in it and each directory above, then in
/// `CARGO_HOME`.
pub fn config_files(cwd: &Path, cargo_home: Option<&Path>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let dirs = cwd
        .ancestors()
        .map(|dir| dir.join(".cargo"))
        .chain(cargo_home.map(Path::to_path_buf));
    for dir in dirs {
        // As cargo: `config` wins when both exist.
        for name in ["config", "config.toml"] {
            let file = dir.join(name);
            if file.is_file() && !files.contains(&file) {
                files.push(file);
                break;
            }
        }
    }
    files
}

/// A `rustflags` value that a config file sets.
#[derive(Debug, PartialEq, Eq)]
struct Setting {
    /// `build`, or `target.` and a `<triple>` or `'cfg(...)'` key.
    table: String,
    /// Written as one string rather than an array.
    string: bool,
}

/// The `build.rustflags` and `target.*.rustflags` values a config file
/// sets, read line by line: a `rustflags` key in a `[build]` or
/// `[target.KEY]` table, or a dotted `build.rustflags` or
/// `target.KEY.rustflags` key outside tables.
fn rustflags_settings(text: &str) -> Vec<Setting> {
    let mut found: Vec<Setting> = Vec::new();
    let mut table: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("[[") {
            table = Some(String::new());
        } else if let Some(header) = line.strip_prefix('[') {
            let name = header.split(']').next().unwrap_or("").trim();
            table = Some(name.to_owned());
        } else if let Some((key, value)) = line.split_once('=') {
            let key = key.trim();
            let owner = match table.as_deref() {
                Some(name) if key == "rustflags" => Some(name),
                Some(_) => None,
                None => key.strip_suffix(".rustflags"),
            };
            let Some(owner) = owner else { continue };
            let is_ours = owner == "build"
                || owner
                    .strip_prefix("target.")
                    .is_some_and(|target| !target.is_empty() && !unquoted_dot(target));
            if is_ours && !found.iter().any(|setting| setting.table == owner) {
                found.push(Setting {
                    table: owner.to_owned(),
                    string: value.trim_start().starts_with(['"', '\'']),
                });
            }
        }
    }
    found
}

/// Whether a dotted TOML key has a dot outside quotes: `a.b`, not `'a.b'`.
fn unquoted_dot(key: &str) -> bool {
    let mut quote = None;
    for c in key.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(open), c) if c == open => quote = None,
            (None, '.') => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn plan_with(vars: &[(&str, &str)], files: &[PathBuf]) -> Plan {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        let names: Vec<String> = map.keys().cloned().collect();
        plan(|name| map.get(name).cloned(), &names, files).unwrap()
    }

    #[test]
    fn the_variable_cargo_reads_first_gets_the_cfg() {
        let plan = plan_with(
            &[
                ("CARGO_ENCODED_RUSTFLAGS", "-C\x1fdebuginfo=1"),
                ("RUSTFLAGS", "-Dwarnings"),
            ],
            &[],
        );
        assert_eq!(
            plan.env,
            [(
                "CARGO_ENCODED_RUSTFLAGS".to_owned(),
                OsString::from("-C\x1fdebuginfo=1\x1f--cfg\x1ftokio_unstable")
            )]
        );
        assert!(plan.config.is_empty());
        let plan = plan_with(&[("CARGO_ENCODED_RUSTFLAGS", "")], &[]);
        assert_eq!(plan.env[0].1, "--cfg\x1ftokio_unstable");

        let plan = plan_with(&[("RUSTFLAGS", "-C target-cpu=native")], &[]);
        assert_eq!(
            plan.env,
            [(
                "RUSTFLAGS".to_owned(),
                OsString::from("-C target-cpu=native --cfg tokio_unstable")
            )]
        );
        assert_eq!(plan.said, "--cfg tokio_unstable added to RUSTFLAGS");
        // Set but empty still overrides the config files, as cargo reads it.
        let plan = plan_with(&[("RUSTFLAGS", "")], &[]);
        assert_eq!(plan.env[0].1, "--cfg tokio_unstable");
    }

    #[test]
    fn a_cfg_already_there_is_not_added_twice() {
        for flags in ["--cfg tokio_unstable", "-Dwarnings --cfg=tokio_unstable"] {
            let plan = plan_with(&[("RUSTFLAGS", flags)], &[]);
            assert_eq!(plan.env, []);
            assert_eq!(plan.said, "RUSTFLAGS already has --cfg tokio_unstable");
        }
        let plan = plan_with(
            &[("CARGO_ENCODED_RUSTFLAGS", "--cfg\x1ftokio_unstable")],
            &[],
        );
        assert_eq!(plan.env, []);
    }

    #[test]
    fn without_variables_the_config_arrays_are_joined() {
        let plan = plan_with(
            &[("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS", "-Cfoo")],
            &[],
        );
        assert_eq!(
            plan.config,
            [r#"build.rustflags=["--cfg","tokio_unstable"]"#]
        );
        assert_eq!(
            plan.env,
            [(
                "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS".to_owned(),
                OsString::from("-Cfoo --cfg tokio_unstable")
            )]
        );
    }

    #[test]
    fn rustflags_are_found_in_tables_and_dotted_keys() {
        let text = r#"
[build]
rustflags = ["-Dwarnings"]

[target.x86_64-unknown-linux-gnu]
linker = "clang"
rustflags = ["-C", "link-arg=-fuse-ld=lld"]

[target.'cfg(unix)']
rustflags = "--cfg foo"

[target.aarch64-unknown-linux-gnu]
linker = "aarch64-linux-gnu-gcc"

[target.x86_64-unknown-linux-gnu.mylib]
rustflags = ["not", "the", "same"]
"#;
        let setting = |table: &str, string: bool| Setting {
            table: table.to_owned(),
            string,
        };
        assert_eq!(
            rustflags_settings(text),
            [
                setting("build", false),
                setting("target.x86_64-unknown-linux-gnu", false),
                setting("target.'cfg(unix)'", true),
            ]
        );
        let dotted = "target.\"cfg(windows)\".rustflags = [\"-Cx\"]\nbuild.rustflags = '-Cy'\n[env]\ntarget.y.rustflags = 1\n";
        assert_eq!(
            rustflags_settings(dotted),
            [
                setting("target.\"cfg(windows)\"", false),
                setting("build", true)
            ]
        );
    }

    #[test]
    fn config_files_are_read_for_target_keys() {
        let dir =
            std::env::temp_dir().join(format!("cargo-leakcheck-rustflags-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("ws/pkg/.cargo")).unwrap();
        std::fs::create_dir_all(dir.join("ws/.cargo")).unwrap();
        std::fs::write(
            dir.join("ws/.cargo/config.toml"),
            "[target.'cfg(unix)']\nrustflags = [\"-Cx\"]\n",
        )
        .unwrap();
        std::fs::write(dir.join("ws/pkg/.cargo/config"), "[build]\njobs = 1\n").unwrap();
        let files = config_files(&dir.join("ws/pkg"), None);
        assert_eq!(
            files,
            [
                dir.join("ws/pkg/.cargo/config"),
                dir.join("ws/.cargo/config.toml")
            ]
        );
        let planned = plan_with(&[], &files);
        assert_eq!(
            planned.config,
            [
                r#"build.rustflags=["--cfg","tokio_unstable"]"#,
                r#"target.'cfg(unix)'.rustflags=["--cfg","tokio_unstable"]"#
            ]
        );
        assert_eq!(
            planned.said,
            "--cfg tokio_unstable added to build.rustflags and target.'cfg(unix)'.rustflags"
        );

        // A string cannot be joined with an array: cargo would refuse it.
        std::fs::write(
            dir.join("ws/.cargo/config.toml"),
            "[build]\nrustflags = \"-Cx\"\n",
        )
        .unwrap();
        let error = plan(|_| None, &[], &files).unwrap_err();
        assert_eq!(
            error,
            format!(
                "{} sets `build.rustflags` as one string, which cargo cannot join with the \
                 array that adds --cfg tokio_unstable; write it as an array \
                 (rustflags = [\"-C\", \"target-cpu=native\"]), or set RUSTFLAGS",
                dir.join("ws/.cargo/config.toml").display()
            )
        );
        // Unless a variable is set: then cargo does not read the files' rustflags.
        let planned = plan(
            |name| (name == "RUSTFLAGS").then(OsString::new),
            &[],
            &files,
        )
        .unwrap();
        assert_eq!(planned.env[0].1, "--cfg tokio_unstable");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
