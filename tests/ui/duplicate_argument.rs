use leakcheck::leak_check;

// `ignore_name` and `ignore_location` may repeat; the others may not.
#[leak_check(ignore_name = "a", ignore_name = "b", settle_ms = 10, settle_ms = 20)]
fn settle_twice() {}

#[leak_check(flavor = "multi_thread", flavor = "multi_thread")]
async fn flavor_twice() {}

#[leak_check(start_paused = true, start_paused = false)]
async fn paused_twice() {}

#[leak_check]
#[leak_check]
fn leak_check_twice() {}

fn main() {}
