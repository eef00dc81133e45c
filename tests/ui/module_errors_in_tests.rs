// Each test of a module is checked as on its own, and every error is
// reported at once.
use leakcheck::leak_check;

#[leak_check(flavor = "multi_thread")]
mod tests {
    #[leak_check(worker_threads = 2)]
    #[test]
    fn sync_with_a_runtime_argument() {}

    #[leak_check(flavor = "current_thread")]
    #[tokio::test(flavor = "multi_thread")]
    async fn flavor_given_twice() {}

    #[leak_check(start_paused = true)]
    #[tokio::test]
    async fn paused_on_the_module_flavor() {}

    #[test]
    fn takes_arguments(port: u16) {}

    #[tokio::test]
    async fn multi_thread() {}
}

fn main() {}
