//! The parsed `#[fiber]` function and its options, keeping the user's
//! tokens for error spans.

use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, FnArg, ItemFn, Lit, LitStr, Meta, ReturnType, Token, Type};

/// Options written inside `#[fiber(..)]`.
#[derive(Default)]
pub(crate) struct Options {
    pub name: Option<LitStr>,
    /// Stack size in bytes, with the literal it came from.
    pub stack: Option<(u64, Span)>,
    pub cost: Option<(u64, Span)>,
    pub fallible: Option<bool>,
    /// Where `fallible` was written, for errors.
    pub fallible_span: Option<Span>,
    /// `crate = ".."`: the path generated code reaches `fiber_rt` by.
    pub krate: Option<syn::Path>,
}

const KNOWN: &str = "`name = \"..\"`, `stack = 65536` (or `\"64 KiB\"`), `cost = 10`, `fallible`, `crate = \"path::to::fiber_rt\"`";

impl Options {
    /// Parses `name = "..", stack = .., cost = .., fallible`, collecting
    /// every error.
    pub fn parse(args: TokenStream) -> syn::Result<Options> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
        let mut options = Options::default();
        let mut errors = Errors::default();
        let mut seen = crate::options::Seen::default();
        for meta in metas {
            let key = match seen.key(&meta) {
                Ok(key) => key,
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            };
            if let Err(err) = options.set(&key, &meta) {
                errors.push(err);
            }
        }
        errors.finish(options)
    }

    fn set(&mut self, key: &str, meta: &Meta) -> syn::Result<()> {
        match (key, meta) {
            ("fallible", Meta::Path(path)) => {
                self.fallible = Some(true);
                self.fallible_span = Some(path.span());
            }
            ("fallible", Meta::NameValue(nv)) => match literal(&nv.value) {
                Some(Lit::Bool(value)) => {
                    self.fallible = Some(value.value);
                    self.fallible_span = Some(nv.span());
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        &nv.value,
                        "write `fallible = true` or `fallible = false`",
                    ))
                }
            },
            ("crate", Meta::NameValue(nv)) => self.krate = Some(crate::krate::parse(&nv.value)?),
            ("name", Meta::NameValue(nv)) => match literal(&nv.value) {
                Some(Lit::Str(name)) if !name.value().trim().is_empty() => {
                    self.name = Some(name.clone())
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        &nv.value,
                        "write the name as a non-empty string: `name = \"load data\"`",
                    ))
                }
            },
            ("stack", Meta::NameValue(nv)) => {
                self.stack = Some((crate::stack::parse(&nv.value)?, nv.value.span()))
            }
            ("cost", Meta::NameValue(nv)) => match literal(&nv.value) {
                Some(Lit::Int(cost)) => match cost.base10_parse::<u32>() {
                    Ok(value) => self.cost = Some((u64::from(value), cost.span())),
                    Err(_) => {
                        return Err(syn::Error::new_spanned(
                            cost,
                            "the cost hint is a whole number from 0 to 4294967295",
                        ))
                    }
                },
                _ => {
                    return Err(syn::Error::new_spanned(
                        &nv.value,
                        "write the cost hint as a whole number: `cost = 10`",
                    ))
                }
            },
            ("name" | "stack" | "cost" | "crate", _) => {
                return Err(syn::Error::new_spanned(
                    meta,
                    format!("write the option as `{key} = value`"),
                ));
            }
            _ => {
                return Err(syn::Error::new_spanned(
                    meta.path(),
                    format!("unknown option for `#[fiber]`; the options are {KNOWN}"),
                ));
            }
        }
        Ok(())
    }
}

fn literal(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        _ => None,
    }
}

/// How a parameter receives its dependency's output.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// `&T`: borrows the output.
    Borrow,
    /// `T`: takes the output.
    Move,
}

/// One parameter: how it is passed and the type it reads (`T` of `&T`).
pub(crate) struct Param<'a> {
    pub pass: Pass,
    pub target: &'a Type,
    /// The whole parameter type, for spans.
    pub ty: &'a Type,
}

/// The function under `#[fiber]`, and what the macro needs to know of it.
pub(crate) struct Fiber<'a> {
    pub func: &'a ItemFn,
    pub options: Options,
    /// `None` when a parameter is `self`; reported by `valid`.
    pub params: Vec<Option<Param<'a>>>,
    /// The declared return type, `None` for `()`.
    pub output: Option<&'a Type>,
    /// Whether an `Err` return fails the node.
    pub fallible: bool,
}

impl<'a> Fiber<'a> {
    pub fn new(func: &'a ItemFn, options: Options) -> Self {
        let params = func
            .sig
            .inputs
            .iter()
            .map(|arg| match arg {
                FnArg::Receiver(_) => None,
                FnArg::Typed(typed) => Some(match peel(&typed.ty) {
                    // `&'static T` is a value of its own (a dependency
                    // that outputs `&'static str`, say), not a borrow of
                    // the output, which lives only as long as the run.
                    Type::Reference(reference) if !is_static(reference) => Param {
                        pass: Pass::Borrow,
                        target: &reference.elem,
                        ty: peel(&typed.ty),
                    },
                    other => Param {
                        pass: Pass::Move,
                        target: other,
                        ty: peel(&typed.ty),
                    },
                }),
            })
            .collect();
        let output = match &func.sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, ty) => Some(&**ty),
        };
        let fallible = output.is_some_and(|ty| !is_never(ty))
            && options
                .fallible
                .unwrap_or_else(|| output.is_some_and(named_result));
        Fiber {
            func,
            options,
            params,
            output,
            fallible,
        }
    }

    /// The name in the node table.
    pub fn display_name(&self) -> String {
        self.options
            .name
            .as_ref()
            .map_or_else(|| crate::names::name(&self.func.sig.ident), LitStr::value)
    }
}

/// Whether a reference type is written `&'static T`.
fn is_static(reference: &syn::TypeReference) -> bool {
    reference
        .lifetime
        .as_ref()
        .is_some_and(|lifetime| lifetime.ident == "static")
}

/// `ty` without the invisible group a `macro_rules!` `$t:ty` puts around
/// it, or parentheses: `&u64` read through either is still `&u64`.
fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => peel(&group.elem),
        Type::Paren(paren) => peel(&paren.elem),
        other => other,
    }
}

/// Whether `ty` is `!`: a fiber that never returns.
pub(crate) fn is_never(ty: &Type) -> bool {
    matches!(peel(ty), Type::Never(_))
}

/// Whether a type's last path segment is `Result`: `Result<T, E>`,
/// `io::Result<T>`, `anyhow::Result<T>`.
fn named_result(ty: &Type) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Result"),
        Type::Group(group) => named_result(&group.elem),
        Type::Paren(paren) => named_result(&paren.elem),
        _ => false,
    }
}
