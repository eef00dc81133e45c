use leakcheck::leak_check;

#[leak_check(settle_ms = )]
fn missing_value() {}

#[leak_check(settle_ms = 1 ignore_name = "x")]
fn missing_comma() {}

fn main() {}
