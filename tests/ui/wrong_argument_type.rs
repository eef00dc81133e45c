use leakcheck::leak_check;

#[leak_check(settle_ms = "200")]
fn settle_as_string() {}

#[leak_check(settle_ms = 1.5)]
fn settle_as_float() {}

#[leak_check(settle_ms = 99999999999999999999999)]
fn settle_too_large() {}

#[leak_check(ignore_name = ticker)]
fn name_as_path() {}

#[leak_check(ignore_location = 42)]
fn location_as_number() {}

#[leak_check(flavor = multi_thread)]
async fn flavor_as_path() {}

#[leak_check(worker_threads = "2", flavor = "multi_thread")]
async fn workers_as_string() {}

#[leak_check(start_paused = 1)]
async fn paused_as_number() {}

#[leak_check(ignore_untracked_tasks = "1")]
fn untracked_as_string() {}

#[leak_check(ignore_untracked_tasks = 99999999999999999999999)]
fn untracked_too_large() {}

#[leak_check(settle_ms(200))]
fn list_instead_of_value() {}

#[leak_check(settle_ms)]
fn no_value() {}

fn main() {}
