// `#[fiber_rt::main(stack = ..)]` rejects an unknown unit and a size
// below the runtime's smallest stack (16 KiB), as `#[fiber]` does.
#[fiber_rt::main(stack = "8 parsecs")]
fn main() {}

#[fiber_rt::main(stack = 512)]
fn tiny() {}
