use leakcheck::leak_check;

#[leak_check(flavor = "multi_thread", settle_ms = 100)]
#[tokio::test]
async fn flavor_with_tokio_test() {}

#[leak_check(worker_threads = 2, start_paused = true)]
#[tokio::test(flavor = "multi_thread")]
async fn workers_with_tokio_test() {}

fn main() {}
