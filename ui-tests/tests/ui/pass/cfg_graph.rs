// `#[cfg(..)]` on a graph holds for everything it expands to: a graph
// configured out leaves nothing behind.
use fiber_rt::{depends, fiber, Runtime};

#[fiber]
fn load() -> u32 {
    1
}

depends! {
    #[cfg(any())]
    graph Never {
        load();
    }
}

depends! {
    #[cfg(all())]
    graph Always {
        load();
    }
}

fn main() {
    let rt = Runtime::new().unwrap();
    assert_eq!(rt.run(Always).unwrap().load, 1);
}
