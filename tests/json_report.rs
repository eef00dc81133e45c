//! `LeakReport::to_json()` against its documentation: every document is
//! validated against `docs/report.schema.json` (with a small validator for
//! the keywords that schema uses, written here), and its values are checked
//! against the report's own data and the real spawn sites.

use leakcheck::report::FORMAT_VERSION;
use leakcheck::task::Builder as TaskBuilder;
use leakcheck::{Kind, LeakReport, Options, State};
use serde_json::{Map, Value};
use std::future::pending;
use std::process::Command;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

#[path = "support/sites.rs"]
mod sites;

/// The documented schema, as shipped.
const SCHEMA: &str = include_str!("../docs/report.schema.json");
/// This file, to find the exact line and column of each marked spawn.
const SOURCE: &str = include_str!("json_report.rs");
/// The settle budget of checks that wait it out.
const SETTLE: Duration = Duration::from_millis(30);
/// A budget that a check must not wait out.
const LONG_SETTLE: Duration = Duration::from_secs(5);
/// Set in a child process to the name of the child test that should run.
const CHILD: &str = "LC_TEST_CHILD";

// ---- a validator for the keywords of report.schema.json ------------------------------

fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("docs/report.schema.json is JSON")
}

/// Validates `value` against `schema`, collecting one message per violation.
/// Knows the keywords the report's schema uses, and refuses any other, so a
/// schema that grows a keyword cannot be half-checked in silence.
fn validate(schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = schema
        .as_object()
        .unwrap_or_else(|| panic!("the schema at {at} is not an object"));
    for (keyword, rule) in schema {
        match keyword.as_str() {
            "$schema" | "title" | "description" => {}
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(one) => vec![one.as_str()],
                    Value::Array(many) => many.iter().map(|t| t.as_str().unwrap()).collect(),
                    _ => panic!("bad `type` at {at}"),
                };
                if !types.iter().any(|t| has_type(value, t)) {
                    errors.push(format!("{at}: {value} is not of type {types:?}"));
                }
            }
            "const" => {
                if value != rule {
                    errors.push(format!("{at}: {value} is not the constant {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().unwrap().contains(value) {
                    errors.push(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "minimum" => {
                if let Some(n) = value.as_f64() {
                    if n < rule.as_f64().unwrap() {
                        errors.push(format!("{at}: {value} is below the minimum {rule}"));
                    }
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for name in rule.as_array().unwrap() {
                        let name = name.as_str().unwrap();
                        if !object.contains_key(name) {
                            errors.push(format!("{at}: the required field `{name}` is missing"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    for (name, sub) in rule.as_object().unwrap() {
                        if let Some(field) = object.get(name) {
                            validate(sub, field, &format!("{at}.{name}"), errors);
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(object) = value.as_object() {
                    let known = schema.get("properties").and_then(Value::as_object);
                    for (name, field) in object {
                        if known.is_some_and(|known| known.contains_key(name)) {
                            continue;
                        }
                        match rule {
                            Value::Bool(true) => {}
                            Value::Bool(false) => {
                                errors.push(format!("{at}: the field `{name}` is not allowed"))
                            }
                            sub => validate(sub, field, &format!("{at}.{name}"), errors),
                        }
                    }
                }
            }
            "items" => {
                if let Some(array) = value.as_array() {
                    for (i, item) in array.iter().enumerate() {
                        validate(rule, item, &format!("{at}[{i}]"), errors);
                    }
                }
            }
            other => panic!("the validator does not know the keyword `{other}` (at {at})"),
        }
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        other => panic!("unknown JSON type `{other}`"),
    }
}

/// Parses `json` and validates it against the documented schema.
#[track_caller]
fn parse_valid(json: &str) -> Value {
    let value: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let mut errors = Vec::new();
    validate(&schema(), &value, "$", &mut errors);
    assert!(errors.is_empty(), "{errors:#?}\n{json}");
    value
}

// ---- the values ----------------------------------------------------------------------

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Task => "task",
        Kind::BlockingTask => "blocking_task",
        Kind::LocalTask => "local_task",
        Kind::Thread => "thread",
        other => panic!("a kind this test does not know: {other:?}"),
    }
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Stuck => "stuck",
        State::Waiting => "waiting",
        State::Runnable => "runnable",
        State::Busy => "busy",
        State::NotStarted => "not_started",
        State::Running => "running",
        State::Unknown => "unknown",
        other => panic!("a state this test does not know: {other:?}"),
    }
}

#[track_caller]
fn assert_millis(json: &Value, duration: Duration, what: &str) {
    let ms = json.as_f64().unwrap_or_else(|| panic!("{what} is {json}"));
    let expected = duration.as_secs_f64() * 1000.0;
    assert!(
        (ms - expected).abs() < 0.001,
        "{what}: {ms} ms, expected {expected}"
    );
}

fn object(value: &Value) -> &Map<String, Value> {
    value.as_object().expect("an object")
}

/// This test executable's file name, as reports name it.
fn binary_name() -> String {
    let exe = std::env::current_exe().expect("the test binary");
    exe.file_name().unwrap().to_string_lossy().into_owned()
}

/// Validates the report's JSON against the schema and checks that every
/// value in it is the report's own. Returns the parsed document.
#[track_caller]
fn checked_json(report: &LeakReport) -> Value {
    let json = report.to_json();
    assert_eq!(json, report.to_json(), "to_json is deterministic");
    assert!(!json.contains('\n'), "one line: {json}");
    assert!(json.starts_with(r#"{"format":"leakcheck-report","version":1,"#));
    let doc = parse_valid(&json);

    assert_eq!(doc["format"], "leakcheck-report");
    assert_eq!(doc["version"], FORMAT_VERSION);
    assert_eq!(doc["test"].as_str(), report.test_name());
    assert_eq!(doc["binary"].as_str(), Some(binary_name().as_str()));
    let warn = std::env::var("LEAKCHECK").as_deref() == Ok("warn");
    assert_eq!(doc["warn"], warn);
    assert_millis(&doc["waited_ms"], report.waited(), "waited_ms");

    let count = |kind: Kind| {
        report
            .stragglers()
            .iter()
            .filter(|s| s.kind() == kind)
            .count()
    };
    let counts = object(&doc["counts"]);
    assert_eq!(counts.len(), 6, "{counts:?}");
    for kind in [
        Kind::Task,
        Kind::BlockingTask,
        Kind::LocalTask,
        Kind::Thread,
    ] {
        assert_eq!(
            counts[kind_name(kind)],
            count(kind),
            "counts.{}",
            kind_name(kind)
        );
    }
    assert_eq!(counts["untracked_task"], report.untracked_tasks());
    assert_eq!(counts["untracked_thread"], report.untracked_threads().len());

    let stragglers = doc["stragglers"].as_array().unwrap();
    let backtraces = doc["backtraces"].as_array().unwrap();
    assert_eq!(stragglers.len(), report.stragglers().len());
    for (json, straggler) in stragglers.iter().zip(report.stragglers()) {
        let what = format!("{straggler:?}: {json}");
        assert_eq!(json["kind"], kind_name(straggler.kind()), "{what}");
        assert_eq!(json["name"].as_str(), straggler.name(), "{what}");
        assert_eq!(json["state"], state_name(straggler.state()), "{what}");
        let location = straggler.location();
        assert_eq!(json["spawn"]["file"], location.file(), "{what}");
        assert_eq!(json["spawn"]["line"], location.line(), "{what}");
        assert_eq!(json["spawn"]["column"], location.column(), "{what}");
        assert_millis(&json["age_ms"], straggler.age(), "age_ms");
        let task_id = straggler.task_id().map(|id| id.to_string());
        assert_eq!(json["task_id"].as_str(), task_id.as_deref(), "{what}");
        assert_eq!(
            json["suspended_at"].as_str(),
            straggler.suspended_at(),
            "{what}"
        );

        let figures = &json["figures"];
        assert_eq!(figures["polls"], straggler.polls(), "{what}");
        assert_eq!(figures["wakes"], straggler.wakes(), "{what}");
        let settling = straggler.polls_while_settling();
        assert_eq!(figures["polls_while_settling"], settling, "{what}");
        match straggler.idle_for() {
            Some(idle) => assert_millis(&figures["idle_ms"], idle, "idle_ms"),
            None => assert!(figures["idle_ms"].is_null(), "{what}"),
        }
        match straggler.detail() {
            Some(detail) => {
                let json = &figures["detail"];
                assert_millis(
                    &json["mean_poll_ms"],
                    detail.mean_poll_duration(),
                    "mean_poll_ms",
                );
                assert_eq!(json["slow_polls"], detail.slow_polls(), "{what}");
                assert_millis(&json["idle_ms"], detail.total_idle(), "detail.idle_ms");
                assert_millis(
                    &json["scheduled_ms"],
                    detail.total_scheduled(),
                    "scheduled_ms",
                );
            }
            None => assert!(figures["detail"].is_null(), "{what}"),
        }

        match straggler.backtrace() {
            Some(trace) => {
                let index = json["backtrace"].as_u64().expect("an index") as usize;
                let entry = backtraces
                    .get(index)
                    .unwrap_or_else(|| panic!("no entry {index}"));
                let frames = entry["frames"].as_array().unwrap();
                let functions: Vec<Option<&str>> =
                    frames.iter().map(|f| f["function"].as_str()).collect();
                let expected: Vec<Option<&str>> =
                    trace.frames().iter().map(|f| f.function()).collect();
                assert_eq!(functions, expected, "{what}");
                let lines: Vec<Option<u64>> = frames.iter().map(|f| f["line"].as_u64()).collect();
                let expected: Vec<Option<u64>> = trace
                    .frames()
                    .iter()
                    .map(|f| f.line().map(u64::from))
                    .collect();
                assert_eq!(lines, expected, "{what}");
                assert_eq!(entry["hidden_frames"], trace.hidden_frames(), "{what}");
            }
            None => assert!(json["backtrace"].is_null(), "{what}"),
        }
    }
    // Each entry of `backtraces` is referred to.
    for index in 0..backtraces.len() {
        assert!(
            stragglers.iter().any(|s| s["backtrace"] == index),
            "backtraces[{index}] is not used"
        );
    }

    let threads = doc["untracked_threads"].as_array().unwrap();
    assert_eq!(threads.len(), report.untracked_threads().len());
    for (json, thread) in threads.iter().zip(report.untracked_threads()) {
        assert_eq!(json["tid"], thread.tid());
        assert_eq!(json["name"], thread.name());
    }

    // The notes are the report's, as its text shows them.
    let text = report.to_string();
    for note in doc["notes"].as_array().unwrap() {
        let note = note.as_str().unwrap();
        assert!(
            text.contains(&format!("\nnote: {note}\n")),
            "{note}\n{text}"
        );
    }
    assert_eq!(
        doc["notes"].as_array().unwrap().len(),
        text.matches("\nnote: ").count()
    );
    doc
}

/// The line and column of the spawn call on the line that ends with
/// `// site:<marker>`; `call` is the text the call starts with.
#[track_caller]
fn site(marker: &str, call: &str) -> (u64, u64) {
    let (line, column) = sites::site_in(SOURCE, marker, call);
    (u64::from(line), u64::from(column))
}

/// The JSON stragglers spawned at `line` of this file.
fn at_line(doc: &Value, line: u64) -> Vec<&Value> {
    doc["stragglers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["spawn"]["file"] == file!() && s["spawn"]["line"] == line)
        .collect()
}

#[track_caller]
fn one_at(doc: &Value, (line, column): (u64, u64)) -> &Value {
    let found = at_line(doc, line);
    assert_eq!(found.len(), 1, "line {line}: {doc}");
    assert_eq!(found[0]["spawn"]["file"], "tests/json_report.rs");
    assert_eq!(found[0]["spawn"]["column"], column, "{}", found[0]);
    found[0]
}

fn multi_thread() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build a runtime")
}

// ---- the validator validates ---------------------------------------------------------

/// A way to break a valid document.
type Breakage = Box<dyn Fn(&mut Value)>;

/// The validator is only worth something if it rejects what the schema
/// rejects: break a valid document in each way and see it refused.
#[tokio::test]
async fn the_validator_rejects_documents_that_break_the_schema() {
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let task = leakcheck::spawn(pending::<()>());
    let report = guard.check_async().await.unwrap_err();
    task.abort();
    let valid = parse_valid(&report.to_json());

    let breakages: Vec<(&str, Breakage)> = vec![
        ("format", Box::new(|d| d["format"] = "other".into())),
        ("version", Box::new(|d| d["version"] = 2.into())),
        ("test", Box::new(|d| d["test"] = 5.into())),
        ("waited_ms", Box::new(|d| d["waited_ms"] = (-1.0).into())),
        ("counts", Box::new(|d| d["counts"]["task"] = 1.5.into())),
        (
            "counts.required",
            Box::new(|d| {
                d["counts"].as_object_mut().unwrap().remove("thread");
            }),
        ),
        (
            "kind",
            Box::new(|d| d["stragglers"][0]["kind"] = "fiber".into()),
        ),
        (
            "state",
            Box::new(|d| d["stragglers"][0]["state"] = "sleeping".into()),
        ),
        (
            "line",
            Box::new(|d| d["stragglers"][0]["spawn"]["line"] = 0.into()),
        ),
        (
            "file",
            Box::new(|d| d["stragglers"][0]["spawn"]["file"] = Value::Null),
        ),
        (
            "polls",
            Box::new(|d| d["stragglers"][0]["figures"]["polls"] = "1".into()),
        ),
        (
            "detail",
            Box::new(|d| d["stragglers"][0]["figures"]["detail"] = serde_json::json!({})),
        ),
        (
            "backtrace",
            Box::new(|d| d["stragglers"][0]["backtrace"] = (-1).into()),
        ),
        (
            "shared",
            Box::new(|d| d["backtraces"][0]["shared"] = 1.into()),
        ),
        (
            "frames",
            Box::new(|d| d["backtraces"][0]["frames"][0]["line"] = "7".into()),
        ),
        (
            "untracked_threads",
            Box::new(|d| d["untracked_threads"] = serde_json::json!([{"tid": 1}])),
        ),
        ("notes", Box::new(|d| d["notes"] = serde_json::json!([1]))),
        (
            "required",
            Box::new(|d| {
                d.as_object_mut().unwrap().remove("backtraces");
            }),
        ),
    ];
    for (what, break_it) in breakages {
        let mut broken = valid.clone();
        break_it(&mut broken);
        let mut errors = Vec::new();
        validate(&schema(), &broken, "$", &mut errors);
        assert!(
            !errors.is_empty(),
            "breaking `{what}` went unnoticed: {broken}"
        );
    }
}

// ---- kinds, states, sites and counts -------------------------------------------------

/// Spawns one stuck task from this helper, whose frame the creation
/// backtrace must show.
#[inline(never)]
fn spawn_stuck_from_helper() -> tokio::task::JoinHandle<()> {
    leakcheck::spawn(pending::<()>()) // site:helper
}

#[tokio::test]
async fn every_kind_validates_with_real_sites_and_counts() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let stuck_at = site("helper", "leakcheck::spawn(");
            let waiting_at = site("waiting", "spawn(");
            let local_at = site("local", "leakcheck::spawn_local(");
            let blocking_at = site("blocking", "leakcheck::spawn_blocking(");
            let thread_at = site("thread", "leakcheck::thread::spawn(");
            let busy_at = site("busy", "leakcheck::spawn(");

            let guard = Options::new().settle(SETTLE).verify_none();
            let (tx, rx) = oneshot::channel::<()>();
            let (stop, stopped) = std::sync::mpsc::channel::<()>();
            let (stop_blocking, blocking_stopped) = std::sync::mpsc::channel::<()>();
            let stuck = spawn_stuck_from_helper();
            let wait = async move { rx.await.unwrap_err() };
            let waiting = TaskBuilder::new().name("json-waiter").spawn(wait).unwrap(); // site:waiting
            let local_task = leakcheck::spawn_local(pending::<()>()); // site:local
            let stop_thread = move || stopped.recv().unwrap_err();
            let stop_blocking_task = move || blocking_stopped.recv().unwrap_err();
            let blocking = leakcheck::spawn_blocking(stop_blocking_task); // site:blocking
            let thread = leakcheck::thread::spawn(stop_thread); // site:thread
            let spin = async {
                loop {
                    tokio::task::yield_now().await;
                }
            };
            let busy = leakcheck::spawn(spin); // site:busy
            let report = guard.check_async().await.unwrap_err();
            let doc = checked_json(&report);

            let counts = &doc["counts"];
            assert_eq!(counts["task"], 3, "{doc}");
            assert_eq!(counts["local_task"], 1, "{doc}");
            assert_eq!(counts["blocking_task"], 1, "{doc}");
            assert_eq!(counts["thread"], 1, "{doc}");
            assert_eq!(counts["untracked_task"], 0, "{doc}");
            assert_eq!(counts["untracked_thread"], 0, "{doc}");
            assert_eq!(
                doc["test"],
                "every_kind_validates_with_real_sites_and_counts"
            );

            let expected = [
                (stuck_at, "task", "stuck", None),
                (waiting_at, "task", "waiting", Some("json-waiter")),
                (local_at, "local_task", "stuck", None),
                (blocking_at, "blocking_task", "running", None),
                (thread_at, "thread", "running", None),
                (busy_at, "task", "busy", None),
            ];
            for (at, kind, state, name) in expected {
                let json = one_at(&doc, at);
                assert_eq!(json["kind"], kind, "{json}");
                assert_eq!(json["state"], state, "{json}");
                assert_eq!(json["name"].as_str(), name, "{json}");
                let is_task = kind == "task" || kind == "local_task";
                assert_eq!(json["task_id"].is_string(), is_task, "{json}");
                assert!(json["age_ms"].as_f64().unwrap() >= SETTLE.as_secs_f64() * 1000.0);
            }
            assert!(one_at(&doc, busy_at)["figures"]["polls_while_settling"].as_u64() > Some(1));
            assert_eq!(one_at(&doc, stuck_at)["figures"]["polls"], 1);
            assert!(one_at(&doc, thread_at)["figures"]["idle_ms"].is_null());

            // The helper's frame is the innermost one shown, at its spawn line.
            let index = one_at(&doc, stuck_at)["backtrace"].as_u64().unwrap() as usize;
            let frames = doc["backtraces"][index]["frames"].as_array().unwrap();
            let first = &frames[0];
            let function = first["function"].as_str().unwrap();
            assert!(function.ends_with("spawn_stuck_from_helper"), "{first}");
            assert_eq!(first["file"], "tests/json_report.rs", "{first}");
            assert_eq!(first["line"], stuck_at.0, "{first}");
            assert!(
                frames.iter().any(|f| {
                    f["function"].as_str().is_some_and(|f| {
                        f.contains("every_kind_validates_with_real_sites_and_counts")
                    })
                }),
                "{frames:?}"
            );
            assert!(doc["backtraces"][index]["hidden_frames"].as_u64() > Some(0));
            // Six sites, six distinct backtraces.
            assert_eq!(doc["backtraces"].as_array().unwrap().len(), 6, "{doc}");

            drop((tx, stop, stop_blocking));
            waiting.await.unwrap();
            thread.join().unwrap();
            blocking.await.unwrap();
            for task in [stuck, busy] {
                task.abort();
            }
            local_task.abort();
        })
        .await;
}

/// `not_started` and `runnable`: tasks on a current-thread runtime that is
/// not driven while a check runs from outside any runtime.
#[test]
fn not_started_and_runnable_state_names() {
    let idle = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let runnable_at = site("runnable", "spawn_on(");
    let not_started_at = site("not-started", "spawn_on(");
    let guard = Options::new().settle(SETTLE).verify_none();
    let (wake, woken) = oneshot::channel::<()>();
    let (started, has_started) = oneshot::channel::<()>();
    let waiter = async move {
        started.send(()).unwrap();
        woken.await.unwrap();
    };
    let runnable = TaskBuilder::new().spawn_on(waiter, idle.handle()).unwrap(); // site:runnable
    idle.block_on(has_started).unwrap();
    wake.send(()).unwrap();
    let spawned = TaskBuilder::new().spawn_on(async {}, idle.handle()); // site:not-started
    let never = spawned.unwrap();
    let report = guard.check().unwrap_err();
    let doc = checked_json(&report);
    assert_eq!(one_at(&doc, runnable_at)["state"], "runnable");
    let not_started = one_at(&doc, not_started_at);
    assert_eq!(not_started["state"], "not_started");
    assert_eq!(not_started["figures"]["polls"], 0);
    assert!(not_started["figures"]["idle_ms"].is_null());
    assert_eq!(doc["notes"], serde_json::json!([]));
    idle.block_on(runnable).unwrap();
    idle.block_on(never).unwrap();
}

/// Work spawned without the wrappers: counted, and OS threads listed. The
/// `/proc` check lists threads only where the thread hook does not see them
/// first, so where the hook runs this test runs itself again without it.
#[tokio::test]
async fn untracked_tasks_and_threads_are_counted_and_listed() {
    const TEST: &str = "untracked_tasks_and_threads_are_counted_and_listed";
    if std::env::var_os("LEAKCHECK_THREAD_HOOK").is_none() {
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--test-threads=1"])
            .env("LEAKCHECK_THREAD_HOOK", "off")
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    let guard = Options::new().settle(SETTLE).os_threads(true).verify_none();
    let plain = tokio::spawn(pending::<()>());
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let (started, has_started) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("json-untracked".into())
        .spawn(move || {
            started.send(()).unwrap();
            stopped.recv().unwrap_err()
        })
        .unwrap();
    // Named before its closure runs: listed under its own name.
    has_started.recv().unwrap();
    let report = guard.check_async().await.unwrap_err();
    let doc = checked_json(&report);
    assert_eq!(doc["counts"]["untracked_task"], 1, "{doc}");
    let threads = doc["untracked_threads"].as_array().unwrap();
    let ours: Vec<&Value> = threads
        .iter()
        .filter(|t| t["name"] == "json-untracked")
        .collect();
    assert_eq!(ours.len(), 1, "{doc}");
    assert!(ours[0]["tid"].as_u64() > Some(0));
    assert_eq!(doc["counts"]["untracked_thread"], threads.len());
    assert_eq!(doc["stragglers"], serde_json::json!([]));
    drop(stop);
    thread.join().unwrap();
    plain.abort();
}

/// A synchronous check inside a current-thread runtime notes its limits.
#[tokio::test]
async fn a_blocked_current_thread_check_writes_a_note() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let (started, has_started) = oneshot::channel::<()>();
    let task = leakcheck::spawn(async move {
        started.send(()).unwrap();
        pending::<()>().await
    });
    has_started.await.unwrap();
    let report = guard.check().unwrap_err();
    let doc = checked_json(&report);
    let notes = doc["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{doc}");
    let note = notes[0].as_str().unwrap();
    assert!(note.contains("current-thread runtime"), "{note}");
    assert!(note.contains("`check_async().await`"), "{note}");
    task.abort();
}

// ---- backtraces are shared -----------------------------------------------------------

#[tokio::test]
async fn a_thousand_stragglers_from_one_site_share_one_backtrace() {
    let many_at = site("thousand", "leakcheck::spawn(");
    let one_at_site = site("one-more", "leakcheck::spawn(");
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        tasks.push(leakcheck::spawn(pending::<()>())); // site:thousand
    }
    tasks.push(leakcheck::spawn(pending::<()>())); // site:one-more
    let report = guard.check_async().await.unwrap_err();
    assert_eq!(report.sites(), 2);
    let doc = checked_json(&report);
    assert_eq!(doc["counts"]["task"], 1001);

    let many = at_line(&doc, many_at.0);
    assert_eq!(many.len(), 1000);
    let index = &many[0]["backtrace"];
    assert!(many.iter().all(|s| s["backtrace"] == *index), "{doc}");
    let other = &one_at(&doc, one_at_site)["backtrace"];
    assert_ne!(other, index);
    let backtraces = doc["backtraces"].as_array().unwrap();
    assert_eq!(backtraces.len(), 2, "one entry per site");
    // One backtrace per site per scope: 999 of the 1000 share the first's.
    let shared = report
        .stragglers()
        .iter()
        .filter(|s| s.location().line() as u64 == many_at.0)
        .filter(|s| s.backtrace().unwrap().is_shared())
        .count();
    assert_eq!(shared, 999);
    println!(
        "the merged entry of 1000 stragglers says shared={}",
        backtraces[index.as_u64().unwrap() as usize]["shared"]
    );
    tasks.iter().for_each(|task| task.abort());
}

// ---- strings -------------------------------------------------------------------------

/// Names and the test's name carry quotes, backslashes, newlines and other
/// control characters; they come back from the JSON exactly.
#[test]
fn names_with_quotes_and_newlines_round_trip() {
    const ODD: &str = "say \"hi\"\\ back\nnext line\r\ttab \u{1}\u{1f} é ✓ \u{2028} </script>";
    let test_name = format!("odd test {ODD}");
    let thread_name = format!("odd thread {ODD}");
    let task_name = format!("odd task {ODD}");
    let names = (thread_name.clone(), task_name.clone());
    let rt = multi_thread();
    let handle = rt.handle().clone();
    let (report, workers) = std::thread::Builder::new()
        .name(test_name.clone())
        .spawn(move || {
            let guard = Options::new().settle(SETTLE).verify_none();
            let (stop, stopped) = std::sync::mpsc::channel::<()>();
            let thread = leakcheck::thread::Builder::new()
                .name(names.0)
                .spawn(move || stopped.recv().unwrap_err())
                .unwrap();
            let task = TaskBuilder::new()
                .name(&names.1)
                .spawn_on(pending::<()>(), &handle)
                .unwrap();
            let report = guard.check().unwrap_err();
            (report, (stop, thread, task))
        })
        .unwrap()
        .join()
        .unwrap();
    let doc = checked_json(&report);
    assert_eq!(doc["test"].as_str(), Some(test_name.as_str()));
    let mut names: Vec<&str> = doc["stragglers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, [task_name.as_str(), thread_name.as_str()]);
    let (stop, thread, task) = workers;
    drop(stop);
    thread.join().unwrap();
    task.abort();
}

// ---- backtraces off ------------------------------------------------------------------

/// With `LEAKCHECK_BACKTRACE=off` (read once per process, so in a child):
/// every `backtrace` is null and `backtraces` is empty.
#[test]
fn backtraces_off_gives_null_indexes() {
    const TEST: &str = "child_with_backtraces_off";
    let mut command = Command::new(std::env::current_exe().unwrap());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LEAKCHECK") {
            command.env_remove(name);
        }
    }
    let output = command
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, TEST)
        .env("LEAKCHECK_BACKTRACE", "off")
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{}\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("child checked the JSON without backtraces"),
        "{stdout}"
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[test]
fn child_with_backtraces_off() {
    if std::env::var(CHILD).as_deref() != Ok("child_with_backtraces_off") {
        return;
    }
    let rt = multi_thread();
    let guard = Options::new().settle(LONG_SETTLE).verify_none();
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            TaskBuilder::new()
                .spawn_on(pending::<()>(), rt.handle())
                .unwrap()
        })
        .collect();
    let report = guard.check().unwrap_err();
    assert!(report.stragglers().iter().all(|s| s.backtrace().is_none()));
    let doc = checked_json(&report);
    assert_eq!(doc["backtraces"], serde_json::json!([]));
    let stragglers = doc["stragglers"].as_array().unwrap();
    assert_eq!(stragglers.len(), 2);
    assert!(stragglers.iter().all(|s| s["backtrace"].is_null()), "{doc}");
    assert!(report.to_string().contains("LEAKCHECK_BACKTRACE=off"));
    tasks.iter().for_each(|task| task.abort());
    println!("child checked the JSON without backtraces");
}

// ---- LEAKCHECK=warn and LEAKCHECK_REPORT_DIR -----------------------------------------

/// A report written under `LEAKCHECK=warn` says so, with the test and the
/// test binary that wrote it, so that a run's reports can be joined.
#[test]
fn a_report_written_in_warn_mode_names_its_mode_test_and_binary() {
    const TEST: &str = "child_leaks_under_warn";
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("json-report-warn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut command = Command::new(std::env::current_exe().unwrap());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LEAKCHECK") || name == "GITHUB_ACTIONS" {
            command.env_remove(name);
        }
    }
    let output = command
        .args(["--exact", TEST, "--test-threads=1"])
        .env(CHILD, TEST)
        .env("LEAKCHECK", "warn")
        .env("LEAKCHECK_REPORT_DIR", &dir)
        .output()
        .expect("run the test binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}\n{stderr}", output.status);

    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}\n{stderr}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let doc = parse_valid(&std::fs::read_to_string(&files[0]).unwrap());
    assert_eq!(doc["test"], TEST);
    assert_eq!(doc["binary"].as_str(), Some(binary_name().as_str()));
    assert_eq!(doc["warn"], true);
    let (line, column) = site("warn-child", "leakcheck::thread::spawn");
    let straggler = one_at(&doc, (line, column));
    assert_eq!(straggler["kind"], "thread");
    assert!(straggler["suspended_at"].is_null(), "{straggler}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[leakcheck::leak_check(settle_ms = 0)]
fn child_leaks_under_warn() {
    if std::env::var(CHILD).as_deref() != Ok("child_leaks_under_warn") {
        return;
    }
    let (keep, stopped) = std::sync::mpsc::channel::<()>();
    std::mem::forget(keep);
    leakcheck::thread::spawn(move || stopped.recv().ok()); // site:warn-child
}
