// `#[fiber_rt::test]` emits `#[test]` itself, so a `#[test]` beside it is
// refused rather than making a second test.
#[fiber_rt::test]
#[test]
fn works() {}

fn main() {}
