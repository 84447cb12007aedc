// A misspelt input is reported twice over: the input is unused, and the
// name written in its place, spelt nearly like it, is pointed at.
use fiber_rt::{depends, fiber};

#[fiber]
fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

depends! {
    graph Count(text: String) {
        words(txt);
    }
}

fn main() {}
