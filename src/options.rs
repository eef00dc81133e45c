//! [`Options`]: how long a check waits, and what it ignores.
//!
//! Plain settings: the guard reads them, and [`Options::verify_none`], which
//! opens a guard with them, lives with the guard.

use crate::ignore::{self, LocationPattern, Rule, LOCATION_FORMS};
use crate::report::Straggler;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The settle budget when neither [`Options::settle`] nor
/// `LEAKCHECK_SETTLE_MS` sets one.
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(500);

/// Settings for a leak check, built like `std::thread::Builder`.
///
/// Start from [`Options::new`], chain what you need, and finish with
/// [`Options::verify_none`] to open the guard.
///
/// ```
/// use std::time::Duration;
///
/// let guard = leakcheck::Options::new()
///     .settle(Duration::from_millis(100))
///     .ignore_name("metrics-flusher")
///     .ignore_location("src/pool.rs:88")
///     .ignore_frame("hyper::client::pool")
///     .ignore_if(|s| s.kind() == leakcheck::Kind::BlockingTask)
///     .verify_none();
/// guard.check().unwrap();
/// ```
#[derive(Clone, Default)]
#[must_use = "Options do nothing until `verify_none` is called"]
pub struct Options {
    settle: Option<Duration>,
    detailed: Option<bool>,
    os_threads: Option<bool>,
    ignores: Vec<Ignore>,
    ignore_untracked_tasks: usize,
}

#[derive(Clone)]
enum Ignore {
    Rule(Rule),
    If(Arc<dyn Fn(&Straggler) -> bool + Send + Sync>),
}

impl fmt::Debug for Ignore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignore::Rule(rule) => write!(f, "{rule:?}"),
            Ignore::If(_) => f.write_str("If(..)"),
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("settle", &self.settle)
            .field("detailed", &self.detailed)
            .field("os_threads", &self.os_threads)
            .field("ignores", &self.ignores)
            .field("ignore_untracked_tasks", &self.ignore_untracked_tasks)
            .finish()
    }
}

impl Options {
    /// Default options: the settle budget from `LEAKCHECK_SETTLE_MS`, or
    /// [`DEFAULT_SETTLE`], and nothing ignored.
    ///
    /// ```
    /// let guard = leakcheck::Options::new().verify_none();
    /// # guard.check().unwrap();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a check may wait for stragglers that are still winding down
    /// before it reports them. A clean scope returns at once whatever this is,
    /// and so does a scope whose stragglers are all provably stuck.
    ///
    /// ```
    /// let guard = leakcheck::Options::new()
    ///     .settle(std::time::Duration::from_millis(50))
    ///     .verify_none();
    /// # guard.check().unwrap();
    /// ```
    pub fn settle(mut self, budget: Duration) -> Self {
        self.settle = Some(budget);
        self
    }

    /// Instruments every task spawned in the scope with its own tokio-metrics
    /// `TaskMonitor`, and adds its figures to the report: mean poll duration,
    /// slow polls, total idle and scheduled time. Costs a few hundred
    /// nanoseconds per poll; off unless set here or with `LEAKCHECK_DETAIL=1`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let guard = leakcheck::Options::new().detailed(true).verify_none();
    /// leakcheck::spawn(std::future::pending::<()>());
    /// let report = guard.check_async().await.unwrap_err();
    /// let detail = report.stragglers()[0].detail().expect("detailed mode");
    /// assert_eq!(detail.polls(), 1);
    /// # }
    /// ```
    pub fn detailed(mut self, on: bool) -> Self {
        self.detailed = Some(on);
        self
    }

    /// Turns the `/proc` OS-thread check on or off for this guard: on Linux,
    /// threads that appear during the scope and that leakcheck knows nothing
    /// else about are reported by name and tid.
    ///
    /// Where the thread hook runs (Linux with glibc, the default), plain
    /// threads are already seen with their creator and spawn line, and this
    /// check is off by default. Elsewhere it is on by default only when the
    /// process runs one test at a time (nextest's process-per-test mode,
    /// `--test-threads=1`, `RUST_TEST_THREADS=1`), because with parallel
    /// tests another test's thread would look like this one's.
    /// `LEAKCHECK_OS_THREADS` sets the default. On other platforms the check
    /// does nothing.
    ///
    /// ```
    /// let guard = leakcheck::Options::new().os_threads(true).verify_none();
    /// std::thread::spawn(|| ()).join().unwrap();
    /// guard.check().unwrap();
    /// ```
    pub fn os_threads(mut self, on: bool) -> Self {
        self.os_threads = Some(on);
        self
    }

    /// Ignores tasks and threads with this name. A trailing `*` matches any
    /// name that starts with what precedes it.
    ///
    /// # Panics
    ///
    /// Panics if `name` is empty, which would match nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let guard = leakcheck::Options::new().ignore_name("pool-*").verify_none();
    /// leakcheck::task::Builder::new()
    ///     .name("pool-reaper")
    ///     .spawn(std::future::pending::<()>())?;
    /// guard.check_async().await.unwrap();
    /// # Ok(())
    /// # }
    /// ```
    pub fn ignore_name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        match Rule::name(&name) {
            Ok(rule) => self.ignores.push(Ignore::Rule(rule)),
            Err(why) => panic!("leakcheck: ignore_name({name:?}) is invalid: {why}"),
        }
        self
    }

    /// Ignores work spawned at a site: `file`, `file:line` or
    /// `file:line:col`. The file matches when it equals the spawn site's file
    /// or ends with it after a `/`, so `pool.rs` matches `src/pool.rs`.
    ///
    /// # Panics
    ///
    /// Panics if the pattern has no file part or a line or column that is not
    /// a positive number.
    ///
    /// ```
    /// let guard = leakcheck::Options::new().ignore_location("src/server.rs:120").verify_none();
    /// # guard.check().unwrap();
    /// ```
    pub fn ignore_location(mut self, pattern: impl AsRef<str>) -> Self {
        let pattern = pattern.as_ref();
        match LocationPattern::parse(pattern) {
            Ok(pattern) => self.ignores.push(Ignore::Rule(Rule::Location(pattern))),
            Err(why) => panic!(
                "leakcheck: ignore_location({pattern:?}) is invalid: {why}; expected {LOCATION_FORMS}"
            ),
        }
        self
    }

    /// Ignores work whose creation backtrace has a frame whose function name
    /// contains `pattern`, like goleak's `IgnoreAnyFunction`. It needs
    /// backtraces (`LEAKCHECK_BACKTRACE` other than `off`).
    ///
    /// # Panics
    ///
    /// Panics if `pattern` is empty.
    ///
    /// ```
    /// let guard = leakcheck::Options::new().ignore_frame("my_crate::global_pool").verify_none();
    /// # guard.check().unwrap();
    /// ```
    pub fn ignore_frame(mut self, pattern: impl Into<String>) -> Self {
        let pattern = pattern.into();
        match Rule::frame(&pattern) {
            Ok(rule) => self.ignores.push(Ignore::Rule(rule)),
            Err(why) => panic!("leakcheck: ignore_frame({pattern:?}) is invalid: {why}"),
        }
        self
    }

    /// Accepts up to `n` tasks that only tokio's count sees: spawned with plain
    /// `tokio::spawn` on a runtime without leakcheck's task hooks (stable
    /// Rust), so no name, site or frame is known to match. Use it for work
    /// that outlives each test by design, such as a connection pool's reaper
    /// that lingers after the pool is dropped, rather than turning checks
    /// off or raising the settle budget past its lifetime.
    ///
    /// A count cannot tell one task from another: if the accepted task has
    /// already ended, an unrelated leak of the same size takes its place
    /// unseen. Any report that is made says how many tasks were accepted
    /// this way. With `--cfg tokio_unstable` and an instrumented runtime,
    /// prefer [`ignore_location`](Self::ignore_location), which names the
    /// task.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let guard = leakcheck::Options::new().ignore_untracked_tasks(1).verify_none();
    /// # #[cfg(not(tokio_unstable))]
    /// tokio::spawn(std::future::pending::<()>()); // a reaper, by design
    /// guard.check_async().await.unwrap();
    /// # }
    /// ```
    pub fn ignore_untracked_tasks(mut self, n: usize) -> Self {
        self.ignore_untracked_tasks = n;
        self
    }

    /// Ignores every straggler for which `predicate` returns true.
    ///
    /// ```
    /// use leakcheck::Kind;
    /// let guard = leakcheck::Options::new()
    ///     .ignore_if(|s| s.kind() == Kind::Thread && s.name() == Some("logger"))
    ///     .verify_none();
    /// # guard.check().unwrap();
    /// ```
    pub fn ignore_if<F>(mut self, predicate: F) -> Self
    where
        F: Fn(&Straggler) -> bool + Send + Sync + 'static,
    {
        self.ignores.push(Ignore::If(Arc::new(predicate)));
        self
    }

    pub(crate) fn os_threads_setting(&self) -> Option<bool> {
        self.os_threads
    }

    /// Whether detailed mode is on, all sources considered.
    pub(crate) fn is_detailed(&self, from_env: bool) -> bool {
        self.detailed.unwrap_or(from_env)
    }

    /// The settle budget to use, all sources considered.
    pub(crate) fn settle_budget(&self, from_env: Option<Duration>) -> Duration {
        self.settle.or(from_env).unwrap_or(DEFAULT_SETTLE)
    }

    /// How many counted tasks [`ignore_untracked_tasks`](Self::ignore_untracked_tasks)
    /// accepts.
    pub(crate) fn untracked_tasks_accepted(&self) -> usize {
        self.ignore_untracked_tasks
    }

    /// Whether any ignore rule, these options' own or the project's ignore
    /// file's, matches `straggler`.
    pub(crate) fn ignores(&self, straggler: &Straggler) -> bool {
        self.ignores.iter().any(|ignore| match ignore {
            Ignore::Rule(rule) => rule.matches(straggler),
            Ignore::If(predicate) => predicate(straggler),
        }) || ignore::file::accepts(straggler)
    }
}
