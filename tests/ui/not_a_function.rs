use leakcheck::leak_check;

#[leak_check]
struct Server;

#[leak_check]
const LIMIT: u32 = 1;

fn main() {}
