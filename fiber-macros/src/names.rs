//! How the macros spell a user's identifiers outside Rust code.

use proc_macro2::{Ident, Span};
use syn::ext::IdentExt;

/// `ident` as a name, without the `r#` of a raw identifier: the key under
/// which the macros compare nodes (`r#type` and `type` are one node) and
/// the name shown in the node table, `dot()` and errors.
pub(crate) fn name(ident: &Ident) -> String {
    ident.unraw().to_string()
}

/// `ident` itself (raw or not) with every token on `span`.
pub(crate) fn respanned(ident: &Ident, span: Span) -> Ident {
    let mut ident = ident.clone();
    ident.set_span(span);
    ident
}
