use leakcheck::leak_check;

// One expansion reports every problem it finds, not just the first.
#[leak_check(settle_ms = "soon", flavor = "multi_thread", verbose = true)]
fn many_problems<T>(input: T) {}

fn main() {}
