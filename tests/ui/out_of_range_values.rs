use leakcheck::leak_check;

#[leak_check(settle_ms = -1)]
fn settle_negative() {}

#[leak_check(settle_ms = 600001)]
fn settle_over_ten_minutes() {}

#[leak_check(flavor = "multi_thread", worker_threads = -1)]
async fn workers_negative() {}

#[leak_check(flavor = "multi_thread", worker_threads = 18446744073709551615)]
async fn workers_huge() {}

#[leak_check(ignore_name = "")]
fn name_empty() {}

#[leak_check(ignore_name = "*")]
fn name_matching_everything() {}

#[leak_check(ignore_location = "")]
fn location_empty() {}

#[leak_check(ignore_location = "src/pool.rs:0")]
fn location_line_zero() {}

#[leak_check(ignore_location = ":12")]
fn location_without_file() {}

fn main() {}
