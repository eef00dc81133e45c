use leakcheck::leak_check;

#[leak_check]
#[leak_check(settle_ms = 5)]
mod twice {
    #[test]
    fn checked() {}
}

#[leak_check]
mod tests {
    #[leak_check]
    #[leak_check(settle_ms = 5)]
    #[test]
    fn test_twice() {}

    #[leak_check]
    #[leak_check(off)]
    mod module_twice {
        #[test]
        fn checked() {}
    }
}

fn main() {}
