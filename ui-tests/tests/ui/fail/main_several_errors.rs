// Several mistakes in one `#[fiber_rt::main]` are all reported at once,
// the options' first, then the function's, each on its own token (and
// rustc's own about an `async` main after them).
#[fiber_rt::main(workers = 0, threads = 2)]
async fn main(args: Vec<String>) {
    let _ = args;
}
