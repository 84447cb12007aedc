// `#[fiber_rt::main]` rejects parameters: `main` is called with none. The
// function is still emitted as written, so rustc's own error about its
// type follows.
#[fiber_rt::main]
fn main(args: Vec<String>, verbose: bool) {
    let _ = (args, verbose);
}
