// `&'static` values flow through a graph: an output or input of type
// `&'static T` is taken as `&'static T` (a value of its own: moved, or for
// several readers copied), or borrowed as `&&'static T`.
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
fn length(text: &'static str) -> usize {
    text.len()
}

#[fiber]
fn first_byte(text: &&str) -> u8 {
    text.as_bytes()[0]
}

#[fiber]
fn sum(xs: &'static [u64]) -> u64 {
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
        first_byte(banner);
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
    let shared = rt.run(Shared).unwrap();
    assert_eq!((shared.length, shared.first_byte), (5, b'f'));
}
