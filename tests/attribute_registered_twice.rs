//! `#[test]` above `#[leak_check]`.
//!
//! `#[test]` registers the function before `#[leak_check]` runs, and leaves no
//! trace of that in the tokens `#[leak_check]` gets, which then registers it
//! again. The second run in a process fails and says why.

use leakcheck::leak_check;

#[test]
#[leak_check]
#[ignore = "registered twice on purpose; run by `test_above_leak_check_is_reported`"]
fn registered_twice() {}

#[test]
#[leak_check]
#[should_panic(expected = "as expected")]
#[ignore = "registered twice on purpose; run by `test_above_leak_check_is_reported`"]
fn registered_twice_should_panic() {
    panic!("as expected");
}

fn run_ignored(name: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", name, "--test-threads=1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("1 passed; 1 failed"), "{stdout}");
    let message = format!("`{name}` is registered as a test twice");
    assert!(stdout.contains(&message), "{stdout}");
    stdout
}

#[test]
fn test_above_leak_check_is_reported() {
    run_ignored("registered_twice");
}

#[test]
fn test_above_leak_check_is_reported_for_should_panic() {
    let stdout = run_ignored("registered_twice_should_panic");
    assert!(stdout.contains("did not panic as expected"), "{stdout}");
}
