use leakcheck::leak_check;

#[leak_check]
#[tokio::test]
#[test]
async fn tokio_test_and_test() {}

fn main() {}
