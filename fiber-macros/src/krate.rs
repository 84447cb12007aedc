//! The `crate = "path"` option: where generated code finds `fiber_rt`,
//! for a crate that depends on it under another name or through a crate
//! that re-exports it.

use proc_macro2::{Group, TokenStream, TokenTree};
use quote::ToTokens;

/// `tokens` with every `::fiber_rt` replaced by `path`.
pub(crate) fn replace(tokens: TokenStream, path: &syn::Path) -> TokenStream {
    let mut out = Vec::new();
    let mut trees = tokens.into_iter().peekable();
    while let Some(tree) = trees.next() {
        if let TokenTree::Punct(first) = &tree {
            if first.as_char() == ':' && first.spacing() == proc_macro2::Spacing::Joint {
                let mut ahead = trees.clone();
                let second = ahead.next();
                let name = ahead.next();
                let is_ours = matches!(&second, Some(TokenTree::Punct(p)) if p.as_char() == ':')
                    && matches!(&name, Some(TokenTree::Ident(ident)) if ident == "fiber_rt");
                if is_ours {
                    out.extend(path.to_token_stream());
                    trees = ahead;
                    continue;
                }
            }
        }
        out.push(match tree {
            TokenTree::Group(group) => {
                let mut inner = Group::new(group.delimiter(), replace(group.stream(), path));
                inner.set_span(group.span());
                TokenTree::Group(inner)
            }
            other => other,
        });
    }
    out.into_iter().collect()
}

/// Parses the option's value, a string holding a path.
pub(crate) fn parse(value: &syn::Expr) -> syn::Result<syn::Path> {
    match value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(text),
            ..
        }) => text.parse::<syn::Path>(),
        other => Err(syn::Error::new_spanned(
            other,
            "write the path to fiber_rt as a string: `crate = \"my_facade::fiber_rt\"`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    #[test]
    fn every_fiber_rt_path_is_replaced_nested_ones_too() {
        let path: syn::Path = syn::parse_str("crate::facade::rt").unwrap();
        let tokens = quote! {
            impl ::fiber_rt::__private::Node for x {
                fn f() { ::fiber_rt::__private::probe(); { let _ = (::fiber_rt::X, fiber_rt::Y, ::other::Z); } }
            }
        };
        let replaced = super::replace(tokens, &path).to_string();
        assert_eq!(
            replaced.matches("crate :: facade :: rt").count(),
            3,
            "{replaced}"
        );
        assert!(!replaced.contains(":: fiber_rt"), "{replaced}");
        // Only the absolute path: a bare `fiber_rt` and other crates stay.
        assert!(replaced.contains("fiber_rt :: Y"), "{replaced}");
        assert!(replaced.contains(":: other :: Z"), "{replaced}");
    }
}
