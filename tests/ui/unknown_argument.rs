use leakcheck::leak_check;

#[leak_check(settle = 200)]
fn misspelled() {}

#[leak_check(multi_thread)]
async fn bare_flavor() {}

#[leak_check(crate = "leakcheck")]
fn tokio_only_argument() {}

fn main() {}
