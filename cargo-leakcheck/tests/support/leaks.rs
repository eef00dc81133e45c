//! What the tests of cargo-leakcheck run as child tests: leaks from three
//! known lines of this file, through leakcheck for real; and how they read
//! the summaries those runs print.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::sync::mpsc;

/// Set in a child run: the child tests leak only then.
pub const CHILD: &str = "CARGO_LEAKCHECK_TEST_CHILD";
pub const TOOL: &str = env!("CARGO_BIN_EXE_cargo-leakcheck");
/// This file, as reports name it.
pub const FILE: &str = "cargo-leakcheck/tests/support/leaks.rs";

pub fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// The line of this file that ends with `// @site:<what>`.
pub fn site_line(what: &str) -> usize {
    let marker = format!("// @{}:{what}", "site");
    include_str!("leaks.rs")
        .lines()
        .position(|line| line.trim_end().ends_with(&marker))
        .unwrap_or_else(|| panic!("no {marker}"))
        + 1
}

pub fn leak_a() {
    let (keep, stopped) = mpsc::channel::<()>();
    std::mem::forget(keep);
    leakcheck::thread::spawn(move || stopped.recv().ok()); // @site:a
}

pub fn leak_b() {
    let (keep, stopped) = mpsc::channel::<()>();
    std::mem::forget(keep);
    leakcheck::thread::spawn(move || stopped.recv().ok()); // @site:b
}

pub fn leak_c() {
    let (keep, stopped) = mpsc::channel::<()>();
    std::mem::forget(keep);
    leakcheck::thread::spawn(move || stopped.recv().ok()); // @site:c
}

/// The lines of the block in `text` that starts with `headline` (a summary),
/// up to the first line that is not indented.
#[track_caller]
pub fn block(text: &str, headline: &str) -> Vec<String> {
    let start = text
        .find(headline)
        .unwrap_or_else(|| panic!("no `{headline}` in:\n{text}"));
    let mut lines = text[start..].lines();
    let mut block = vec![lines.next().unwrap_or_default().to_owned()];
    block.extend(
        lines
            .take_while(|line| line.starts_with("  "))
            .map(str::to_owned),
    );
    block
}
