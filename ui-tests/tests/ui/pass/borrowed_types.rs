// Inputs whose type borrows inside (`&&str`, `&[&str]`) read outputs that
// hold `&'static` borrows; types written by a `macro_rules!` (`$t:ty`)
// are read as written.
use fiber_rt::{depends, fiber, Runtime};

#[fiber]
fn banner() -> &'static str {
    "fiber"
}

#[fiber]
fn words() -> Vec<&'static str> {
    vec!["stackful", "fibers"]
}

#[fiber]
fn shout(b: &&str) -> String {
    b.to_uppercase()
}

#[fiber]
fn count(w: &[&str]) -> usize {
    w.len()
}

macro_rules! length_fiber {
    ($name:ident, $t:ty) => {
        #[fiber]
        fn $name(text: $t) -> usize {
            text.len()
        }
    };
}

length_fiber!(length, &String);

depends! {
    graph Texts {
        shout(banner);
        count(words);
        length(shout);
    }
}

fn main() {
    let rt = Runtime::new().unwrap();
    let out = rt.run(Texts).unwrap();
    assert_eq!(out.shout, "FIBER");
    assert_eq!(out.count, 2);
    assert_eq!(out.length, 5);
}
