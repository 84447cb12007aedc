// A `Vec<T>` output can be borrowed as `&[T]` and a `String` as `&str`,
// as clippy recommends for parameters; the output keeps its own type.
use fiber_rt::{depends, fiber};

#[fiber]
fn numbers() -> Vec<u32> {
    vec![3, 4]
}

#[fiber]
fn name() -> String {
    "pair".into()
}

#[fiber]
fn describe(xs: &[u32], name: &str) -> String {
    format!("{name}: {}", xs.iter().sum::<u32>())
}

depends! {
    graph Describe {
        describe(numbers, name);
    }
}

fn main() {
    let out = fiber_rt::dag::run_with(Describe, |task| task.run()).unwrap();
    assert_eq!(out.describe, "pair: 7");
    assert_eq!(out.numbers, vec![3, 4]);
}
