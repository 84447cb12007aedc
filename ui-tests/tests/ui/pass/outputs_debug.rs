// A graph's outputs are `Debug` whatever its fibers output: a field whose
// type is `Debug` shows its value, any other its type's name, and one taken
// by value shows `Moved`. So `{:?}`, `dbg!` and `unwrap_err` work.
use fiber_rt::{depends, fiber, Runtime};

struct Opaque;

/// A trait of the user's with a method the `Debug` impl might have
/// collided with, in scope for every type.
#[allow(dead_code)]
trait DebugField {
    fn debug_field(&self) -> String {
        String::new()
    }
}
impl<T: ?Sized> DebugField for T {}

#[fiber]
fn count() -> u32 {
    3
}

#[fiber]
fn handle() -> Opaque {
    Opaque
}

#[fiber]
fn words(n: &u32) -> Vec<String> {
    (0..*n).map(|i| i.to_string()).collect()
}

#[fiber]
fn joined(words: Vec<String>, _handle: &Opaque) -> String {
    words.join(",")
}

depends! {
    graph Shown {
        words(count);
        joined(words, handle);
    }
}

fn main() {
    let rt = Runtime::new().unwrap();
    let out = rt.run(Shown).unwrap();
    let opaque = std::any::type_name::<Opaque>();
    assert_eq!(
        format!("{out:?}"),
        format!(r#"ShownOutputs {{ count: 3, words: Moved, handle: <{opaque}>, joined: "0,1,2" }}"#)
    );
    // `unwrap_err` asks for `Debug` of the outputs.
    let failed: Result<ShownOutputs, &str> = Err("x");
    assert_eq!(failed.unwrap_err(), "x");
}
