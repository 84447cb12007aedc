// Fibers and inputs named with raw identifiers (keywords) work, and the
// node table names them without the `r#`.
use fiber_rt::{depends, fiber, Runtime};

#[fiber]
fn r#type() -> u64 {
    3
}

#[fiber]
fn r#match(x: &u64, r#in: &u64) -> u64 {
    x + r#in
}

depends! {
    graph Keywords(r#in: u64) {
        r#match(r#type, r#in);
    }
}

fn main() {
    let rt = Runtime::new().unwrap();
    let out = rt.run(Keywords::new(4)).unwrap();
    assert_eq!(out.r#match, 7);
    let names: Vec<_> = Keywords::TABLE.nodes.iter().map(|n| n.name).collect();
    assert_eq!(names, ["type", "match"]);
    assert!(Keywords::TABLE.dot().contains("type"), "{}", Keywords::TABLE.dot());
}
