//! Configuration from the environment, tested in child processes: leakcheck
//! reads its variables once per process, so each case re-runs this test
//! binary (`--exact <child test>`) with the variable set.
//!
//! The child tests are ordinary `#[test]`s that do nothing unless
//! `LC_TEST_CHILD` names them. The marker deliberately does not start with
//! `LEAKCHECK`: leakcheck rejects unknown `LEAKCHECK_*` variables.

use leakcheck::{Kind, Options};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

/// Names the child test that should run, in a child process.
const CHILD: &str = "LC_TEST_CHILD";
/// What a child test should expect, where it needs to be told.
const EXPECT: &str = "LC_TEST_EXPECT";

/// A command that runs the child test `test` of this binary, with every
/// `LEAKCHECK*` variable of this process removed.
fn child_command(test: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command.args(["--exact", test, "--nocapture"]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LEAKCHECK") {
            command.env_remove(name);
        }
    }
    command.env(CHILD, test);
    command
}

/// Runs the child test `test` with `vars` set.
fn run_child(test: &str, vars: &[(&str, &str)]) -> Output {
    let mut command = child_command(test);
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("run the test binary")
}

/// The child's stdout and stderr together.
fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// True in the child process that should run `test`.
fn is_child(test: &str) -> bool {
    std::env::var(CHILD).as_deref() == Ok(test)
}

/// The child passed, and so the one test it ran.
fn assert_child_passed(test: &str, output: &Output) {
    let text = text(output);
    assert!(output.status.success(), "{}:\n{text}", output.status);
    assert!(
        text.contains("test result: ok. 1 passed"),
        "the child ran no test, or more than one:\n{text}"
    );
    assert!(text.contains(&format!("test {test} ... ok")), "{text}");
}

/// A tracked thread that blocks until the returned sender is dropped.
#[track_caller]
fn blocked_thread(name: &str) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (stop, rx) = mpsc::channel::<()>();
    let handle = leakcheck::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = rx.recv();
        })
        .unwrap();
    (stop, handle)
}

// ---- invalid values ----------------------------------------------------------------

/// Child: opens a guard, which panics if the configuration is invalid.
#[test]
fn child_opens_a_guard() {
    if !is_child("child_opens_a_guard") {
        return;
    }
    let guard = leakcheck::verify_none();
    guard.check().unwrap();
}

/// One test per invalid setting: the child fails, and its output names the
/// variable, the value as given, and what is accepted.
macro_rules! invalid_setting {
    ($test:ident, $var:expr, $value:expr, [$($accepted:expr),+ $(,)?]) => {
        #[test]
        fn $test() {
            let (var, value): (&str, &str) = ($var, $value);
            let output = run_child("child_opens_a_guard", &[(var, value)]);
            let text = text(&output);
            assert!(!output.status.success(), "the child passed:\n{text}");
            assert_eq!(output.status.code(), Some(101), "{}:\n{text}", output.status);
            let message = text
                .lines()
                .find(|line| line.starts_with("leakcheck: environment variable"))
                .unwrap_or_else(|| panic!("no configuration error in:\n{text}"));
            assert!(message.contains(&format!("{var}={value:?}")), "{message}");
            assert!(message.contains("is invalid"), "{message}");
            $(assert!(message.contains($accepted), "{message}");)+
        }
    };
}

invalid_setting!(
    leakcheck_yes,
    "LEAKCHECK",
    "yes",
    ["`on`, `off` (also `1` or `0`) or `warn`"]
);
invalid_setting!(
    leakcheck_empty,
    "LEAKCHECK",
    "",
    ["`on`, `off` (also `1` or `0`) or `warn`"]
);
invalid_setting!(
    settle_negative,
    "LEAKCHECK_SETTLE_MS",
    "-1",
    ["a whole number of milliseconds from 0 to 600000"]
);
invalid_setting!(
    settle_not_a_number,
    "LEAKCHECK_SETTLE_MS",
    "abc",
    ["a whole number of milliseconds from 0 to 600000"]
);
invalid_setting!(
    settle_overflows_u64,
    "LEAKCHECK_SETTLE_MS",
    "99999999999999999999",
    ["a whole number of milliseconds from 0 to 600000"]
);
invalid_setting!(
    settle_above_the_maximum,
    "LEAKCHECK_SETTLE_MS",
    "600001",
    ["a whole number of milliseconds from 0 to 600000"]
);
invalid_setting!(
    settle_with_a_unit,
    "LEAKCHECK_SETTLE_MS",
    "100ms",
    ["from 0 to 600000"]
);
invalid_setting!(
    backtrace_short,
    "LEAKCHECK_BACKTRACE",
    "short",
    ["`off`, `site` or `full`"]
);
invalid_setting!(
    unknown_variable,
    "LEAKCHECK_SETLE_MS",
    "5",
    [
        "no such variable",
        "LEAKCHECK,",
        "LEAKCHECK_SETTLE_MS",
        "LEAKCHECK_BACKTRACE"
    ]
);

/// Child: every guard panics, not only the first, and nothing else breaks.
#[test]
fn child_opens_two_guards() {
    if !is_child("child_opens_two_guards") {
        return;
    }
    for attempt in 1..=2 {
        let result = std::panic::catch_unwind(leakcheck::verify_none);
        let payload = result.map(drop).expect_err("an invalid setting");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        println!("guard {attempt}: {message}");
    }
    // Spawning still works, untracked by any guard.
    assert_eq!(leakcheck::thread::spawn(|| 1).join().unwrap(), 1);
}

#[test]
fn every_guard_panics_on_an_invalid_setting() {
    let output = run_child("child_opens_two_guards", &[("LEAKCHECK_BACKTRACE", "ful")]);
    assert_child_passed("child_opens_two_guards", &output);
    let text = text(&output);
    for attempt in 1..=2 {
        let expected = format!(
            "guard {attempt}: leakcheck: environment variable LEAKCHECK_BACKTRACE=\"ful\" is invalid"
        );
        assert!(text.contains(&expected), "{text}");
    }
}

#[cfg(unix)]
#[test]
fn a_value_that_is_not_utf8() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt as _;

    let output = child_command("child_opens_a_guard")
        .env("LEAKCHECK_BACKTRACE", OsStr::from_bytes(b"of\xff"))
        .output()
        .expect("run the test binary");
    let text = text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("LEAKCHECK_BACKTRACE"), "{text}");
    assert!(text.contains("not valid UTF-8"), "{text}");
    assert!(text.contains("`off`, `site` or `full`"), "{text}");
}

// ---- valid values ------------------------------------------------------------------

#[test]
fn valid_settings_are_accepted() {
    for (var, value) in [
        ("LEAKCHECK", "on"),
        ("LEAKCHECK", "1"),
        ("LEAKCHECK_SETTLE_MS", "0"),
        ("LEAKCHECK_SETTLE_MS", "600000"),
        ("LEAKCHECK_BACKTRACE", "off"),
        ("LEAKCHECK_BACKTRACE", "site"),
        ("LEAKCHECK_BACKTRACE", "full"),
    ] {
        let output = run_child("child_opens_a_guard", &[(var, value)]);
        assert!(output.status.success(), "{var}={value}:\n{}", text(&output));
    }
}

// ---- LEAKCHECK=off -----------------------------------------------------------------

/// Child: leaks through a checked guard and through a dropped one.
#[test]
fn child_leaks() {
    if !is_child("child_leaks") {
        return;
    }
    let guard = Options::new()
        .settle(Duration::from_millis(20))
        .verify_none();
    let (stop, worker) = blocked_thread("leaks-checked");
    let (stop_2, worker_2) = blocked_thread("leaks-checked-2");
    let result = guard.check();
    {
        let _dropped = Options::new()
            .settle(Duration::from_millis(20))
            .verify_none();
        let (stop_3, worker_3) = blocked_thread("leaks-dropped");
        std::mem::forget((stop_3, worker_3));
    }
    println!("check: {}", if result.is_ok() { "ok" } else { "leak" });
    drop((stop, stop_2));
    worker.join().unwrap();
    worker_2.join().unwrap();
}

#[test]
fn leakcheck_off_makes_a_leaking_test_pass_with_one_notice() {
    for value in ["off", "0"] {
        let output = run_child("child_leaks", &[("LEAKCHECK", value)]);
        assert_child_passed("child_leaks", &output);
        let text = text(&output);
        assert!(text.contains("check: ok"), "{text}");
        let notices = String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter(|line| line.starts_with("leakcheck:"))
            .map(str::to_owned)
            .collect::<Vec<_>>();
        assert_eq!(
            notices,
            ["leakcheck: LEAKCHECK=off, so no leak checks run in this process"],
            "one notice for two guards, on stderr:\n{text}"
        );
    }
}

#[test]
fn without_leakcheck_off_the_same_child_fails() {
    let output = run_child("child_leaks", &[]);
    let text = text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("leaks-dropped"), "{text}");
    assert!(!text.contains("LEAKCHECK=off"), "{text}");
}

// ---- LEAKCHECK_BACKTRACE ------------------------------------------------------------

/// Child: two leaks from one line, checked against the backtrace mode that
/// `LC_TEST_EXPECT` names.
#[test]
fn child_reports_backtraces() {
    if !is_child("child_reports_backtraces") {
        return;
    }
    let expect = std::env::var(EXPECT).expect("the expected mode");
    let guard = Options::new()
        .settle(Duration::from_millis(20))
        .ignore_frame("child_reports_backtraces")
        .verify_none();
    let workers: Vec<_> = (0..2).map(|i| blocked_thread(&format!("bt-{i}"))).collect();
    let result = guard.check();
    let workers = workers.into_iter().map(|(stop, worker)| {
        drop(stop);
        worker
    });
    workers.for_each(|worker| worker.join().unwrap());
    match expect.as_str() {
        "off" => {
            // `ignore_frame` needs a backtrace, so it cannot match.
            let report = result.expect_err("nothing to match the frame against");
            assert_eq!(report.stragglers().len(), 2);
            assert!(report.stragglers().iter().all(|s| s.backtrace().is_none()));
            let text = report.to_string();
            assert!(
                text.contains("created by: (no backtrace: LEAKCHECK_BACKTRACE=off"),
                "{text}"
            );
            assert!(!text.contains("child_reports_backtraces\n"), "{text}");
        }
        "site" | "full" => {
            result.expect("the frame rule ignores both");
            // Look at the backtraces themselves, without the rule.
            let guard = Options::new()
                .settle(Duration::from_millis(20))
                .verify_none();
            let workers: Vec<_> = (0..2)
                .map(|i| blocked_thread(&format!("bt-again-{i}")))
                .collect();
            let report = guard.check().unwrap_err();
            for (stop, worker) in workers {
                drop(stop);
                worker.join().unwrap();
            }
            let traces: Vec<_> = report
                .stragglers()
                .iter()
                .map(|s| s.backtrace().expect("a backtrace"))
                .collect();
            assert_eq!(traces.len(), 2);
            let shared = traces.iter().filter(|t| t.is_shared()).count();
            // `site` captures once per line and scope; `full` every time.
            assert_eq!(shared, usize::from(expect == "site"), "{report}");
            assert!(report.stragglers().iter().all(|s| s.kind() == Kind::Thread));
        }
        other => panic!("unknown mode {other}"),
    }
}

#[test]
fn leakcheck_backtrace_off_site_and_full() {
    for (value, expect) in [
        (Some("off"), "off"),
        (None, "site"),
        (Some("site"), "site"),
        (Some("full"), "full"),
    ] {
        let mut vars = vec![(EXPECT, expect)];
        if let Some(value) = value {
            vars.push(("LEAKCHECK_BACKTRACE", value));
        }
        let output = run_child("child_reports_backtraces", &vars);
        assert!(
            output.status.success(),
            "LEAKCHECK_BACKTRACE={value:?}:\n{}",
            text(&output)
        );
    }
}

// ---- LEAKCHECK_SETTLE_MS ------------------------------------------------------------

/// Child: a waiting leak with the default budget, then with an explicit one.
/// `LC_TEST_EXPECT` is the budget the default should be, in milliseconds.
#[test]
fn child_settles() {
    if !is_child("child_settles") {
        return;
    }
    let expected: u64 = std::env::var(EXPECT).unwrap().parse().unwrap();
    let expected = Duration::from_millis(expected);
    let (stop, worker) = blocked_thread("settling");
    let guard = leakcheck::verify_none();
    let (stop_2, worker_2) = blocked_thread("settling-2");
    let report = guard.check().unwrap_err();
    println!("waited {:?}", report.waited());
    assert!(report.waited() >= expected, "{:?}", report.waited());
    // The slack is for a loaded machine; the steps between budgets are larger.
    assert!(
        report.waited() < expected + Duration::from_millis(250),
        "{:?}",
        report.waited()
    );

    // `Options::settle` wins over the environment.
    let guard = Options::new()
        .settle(Duration::from_millis(100))
        .verify_none();
    let (stop_3, worker_3) = blocked_thread("settling-3");
    let report = guard.check().unwrap_err();
    assert!(report.waited() >= Duration::from_millis(100));
    assert!(report.waited() < Duration::from_millis(350));

    drop((stop, stop_2, stop_3));
    for worker in [worker, worker_2, worker_3] {
        worker.join().unwrap();
    }
}

#[test]
fn leakcheck_settle_ms_sets_the_default_budget() {
    for (value, expect) in [(Some("0"), "0"), (Some("300"), "300"), (None, "500")] {
        let mut vars = vec![(EXPECT, expect)];
        if let Some(value) = value {
            vars.push(("LEAKCHECK_SETTLE_MS", value));
        }
        let output = run_child("child_settles", &vars);
        assert_child_passed("child_settles", &output);
    }
}

/// Bug repro: the docs reject unknown `LEAKCHECK_*` variables, but any
/// variable that merely starts with `LEAKCHECK` is rejected, so an unrelated
/// tool's `LEAKCHECKER=1` fails every guard.
#[test]
fn a_variable_outside_the_leakcheck_prefix_is_not_rejected() {
    let output = run_child("child_opens_a_guard", &[("LEAKCHECKER", "1")]);
    assert_child_passed("child_opens_a_guard", &output);
}

// ---- every variable, every kind of bad value ----------------------------------------

/// Every variable set to an empty value, to garbage, to a negative number
/// and to a number too large for any integer type (`LEAKCHECK_REPORT_DIR`:
/// empty or blank only, as any other path is accepted). Each makes the
/// child's guard panic with a message that names the variable, the value as
/// given, and what is accepted. The combinations that the
/// `invalid_setting!` tests above already cover are left out: `LEAKCHECK`
/// empty and `yes`, `LEAKCHECK_SETTLE_MS` garbage, negative and huge, and
/// `LEAKCHECK_BACKTRACE` garbage.
#[test]
fn every_variable_rejects_empty_garbage_negative_and_huge_values() {
    const HUGE: &str = "99999999999999999999999999";
    let cases: [(&str, &[&str], &str); 7] = [
        (
            "LEAKCHECK",
            &["-1", HUGE],
            "`on`, `off` (also `1` or `0`) or `warn`",
        ),
        (
            "LEAKCHECK_SETTLE_MS",
            &[""],
            "a whole number of milliseconds from 0 to 600000",
        ),
        (
            "LEAKCHECK_BACKTRACE",
            &["", "-1", HUGE],
            "`off`, `site` or `full`",
        ),
        (
            "LEAKCHECK_DETAIL",
            &["", "maybe", "-1", HUGE],
            "`on` or `off` (also `1` or `0`)",
        ),
        ("LEAKCHECK_REPORT_DIR", &["", "   "], "a directory path"),
        (
            "LEAKCHECK_AT_EXIT",
            &["", "at exit", "-1", HUGE],
            "`on` or `off` (also `1` or `0`)",
        ),
        (
            "LEAKCHECK_OS_THREADS",
            &["", "sometimes", "-1", HUGE],
            "`auto` (on when one test runs at a time), `on` or `off`",
        ),
    ];
    let mut failures = Vec::new();
    for (var, values, accepted) in cases {
        for &value in values {
            let output = run_child("child_opens_a_guard", &[(var, value)]);
            let text = text(&output);
            let message = text
                .lines()
                .find(|line| line.starts_with("leakcheck: environment variable"));
            let problem = match (output.status.code(), message) {
                (Some(101), Some(message)) => [
                    format!("{var}={value:?}"),
                    "is invalid".to_owned(),
                    accepted.to_owned(),
                ]
                .into_iter()
                .find(|wanted| !message.contains(wanted.as_str()))
                .map(|missing| format!("the message does not say {missing:?}: {message}")),
                (code, _) => Some(format!("exit code {code:?}, no configuration error")),
            };
            if let Some(problem) = problem {
                failures.push(format!("{var}={value:?}: {problem}\n{text}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
