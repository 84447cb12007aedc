// `#[fiber]` rejects methods taking `self`: a fiber is a free function.
use fiber_rt::fiber;

struct Loader;

impl Loader {
    #[fiber]
    fn load(&self) -> u32 {
        1
    }
}

fn main() {}
