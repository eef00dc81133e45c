use leakcheck::leak_check;

#[leak_check(flavor = "local")]
async fn local() {}

#[leak_check(flavor = "threaded_scheduler")]
async fn old_name() {}

fn main() {}
