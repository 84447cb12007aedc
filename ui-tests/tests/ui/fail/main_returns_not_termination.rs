// `main`'s body is reported by its fiber as std reports what `main`
// returns, so the function returns what `main` may: a `Termination`. A
// `u32` is not one, and the error says what to return instead.
#[fiber_rt::main]
fn main() -> u32 {
    7
}
