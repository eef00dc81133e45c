// A module's runtime argument that none of its tests takes.
use leakcheck::leak_check;

#[leak_check(flavor = "multi_thread")]
mod only_sync_tests {
    #[test]
    fn sync() {}
}

#[leak_check(worker_threads = 2)]
mod only_current_thread_tests {
    #[tokio::test]
    async fn current_thread() {}
}

#[leak_check(flavor = "multi_thread", start_paused = true)]
mod only_multi_thread_tests {
    #[tokio::test]
    async fn multi_thread() {}
}

#[leak_check(flavor = "multi_thread")]
mod every_test_sets_its_own {
    #[tokio::test(flavor = "current_thread")]
    async fn current_thread() {}
}

#[leak_check(start_paused = true)]
mod exempt_or_on_another_runtime {
    #[leak_check(off)]
    #[tokio::test]
    async fn exempt() {}

    #[my_tokio::test]
    async fn other_runtime() {}
}

fn main() {}
