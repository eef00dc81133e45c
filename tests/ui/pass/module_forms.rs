// `#[leak_check]` on modules, compiling in a plain binary (no `--test`),
// where the tests are dropped and what is left must not warn: the import of
// `leak_check` that only the tests' attributes use is not unused.
#![deny(warnings)]

#[leakcheck::leak_check(settle_ms = 100, ignore_name = "pool-*", flavor = "multi_thread")]
mod every_form {
    use leakcheck::leak_check;

    #[allow(dead_code)]
    fn helper() -> u32 {
        1
    }

    #[test]
    fn sync() {
        assert_eq!(helper(), 1);
    }

    #[tokio::test]
    async fn tokio_test() {}

    #[::tokio::test(flavor = "current_thread", start_paused = true)]
    async fn tokio_test_paused() {}

    #[leak_check(worker_threads = 2)]
    async fn own_runtime() {}

    #[leak_check(ignore_location = "src/pool.rs:88")]
    #[test]
    fn own_arguments_above_test() -> Result<(), String> {
        Ok(())
    }

    #[leak_check(off)]
    #[tokio::test]
    async fn exempt() {}

    #[leak_check(off)]
    mod exempt_module {
        #[test]
        fn unchecked() {}

        #[super::leak_check]
        #[test]
        fn checked_again() {}
    }

    #[leak_check(flavor = "current_thread")]
    mod nested {
        #[tokio::test]
        async fn current_thread() {}
    }
}

// rustc applies `#[cfg]` before any attribute macro, wherever it is written.
#[cfg(test)]
#[leakcheck::leak_check]
mod cfg_test_above {
    #[test]
    fn checked() {}
}

#[leakcheck::leak_check]
#[cfg(test)]
mod cfg_test_below {
    compile_error!("a module that `#[cfg(test)]` leaves out was compiled");

    #[test]
    fn checked() {}
}

// A test left out by its `#[cfg]` is left out after the module's attribute
// has rewritten it.
#[leakcheck::leak_check]
mod inner_cfg {
    #[cfg(any())]
    #[test]
    fn left_out() {
        compile_error!("a test that `#[cfg(any())]` leaves out was compiled");
    }

    #[test]
    fn checked() {}
}

// As in a crate's build without its dev-dependencies, where `leakcheck`
// names nothing: rustc applies `#[cfg]` before it resolves the attribute,
// wherever the `#[cfg]` is written.
#[not_a_dependency::leak_check]
#[cfg(any())]
mod without_the_dependency {
    #[test]
    fn checked() {}
}

fn main() {}
