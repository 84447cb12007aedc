//! The node struct and its trait impls, emitted beside the function.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::ast::{Fiber, Pass};

/// Parameter positions past the last that still get a `Param` impl.
const EXTRA_POSITIONS: usize = 8;

/// Everything emitted after the (unchanged) function.
pub(crate) fn node(fiber: &Fiber<'_>) -> TokenStream {
    let func = &fiber.func;
    let ident = &func.sig.ident;
    let vis = &func.vis;
    let name = fiber.display_name();
    let cost = fiber.options.cost.map_or(1, |(cost, _)| cost) as u32;
    let stack = fiber.options.stack.map_or(0, |(bytes, _)| bytes) as usize;
    let output = output_type(fiber);
    let args: Vec<_> = (0..fiber.params.len())
        .map(|i| format_ident!("__arg{}", i))
        .collect();
    let arg_types: Vec<_> = fiber.params.iter().flatten().map(argument_type).collect();
    let call = call_body(fiber, &args);
    let params = fiber.params.iter().flatten().enumerate().map(|(i, param)| {
        let mode = match param.pass {
            Pass::Borrow => quote!(Borrow),
            Pass::Move => quote!(Move),
        };
        let target = static_borrows(param.target);
        quote_spanned! {param.ty.span()=>
            impl ::fiber_rt::__private::Param<#i> for #ident {
                type Mode = ::fiber_rt::__private::#mode;
                type Target = #target;
            }
        }
    });
    // A few positions past the last, so a graph passing too many inputs
    // gets one arity error instead of one per extra position.
    let arity = fiber.params.len();
    let missing = (arity..arity + EXTRA_POSITIONS).map(|i| {
        quote! {
            impl ::fiber_rt::__private::Param<#i> for #ident {
                type Mode = ::fiber_rt::__private::Missing;
                type Target = ();
            }
        }
    });
    // On the return type: a fallible return type that is not a `Result`
    // makes these invalid, and rustc reports it there.
    let span = fiber.output.map_or_else(Span::call_site, Spanned::span);
    let call_items = quote_spanned! {span=>
        type Call = fn(#(#arg_types),*) -> ::fiber_rt::__private::Result<Self::Output, ::fiber_rt::__private::Failure>;
        const CALL: Self::Call = {
            // A fiber that never returns (`-> !`) makes the call's result
            // unreachable: that is its point, not a mistake.
            #[allow(unreachable_code)]
            fn __fiber_call(#(#args: #arg_types),*) -> ::fiber_rt::__private::Result<<#ident as ::fiber_rt::__private::Node>::Output, ::fiber_rt::__private::Failure> {
                #call
            }
            __fiber_call
        };
    };
    let doc =
        format!("The graph node of the `#[fiber]` function [`{ident}()`], named in `depends!`.");
    quote! {
        #[doc = #doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #[derive(Clone, Copy, Debug)]
        #vis struct #ident {}

        const _: () = {
            impl ::fiber_rt::__private::Node for #ident {
                const NAME: &'static str = #name;
                const COST: u32 = #cost;
                const STACK: usize = #stack;
                type Output = #output;
                #call_items
            }
            #(#params)*
            #(#missing)*
        };
    }
}

/// `ty` with its elided lifetimes (`&str`, `&'_ str`) made `'static`: a
/// type an input is read as (`&[&str]` reads `[&'static str]`), named in
/// an associated type, where nothing may be elided. Every value a graph
/// passes lives for as long as the run, and outputs cannot borrow (see
/// `valid::output_owns_its_data`), so only `'static` borrows reach here.
fn static_borrows(ty: &syn::Type) -> syn::Type {
    struct Fill;
    impl syn::visit_mut::VisitMut for Fill {
        fn visit_type_reference_mut(&mut self, reference: &mut syn::TypeReference) {
            let elided = reference
                .lifetime
                .as_ref()
                .is_none_or(|lifetime| lifetime.ident == "_");
            if elided {
                let span = reference.and_token.span;
                reference.lifetime = Some(syn::Lifetime::new("'static", span));
            }
            syn::visit_mut::visit_type_reference_mut(self, reference);
        }
        fn visit_lifetime_mut(&mut self, lifetime: &mut syn::Lifetime) {
            if lifetime.ident == "_" {
                *lifetime = syn::Lifetime::new("'static", lifetime.span());
            }
        }
        // A function pointer's or trait object's own borrows are fine as
        // they are (higher-ranked): left alone.
        fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}
        fn visit_type_trait_object_mut(&mut self, _: &mut syn::TypeTraitObject) {}
    }
    let mut ty = ty.clone();
    syn::visit_mut::VisitMut::visit_type_mut(&mut Fill, &mut ty);
    ty
}

/// What dependents receive: the return type, or its `Ok` type when fallible.
/// A fiber that never returns (`-> !`) outputs `Infallible`, the stable
/// type with no values, as `!` cannot be named in an associated type.
fn output_type(fiber: &Fiber<'_>) -> TokenStream {
    match fiber.output {
        None => quote!(()),
        Some(ty) if super::ast::is_never(ty) => {
            quote_spanned! {ty.span()=> ::fiber_rt::__private::Infallible }
        }
        Some(ty) if fiber.fallible => {
            quote_spanned! {ty.span()=> <#ty as ::fiber_rt::__private::Fallible>::Ok }
        }
        Some(ty) => quote!(#ty),
    }
}

/// `&T` for `&T`, `ByValue<T>` for `T`, spanned on the user's type.
fn argument_type(param: &super::ast::Param<'_>) -> TokenStream {
    let target = static_borrows(param.target);
    match param.pass {
        Pass::Borrow => {
            quote_spanned! {param.ty.span()=> &#target }
        }
        Pass::Move => quote_spanned! {param.ty.span()=> ::fiber_rt::__private::ByValue<#target> },
    }
}

/// Calls the function and turns a fallible result into the node's result.
fn call_body(fiber: &Fiber<'_>, args: &[syn::Ident]) -> TokenStream {
    let ident = &fiber.func.sig.ident;
    let args = fiber
        .params
        .iter()
        .flatten()
        .zip(args)
        .map(|(param, arg)| match param.pass {
            Pass::Borrow => quote!(#arg),
            Pass::Move => quote!(#arg.0),
        });
    let call = quote!(#ident(#(#args),*));
    if !fiber.fallible {
        return quote!(::fiber_rt::__private::Result::Ok(#call));
    }
    let ty = fiber.output;
    // All on the return type, where a type that is not a `Result` is reported.
    quote_spanned! {ty.span()=>
        match <#ty as ::fiber_rt::__private::Fallible>::into_result(#call) {
            ::fiber_rt::__private::Result::Ok(value) => ::fiber_rt::__private::Result::Ok(value),
            ::fiber_rt::__private::Result::Err(error) => {
                #[allow(unused_imports)]
                use ::fiber_rt::__private::{DescribeDebug as _, DescribeDisplay as _, DescribeType as _};
                let text = (&&&::fiber_rt::__private::ErrorText(&error)).describe();
                ::fiber_rt::__private::Result::Err(::fiber_rt::__private::failure(text))
            }
        }
    }
}
