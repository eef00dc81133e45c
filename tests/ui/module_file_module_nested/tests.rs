// The items of `mod tests;` in tests/ui/module_file_module.rs: no attribute on that
// line can see them.
#[test]
fn in_a_file() {}
