// The module's `#[leak_check]` takes each one inside off its item, and its
// path must still name the attribute, as it would without the module's.
#[leakcheck::leak_check]
mod tests {
    #[leak_check(off)]
    #[test]
    fn not_imported() {}

    #[leakcheck::leak_check(settle_ms = 5)]
    #[test]
    fn full_path() {}
}

fn main() {}
