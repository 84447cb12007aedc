// Fibers from other modules are brought in with `use` (which imports the
// function and its node together); sources and fibers without dependencies
// can be listed on their own; visibility and attributes are kept.
mod stages {
    use fiber_rt::fiber;

    #[fiber]
    pub fn seed() -> u64 {
        7
    }

    #[fiber]
    pub fn square(x: &u64) -> u64 {
        x * x
    }

    #[fiber]
    pub fn tick() {}
}

mod graphs {
    use super::stages::{seed, square, tick};
    use fiber_rt::depends;

    depends! {
        /// A documented graph in a module of its own.
        #[derive(Clone, Copy, Debug, Default)]
        pub graph Squares {
            seed();
            square(seed);
            tick();
        }
    }
}

fn main() {
    let graph = graphs::Squares;
    let copy = graph;
    assert_eq!(format!("{copy:?}"), "Squares");
    let out = fiber_rt::dag::run_with(graph, |task| task.run()).unwrap();
    assert_eq!(out.square, 49);
    let () = out.tick;
    assert_eq!(graphs::Squares::TABLE.sources.len(), 2);
}
