use leakcheck::leak_check;

#[leak_check(worker_threads = 4)]
async fn workers_on_current_thread() {}

#[leak_check(flavor = "current_thread", worker_threads = 4)]
async fn workers_on_explicit_current_thread() {}

#[leak_check(flavor = "multi_thread", worker_threads = 0)]
async fn zero_workers() {}

#[leak_check(flavor = "multi_thread", start_paused = true)]
async fn paused_multi_thread() {}

fn main() {}
