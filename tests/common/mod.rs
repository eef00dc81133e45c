//! Helpers shared by `patterns_tasks.rs` and `patterns_threads.rs`.
//!
//! Each test binary uses only part of this module.
#![allow(dead_code)]

use leakcheck::{LeakReport, Options, Straggler};
use std::time::Duration;

/// The settle budget of the leaky tests. Stuck tasks fail after 10 ms
/// whatever it is; waiting tasks and threads fail once it is spent. Short, so
/// that the suite stays fast.
pub const LEAKY_SETTLE: Duration = Duration::from_millis(75);

/// Options for a check that is expected to fail.
pub fn leaky() -> Options {
    Options::new().settle(LEAKY_SETTLE)
}

/// Asserts that `report` names the spawn site `file:line`: that some straggler
/// was spawned there, and that the report's text shows `file:line:`. When
/// `helper` is given, also asserts that a frame of the site's creation
/// backtrace is that function (matched on the last path segment, ignoring
/// `{{closure}}` segments). Returns the stragglers spawned at the site.
#[track_caller]
pub fn assert_site<'r>(
    report: &'r LeakReport,
    file: &str,
    line: u32,
    helper: Option<&str>,
) -> Vec<&'r Straggler> {
    let text = report.to_string();
    let at_site: Vec<&Straggler> = report
        .stragglers()
        .iter()
        .filter(|s| s.location().file() == file && s.location().line() == line)
        .collect();
    assert!(
        !at_site.is_empty(),
        "no straggler spawned at {file}:{line}; stragglers: {:?}\n{text}",
        report.stragglers()
    );
    let needle = format!("{file}:{line}:");
    assert!(
        text.contains(&needle),
        "report does not show {needle:?}:\n{text}"
    );
    if let Some(helper) = helper {
        let trace = at_site[0]
            .backtrace()
            .expect("creation backtraces are on by default");
        let names: Vec<&str> = trace.frames().iter().filter_map(|f| f.function()).collect();
        assert!(
            names.iter().any(|name| is_function(name, helper)),
            "no frame named `{helper}` in the creation backtrace of {file}:{line}: {names:#?}\n{text}"
        );
    }
    at_site
}

/// Like [`assert_site`], and also asserts that every straggler comes from
/// that one site, and that there are `count` of them.
#[track_caller]
pub fn assert_only_site<'r>(
    report: &'r LeakReport,
    file: &str,
    line: u32,
    helper: Option<&str>,
    count: usize,
) -> Vec<&'r Straggler> {
    let at_site = assert_site(report, file, line, helper);
    assert_eq!(
        report.stragglers().len(),
        at_site.len(),
        "stragglers from other sites:\n{report}"
    );
    assert_eq!(
        at_site.len(),
        count,
        "wrong number of stragglers:\n{report}"
    );
    at_site
}

/// Whether a demangled function name is `helper`, or a closure inside it.
fn is_function(name: &str, helper: &str) -> bool {
    let mut name = name;
    while let Some(outer) = name.strip_suffix("::{{closure}}") {
        name = outer;
    }
    name == helper || name.ends_with(&format!("::{helper}"))
}

/// Lets a test wait until a worker it has no handle for has ended.
///
/// The worker owns an [`ExitToken`] (or clones of it); [`ExitWatch`] returns
/// once every token has been dropped, that is once the worker's closure or
/// future has been dropped. Leaky helpers lose their worker's join handle on
/// purpose; the token is how the test still cleans up after them.
#[derive(Clone)]
pub struct ExitToken(#[allow(dead_code)] tokio::sync::mpsc::UnboundedSender<()>);

/// See [`ExitToken`].
pub struct ExitWatch(tokio::sync::mpsc::UnboundedReceiver<()>);

/// A token for the worker, and the watch for the test.
pub fn exit_watch() -> (ExitToken, ExitWatch) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (ExitToken(tx), ExitWatch(rx))
}

impl ExitWatch {
    /// Waits until every token has been dropped.
    pub async fn exited(mut self) {
        while self.0.recv().await.is_some() {}
    }

    /// Blocks until every token has been dropped. Not inside a runtime.
    pub fn wait(mut self) {
        while self.0.blocking_recv().is_some() {}
    }
}
