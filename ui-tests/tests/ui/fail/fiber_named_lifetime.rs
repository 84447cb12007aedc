// A parameter borrowed for a named lifetime is rejected on the lifetime,
// with the two spellings that work: `&T` (or `&'_ T`), or `&'static T`
// for a value.
use fiber_rt::fiber;

#[fiber]
fn shout<'a>(text: &'a str) -> String {
    text.to_uppercase()
}

#[fiber]
fn whisper(text: &'static str, other: &'_ str) -> String {
    format!("{text}{other}")
}

fn main() {}
