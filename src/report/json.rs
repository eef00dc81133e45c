//! The report as JSON, for CI artifacts and tools.
//!
//! The format is versioned and documented in `docs/report-format.md`, with a
//! JSON Schema beside it. Backtraces are listed once and referred to by index,
//! so that a hundred thousand stragglers from one site do not repeat one
//! backtrace a hundred thousand times.

use super::{LeakReport, Straggler};
use crate::capture::{display_path, Backtrace};
use crate::registry::{Kind, State};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

/// The version of the JSON format. It changes when a field changes meaning
/// or goes away; new fields may appear without a change.
pub const FORMAT_VERSION: u32 = 1;

impl LeakReport {
    /// The report as one JSON document, in the format described in
    /// `docs/report-format.md` (version [`FORMAT_VERSION`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let guard = leakcheck::verify_none();
    /// leakcheck::spawn(std::future::pending::<()>());
    /// let json = guard.check_async().await.unwrap_err().to_json();
    /// assert!(json.starts_with(r#"{"format":"leakcheck-report","version":1,"#));
    /// assert!(json.contains(r#""state":"stuck""#));
    /// # }
    /// ```
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256 + 256 * self.0.stragglers.len().min(10_000));
        out.push_str(r#"{"format":"leakcheck-report","version":"#);
        let _ = write!(out, "{FORMAT_VERSION}");
        out.push_str(r#","test":"#);
        string_or_null(&mut out, self.0.test.as_deref());
        out.push_str(r#","binary":"#);
        string_or_null(&mut out, binary());
        let warn = crate::config::get()
            .as_ref()
            .is_ok_and(|config| config.warn);
        let _ = write!(out, r#","warn":{warn}"#);
        out.push_str(r#","waited_ms":"#);
        millis(&mut out, self.0.waited);
        out.push_str(r#","counts":{"#);
        let kinds = [
            Kind::Task,
            Kind::BlockingTask,
            Kind::LocalTask,
            Kind::Thread,
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let n = self
                .0
                .stragglers
                .iter()
                .filter(|s| s.kind() == kind)
                .count();
            let _ = write!(out, r#""{}":{n}"#, kind_name(kind));
        }
        let _ = write!(out, r#","untracked_task":{}"#, self.untracked_tasks());
        let _ = write!(
            out,
            r#","untracked_thread":{}"#,
            self.untracked_threads().len()
        );
        out.push_str(r#"},"stragglers":["#);
        let mut traces: Vec<&Backtrace> = Vec::new();
        let mut trace_index: HashMap<*const Backtrace, usize> = HashMap::new();
        for (i, straggler) in self.0.stragglers.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let trace = straggler.backtrace().map(|trace| {
                // Shared traces are one allocation; identical resolved frames
                // from separate captures are merged by content below.
                *trace_index.entry(trace as *const _).or_insert_with(|| {
                    match traces
                        .iter()
                        .position(|seen| seen.all_frames() == trace.all_frames())
                    {
                        Some(at) => at,
                        None => {
                            traces.push(trace);
                            traces.len() - 1
                        }
                    }
                })
            });
            write_straggler(&mut out, straggler, trace);
        }
        out.push_str(r#"],"untracked_threads":["#);
        for (i, thread) in self.untracked_threads().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, r#"{{"tid":{},"name":"#, thread.tid());
            string(&mut out, thread.name());
            out.push('}');
        }
        out.push_str(r#"],"backtraces":["#);
        for (i, trace) in traces.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_backtrace(&mut out, trace);
        }
        out.push_str(r#"],"notes":["#);
        for (i, note) in self.0.notes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            string(&mut out, note);
        }
        out.push_str("]}");
        out
    }
}

fn write_straggler(out: &mut String, straggler: &Straggler, trace: Option<usize>) {
    let _ = write!(out, r#"{{"kind":"{}","name":"#, kind_name(straggler.kind()));
    string_or_null(out, straggler.name());
    let _ = write!(
        out,
        r#","state":"{}","spawn":{{"file":"#,
        state_name(straggler.state())
    );
    let location = straggler.location();
    string(out, location.file());
    let _ = write!(
        out,
        r#","line":{},"column":{}}},"age_ms":"#,
        location.line(),
        location.column()
    );
    millis(out, straggler.age());
    out.push_str(r#","task_id":"#);
    string_or_null(out, straggler.task_id().map(|id| id.to_string()).as_deref());
    out.push_str(r#","suspended_at":"#);
    string_or_null(out, straggler.suspended_at());
    let _ = write!(
        out,
        r#","figures":{{"polls":{},"wakes":{},"polls_while_settling":{},"idle_ms":"#,
        straggler.polls(),
        straggler.wakes(),
        straggler.polls_while_settling()
    );
    match straggler.idle_for() {
        Some(idle) => millis(out, idle),
        None => out.push_str("null"),
    }
    out.push_str(r#","detail":"#);
    match straggler.detail() {
        Some(detail) => {
            out.push_str(r#"{"mean_poll_ms":"#);
            millis(out, detail.mean_poll_duration());
            let _ = write!(out, r#","slow_polls":{},"idle_ms":"#, detail.slow_polls());
            millis(out, detail.total_idle());
            out.push_str(r#","scheduled_ms":"#);
            millis(out, detail.total_scheduled());
            out.push('}');
        }
        None => out.push_str("null"),
    }
    out.push_str(r#"},"backtrace":"#);
    match trace {
        Some(index) => {
            let _ = write!(out, "{index}");
        }
        None => out.push_str("null"),
    }
    out.push('}');
}

/// The running executable's file name, such as `suite-0f3c…`: with the test
/// name it tells one test from another across a run's test binaries.
fn binary() -> Option<&'static str> {
    static BINARY: OnceLock<Option<String>> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.file_name()?.to_string_lossy().into_owned())
        })
        .as_deref()
}

fn write_backtrace(out: &mut String, trace: &Backtrace) {
    let _ = write!(
        out,
        r#"{{"shared":{},"hidden_frames":{},"frames":["#,
        trace.is_shared(),
        trace.hidden_frames()
    );
    for (i, frame) in trace.frames().into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"function":"#);
        string_or_null(out, frame.function());
        out.push_str(r#","file":"#);
        let file = frame.file().map(|f| display_path(f).into_owned());
        string_or_null(out, file.as_deref());
        out.push_str(r#","line":"#);
        number_or_null(out, frame.line());
        out.push_str(r#","column":"#);
        number_or_null(out, frame.column());
        out.push('}');
    }
    out.push_str("]}");
}

pub(crate) fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Task => "task",
        Kind::BlockingTask => "blocking_task",
        Kind::LocalTask => "local_task",
        Kind::Thread => "thread",
    }
}

pub(crate) fn state_name(state: State) -> &'static str {
    match state {
        State::Stuck => "stuck",
        State::Waiting => "waiting",
        State::Runnable => "runnable",
        State::Busy => "busy",
        State::NotStarted => "not_started",
        State::Running => "running",
        State::Unknown => "unknown",
    }
}

fn millis(out: &mut String, duration: Duration) {
    let _ = write!(out, "{:.3}", duration.as_secs_f64() * 1000.0);
}

fn number_or_null(out: &mut String, n: Option<u32>) {
    match n {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push_str("null"),
    }
}

fn string_or_null(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.push_str("null"),
    }
}

/// Writes `s` as a JSON string literal.
pub(crate) fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        super::string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
    }
}
