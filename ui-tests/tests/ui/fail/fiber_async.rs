// `#[fiber]` rejects `async fn`: fibers are stackful and block instead.
use fiber_rt::fiber;

#[fiber]
async fn fetch() -> u32 {
    1
}

fn main() {}
