//! Compile-time behaviour of `#[fiber]`, `depends!`, `#[fiber_rt::main]`
//! and `#[fiber_rt::test]`: programs that must build and run (`ui/pass`),
//! and programs that must fail with the error recorded beside them
//! (`ui/fail/*.stderr`). Regenerate the expected
//! errors with `TRYBUILD=overwrite cargo test -p ui-tests`, then read them.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
