// `#[fiber_rt::test]` rejects a generic function, and a `where` clause:
// nothing would choose the generic arguments.
#[fiber_rt::test]
fn defaults<T: Default + PartialEq + std::fmt::Debug>()
where
    T: Clone,
{
    assert_eq!(T::default(), T::default());
}

fn main() {}
