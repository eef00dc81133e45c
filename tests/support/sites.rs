//! Finding a marked spawn call in a test's own source, so that tests assert
//! exact lines and columns without hard-coding them.

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
