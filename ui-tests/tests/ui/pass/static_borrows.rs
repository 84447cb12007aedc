// `&'static` values flow through a graph: an output or input of type
// `&'static T` is read as `&T` (a borrow of what it points to), or taken as
// `&'static T` (a value of its own, moved or, for several readers, not).
use fiber_rt::{depends, fiber, Runtime};

#[fiber]
fn banner() -> &'static str {
    "fiber"
}

#[fiber]
fn shout(text: &'static str) -> String {
    text.to_uppercase()
}

#[fiber]
fn length(text: &str) -> usize {
    text.len()
}

#[fiber]
fn sum(xs: &[u64]) -> u64 {
    xs.iter().sum()
}

#[fiber]
fn keep(xs: &'static [u64]) -> &'static [u64] {
    xs
}

depends! {
    graph Static(xs: &'static [u64], ys: &'static [u64], label: &'static str) {
        shout(banner);
        length(label);
        sum(xs);
        keep(ys);
    }
}

depends! {
    graph Shared {
        length(banner);
    }
}

static NUMBERS: [u64; 3] = [1, 2, 3];

fn main() {
    let rt = Runtime::new().unwrap();
    let out = rt.run(Static::new(&NUMBERS, &NUMBERS, "label")).unwrap();
    assert_eq!(out.shout, "FIBER");
    assert_eq!(out.length, 5);
    assert_eq!(out.sum, 6);
    assert_eq!(out.keep, &NUMBERS);
    assert_eq!(rt.run(Shared).unwrap().length, 5);
}
