// Inside a checked module as on any test, `#[leak_check]` goes above the
// test attribute.
use leakcheck::leak_check;

#[leak_check]
mod tests {
    #[test]
    #[leak_check(settle_ms = 100)]
    fn below_test() {}

    #[tokio::test]
    #[leak_check]
    async fn below_tokio_test() {}

    #[tokio::test]
    #[leak_check(off)]
    async fn off_below_tokio_test() {}
}

fn main() {}
