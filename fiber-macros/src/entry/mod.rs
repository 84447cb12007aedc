//! `#[fiber_rt::main]` and `#[fiber_rt::test]`: the function's body runs
//! as a fiber on a runtime built for the call, with `Runtime::block_on`.

mod ast;
mod expand;
mod valid;

use proc_macro2::TokenStream;

pub(crate) use ast::Kind;

pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let attribute = kind.attribute();
    let func = match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(func) => func,
        Err(err) => {
            let err = syn::Error::new(
                err.span(),
                format!(
                    "`{attribute}` goes on a function: `{attribute} fn {}() {{ .. }}`",
                    kind.example_name()
                ),
            );
            // Keep whatever the item was, so it still resolves.
            return crate::errors::beside(item, err);
        }
    };
    // The options' errors and the function's are reported together.
    let (options, errors) = ast::Options::parse(kind, args);
    let krate = options.krate.clone();
    let entry = ast::Entry::new(kind, &func, options);
    match valid::check(&entry, errors) {
        Ok(()) => {
            let tokens = expand::entry(&entry);
            match krate {
                Some(path) => crate::krate::replace(tokens, &path),
                None => tokens,
            }
        }
        Err(err) => crate::errors::beside(quote::quote!(#func), err),
    }
}
