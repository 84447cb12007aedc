// `#[fiber_rt::main]` goes on a function; the item is still emitted, so
// the code using it resolves.
#[fiber_rt::main]
struct App {
    workers: usize,
}

fn main() {
    let app = App { workers: 2 };
    let _ = app.workers;
}
