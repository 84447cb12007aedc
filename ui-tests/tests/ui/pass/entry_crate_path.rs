// `crate = ".."` on `#[fiber_rt::main]` (and `#[fiber_rt::test]`, which
// expands alike): the expansion names that path, for a crate that
// reaches `fiber_rt` through a re-export or under another name.
mod facade {
    pub use fiber_rt as rt;
}

#[facade::rt::main(crate = "crate::facade::rt", workers = 1)]
fn main() {
    let me = facade::rt::current().expect("the body is a fiber");
    let other = facade::rt::spawn(|| facade::rt::current().unwrap().id);
    assert_ne!(other.join().unwrap(), me.id);
}

#[facade::rt::test(crate = "crate::facade::rt")]
fn a_test_reaches_the_runtime_by_the_path() {
    assert!(facade::rt::current().is_some());
}
