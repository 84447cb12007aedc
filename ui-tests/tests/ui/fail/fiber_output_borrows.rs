// A fiber's output is stored for its dependents: it cannot borrow from
// the fiber's inputs.
use fiber_rt::fiber;

#[fiber]
fn first(x: &String) -> &str {
    &x[..1]
}

fn main() {}
