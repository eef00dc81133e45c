use leakcheck::leak_check;

#[leak_check]
mod only_helpers {
    fn helper() {}

    struct Fixture;
}

#[allow(unused_macros)] // the module that uses it is not compiled
macro_rules! generated {
    () => {
        #[test]
        fn generated() {}
    };
}

// The tests a macro generates can't be seen.
#[leak_check(settle_ms = 100)]
mod tests_from_a_macro {
    generated!();
}

#[leak_check]
mod with_nested_modules {
    #[test]
    fn checked() {}

    #[leak_check(off)]
    mod exempts_nothing {
        fn helper() {}
    }

    #[leak_check(settle_ms = 5)]
    mod checks_nothing {}
}

fn main() {}
