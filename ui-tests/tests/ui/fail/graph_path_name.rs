// Fibers are named by their bare name; a path asks for a `use` instead.
use fiber_rt::depends;

mod stages {
    #[fiber_rt::fiber]
    pub fn load() -> u32 {
        1
    }
}

depends! {
    graph Pathy {
        stages::load();
    }
}

fn main() {}
