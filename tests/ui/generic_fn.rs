use leakcheck::leak_check;

#[leak_check]
fn type_parameter<T: Default>() {}

#[leak_check]
async fn const_parameter<const N: usize>() {}

#[leak_check]
fn lifetime_parameter<'a>() {}

#[leak_check]
fn where_clause()
where
    String: Clone,
{
}

fn main() {}
