// An output that several fibers read may be taken by value where its type
// is `Copy`: each reader gets a copy (a `u64`, a `&'static str`, an
// `Option` of one), and the output stays in the outputs struct.
use fiber_rt::{depends, fiber, Runtime};

#[fiber]
fn count() -> u64 {
    21
}

#[fiber]
fn label() -> &'static str {
    "total"
}

#[fiber]
fn double(n: u64) -> u64 {
    n * 2
}

#[fiber]
fn same(n: u64, borrowed: &u64) -> bool {
    n == *borrowed
}

#[fiber]
fn show(name: &'static str, value: u64) -> String {
    format!("{name}={value}")
}

#[fiber]
fn shout(name: &'static str) -> String {
    name.to_uppercase()
}

depends! {
    graph Copies {
        double(count);
        same(count, double);
        show(label, double);
        shout(label);
    }
}

fn main() {
    let rt = Runtime::new().unwrap();
    let out = rt.run(Copies).unwrap();
    assert_eq!(out.count, 21);
    assert_eq!(out.double, 42);
    assert!(!out.same);
    assert_eq!(out.show, "total=42");
    assert_eq!(out.shout, "TOTAL");
    assert_eq!(out.label, "total");
}
