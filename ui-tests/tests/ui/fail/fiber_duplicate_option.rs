// `#[fiber]` rejects an option given twice.
use fiber_rt::fiber;

#[fiber(cost = 3, cost = 4)]
fn load() -> u32 {
    1
}

fn main() {}
