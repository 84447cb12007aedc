// `#[fiber_rt::main]` rejects an option given twice.
#[fiber_rt::main(workers = 2, workers = 4)]
fn main() {}
