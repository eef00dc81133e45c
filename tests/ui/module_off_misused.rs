use leakcheck::leak_check;

#[leak_check]
mod tests {
    #[leak_check(off, settle_ms = 100)]
    #[test]
    fn off_with_other_arguments() {}

    #[leak_check(off = true)]
    #[test]
    fn off_with_a_value() {}

    #[leak_check(off, off)]
    #[test]
    fn off_twice() {}

    #[leak_check(off)]
    fn helper_is_not_a_test() {}

    #[leak_check = "off"]
    #[test]
    fn name_value_attribute() {}

    #[test]
    fn checked() {}
}

fn main() {}
