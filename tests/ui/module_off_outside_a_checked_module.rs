// `off` exempts a test from the `#[leak_check]` of a module around it:
// anywhere else it means nothing.
use leakcheck::leak_check;

#[leak_check(off)]
#[test]
fn exempt_from_nothing() {}

#[leak_check(off)]
mod tests {
    #[test]
    fn unchecked() {}
}

fn main() {}
