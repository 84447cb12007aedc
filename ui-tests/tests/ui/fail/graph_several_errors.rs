// Several mistakes in one graph are all reported at once, each on its own
// token, and the graph's struct is still emitted so the code using it
// resolves.
use fiber_rt::{depends, fiber};

#[fiber]
fn load() -> u32 {
    1
}
#[fiber]
fn step(x: &u32) -> u32 {
    *x
}

depends! {
    pub graph Broken(unused: u32) {
        step(load);
        step(step);
        load(load);
    }
}

fn main() {
    let _graph = Broken { unused: 0 };
}
