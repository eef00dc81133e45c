use leakcheck::leak_check;

#[leak_check]
#[tokio::test(foo = 1)]
async fn unknown() {}

// An older tokio name, and a flag where tokio wants `name = value`.
#[leak_check(settle_ms = 100)]
#[tokio::test(flavor = "multi_thread", core_threads = 2, multi_thread)]
async fn renamed_and_bare() {}

// `#[leak_check]`'s own arguments are not `#[tokio::test]`'s.
#[leak_check]
#[tokio::test(settle_ms = 100)]
async fn leak_check_argument_on_tokio_test() {}

fn main() {}
