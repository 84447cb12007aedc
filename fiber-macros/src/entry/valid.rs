//! The rules a `#[fiber_rt::main]` or `#[fiber_rt::test]` function must
//! follow, one function each.

use super::ast::{Entry, Kind};
use crate::errors::Errors;

/// Runs every rule and reports all the errors together, after `errors`
/// (the options' own).
pub(crate) fn check(entry: &Entry<'_>, mut errors: Errors) -> syn::Result<()> {
    let rules: [fn(&Entry<'_>, &mut Errors); 9] = [
        at_least_one_worker,
        stack_in_range,
        not_async,
        not_const,
        no_parameters,
        not_variadic,
        not_generic,
        no_second_test_attribute,
        should_panic_returns_unit,
    ];
    for rule in rules {
        rule(entry, &mut errors);
    }
    errors.finish(())
}

/// The body runs as a fiber, which is a plain function that may block:
/// `async` has nothing to do, and a future is waited for with
/// `block_on_future`.
fn not_async(entry: &Entry<'_>, errors: &mut Errors) {
    if let Some(token) = &entry.func.sig.asyncness {
        errors.push(syn::Error::new_spanned(
            token,
            format!(
                "`{}` runs the body as a fiber, and fibers are plain functions that may block: drop `async`; to wait for a future, call `fiber_rt::block_on_future(future)`",
                entry.kind.attribute()
            ),
        ));
    }
}

/// The body runs on a runtime built when the function is called, which a
/// `const fn` cannot do.
fn not_const(entry: &Entry<'_>, errors: &mut Errors) {
    if let Some(token) = &entry.func.sig.constness {
        errors.push(syn::Error::new_spanned(
            token,
            format!(
                "`{}` cannot go on a `const fn`: it builds a runtime when the function is called; drop `const`",
                entry.kind.attribute()
            ),
        ));
    }
}

/// `main` and tests are called with no arguments (`self` included).
fn no_parameters(entry: &Entry<'_>, errors: &mut Errors) {
    let inputs = &entry.func.sig.inputs;
    if !inputs.is_empty() {
        let message = match entry.kind {
            Kind::Main => "`#[fiber_rt::main]` goes on a function without parameters, as `main` is: read arguments with `std::env::args()`",
            Kind::Test => "a `#[fiber_rt::test]` function takes no parameters: the test harness calls it with none",
        };
        errors.push(syn::Error::new_spanned(inputs, message));
    }
}

/// Nor with a variable number of them.
fn not_variadic(entry: &Entry<'_>, errors: &mut Errors) {
    if let Some(dots) = &entry.func.sig.variadic {
        errors.push(syn::Error::new_spanned(
            dots,
            format!(
                "`{}` goes on a function without parameters: remove `...`",
                entry.kind.attribute()
            ),
        ));
    }
}

/// Nothing chooses the type or lifetime arguments of `main` or a test, so
/// neither may be generic (nor have a `where` clause).
fn not_generic(entry: &Entry<'_>, errors: &mut Errors) {
    let generics = &entry.func.sig.generics;
    let attribute = entry.kind.attribute();
    if !generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &generics.params,
            format!("`{attribute}` cannot go on a generic function: nothing would choose the generic arguments; write concrete types"),
        ));
    }
    if let Some(clause) = &generics.where_clause {
        errors.push(syn::Error::new_spanned(
            clause,
            format!(
                "`{attribute}` cannot go on a function with a `where` clause: write concrete types"
            ),
        ));
    }
}

/// A runtime needs a worker to run the body on (`Builder::build` refuses
/// zero): caught here instead of as a panic when the program starts.
fn at_least_one_worker(entry: &Entry<'_>, errors: &mut Errors) {
    if let Some((0, span)) = entry.options.workers {
        errors.push(syn::Error::new(
            span,
            "a runtime needs at least one worker: write `workers = 1` or more",
        ));
    }
}

/// The runtime's stacks come in sizes from 16 KiB to 1 GiB, as for
/// `#[fiber(stack = ..)]`: a size outside is a mistake, which the runtime
/// would only round up or refuse when the program starts.
fn stack_in_range(entry: &Entry<'_>, errors: &mut Errors) {
    if let Some((bytes, span)) = entry.options.stack {
        if !crate::stack::in_range(bytes) {
            errors.push(syn::Error::new(
                span,
                format!("a fiber's stack is from 16 KiB to 1 GiB; this is {bytes} bytes"),
            ));
        }
    }
}

/// `#[fiber_rt::test]` emits `#[test]` itself: the user's would be a
/// second one on the same function, and so would another test attribute
/// (`#[fiber_rt::test]` again, `#[tokio::test]`: any path ending in
/// `test`), which would also run one runtime inside another.
fn no_second_test_attribute(entry: &Entry<'_>, errors: &mut Errors) {
    if entry.kind != Kind::Test {
        return;
    }
    for attr in &entry.func.attrs {
        let last = attr.path().segments.last();
        if last.is_some_and(|segment| segment.ident == "test") {
            errors.push(syn::Error::new_spanned(
                attr,
                "`#[fiber_rt::test]` already makes the function a test: remove this test attribute",
            ));
        }
    }
}

/// A `#[should_panic]` test passes only by panicking, which std allows
/// only of a test that returns `()`: a returned `Err` would be no panic.
/// The function this attribute emits returns an exit code, so rustc's own
/// check would point at the attribute and say nothing of what to write.
fn should_panic_returns_unit(entry: &Entry<'_>, errors: &mut Errors) {
    if entry.kind != Kind::Test || !super::expand::reports(&entry.func.sig.output) {
        return;
    }
    let should_panic = entry
        .func
        .attrs
        .iter()
        .any(|attr| attr.path().is_ident("should_panic"));
    if should_panic {
        errors.push(syn::Error::new_spanned(
            &entry.func.sig.output,
            "a `#[should_panic]` test passes only by panicking, so it returns `()`: remove the return type, and `.unwrap()` or `panic!` where it would return an `Err`",
        ));
    }
}
