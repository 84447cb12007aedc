// A fiber returning `Result` is fallible: dependents get the `Ok` value, an
// `Err` fails the run with the fiber's name and the error's text, and
// `fallible = false` passes a `Result` on as a plain value. An error type
// with neither `Display` nor `Debug` is reported by its type name.
use fiber_rt::{depends, fiber};
use std::io;

#[fiber]
fn parse(text: &String) -> Result<u32, std::num::ParseIntError> {
    text.trim().parse()
}

#[fiber]
fn open(path: &String) -> io::Result<usize> {
    if path.is_empty() {
        Err(io::Error::new(io::ErrorKind::NotFound, "empty path"))
    } else {
        Ok(path.len())
    }
}

#[fiber(fallible = false)]
fn attempt() -> Result<u8, String> {
    Err("kept as a value".into())
}

#[fiber]
fn combine(n: &u32, len: &usize, attempt: &Result<u8, String>) -> String {
    format!("{n} {len} {attempt:?}")
}

depends! {
    graph Load(text: String, path: String) {
        parse(text);
        open(path);
        combine(parse, open, attempt);
    }
}

fn main() {
    let run = |text: &str, path: &str| fiber_rt::dag::run_with(Load::new(text.into(), path.into()), |task| task.run());
    assert_eq!(run("42", "abc").unwrap().combine, "42 3 Err(\"kept as a value\")");

    let err = run("x", "abc").unwrap_err();
    assert_eq!(err.to_string(), "fiber `parse` returned an error: invalid digit found in string (1 dependent fiber skipped)");

    let err = run("1", "").unwrap_err();
    assert_eq!(err.node(), Some("open"));
    assert_eq!(err.failures()[0].message, "empty path");

    let err = fiber_rt::dag::run_with(opaque::Fails, |task| task.run()).unwrap_err();
    let message = &err.failures()[0].message;
    assert!(message.starts_with("an error of type `") && message.contains("Opaque`"), "{message}");
    assert!(message.ends_with("(it implements neither `Display` nor `Debug`)"), "{message}");
}

mod opaque {
    // An error with neither `Display` nor `Debug` is reported by its type.
    use fiber_rt::{depends, fiber};

    pub struct Opaque;

    #[fiber]
    fn fail() -> Result<u8, Opaque> {
        Err(Opaque)
    }

    depends! {
        pub graph Fails {
            fail();
        }
    }
}
