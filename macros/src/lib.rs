//! The `#[leak_check]` attribute of [leakcheck], and an implementation detail
//! of that crate: use it as `leakcheck::leak_check`, whose documentation is
//! the one that counts. This crate has no API of its own and may change in any
//! release of leakcheck.
//!
//! [leakcheck]: https://docs.rs/leakcheck

mod args;
mod expand;
mod module;

use proc_macro::TokenStream;

/// Fails a test when tokio tasks or OS threads it started are still running
/// at its end.
///
/// `#[leak_check]` makes a function a test (it adds `#[test]`), opens a leak
/// guard before the body runs, and checks it after the body has returned:
/// every task or thread spawned through leakcheck's wrappers
/// ([`leakcheck::spawn`], [`leakcheck::thread::spawn`], [`leakcheck::task`])
/// from the test, or from work the test started, must have ended by then, or
/// end within the settle budget. If any is left, the test panics with a report
/// of each straggler and the line that spawned it. On an inline module, it
/// does this for every test inside (see [On a module](#on-a-module)).
///
/// ```rust,ignore
/// use leakcheck::leak_check;
///
/// #[leak_check]
/// fn worker_is_joined() {
///     let worker = leakcheck::thread::spawn(|| 2 + 2);
///     assert_eq!(worker.join().unwrap(), 4);
/// }
///
/// #[leak_check]
/// async fn task_is_awaited() {
///     let task = leakcheck::spawn(async { 6 * 7 });
///     assert_eq!(task.await.unwrap(), 42);
/// }
/// ```
///
/// # Sync tests
///
/// On a `fn`, the body runs as written, and the check runs after it has
/// returned and all of its locals have been dropped, so a worker that stops
/// when the test drops its handle or channel sender passes. `return`, `?` and
/// a `Result` return type work as in any test, and the body's value is the
/// test's result.
///
/// ```rust,ignore
/// #[leak_check]
/// fn parses() -> Result<(), std::num::ParseIntError> {
///     let (tx, rx) = std::sync::mpsc::channel::<u32>();
///     leakcheck::thread::spawn(move || for _ in rx {});
///     tx.send("42".parse()?).unwrap();
///     Ok(()) // `tx` is dropped here, the worker ends, the check passes
/// }
/// ```
///
/// # Async tests
///
/// On an `async fn`, `#[leak_check]` builds a tokio runtime the way
/// `#[tokio::test]` does (current-thread unless told otherwise, with I/O and
/// time enabled) and runs the body in it. The check is awaited inside that
/// runtime, after the body, so tasks that are winding down still get polled,
/// and before the runtime is dropped, which would cancel every task and hide
/// any leak.
///
/// ```rust,ignore
/// #[leak_check(flavor = "multi_thread", worker_threads = 2)]
/// async fn on_two_workers() {
///     let tasks: Vec<_> = (0..8).map(|i| leakcheck::spawn(async move { i })).collect();
///     for task in tasks {
///         task.await.unwrap();
///     }
/// }
///
/// #[leak_check(start_paused = true)]
/// async fn with_paused_time() {
///     tokio::time::sleep(std::time::Duration::from_secs(60)).await; // returns at once
/// }
/// ```
///
/// # With `#[tokio::test]`
///
/// Put `#[leak_check]` **above** `#[tokio::test]` to keep writing
/// `#[tokio::test]` and its arguments. `#[leak_check]` then takes its place:
/// it removes `#[tokio::test]` and builds the same runtime itself, from the
/// arguments of both attributes, so that the runtime is instrumented (see
/// below) and the check is awaited inside it, exactly as for an `async fn`
/// without `#[tokio::test]`. These two tests expand to the same code:
///
/// ```rust,ignore
/// #[leak_check(settle_ms = 100)]
/// #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// async fn with_tokio_test() {
///     leakcheck::spawn(async {}).await.unwrap();
/// }
///
/// #[leak_check(settle_ms = 100, flavor = "multi_thread", worker_threads = 2)]
/// async fn without_it() {
///     leakcheck::spawn(async {}).await.unwrap();
/// }
/// ```
///
/// Every argument of `#[tokio::test]` is passed on: `flavor`
/// (`"current_thread"`, `"multi_thread"` or `"local"`), `worker_threads`,
/// `start_paused`, `crate = "path"` (the path tokio is reached under),
/// `unhandled_panic` (`"ignore"` or `"shutdown_runtime"`; like
/// `#[tokio::test]`, it needs `--cfg tokio_unstable`, and without it the
/// compiler reports that tokio's builder has no such setting) and `name`. A
/// runtime argument may go on either attribute, but not on both. Any other
/// argument of `#[tokio::test]` is a compile error, so that a setting is
/// never dropped without a word. The test behaves as under `#[tokio::test]`:
/// the body's value or `Result` is the test's, and `#[should_panic]`,
/// `#[ignore]` and the other attributes are kept.
///
/// Only `#[tokio::test]` and `#[::tokio::test]` are recognised. Another
/// runtime's test attribute below `#[leak_check]` (`#[actix_rt::test]`,
/// `#[test_log::test(tokio::test)]`, `#[sqlx::test]`, a renamed tokio's
/// `#[my_tokio::test]`: any path ending in `test`) is left in place and
/// builds its runtime itself: `#[leak_check]` only adds the guard and the
/// awaited check to the body, runtime arguments go on that attribute, and
/// plain `tokio::spawn` tasks on that runtime are only counted.
///
/// Below `#[tokio::test]`, `#[leak_check]` would get the sync function that
/// `#[tokio::test]` has already made, and could only check after tokio's
/// runtime is gone, when no leak can be seen. That order is a compile error.
///
/// # On a module
///
/// On an inline module, `#[leak_check]` checks every test inside it, in
/// nested modules too, as if each had a `#[leak_check]` of its own: one line
/// covers a crate's unit tests.
///
/// ```rust,ignore
/// #[cfg(test)]
/// #[leakcheck::leak_check(settle_ms = 200)]
/// mod tests {
///     use super::*;
///     use leakcheck::leak_check;
///
///     fn server() -> Server { /* .. */ } // not a test: left as it is
///
///     #[test]
///     fn parses() { /* .. */ }
///
///     #[tokio::test(flavor = "multi_thread")] // runtime built by `#[leak_check]`
///     async fn serves() { /* .. */ }
///
///     #[leak_check(ignore_name = "pool-reaper")] // and `settle_ms = 200`
///     #[tokio::test]
///     async fn pools() { /* .. */ }
///
///     #[leak_check(off)] // not checked
///     #[tokio::test]
///     async fn legacy() { /* .. */ }
/// }
/// ```
///
/// A test is a function with `#[test]`, `#[tokio::test]`, another attribute
/// whose path ends in `test` (`#[test_log::test]`, `#[actix_rt::test]`), or
/// a `#[leak_check]` of its own; each is rewritten exactly as the per-test
/// form would rewrite it, with the same errors. Every other item, helper
/// functions and fixtures included, is left as it is, and so are the
/// module's attributes (`#[cfg(test)]` may go above or below
/// `#[leak_check]`: rustc applies it first).
///
/// The module's arguments are defaults, argument by argument: a test's own
/// `#[leak_check(...)]`, and the arguments of its `#[tokio::test(...)]`,
/// replace the module's value of the arguments they give and keep the
/// others; `ignore_name` and `ignore_location` add to the module's. A
/// nested module's `#[leak_check(...)]` does the same for the tests inside
/// it. The runtime arguments go to the tests whose runtime `#[leak_check]`
/// builds (an `async fn`, or in place of `#[tokio::test]`), each where it
/// fits: `worker_threads` to multi-thread tests, `start_paused` to
/// current-thread and local ones; one that no test takes is an error.
///
/// `#[leak_check(off)]` exempts a test, or a nested module, which is then
/// left exactly as it would be without the module's attribute: a
/// `#[tokio::test]` keeps tokio's own runtime. The nearest `#[leak_check]`
/// decides, so a test with its own `#[leak_check]` inside an exempt module
/// is checked. `off` takes no other argument, and anywhere it would exempt
/// nothing (outside a checked module, on a function that is no test) it is
/// an error.
///
/// The module's attribute handles the `#[leak_check]`s inside itself, so no
/// test is checked twice. It can only see what is written in the module:
///
/// - `#[leak_check]` goes above a test's test attribute, as anywhere.
/// - Written through `#[cfg_attr(..)]` or under another name (`use
///   leakcheck::leak_check as lc`), an attribute inside is not seen, and
///   it runs after the module's, on a test already checked: an error.
/// - Tests that a macro generates (`proptest! { .. }`) are not seen; use
///   [`leakcheck::verify_none`] in their body.
/// - A module in a file of its own, `mod tests;`, is not seen: rustc gives
///   an attribute macro only the `mod tests;` line (and refuses it). Put
///   `#[leak_check]` on an inline module in that file, or on each test.
///
/// # The instrumented runtime
///
/// Every runtime `#[leak_check]` builds, for an `async fn` alone or in place
/// of `#[tokio::test]`, goes through [`leakcheck::runtime::instrument`]. Built
/// with `RUSTFLAGS="--cfg tokio_unstable"`, it installs tokio's task hooks, so
/// a plain `tokio::spawn` that leaks (yours or a dependency's) is reported
/// with the line that spawned it; without the cfg, such tasks are counted.
///
/// # Arguments
///
/// | argument | value | effect |
/// |---|---|---|
/// | `settle_ms` | integer | how long the check waits for work that is still winding down, in milliseconds; by default `LEAKCHECK_SETTLE_MS`, or 500 |
/// | `ignore_name` | string, repeatable | ignore tasks and threads with this name; a trailing `*` matches a prefix |
/// | `ignore_location` | string, repeatable | ignore work spawned at `"file"`, `"file:line"` or `"file:line:col"` |
/// | `ignore_untracked_tasks` | integer | accept up to this many tasks that only tokio's count sees (plain `tokio::spawn` without task hooks), such as a pool's reaper; a count cannot tell them from another leak of the same size |
/// | `flavor` | `"current_thread"` (default), `"multi_thread"` or `"local"` | the runtime of an `async fn` test; `"multi_thread"` needs tokio's `rt-multi-thread` feature; `"local"` is tokio's `LocalRuntime` (tokio 1.51+), where `tokio::task::spawn_local` works |
/// | `worker_threads` | integer | the number of workers of a `"multi_thread"` runtime |
/// | `start_paused` | `true` or `false` | start the clock of a current-thread runtime paused; needs tokio's `test-util` feature |
/// | `off` | none | inside a checked module: leave this test, or this nested module, unchecked |
///
/// The first four are [`leakcheck::Options`]; the next three apply only to
/// an `async fn` that `#[leak_check]` builds the runtime for, and may
/// instead be given to a `#[tokio::test]` below it.
///
/// ```rust,ignore
/// #[leak_check(settle_ms = 50, ignore_name = "metrics-*", ignore_location = "src/pool.rs:88")]
/// async fn ignores_the_pool_reaper() -> std::io::Result<()> {
///     leakcheck::task::Builder::new()
///         .name("metrics-flusher")
///         .spawn(std::future::pending::<()>())?; // ignored by name
///     Ok(())
/// }
/// ```
///
/// # Other attributes
///
/// Attributes on the function are kept: `#[should_panic]`, `#[ignore]`, doc
/// comments, `#[allow]`, `#[cfg_attr]`. A `#[test]` below `#[leak_check]` is
/// used instead of the one it would add. A `#[test]` above it registers the
/// function before `#[leak_check]` can see that it did, so the function would
/// be registered twice: the second run of it fails, saying to remove that
/// `#[test]`.
///
/// A test whose body panics reports its own panic; if it also leaked, the
/// report is printed to stderr rather than raised as a second panic.
///
/// ```rust,ignore
/// #[leak_check]
/// #[should_panic(expected = "tests/server.rs:12")] // the line of the spawn
/// async fn leaks_a_task() {
///     leakcheck::spawn(std::future::pending::<()>());
/// }
/// ```
///
/// # Compile errors
///
/// - on anything but a function or an inline module, and on a function that
///   takes arguments or is generic (type, const or lifetime parameters, or a
///   `where` clause);
/// - on an unknown argument, a value of the wrong type, a repeated argument
///   other than `ignore_name` and `ignore_location`, or an unknown `flavor`;
/// - on a runtime argument of a sync test, or of a test whose runtime another
///   attribute builds (any `..::test` but `#[tokio::test]`); on
///   `worker_threads` without `flavor = "multi_thread"`, and on
///   `start_paused = true` or `unhandled_panic` with it;
/// - with `#[tokio::test]` below: on an argument of it that `#[leak_check]`
///   can't pass on, on a runtime argument given to both attributes, and on a
///   second test attribute such as `#[test]`;
/// - below `#[tokio::test]`;
/// - on a module: on a file module (`mod tests;`), on a module with no test
///   in it, on a runtime argument that none of its tests takes; inside it, on
///   a `#[leak_check]` below a test attribute, or one it could not see
///   (through `cfg_attr` or another name) on a test it has already checked;
/// - `off` with another argument, outside a checked module, or on a
///   function that is no test.
///
// Relative links: these docs are read where leakcheck re-exports the macro,
// at `leakcheck/attr.leak_check.html`.
/// [`leakcheck::spawn`]: task/fn.spawn.html
/// [`leakcheck::thread::spawn`]: thread/fn.spawn.html
/// [`leakcheck::task`]: task/index.html
/// [`leakcheck::Options`]: struct.Options.html
/// [`leakcheck::runtime::instrument`]: runtime/fn.instrument.html
/// [`leakcheck::verify_none`]: fn.verify_none.html
#[proc_macro_attribute]
pub fn leak_check(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(item as syn::Item);
    expand::leak_check(args.into(), item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Collects errors, so that one expansion reports every problem at once.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}
