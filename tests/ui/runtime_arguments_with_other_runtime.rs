use leakcheck::leak_check;

// `#[leak_check]` builds the runtime only in place of `#[tokio::test]`:
// another runtime's attribute (here a renamed tokio, which can't be told
// apart from one) keeps building its own.
#[leak_check(flavor = "multi_thread", settle_ms = 100)]
#[my_tokio::test]
async fn renamed_tokio() {}

#[leak_check(start_paused = true)]
#[test_log::test(tokio::test)]
async fn test_log() {}

fn main() {}
