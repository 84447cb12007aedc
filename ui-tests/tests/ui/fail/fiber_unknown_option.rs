// `#[fiber]` rejects an option it does not know, and lists the ones it does.
use fiber_rt::fiber;

#[fiber(priority = 3)]
fn load() -> u32 {
    1
}

fn main() {}
