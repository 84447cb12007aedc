// `#[fiber]` rejects `&mut T` parameters: outputs are shared, not lent mutably.
use fiber_rt::fiber;

#[fiber]
fn bump(x: &mut u64) -> u64 {
    *x += 1;
    *x
}

fn main() {}
