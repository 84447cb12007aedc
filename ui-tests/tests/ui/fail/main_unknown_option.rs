// `#[fiber_rt::main]` rejects an option it does not know (tokio's
// `flavor` here), and lists the ones it does.
#[fiber_rt::main(flavor = "multi_thread")]
fn main() {}
