//! Several errors from one pass, reported together, beside the user's item.

use proc_macro2::TokenStream;

/// Collects errors so one pass reports all of them.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }

    pub fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(err) => Err(err),
            None => Ok(value),
        }
    }

    /// Every error so far, followed by `last`.
    pub fn with(mut self, last: syn::Error) -> syn::Error {
        self.push(last);
        self.0.expect("an error was just pushed")
    }
}

/// `item` as the user wrote it, followed by `err`'s errors: the item still
/// resolves, so the rest of the program (and an IDE) sees it, and only the
/// errors show.
pub(crate) fn beside(item: TokenStream, err: syn::Error) -> TokenStream {
    let errors = err.to_compile_error();
    quote::quote!(#item #errors)
}
