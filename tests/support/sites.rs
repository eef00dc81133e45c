//! Finding a marked spawn call in a test's own source, so that tests assert
//! exact lines and columns without hard-coding them, and keeping the lines
//! that a test's attributes do hard-code in step with the source.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

/// The line and column of the call on the line of `source` that ends with
/// `// site:<marker>`; `call` is the text the call starts with: the path of
/// a function (`leakcheck::spawn(`) or the name of a method (`spawn_on(`).
#[track_caller]
pub fn site_in(source: &str, marker: &str, call: &str) -> (u32, u32) {
    let tag = format!("// site:{marker}");
    let mut found = None;
    for (index, text) in source.lines().enumerate() {
        if text.trim_end().ends_with(&tag) {
            assert!(found.is_none(), "`{tag}` marks two lines");
            let column = text
                .find(call)
                .unwrap_or_else(|| panic!("no `{call}` on the line marked `{tag}`"));
            found = Some((index as u32 + 1, column as u32 + 1));
        }
    }
    found.unwrap_or_else(|| panic!("no line is marked `{tag}`"))
}

/// Checks every attribute line of `source` (the text of `file`, as reports
/// name it) that names one of its lines, such as
/// `#[should_panic(expected = "tests/x.rs:12")]` or
/// `#[leak_check(ignore_location = "tests/x.rs:12")]`: the line named must
/// end with `// leaks`, the mark of the spawn that leaks. Returns how many
/// lines it checked.
#[track_caller]
pub fn check_leak_lines(source: &str, file: &str) -> usize {
    let lines: Vec<&str> = source.lines().collect();
    let needle = format!("{file}:");
    let mut checked = 0;
    for line in lines
        .iter()
        .filter(|line| line.trim_start().starts_with("#["))
    {
        let Some((_, rest)) = line.split_once(&needle) else {
            continue;
        };
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let number: usize = rest[..digits]
            .parse()
            .unwrap_or_else(|_| panic!("no line number after `{needle}` in: {line}"));
        assert!(
            lines[number - 1].ends_with("// leaks"),
            "line {number}: {}",
            lines[number - 1]
        );
        checked += 1;
    }
    checked
}
