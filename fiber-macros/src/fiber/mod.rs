//! `#[fiber]`: keeps the function and emits a node struct beside it.

mod ast;
mod expand;
pub(crate) mod probes;
mod valid;

use proc_macro2::TokenStream;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(func) => func,
        Err(err) => {
            let err = syn::Error::new(
                err.span(),
                "`#[fiber]` goes on a function: `#[fiber] fn name(input: &T) -> U { .. }`",
            );
            // Keep whatever the item was, so it still resolves.
            return crate::errors::beside(item, err);
        }
    };
    let checked = ast::Options::parse(args).and_then(|options| {
        let krate = options.krate.clone();
        let fiber = ast::Fiber::new(&func, options);
        valid::check(&fiber)?;
        Ok((expand::node(&fiber), krate))
    });
    match checked {
        Ok((node, krate)) => {
            let func = probes::insert(&func);
            let tokens = quote::quote!(#func #node);
            match krate {
                Some(path) => crate::krate::replace(tokens, &path),
                None => tokens,
            }
        }
        Err(err) => crate::errors::beside(quote::quote!(#func), err),
    }
}
