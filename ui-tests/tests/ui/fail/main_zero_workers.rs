// `#[fiber_rt::main(workers = 0)]` is refused while compiling, where the
// runtime would refuse it only when the program starts.
#[fiber_rt::main(workers = 0)]
fn main() {}
