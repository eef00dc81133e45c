//! `cargo leakcheck`: runs a test suite with leakcheck's full visibility, the
//! way `cargo llvm-cov` runs one with coverage, and summarises every leak
//! of the run by creation site. See the README, or `cargo leakcheck help`.
//!
//! It does not depend on leakcheck, which would link tokio and leakcheck's
//! thread hook into a cargo subcommand. The few things both must read or
//! write alike are written twice, each saying so: the ignore file's comment
//! rule (`accepted.rs`, leakcheck's `src/ignore/file.rs`) and the order of a
//! summary's site lines (`summary.rs`, leakcheck's `src/report/summary.rs`).

mod accepted;
mod cli;
mod reports;
mod run;
mod rustflags;
mod summary;

use cli::Command;
use std::process::ExitCode;

fn main() -> ExitCode {
    let code = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Command::Run { runner, args }) => run::run(runner, args),
        Ok(Command::Baseline { args }) => run::baseline(args),
        Ok(Command::Summary { dir }) => run::summary(dir),
        Ok(Command::Help) => {
            print!("{}", cli::USAGE);
            Ok(0)
        }
        Ok(Command::Version) => {
            println!("cargo-leakcheck {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Err(error) => {
            eprintln!("cargo-leakcheck: {error}\n\nRun `cargo leakcheck help` for usage.");
            Ok(2)
        }
    };
    match code {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(run::Failure(why)) => {
            eprintln!("cargo-leakcheck: {why}");
            ExitCode::from(2)
        }
    }
}
