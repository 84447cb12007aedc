//! The function again, its body now run as a fiber: the signature and
//! attributes as the user wrote them (with `#[test]` for a test), and a
//! body that builds the runtime and hands it the user's body as a closure.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{AttrStyle, ReturnType};

use super::ast::{Entry, Kind};

/// The whole function, probes included (see `fiber::probes`).
pub(crate) fn entry(entry: &Entry<'_>) -> TokenStream {
    let func = crate::fiber::probes::insert(entry.func);
    // Outer attributes stay on the function (`#[should_panic]`, docs,
    // lints); inner ones (`#![allow(..)]`) go first in its body, where
    // they cover the closure too.
    let (outer, inner): (Vec<_>, Vec<_>) = func
        .attrs
        .iter()
        .partition(|attr| matches!(attr.style, AttrStyle::Outer));
    let test = match entry.kind {
        Kind::Test => quote!(#[::fiber_rt::__private::test]),
        Kind::Main => quote!(),
    };
    let vis = &func.vis;
    let sig = &func.sig;
    let block = &func.block;
    let workers = entry.workers().map(|count| {
        let count = Literal::usize_unsuffixed(count);
        quote!(.workers(#count))
    });
    let stack = entry.options.stack.map(|(bytes, span)| {
        let bytes = Literal::u64_unsuffixed(bytes);
        quote_spanned!(span=> .stack_size(#bytes))
    });
    let attribute = entry.kind.attribute();
    let builder = quote!(::fiber_rt::Builder::new() #workers #stack);
    let (output, span) = closure_output(&sig.output);
    let (sig, call) = if reports(&sig.output) {
        // What `main` or a test returns is a `Termination`, which the
        // fiber reports itself (an `Err` printed as std prints it), so
        // only the exit code crosses back to the caller's thread: an
        // error type need not be `Send` (`Box<dyn Error>` is not). The
        // function returns that code, which std takes from `main` and
        // from tests alike.
        let mut sig = sig.clone();
        sig.output = syn::parse_quote_spanned!(span=> -> ::fiber_rt::__private::ExitCode);
        let call = quote_spanned! {span=>
            ::fiber_rt::__private::entry_report(#builder, #attribute, || #output #block)
        };
        (sig, call)
    } else {
        // On the return type: the result crosses from the fiber back to
        // the caller's thread, so a type that is not `Send` is reported
        // there.
        let call = quote_spanned! {span=>
            ::fiber_rt::__private::entry(#builder, #attribute, || #output #block)
        };
        (sig.clone(), call)
    };
    quote! {
        #(#outer)*
        #test
        #vis #sig {
            #(#inner)*
            #call
        }
    }
}

/// Whether the function returns a value its fiber reports as a
/// `Termination` (see `entry`): any written type but `()` (`impl
/// Termination` included, which the closure leaves to inference).
pub(super) fn reports(output: &ReturnType) -> bool {
    match output {
        ReturnType::Default => false,
        ReturnType::Type(_, ty) => !matches!(&**ty, syn::Type::Tuple(t) if t.elems.is_empty()),
    }
}

/// The closure's return type, written out so that `?` and `return` in the
/// body mean what they meant in the function, and where to point errors
/// about it. A closure cannot return `impl Trait`: one is left to
/// inference, and the function's signature still says what it returns.
fn closure_output(output: &ReturnType) -> (TokenStream, Span) {
    match output {
        ReturnType::Default => (quote!(-> ()), Span::call_site()),
        ReturnType::Type(_, ty) if has_impl_trait(ty) => (quote!(), ty.span()),
        ReturnType::Type(arrow, ty) => (quote!(#arrow #ty), ty.span()),
    }
}

fn has_impl_trait(ty: &syn::Type) -> bool {
    struct Find(bool);
    impl<'a> Visit<'a> for Find {
        fn visit_type_impl_trait(&mut self, _: &'a syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut find = Find(false);
    find.visit_type(ty);
    find.0
}

#[cfg(test)]
mod tests {
    use super::super::{expand, Kind};

    fn expanded(kind: Kind, args: &str, item: &str) -> String {
        let args = args.parse().unwrap();
        let item = item.parse().unwrap();
        expand(kind, args, item)
            .to_string()
            .replace(":: fiber_rt :: __private :: probe ()", "P")
    }

    #[test]
    fn a_test_gets_test_two_workers_its_attributes_and_probes() {
        let out = expanded(Kind::Test, "", "#[should_panic] fn t() { loop { break; } }");
        assert_eq!(
            out,
            "# [should_panic] # [:: fiber_rt :: __private :: test] fn t () { \
             :: fiber_rt :: __private :: entry (:: fiber_rt :: Builder :: new () . workers (2) , \
             \"#[fiber_rt::test]\" , || -> () { P ; loop { P ; break ; } }) }"
        );
    }

    #[test]
    fn main_keeps_the_default_workers_and_takes_the_options() {
        let out = expanded(Kind::Main, "", "fn main() {}");
        assert!(out.contains("Builder :: new () ,"), "{out}");
        assert!(!out.contains(":: test]"), "{out}");
        let out = expanded(
            Kind::Main,
            "workers = 3, stack = \"64 KiB\"",
            "fn main() {}",
        );
        assert!(
            out.contains("Builder :: new () . workers (3) . stack_size (65536) ,"),
            "{out}"
        );
    }

    #[test]
    fn the_closure_returns_what_the_function_does() {
        let out = expanded(Kind::Main, "", "fn main() -> Result<(), E> { Ok(()) }");
        assert!(out.contains("|| -> Result < () , E > {"), "{out}");
        // The fiber reports it: the function returns the exit code.
        assert!(
            out.contains("fn main () -> :: fiber_rt :: __private :: ExitCode"),
            "{out}"
        );
        assert!(out.contains("__private :: entry_report ("), "{out}");
        // A closure cannot say `impl Trait`: left to inference, and
        // reported by the fiber all the same.
        let out = expanded(Kind::Main, "", "fn main() -> impl Termination { () }");
        assert!(
            out.contains("-> :: fiber_rt :: __private :: ExitCode"),
            "{out}"
        );
        assert!(out.contains(", || { P ; () })"), "{out}");
    }

    #[test]
    fn inner_attributes_open_the_function_body() {
        let out = expanded(Kind::Main, "", "fn main() { #![allow(unused)] let x = 1; }");
        assert!(
            out.contains("fn main () { # ! [allow (unused)] :: fiber_rt"),
            "{out}"
        );
    }

    #[test]
    fn the_crate_option_replaces_every_fiber_rt_path() {
        let out = expanded(Kind::Test, "crate = \"crate::rt\"", "fn t() {}");
        assert!(!out.contains(":: fiber_rt"), "{out}");
        assert!(
            out.contains("# [crate :: rt :: __private :: test]"),
            "{out}"
        );
        assert!(out.contains("crate :: rt :: Builder :: new ()"), "{out}");
    }
}
