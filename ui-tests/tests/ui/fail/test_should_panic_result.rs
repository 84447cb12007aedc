// A `#[should_panic]` test passes only by panicking: std refuses one
// that returns a value, and so does `#[fiber_rt::test]`, on the return
// type and saying what to write.
#[fiber_rt::test]
#[should_panic(expected = "too large")]
fn refuses_large() -> Result<(), String> {
    Err("too large".into())
}

fn main() {}
