// A fiber that never returns (`-> !`, a server loop or a fiber that always
// panics) is a node whose output is `Infallible`: no `!` in the expansion
// (unstable there), and no warning about unreachable code.
#![deny(warnings)]

use fiber_rt::{depends, fiber, Runtime};
use std::convert::Infallible;

#[fiber]
fn load() -> u32 {
    1
}

#[fiber]
fn serve(port: &u32) -> ! {
    panic!("port {port} is taken")
}

#[fiber]
fn after(_never: &Infallible) -> u32 {
    2
}

#[fiber]
fn other() -> u32 {
    3
}

depends! {
    graph Server {
        serve(load);
        after(serve);
        other();
    }
}

fn main() {
    let err = Runtime::new().unwrap().run(Server).unwrap_err();
    assert_eq!(
        err.to_string(),
        "fiber `serve` panicked: port 1 is taken (1 dependent fiber skipped)"
    );
}
