// `#[fiber_rt::main]` takes the worker count as a whole number: not a
// string, not a negative number, not a bare `workers`.
#[fiber_rt::main(workers = "4")]
fn main() {}

mod negative {
    #[fiber_rt::main(workers = -1)]
    pub fn run() {}
}

mod bare {
    #[fiber_rt::main(workers)]
    pub fn run() {}
}
