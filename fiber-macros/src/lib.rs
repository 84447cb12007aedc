//! `#[fiber]`, `depends!`, `#[fiber_rt::main]` and `#[fiber_rt::test]`,
//! re-exported and documented by `fiber-rt` (see `fiber_rt::dag`).
//! Generated code names only `::fiber_rt` items (most of them in
//! `::fiber_rt::__private`), so users depend on `fiber-rt` alone.
//!
//! Each macro parses into an AST that keeps the user's tokens for spans
//! (`ast.rs`), checks it with one small function per rule (`valid.rs`), and
//! expands it (`expand.rs`). On an error the user's item is still emitted
//! beside the errors, so the rest of the program keeps resolving.

mod entry;
mod errors;
mod fiber;
mod graph;
mod krate;
mod names;
mod options;
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

/// Runs the function's body as a fiber on a runtime built for the call,
/// as `Runtime::new().unwrap().block_on(|| body)` would:
///
/// ```text
/// #[fiber_rt::main]
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let answer = fiber_rt::spawn(|| 6 * 7).join()?;
///     println!("{answer}");
///     Ok(())
/// }
/// ```
///
/// A function that returns `()` keeps its signature. One that returns a
/// value (a `Result`, an `ExitCode`: any `Termination`, as std asks of
/// `main` and of tests) has it reported by the fiber, as std would report
/// it (an `Err` is printed on standard error), and returns the
/// `ExitCode`: only the code leaves the fiber, so an error type need not
/// be `Send`. A panic in
/// the body goes on in the caller with its payload; a runtime that cannot
/// be built is a panic that says so, with the error. The body's loops get
/// preemption probes, as a `#[fiber]` function's do.
///
/// Options: `workers = 4` (default: one per core), `stack = 65536` or
/// `stack = "64 KiB"` (the default stack size of the runtime's fibers,
/// the body's included), `crate = "path::to::fiber_rt"` (for a crate that
/// reaches `fiber_rt` by another path). An `async fn`, parameters and
/// generics are compile errors.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(entry::Kind::Main, args.into(), item.into()).into()
}

/// A test whose body runs as a fiber on a runtime built for it, as with
/// `#[fiber_rt::main]`; it emits `#[test]`, and keeps the function's other
/// attributes (`#[should_panic]`, on a test that returns `()` as std
/// asks, and `#[ignore]`):
///
/// ```text
/// #[fiber_rt::test(workers = 4)]
/// fn spawns_and_joins() {
///     assert_eq!(fiber_rt::spawn(|| 6 * 7).join().unwrap(), 42);
/// }
/// ```
///
/// It replaces `#[test]`: put it in `#[test]`'s place, not under it. A
/// test attribute after it is refused, but one before it cannot be seen
/// (the compiler hands this attribute none of those above it), and the
/// test would then run twice.
///
/// A test gets two workers unless `workers = N` says otherwise. Other
/// options and rules as for `#[fiber_rt::main]`; a test that returns a
/// `Result` fails on an `Err` as a plain test does (the fiber reports it,
/// and the function returns the exit code).
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(entry::Kind::Test, args.into(), item.into()).into()
}
