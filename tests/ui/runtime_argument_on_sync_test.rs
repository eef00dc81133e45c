use leakcheck::leak_check;

#[leak_check(flavor = "multi_thread", worker_threads = 2)]
fn sync_with_runtime() {}

#[leak_check(settle_ms = 100, start_paused = true)]
fn sync_with_paused_clock() {}

fn main() {}
