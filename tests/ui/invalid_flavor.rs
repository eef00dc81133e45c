use leakcheck::leak_check;

#[leak_check(flavor = "single_thread")]
async fn single_thread() {}

#[leak_check(flavor = "threaded_scheduler")]
async fn old_name() {}

fn main() {}
