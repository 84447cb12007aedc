// Lifetime parameters are refused with what to write instead (remove them,
// borrow as `&T`), not with the advice for type parameters; the borrow
// that names the lifetime is pointed at too.
use fiber_rt::fiber;

#[fiber]
fn shout<'a, 'b>(text: &'a str, suffix: &'b str) -> String {
    format!("{}{suffix}", text.to_uppercase())
}

fn main() {}
