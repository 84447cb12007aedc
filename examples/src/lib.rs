//! The example programs are `[[example]]` targets beside this crate. This
//! library holds the book's chapters, so that every Rust block in the book
//! compiles and runs as a doctest under `cargo test`.

macro_rules! chapters {
    ($($name:ident => $file:literal),* $(,)?) => {
        $(
            #[doc = include_str!(concat!("../../book/src/", $file))]
            pub mod $name {}
        )*
    };
}

/// The README's example, compiled and run like the book's.
#[doc = include_str!("../../README.md")]
pub mod readme {}

chapters! {
    introduction => "introduction.md",
    getting_started => "getting-started.md",
    first_graph => "first-graph.md",
    data => "data.md",
    errors => "errors.md",
    fibers => "fibers.md",
    from_tokio => "from-tokio.md",
    preemption => "preemption.md",
    seeing_inside => "seeing-inside.md",
    performance => "performance.md",
    how_it_works => "how-it-works.md",
    limits => "limits.md",
}
