// `#[fiber_rt::test]` rejects parameters: the test harness passes none.
#[fiber_rt::test]
fn adds(a: u32, b: u32) {
    assert_eq!(a + b, 3);
}

fn main() {}
