// A `T` parameter takes its only consumer's input by value: the producer's
// field in the outputs is `Moved`, and nothing is cloned.
use fiber_rt::dag::Moved;
use fiber_rt::{depends, fiber};

/// Panics when cloned, to show that moving does not clone.
struct Token(Vec<u8>);

impl Clone for Token {
    fn clone(&self) -> Self {
        panic!("a moved output must not be cloned")
    }
}

#[fiber]
fn make() -> Token {
    Token(vec![1, 2, 3])
}

#[fiber]
fn grow(mut token: Token) -> Token {
    token.0.push(4);
    token
}

#[fiber]
fn measure(token: &Token) -> usize {
    token.0.len()
}

depends! {
    graph Pipeline {
        grow(make);
        measure(grow);
    }
}

fn main() {
    let out = fiber_rt::dag::run_with(Pipeline, |task| task.run()).unwrap();
    let moved: Moved = out.make;
    assert_eq!(moved, Moved);
    assert_eq!(out.grow.0, [1, 2, 3, 4]);
    assert_eq!(out.measure, 4);
}
