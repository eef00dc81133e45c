//! `leakcheck::dump_on_signal()`: a child test of this binary starts the
//! dump, spawns a thread and a task that block, and says it is ready; the
//! test sends it `SIGUSR1` and reads the dump from its stderr. Every wait is
//! bounded, and the child is killed whatever happens.
#![cfg(unix)]

use leakcheck::task::Builder as TaskBuilder;
use leakcheck::State;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "support/sites.rs"]
mod sites;

/// Names the child test that should run in a subprocess.
const CHILD: &str = "LC_TEST_CHILD";
/// The child's test.
const CHILD_TEST: &str = "child_waits_for_the_signal";
/// What the child prints on stdout once everything it dumps is in place.
const READY: &str = "dump child ready";
/// The longest any one wait may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(30);
/// This file, to find the exact line and column of each marked spawn.
const SOURCE: &str = include_str!("dump.rs");

/// The line and column of the spawn call on the line that ends with
/// `// site:<marker>`; `call` is the text the call starts with.
#[track_caller]
fn site(marker: &str, call: &str) -> (u32, u32) {
    sites::site_in(SOURCE, marker, call)
}

// ---- the child -----------------------------------------------------------------------

/// In the child: starts the dump, leaves a blocked thread and a stuck task
/// behind, and waits to be killed (for a minute at most).
#[test]
fn child_waits_for_the_signal() {
    if std::env::var(CHILD).as_deref() != Ok(CHILD_TEST) {
        return;
    }
    leakcheck::dump_on_signal().expect("start the dump");
    leakcheck::dump_on_signal().expect("a second call does nothing, and succeeds");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    // Owned by this test's scope, so the dump names the test.
    let guard = leakcheck::verify_none();
    let (_keep, blocked) = mpsc::channel::<()>();
    let wait = move || blocked.recv_timeout(Duration::from_secs(60));
    let named = leakcheck::thread::Builder::new().name("dump-thread".into());
    let thread = named.spawn(wait).unwrap(); // site:dump-thread
    let named = TaskBuilder::new().name("dump-task");
    let _task = named.spawn_on(std::future::pending::<()>(), rt.handle()); // site:dump-task

    // Ready once the task has been polled: from then on it is stuck for good.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let snapshot = leakcheck::snapshot();
        let task = snapshot
            .entries()
            .iter()
            .find(|s| s.name() == Some("dump-task"));
        if task.is_some_and(|task| task.state() == State::Stuck) {
            break;
        }
        assert!(Instant::now() < deadline, "the task was never polled");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut stdout = std::io::stdout().lock();
    // On a line of its own: the harness has printed `test <name> ... `.
    writeln!(stdout, "\n{READY}").unwrap();
    stdout.flush().unwrap();
    drop(stdout);

    let _ = thread.join();
    // Killed long before this; if not, end without a leak report.
    std::mem::forget(guard);
}

// ---- the test ------------------------------------------------------------------------

/// Kills the child when dropped, so a failing assertion leaves nothing
/// behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// Sends each line of `pipe` to `lines`, tagged with its stream.
fn forward(
    pipe: impl Read + Send + 'static,
    stream: Stream,
    lines: mpsc::Sender<(Stream, String)>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if lines.send((stream, line)).is_err() {
                break;
            }
        }
    });
}

/// Receives lines until `done` says the collected lines of `stream` are
/// complete, or fails after `TIMEOUT`.
fn collect_until(
    lines: &mpsc::Receiver<(Stream, String)>,
    stream: Stream,
    done: impl Fn(&[String]) -> bool,
    what: &str,
) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    let mut all = Vec::new();
    while !done(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok((from, line)) => {
                all.push(format!("{from:?}: {line}"));
                if from == stream {
                    seen.push(line);
                }
            }
            Err(error) => panic!("no {what} ({error}); the child wrote:\n{}", all.join("\n")),
        }
    }
    seen
}

/// The lines of one dump: from its header to the last line of its last
/// group, which ends with the hidden-frames count.
fn one_dump(lines: &[String], groups: usize) -> Option<Vec<String>> {
    let start = lines
        .iter()
        .position(|l| l.starts_with("leakcheck snapshot: "))?;
    let dump = &lines[start..];
    let mut ends = dump.iter().enumerate().filter(|(_, l)| {
        l.ends_with("frames from std, tokio, leakcheck and the test harness hidden)")
    });
    let (last, _) = ends.nth(groups - 1)?;
    Some(dump[..=last].to_vec())
}

/// The lines of the group whose header names `line` of this file.
fn group(dump: &[String], line: u32) -> Vec<&str> {
    let header = format!(" spawned at {}:{line}:", file!());
    dump.iter()
        .skip_while(|l| !l.contains(&header))
        .take_while(|l| !l.is_empty())
        .map(String::as_str)
        .collect()
}

#[test]
fn sigusr1_prints_every_live_task_and_thread() {
    let mut command = Command::new(std::env::current_exe().unwrap());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LEAKCHECK") {
            command.env_remove(name);
        }
    }
    let child = command
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, CHILD_TEST)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the test binary");
    let mut child = Killed(child);
    let pid = child.0.id();
    let (tx, lines) = mpsc::channel();
    forward(child.0.stdout.take().unwrap(), Stream::Out, tx.clone());
    forward(child.0.stderr.take().unwrap(), Stream::Err, tx);

    collect_until(
        &lines,
        Stream::Out,
        |out| out.iter().any(|l| l.ends_with(READY)),
        "ready line",
    );
    let thread_at = site("dump-thread", "spawn(");
    let task_at = site("dump-task", "spawn_on(");

    for round in 1..=2 {
        // SAFETY: kill has no memory-safety preconditions; `pid` is our
        // child, which has not been waited for.
        let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR1) };
        assert_eq!(sent, 0, "kill: {}", std::io::Error::last_os_error());
        let err = collect_until(
            &lines,
            Stream::Err,
            |err| one_dump(err, 2).is_some(),
            "dump",
        );
        let dump = one_dump(&err, 2).unwrap();
        let text = dump.join("\n");
        println!("dump {round}:\n{text}");

        assert_eq!(
            dump[0], "leakcheck snapshot: 1 task and 1 thread alive, from 2 creation sites",
            "{text}"
        );
        let owner = format!("  owner: test `{CHILD_TEST}`");
        let task = group(&dump, task_at.0);
        assert_eq!(
            task.first().copied(),
            Some(
                format!(
                    "1 task spawned at tests/dump.rs:{}:{}",
                    task_at.0, task_at.1
                )
                .as_str()
            ),
            "{text}"
        );
        assert!(task.contains(&owner.as_str()), "{text}");
        assert!(
            task.iter().any(|l| l.starts_with("  state: stuck: ")),
            "{text}"
        );
        assert!(task.contains(&"  name: dump-task"), "{text}");
        assert!(
            task.iter()
                .any(|l| l.contains("polled once, woken 0 times")),
            "{text}"
        );

        let thread = group(&dump, thread_at.0);
        assert_eq!(
            thread.first().copied(),
            Some(
                format!(
                    "1 thread spawned at tests/dump.rs:{}:{}",
                    thread_at.0, thread_at.1
                )
                .as_str()
            ),
            "{text}"
        );
        assert!(thread.contains(&owner.as_str()), "{text}");
        assert!(
            thread.contains(&"  state: running: still running its code"),
            "{text}"
        );
        assert!(thread.contains(&"  name: dump-thread"), "{text}");

        // The process carries on after each dump.
        assert!(child.0.try_wait().unwrap().is_none(), "the child ended");
    }
    drop(child);
}
