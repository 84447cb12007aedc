// `#[fiber_rt::main]` rejects a `const fn`: it builds a runtime when the
// function is called.
#[fiber_rt::main]
const fn start() -> u32 {
    1
}

fn main() {
    let _ = start();
}
