//! The rules a `#[fiber]` function must follow, one function each.

use syn::visit::Visit;
use syn::{FnArg, Type};

use super::ast::{Fiber, Param, Pass};
use crate::errors::Errors;

/// Runs every rule and reports all the errors together.
pub(crate) fn check(fiber: &Fiber<'_>) -> syn::Result<()> {
    let mut errors = Errors::default();
    let rules: [fn(&Fiber<'_>, &mut Errors); 8] = [
        not_async,
        not_unsafe,
        not_generic,
        not_variadic,
        no_receiver,
        parameters_are_concrete,
        output_is_concrete,
        output_owns_its_data,
    ];
    for rule in rules {
        rule(fiber, &mut errors);
    }
    stack_in_range(fiber, &mut errors);
    fallible_returns_something(fiber, &mut errors);
    errors.finish(())
}

/// A fiber is stackful: it blocks where an `async fn` would await, so
/// `async` has nothing to do.
fn not_async(fiber: &Fiber<'_>, errors: &mut Errors) {
    if let Some(token) = &fiber.func.sig.asyncness {
        errors.push(syn::Error::new_spanned(
            token,
            "a fiber cannot be `async`: fibers have their own stacks and may block, so remove `async` and call blocking code directly",
        ));
    }
}

/// A graph calls the function from safe code, so it cannot be `unsafe`.
fn not_unsafe(fiber: &Fiber<'_>, errors: &mut Errors) {
    if let Some(token) = &fiber.func.sig.unsafety {
        errors.push(syn::Error::new_spanned(
            token,
            "a fiber cannot be an `unsafe fn`: a graph calls it from safe code; make it safe and use an `unsafe` block inside",
        ));
    }
}

/// The graph must know every parameter and output type, so no generics
/// (lifetimes included: borrowed inputs live as long as the run).
fn not_generic(fiber: &Fiber<'_>, errors: &mut Errors) {
    let generics = &fiber.func.sig.generics;
    let lifetimes_only = generics
        .params
        .iter()
        .all(|param| matches!(param, syn::GenericParam::Lifetime(_)));
    if generics.params.is_empty() {
        // Nothing to say.
    } else if lifetimes_only {
        // A borrow's lifetime is the run's: nothing to name.
        errors.push(syn::Error::new_spanned(
            generics,
            "a fiber cannot have lifetime parameters: remove them, and write `&T` to borrow a dependency's output (it lives as long as the run)",
        ));
    } else {
        errors.push(syn::Error::new_spanned(
            &generics.params,
            "a fiber cannot be generic: a graph needs concrete types; write them out, or call a generic function from a concrete `#[fiber]` one",
        ));
    }
    if let Some(clause) = &generics.where_clause {
        errors.push(syn::Error::new_spanned(
            clause,
            "a fiber cannot have a `where` clause: write concrete types instead",
        ));
    }
}

/// A graph passes exactly one value per dependency: no `...`.
fn not_variadic(fiber: &Fiber<'_>, errors: &mut Errors) {
    if let Some(dots) = &fiber.func.sig.variadic {
        errors.push(syn::Error::new_spanned(
            dots,
            "a fiber cannot be variadic: give it one parameter per dependency",
        ));
    }
}

/// A fiber is a free function; its inputs come from dependencies.
fn no_receiver(fiber: &Fiber<'_>, errors: &mut Errors) {
    for arg in &fiber.func.sig.inputs {
        if let FnArg::Receiver(receiver) = arg {
            errors.push(syn::Error::new_spanned(
                receiver,
                "a fiber cannot take `self`: make it a free function, and pass the value in from a dependency or a graph input",
            ));
        }
    }
}

/// Parameters are `&T` or `T` for a concrete `T` that is not borrowed for
/// a named lifetime: no `impl Trait`, no `&mut`.
fn parameters_are_concrete(fiber: &Fiber<'_>, errors: &mut Errors) {
    for param in fiber.params.iter().flatten() {
        check_param(param, errors);
    }
}

fn check_param(param: &Param<'_>, errors: &mut Errors) {
    // A `&'static T` parameter is a value (see `ast`): nothing to check.
    if let (Pass::Borrow, Type::Reference(reference)) = (param.pass, param.ty) {
        if reference.mutability.is_some() {
            errors.push(syn::Error::new_spanned(
                param.ty,
                "a fiber cannot take `&mut T`: outputs are shared between fibers; take `&T` to borrow the value, or `T` to own it",
            ));
            return;
        }
        // `'_` is the elided lifetime, spelt out.
        if let Some(lifetime) = reference.lifetime.as_ref().filter(|l| l.ident != "_") {
            errors.push(syn::Error::new_spanned(
                lifetime,
                "write `&T` without a lifetime to borrow the output, which lives as long as the run; `&'static T` takes an output of that type by value",
            ));
        }
    }
    if let Some(impl_trait) = find_impl_trait(param.target) {
        errors.push(syn::Error::new_spanned(
            impl_trait,
            "a fiber cannot take `impl Trait`: that makes it generic; name a concrete type (for example `Box<dyn Trait + Send + Sync>`)",
        ));
    }
}

/// The output is stored and handed on, so it must be a named type.
fn output_is_concrete(fiber: &Fiber<'_>, errors: &mut Errors) {
    if let Some(impl_trait) = fiber.output.and_then(find_impl_trait) {
        errors.push(syn::Error::new_spanned(
            impl_trait,
            "a fiber cannot return `impl Trait`: its output is stored for its dependents; name a concrete type (for example `Box<dyn Trait + Send + Sync>`: an output crosses threads)",
        ));
    }
}

/// The runtime's stacks come in sizes from 16 KiB to 1 GiB: a size
/// outside is a mistake, which the runtime would only round or refuse.
fn stack_in_range(fiber: &Fiber<'_>, errors: &mut Errors) {
    if let Some((bytes, span)) = fiber.options.stack {
        if !crate::stack::in_range(bytes) {
            errors.push(syn::Error::new(
                span,
                format!("a fiber's stack is from 16 KiB to 1 GiB; this is {bytes} bytes"),
            ));
        }
    }
}

/// The output outlives the call (it is stored for its dependents), so it
/// cannot borrow from the inputs: no elided lifetime (`&str`, `'_`); a
/// `&'static` borrow is fine.
fn output_owns_its_data(fiber: &Fiber<'_>, errors: &mut Errors) {
    if let Some(elided) = fiber.output.and_then(find_elided_lifetime) {
        errors.push(syn::Error::new(
            elided,
            "a fiber's output is stored for its dependents, so it cannot borrow from the inputs: return an owned value (`String`, `Vec<T>`), or write `&'static` for a borrow that lives for good",
        ));
    }
}

/// Where `ty` borrows for an elided lifetime, outside function pointers
/// and trait objects (whose borrows are their own).
fn find_elided_lifetime(ty: &Type) -> Option<proc_macro2::Span> {
    struct Find(Option<proc_macro2::Span>);
    impl<'a> Visit<'a> for Find {
        fn visit_type_reference(&mut self, reference: &'a syn::TypeReference) {
            match &reference.lifetime {
                None => {
                    self.0.get_or_insert(reference.and_token.span);
                }
                Some(lifetime) if lifetime.ident == "_" => {
                    self.0.get_or_insert(lifetime.span());
                }
                Some(_) => {}
            }
            syn::visit::visit_type_reference(self, reference);
        }
        fn visit_lifetime(&mut self, lifetime: &'a syn::Lifetime) {
            if lifetime.ident == "_" {
                self.0.get_or_insert(lifetime.span());
            }
        }
        fn visit_type_bare_fn(&mut self, _: &'a syn::TypeBareFn) {}
        fn visit_type_trait_object(&mut self, _: &'a syn::TypeTraitObject) {}
    }
    let mut find = Find(None);
    find.visit_type(ty);
    find.0
}

fn find_impl_trait(ty: &Type) -> Option<&syn::TypeImplTrait> {
    struct Find<'a>(Option<&'a syn::TypeImplTrait>);
    impl<'a> Visit<'a> for Find<'a> {
        fn visit_type_impl_trait(&mut self, found: &'a syn::TypeImplTrait) {
            self.0.get_or_insert(found);
        }
    }
    let mut find = Find(None);
    find.visit_type(ty);
    find.0
}

/// `fallible` unwraps a returned `Result`, so there must be a return type.
/// A fiber that never returns (`-> !`) has nothing to unwrap either.
fn fallible_returns_something(fiber: &Fiber<'_>, errors: &mut Errors) {
    let (Some(true), Some(span)) = (fiber.options.fallible, fiber.options.fallible_span) else {
        return;
    };
    match fiber.output {
        None => errors.push(syn::Error::new(
            span,
            "a fallible fiber returns a `Result`: add `-> Result<T, E>`, or remove `fallible`",
        )),
        Some(ty) if super::ast::is_never(ty) => errors.push(syn::Error::new(
            span,
            "a fiber that returns `!` never returns a `Result` to unwrap: remove `fallible`",
        )),
        Some(_) => {}
    }
}
