//! `#[fiber]` and `depends!`: see `fiber-rt`'s documentation.
use proc_macro::TokenStream;

/// Marks a function as a fiber that a `depends!` graph can name.
#[proc_macro_attribute]
pub fn fiber(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
