// Every form of `#[leak_check]`, with arguments, compiling in a plain
// binary (no `--test`) where the added `#[test]` drops the functions.
#![deny(warnings)]

use leakcheck::leak_check;

#[leak_check(settle_ms = 100, ignore_name = "a", ignore_name = "b", ignore_location = "c.rs")]
fn sync_test() -> Result<(), std::fmt::Error> {
    Ok(())
}

#[leak_check(flavor = "multi_thread", worker_threads = 2, settle_ms = 0)]
async fn multi_thread() {}

#[leak_check(flavor = "current_thread", start_paused = true)]
async fn paused() {}

#[leak_check(flavor = "local")]
async fn local() {}

#[leak_check]
#[tokio::test(flavor = "multi_thread")]
async fn with_tokio_test() {}

#[leak_check(flavor = "multi_thread", settle_ms = 0)]
#[tokio::test(worker_threads = 2)]
async fn with_tokio_test_arguments_split() {}

#[leak_check(start_paused = true)]
#[::tokio::test(flavor = "local", name = "rt", crate = "tokio")]
async fn with_tokio_test_every_argument() {}

#[leak_check]
#[test]
fn with_test_below() {}

mod nested {
    #[leakcheck::leak_check]
    pub(crate) fn in_a_module() {}
}

fn main() {}
