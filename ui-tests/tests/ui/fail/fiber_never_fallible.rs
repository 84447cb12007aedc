// `#[fiber(fallible)]` on a function that never returns (`-> !`) is
// rejected on the option: there is no `Result` to unwrap.
use fiber_rt::fiber;

#[fiber(fallible)]
fn serve() -> ! {
    loop {}
}

fn main() {}
