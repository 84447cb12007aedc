// An option is a single name: paths are unknown options, each reported as
// such (not as duplicates of one another).
#[fiber_rt::main(a::b = 1, c::d = 2)]
fn main() {}
