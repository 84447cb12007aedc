// `#[fiber(stack = ..)]` rejects an unknown unit and a size below the
// runtime's smallest stack (16 KiB).
use fiber_rt::fiber;

#[fiber(stack = "64 parsecs")]
fn far() -> u32 {
    1
}

#[fiber(stack = 512)]
fn tiny() -> u32 {
    1
}

fn main() {}
