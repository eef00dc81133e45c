use leakcheck::leak_check;

// Values of the wrong type, or outside what an argument accepts, that
// `tests/ui/wrong_argument_type.rs` does not already try.

#[leak_check(settle_ms = true)]
fn settle_as_bool() {}

#[leak_check(ignore_name = 1)]
fn name_as_number() {}

#[leak_check(ignore_name = ["a", "b"])]
fn names_as_array() {}

#[leak_check(ignore_location = false)]
fn location_as_bool() {}

#[leak_check(flavor = "")]
async fn flavor_empty() {}

#[leak_check(flavor = 1)]
async fn flavor_as_number() {}

#[leak_check(flavor = "multi_thread", worker_threads = 2.5)]
async fn workers_as_float() {}

#[leak_check(flavor = "multi_thread", worker_threads = true)]
async fn workers_as_bool() {}

#[leak_check(start_paused = "true")]
async fn paused_as_string() {}

#[leak_check(start_paused = -1)]
async fn paused_negative() {}

fn main() {}
