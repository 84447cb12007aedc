// Two `#[fiber_rt::test]` attributes (or another test attribute beside
// one) would make two tests, one runtime inside another: the second is
// refused.
#[fiber_rt::test]
#[fiber_rt::test]
fn twice() {}

fn main() {}
