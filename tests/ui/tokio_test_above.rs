use leakcheck::leak_check;

#[tokio::test]
#[leak_check]
async fn tokio_test_first() {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[leak_check(settle_ms = 100)]
async fn tokio_test_first_with_arguments() {}

fn main() {}
