use leakcheck::leak_check;

#[leak_check]
fn takes_a_port(port: u16, host: &str) {}

#[leak_check]
async fn takes_a_client(client: String) {}

fn main() {}
