// An attribute the module's `#[leak_check]` can't recognise runs after it,
// on a test it has already rewritten.
use leakcheck::leak_check;
use leakcheck::leak_check as renamed;

#[leak_check]
mod tests {
    use super::*;

    #[cfg_attr(all(), leak_check(settle_ms = 5))]
    #[test]
    fn through_cfg_attr() {}

    #[renamed]
    #[test]
    fn renamed() {}

    #[cfg_attr(all(), leak_check)]
    mod nested {
        #[test]
        fn checked() {}
    }
}

fn main() {}
