use leakcheck::leak_check;

#[leak_check]
#[tokio::test(flavor = "threaded_scheduler", worker_threads = 0)]
async fn unknown_flavor_zero_workers() {}

#[leak_check]
#[tokio::test(start_paused = "yes", worker_threads = "2", flavor = multi_thread)]
async fn wrong_types() {}

#[leak_check]
#[tokio::test(unhandled_panic = "abort", crate = "not a path", name = " ")]
async fn bad_strings() {}

#[leak_check]
#[tokio::test(flavor = "local", worker_threads = 2)]
async fn workers_on_local() {}

#[leak_check]
#[tokio::test(flavor = "multi_thread", start_paused = true, unhandled_panic = "ignore")]
async fn multi_thread_conflicts() {}

#[leak_check]
#[tokio::test = "multi_thread"]
async fn name_value_attribute() {}

fn main() {}
