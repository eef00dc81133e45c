use leakcheck::leak_check;

// Each runtime argument may go on either attribute, but only on one.
#[leak_check(flavor = "multi_thread", settle_ms = 100)]
#[tokio::test(flavor = "multi_thread")]
async fn flavor_twice() {}

#[leak_check(worker_threads = 2, start_paused = false)]
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn start_paused_twice() {}

#[leak_check(worker_threads = 2)]
#[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_twice() {}

fn main() {}
