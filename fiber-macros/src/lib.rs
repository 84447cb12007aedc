//! `#[fiber]` and `depends!`, re-exported and documented by `fiber-rt`
//! (see `fiber_rt::dag`). Generated code names only `::fiber_rt::__private`
//! items, so users depend on `fiber-rt` alone.
//!
//! Each macro parses into an AST that keeps the user's tokens for spans
//! (`ast.rs`), checks it with one small function per rule (`valid.rs`), and
//! expands it (`expand.rs`). On an error the user's item is still emitted
//! beside the errors, so the rest of the program keeps resolving.

mod errors;
mod fiber;
mod graph;
mod krate;
mod names;
mod stack;

use proc_macro::TokenStream;

/// Marks a function as a fiber that a `depends!` graph can name. The
/// function stays callable as before. Options: `name = ".."`,
/// `stack = 65536` or `stack = "64 KiB"`, `cost = 10`, `fallible` /
/// `fallible = false`, `crate = "path::to::fiber_rt"` (for a crate that
/// reaches `fiber_rt` by another path). See `fiber_rt::dag`.
#[proc_macro_attribute]
pub fn fiber(args: TokenStream, item: TokenStream) -> TokenStream {
    fiber::expand(args.into(), item.into()).into()
}

/// Declares a dependency graph of `#[fiber]` functions, checked at compile
/// time: `pub graph Name(input: T) { node(dep, dep); .. }`. See
/// `fiber_rt::dag`.
#[proc_macro]
pub fn depends(input: TokenStream) -> TokenStream {
    graph::expand(input.into()).into()
}
