// `#[fiber(fallible)]` on a function that does not return a `Result` is
// rejected on the return type.
use fiber_rt::fiber;

#[fiber(fallible)]
fn maybe() -> Option<u32> {
    None
}

fn main() {}
