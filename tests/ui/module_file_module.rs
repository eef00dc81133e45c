// A module whose items are in another file can't be seen by an attribute.
mod module_file_module {
    #[leakcheck::leak_check]
    mod tests;
}

#[leakcheck::leak_check]
mod module_file_module_nested {
    #[test]
    fn seen() {}

    mod tests;
}

fn main() {}
