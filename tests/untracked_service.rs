//! Untracked work in a service written the usual way (`support/service.rs`):
//! an accept loop, a handler per client and a purge task started with plain
//! `tokio::spawn`, and a watcher thread started with `std::thread::Builder`.
//! None of it goes through leakcheck's wrappers, so leakcheck sees it only as
//! the README's "What leakcheck can see" says:
//!
//! - on stable tokio, the guard's runtime counts the tasks: `N untracked tasks
//!   still alive on this runtime`;
//! - with `--cfg tokio_unstable`, a `#[leak_check]` runtime's task hooks
//!   record each task with its `tokio::spawn` line (state `unknown`);
//! - a plain `#[tokio::test]` runtime (no `#[leak_check]` above it, which
//!   would build it instead) is never instrumented, so it counts in both
//!   configurations;
//! - the OS-thread check (`Options::os_threads(true)`) names the watcher.
//!
//! The tests of this binary run in parallel, and the OS-thread check sees
//! every thread of the process: each service's watcher has a name of its
//! own, and thread assertions look only for the calling test's names.
//!
//! A leaky service is stopped with its hidden kill switch once the check has
//! looked at it. In the `#[should_panic]` forms the panic drops the runtime,
//! which drops every task, after which the watcher thread returns too.

#[path = "support/service.rs"]
mod service;

#[cfg(tokio_unstable)]
use leakcheck::State;
use leakcheck::{leak_check, Kind, LeakReport, Options, UntrackedThread};
use service::{fixed, leaky, Client, Config};
use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The settle budget of checks expected to find the leaky service: its tasks
/// wait (nothing proves them stuck), so such a check always waits it out.
const SETTLE: Duration = Duration::from_millis(100);

/// The leaky service's tasks: its accept loop, one handler for the one
/// client, and its purge task.
const LEAKY_TASKS: usize = 3;

thread_local! {
    static KEPT_OPEN: RefCell<Vec<std::net::TcpStream>> = const { RefCell::new(Vec::new()) };
}

/// Keeps a client's connection open until the test's thread ends, which is
/// after `#[leak_check]` (or a dropped guard) has checked: had the client
/// hung up at the end of the body, its handler would have read EOF and
/// ended while the check settled, and only 2 tasks would have leaked.
fn keep_open_past_the_check(client: Client) {
    let stream = client.into_std();
    KEPT_OPEN.with(|kept| kept.borrow_mut().push(stream));
}

/// The untracked threads of `report` called `name`: other tests' threads may
/// be listed too.
fn threads_named<'r>(report: &'r LeakReport, name: &str) -> Vec<&'r UntrackedThread> {
    report
        .untracked_threads()
        .iter()
        .filter(|thread| thread.name() == name)
        .collect()
}

/// Starts the leaky service and connects one client to it.
async fn leaky_with_client(watcher: &str) -> (leaky::Service, Client) {
    let service = leaky::Service::start(Config::named(watcher))
        .await
        .expect("the service starts");
    let client = Client::connect(service.addr()).await;
    (service, client)
}

/// Asserts that `report`, from a runtime without task hooks, counts exactly
/// the leaky service's tasks and names its watcher thread.
#[track_caller]
fn assert_counted_with_watcher(report: &LeakReport, watcher: &str) {
    let text = report.to_string();
    assert_eq!(report.untracked_tasks(), LEAKY_TASKS, "{text}");
    assert!(tasks(report).is_empty(), "{text}");
    assert!(
        text.contains("3 untracked tasks still alive on this runtime"),
        "{text}"
    );
    // The hint never asks for what is already true.
    if cfg!(tokio_unstable) {
        assert!(
            text.contains("was not built through `leakcheck::runtime::instrument`"),
            "{text}"
        );
        assert!(!text.contains("RUSTFLAGS"), "{text}");
    } else {
        assert!(
            text.contains(
                "run the suite with `cargo leakcheck test` (or build with \
                 RUSTFLAGS=\"--cfg tokio_unstable\")"
            ),
            "{text}"
        );
    }
    assert_watcher_reported(report, watcher);
}

/// Whether plain threads are seen through the thread hook in this build.
const THREAD_HOOK: bool = cfg!(all(
    target_os = "linux",
    target_env = "gnu",
    feature = "thread-hook"
));

/// Asserts that the watcher thread is in the report, once: through the
/// thread hook, a straggler at its spawn line in the fixture; without it,
/// an untracked thread known by name and tid.
#[track_caller]
fn assert_watcher_reported(report: &LeakReport, watcher: &str) {
    let text = report.to_string();
    let threads = threads_named(report, watcher);
    if THREAD_HOOK {
        assert!(threads.is_empty(), "{text}");
        let hooked: Vec<_> = report
            .stragglers()
            .iter()
            .filter(|s| s.kind() == Kind::Thread)
            .collect();
        assert_eq!(hooked.len(), 1, "{text}");
        assert_eq!(hooked[0].name(), Some(watcher), "{text}");
        let site = hooked[0].location();
        assert!(site.file().ends_with("support/service.rs"), "{text}");
        // rustfmt keeps the marker inside the closure, under its `spawn`.
        let body = service::marker_line(service::SOURCE, "leaky-watcher-body");
        assert_eq!(site.line(), body - 1, "{text}");
        return;
    }
    assert_eq!(threads.len(), 1, "{text}");
    assert!(threads[0].tid() > 0, "{text}");
    assert!(
        text.contains(&format!(
            "untracked thread `{watcher}` (tid {})",
            threads[0].tid()
        )),
        "{text}"
    );
}

/// The report's task stragglers.
fn tasks(report: &LeakReport) -> Vec<&leakcheck::Straggler> {
    report
        .stragglers()
        .iter()
        .filter(|s| s.kind() == Kind::Task)
        .collect()
}

// ---------------------------------------------------------------------------
// `#[leak_check]`: the leaky service fails, the fixed one passes.
//
// On stable tokio the panic counts the tasks; with task hooks it lists them
// ("leaked 3 tasks", followed by "and 1 untracked thread" when the OS-thread
// check is on, as it is by default under `--test-threads=1`).
// ---------------------------------------------------------------------------

#[leak_check(settle_ms = 100)]
#[cfg_attr(
    not(tokio_unstable),
    should_panic(expected = "3 untracked tasks still alive on this runtime")
)]
#[cfg_attr(tokio_unstable, should_panic(expected = "leaked 3 tasks"))]
async fn leaky_service_fails_leak_check() {
    let (_service, client) = leaky_with_client("lc-leaky-ct").await;
    keep_open_past_the_check(client);
}

#[leak_check(flavor = "multi_thread", worker_threads = 2, settle_ms = 100)]
#[cfg_attr(
    not(tokio_unstable),
    should_panic(expected = "3 untracked tasks still alive on this runtime")
)]
#[cfg_attr(tokio_unstable, should_panic(expected = "leaked 3 tasks"))]
async fn leaky_service_fails_leak_check_on_a_multi_thread_runtime() {
    let (_service, client) = leaky_with_client("lc-leaky-mt").await;
    keep_open_past_the_check(client);
}

/// The site of each task is in the panic message with task hooks.
#[cfg(tokio_unstable)]
#[leak_check(settle_ms = 100)]
#[should_panic(expected = "1 task spawned at tests/support/service.rs:")]
async fn leaky_service_panic_names_the_fixture_with_task_hooks() {
    let (_service, client) = leaky_with_client("lc-leaky-site").await;
    keep_open_past_the_check(client);
}

/// A guard dropped at the end of a multi-thread `#[tokio::test]` checks
/// without blocking the runtime's workers, so it judges the count too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "3 untracked tasks still alive on this runtime")]
async fn leaky_service_fails_a_dropped_guard_on_a_multi_thread_runtime() {
    let _guard = Options::new().settle(SETTLE).verify_none();
    let (_service, client) = leaky_with_client("lc-leaky-drop").await;
    keep_open_past_the_check(client);
}

#[leak_check]
async fn fixed_service_passes_leak_check() {
    let service = fixed::Service::start(Config::named("lc-fixed-ct"))
        .await
        .expect("the service starts");
    let mut client = Client::connect(service.addr()).await;
    assert_eq!(client.request("PUT greeting").await, "OK");
    assert_eq!(client.request("GET greeting").await, "HIT");
    assert_eq!(client.request("GET other").await, "MISS");
    // The client is still connected: the shutdown, not the client hanging
    // up, ends its handler.
    service.shutdown().await;
    drop(client);
}

#[leak_check(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_service_passes_leak_check_on_a_multi_thread_runtime() {
    let service = fixed::Service::start(Config::named("lc-fixed-mt"))
        .await
        .expect("the service starts");
    let mut first = Client::connect(service.addr()).await;
    let mut second = Client::connect(service.addr()).await;
    assert_eq!(first.request("PUT a").await, "OK");
    assert_eq!(second.request("GET a").await, "HIT");
    drop(first); // one handler ends because its client hung up...
    service.shutdown().await; // ...the other because of the shutdown
    drop(second);
}

// ---------------------------------------------------------------------------
// The report, inspected: a guard and `check_async().await`.
// ---------------------------------------------------------------------------

/// A `#[tokio::test]` runtime has no task hooks in either configuration, so
/// the count is exact in both.
#[tokio::test]
async fn leaky_service_report_counts_its_tasks_and_names_its_watcher() {
    let guard = Options::new().settle(SETTLE).os_threads(true).verify_none();
    let (service, client) = leaky_with_client("lc-leaky-rep").await;

    let report = guard.check_async().await.expect_err("the service leaks");
    assert_counted_with_watcher(&report, "lc-leaky-rep");

    drop(client);
    service.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaky_service_report_on_a_multi_thread_runtime() {
    let guard = Options::new().settle(SETTLE).os_threads(true).verify_none();
    let (service, client) = leaky_with_client("lc-leaky-rep-mt").await;

    let report = guard.check_async().await.expect_err("the service leaks");
    assert_counted_with_watcher(&report, "lc-leaky-rep-mt");

    drop(client);
    service.kill().await;
}

/// Inside a `#[leak_check]` runtime on stable tokio: the count, and after
/// the kill switch `#[leak_check]`'s own check passes.
#[cfg(not(tokio_unstable))]
#[leak_check]
async fn leaky_service_is_counted_on_a_leak_check_runtime() {
    let guard = Options::new().settle(SETTLE).os_threads(true).verify_none();
    let (service, client) = leaky_with_client("lc-leaky-lc").await;

    let report = guard.check_async().await.expect_err("the service leaks");
    assert_counted_with_watcher(&report, "lc-leaky-lc");

    drop(client);
    service.kill().await;
}

/// Asserts that `report` holds exactly the leaky service's three tasks, each
/// at its `tokio::spawn` line, as the task hooks record them.
#[cfg(tokio_unstable)]
#[track_caller]
fn assert_hooked_spawn_sites(report: &LeakReport) {
    let text = report.to_string();
    let mut expected: Vec<u32> = ["leaky-accept", "leaky-handler", "leaky-purge"]
        .into_iter()
        .map(service::spawn_line)
        .collect();
    expected.sort_unstable();
    let mut lines: Vec<u32> = tasks(report)
        .into_iter()
        .map(|straggler| {
            let site = straggler.location();
            assert!(
                site.file().ends_with("support/service.rs"),
                "{site}\n{text}"
            );
            assert_eq!(straggler.kind(), Kind::Task, "{text}");
            assert_eq!(straggler.state(), State::Unknown, "{text}");
            assert!(straggler.task_id().is_some(), "{text}");
            site.line()
        })
        .collect();
    lines.sort_unstable();
    assert_eq!(lines, expected, "{text}");
    assert_eq!(report.sites(), 3 + usize::from(THREAD_HOOK), "{text}");
    for line in expected {
        let shown = format!("1 task spawned at tests/support/service.rs:{line}:");
        assert!(text.contains(&shown), "no {shown:?} in:\n{text}");
    }
    // The headline says these were not spawned through a wrapper.
    let headline = if THREAD_HOOK {
        "(4 spawned without leakcheck's wrappers, from 4 creation sites)"
    } else {
        "(3 spawned without leakcheck's wrappers, from 3 creation sites)"
    };
    assert!(text.contains(headline), "{text}");
    // The hooks account for every task, so none is left to the count.
    assert_eq!(report.untracked_tasks(), 0, "{text}");
}

/// With task hooks, each plain `tokio::spawn` of the service is a straggler
/// carrying its spawn line; the watcher is still only a named thread.
#[cfg(tokio_unstable)]
#[leak_check]
async fn leaky_service_spawn_sites_with_task_hooks() {
    let guard = Options::new().settle(SETTLE).os_threads(true).verify_none();
    let (service, client) = leaky_with_client("lc-leaky-hook").await;

    let report = guard.check_async().await.expect_err("the service leaks");
    assert_hooked_spawn_sites(&report);
    assert_watcher_reported(&report, "lc-leaky-hook");

    drop(client);
    service.kill().await;
}

/// The same on a multi-thread `#[leak_check]` runtime. The handler is
/// spawned by the accept loop, a plain task that a worker thread polls, so
/// it is charged to the test only because a hooked task carries its scope
/// while it runs (see `nested_plain_spawn_on_a_worker_is_seen`).
#[cfg(tokio_unstable)]
#[leak_check(flavor = "multi_thread", worker_threads = 2)]
async fn leaky_service_spawn_sites_with_task_hooks_on_a_multi_thread_runtime() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let (service, client) = leaky_with_client("lc-leaky-hookmt").await;

    let report = guard.check_async().await.expect_err("the service leaks");
    assert_hooked_spawn_sites(&report);

    drop(client);
    service.kill().await;
}

/// A plain task spawned by a plain task that a worker thread polls: with
/// `--cfg tokio_unstable` the task hooks register each task in the scope
/// current where it is spawned, and on the worker that scope is the one the
/// hooked `outer` carries, the test's. Were it the root scope (as in
/// earlier versions of leakcheck), `inner` would be neither a straggler nor
/// counted, since root-scope tasks are subtracted from the runtime's count
/// as "not this test's": the report would hold 1 task where 2 leaked.
/// Without task hooks, the count says 2.
#[leak_check(flavor = "multi_thread", worker_threads = 2)]
async fn nested_plain_spawn_on_a_worker_is_seen() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let (spawned, inner_spawned) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::watch::channel(());
    let outer = tokio::spawn(async move {
        let mut stopped_inner = stopped.clone();
        let inner = tokio::spawn(async move { stopped_inner.changed().await });
        spawned.send(()).unwrap();
        let mut stopped = stopped;
        let _ = stopped.changed().await;
        inner.await.unwrap()
    });
    inner_spawned.await.unwrap();

    let report = guard.check_async().await.expect_err("two tasks leak");
    let seen = report.stragglers().len() + report.untracked_tasks();
    stop.send(()).unwrap();
    let _ = outer.await.unwrap();
    assert_eq!(seen, 2, "{report}");
}

/// The fixed service leaves nothing behind: no task, and not its watcher.
/// Another test's thread may appear in the OS-thread check meanwhile (the
/// tests run in parallel); such a report must still hold nothing of ours.
#[tokio::test]
async fn fixed_service_report_is_clean_watcher_included() {
    let guard = Options::new().os_threads(true).verify_none();
    let service = fixed::Service::start(Config::named("lc-fixed-rep"))
        .await
        .expect("the service starts");
    let mut client = Client::connect(service.addr()).await;
    assert_eq!(client.request("PUT k").await, "OK");
    service.shutdown().await;
    drop(client);

    if let Err(report) = guard.check_async().await {
        assert_eq!(report.untracked_tasks(), 0, "{report}");
        assert!(report.stragglers().is_empty(), "{report}");
        assert!(
            threads_named(&report, "lc-fixed-rep").is_empty(),
            "{report}"
        );
    }
}

/// The watcher thread really runs: after the shutdown has joined it, it
/// has counted every connection the accept loop told it about.
#[leak_check]
async fn fixed_service_watcher_counts_every_client() {
    let service = fixed::Service::start(Config::named("lc-fixed-stats"))
        .await
        .expect("the service starts");
    let stats = service.stats();
    let first = Client::connect(service.addr()).await;
    let second = Client::connect(service.addr()).await;
    drop(first);
    service.shutdown().await;
    drop(second);
    assert_eq!(stats.accepted.load(Ordering::Relaxed), 2);
}

// ---------------------------------------------------------------------------
// The taskdump feature: where each leaked task is suspended now.
// ---------------------------------------------------------------------------

#[cfg(all(tokio_unstable, feature = "taskdump", target_os = "linux"))]
#[leak_check]
async fn taskdump_shows_where_leaked_tasks_are_suspended() {
    let guard = Options::new().settle(SETTLE).verify_none();
    let (release, parked) = tokio::sync::oneshot::channel::<()>();
    let (polled, first_poll) = tokio::sync::oneshot::channel::<()>();
    let tracked = leakcheck::spawn(async move {
        let _ = polled.send(());
        let _ = parked.await;
    });
    first_poll.await.unwrap();
    let (service, client) = leaky_with_client("lc-leaky-dump").await;

    let report = guard.check_async().await.expect_err("the tasks leak");
    let text = report.to_string();
    let mine = report
        .stragglers()
        .iter()
        .find(|straggler| straggler.location().file() == file!())
        .expect("the tracked task is reported");
    assert_eq!(mine.state(), State::Waiting, "{text}");
    let trace = mine
        .suspended_at()
        .expect("the task dump names where it waits");
    assert!(
        trace.contains("taskdump_shows_where_leaked_tasks_are_suspended")
            && trace.contains("oneshot::Receiver"),
        "{trace}"
    );
    assert!(text.contains("suspended at (tokio task dump):"), "{text}");
    // The hooked tasks have tokio task ids too, so the dump covers them:
    // the handler waits for its client's next line, the purge task for its
    // next tick.
    let suspended_at = |what: &str| {
        let line = service::spawn_line(what);
        let straggler = report
            .stragglers()
            .iter()
            .find(|straggler| straggler.location().line() == line)
            .unwrap_or_else(|| panic!("no straggler from {what}:\n{text}"));
        straggler.suspended_at().unwrap_or("").to_owned()
    };
    let handler = suspended_at("leaky-handler");
    assert!(handler.contains("service::serve"), "{handler}");
    assert!(handler.contains("next_line"), "{handler}");
    let purge = suspended_at("leaky-purge");
    assert!(purge.contains("service::purge"), "{purge}");
    assert!(purge.contains("Interval::tick"), "{purge}");
    assert!(!suspended_at("leaky-accept").is_empty(), "{text}");

    release.send(()).unwrap();
    tracked.await.unwrap();
    drop(client);
    service.kill().await;
}
