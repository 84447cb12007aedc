//! The function under `#[fiber_rt::main]` or `#[fiber_rt::test]` and its
//! options, keeping the user's tokens for error spans.

use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, Meta, Token};

/// Which of the two attributes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Main,
    Test,
}

impl Kind {
    /// The attribute as users write it, for messages.
    pub fn attribute(self) -> &'static str {
        match self {
            Kind::Main => "#[fiber_rt::main]",
            Kind::Test => "#[fiber_rt::test]",
        }
    }

    /// A function name for the examples in messages.
    pub fn example_name(self) -> &'static str {
        match self {
            Kind::Main => "main",
            Kind::Test => "works",
        }
    }

    /// The worker count without a `workers` option: `None` for the
    /// runtime's default (one per core). A test runs beside the others,
    /// each with its runtime, so it gets two: enough for fibers to run in
    /// parallel and be stolen, few enough for many tests at once.
    pub fn default_workers(self) -> Option<usize> {
        match self {
            Kind::Main => None,
            Kind::Test => Some(2),
        }
    }
}

/// Options written inside the attribute's parentheses.
#[derive(Default)]
pub(crate) struct Options {
    /// `workers = N`, with the literal's span.
    pub workers: Option<(usize, Span)>,
    /// `stack = ..`: the fibers' default stack size in bytes, with the
    /// value's span.
    pub stack: Option<(u64, Span)>,
    /// `crate = ".."`: the path generated code reaches `fiber_rt` by.
    pub krate: Option<syn::Path>,
}

const KNOWN: &str =
    "`workers = 4`, `stack = 65536` (or `\"64 KiB\"`), `crate = \"path::to::fiber_rt\"`";

impl Options {
    /// Parses `workers = .., stack = .., crate = ".."`: the options that
    /// parsed, and the errors of those that did not.
    pub fn parse(kind: Kind, args: TokenStream) -> (Options, Errors) {
        let mut options = Options::default();
        let mut errors = Errors::default();
        let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args) {
            Ok(metas) => metas,
            Err(err) => {
                errors.push(err);
                return (options, errors);
            }
        };
        let mut seen = crate::options::Seen::default();
        for meta in metas {
            let key = match seen.key(&meta) {
                Ok(key) => key,
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            };
            if let Err(err) = options.set(kind, &key, &meta) {
                errors.push(err);
            }
        }
        (options, errors)
    }

    fn set(&mut self, kind: Kind, key: &str, meta: &Meta) -> syn::Result<()> {
        match (key, meta) {
            ("workers", Meta::NameValue(nv)) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Int(count),
                    ..
                }) => match count.base10_parse::<usize>() {
                    Ok(value) => self.workers = Some((value, count.span())),
                    // syn reads `-1` as one literal.
                    Err(_) if count.base10_digits().starts_with('-') => {
                        return Err(syn::Error::new_spanned(
                            count,
                            "write the worker count as a whole number: `workers = 4`",
                        ))
                    }
                    Err(_) => return Err(syn::Error::new_spanned(
                        count,
                        "the worker count is too large: write a small whole number, `workers = 4`",
                    )),
                },
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "write the worker count as a whole number: `workers = 4`",
                    ))
                }
            },
            ("stack", Meta::NameValue(nv)) => {
                self.stack = Some((crate::stack::parse(&nv.value)?, nv.value.span()))
            }
            ("crate", Meta::NameValue(nv)) => self.krate = Some(crate::krate::parse(&nv.value)?),
            ("workers" | "stack" | "crate", _) => {
                return Err(syn::Error::new_spanned(
                    meta,
                    format!("write the option as `{key} = value`"),
                ));
            }
            _ => {
                return Err(syn::Error::new_spanned(
                    meta.path(),
                    format!(
                        "unknown option for `{}`; the options are {KNOWN}",
                        kind.attribute()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The function under the attribute, and its options.
pub(crate) struct Entry<'a> {
    pub kind: Kind,
    pub func: &'a ItemFn,
    pub options: Options,
}

impl<'a> Entry<'a> {
    pub fn new(kind: Kind, func: &'a ItemFn, options: Options) -> Self {
        Entry {
            kind,
            func,
            options,
        }
    }

    /// The worker count to build the runtime with, `None` for the
    /// runtime's default.
    pub fn workers(&self) -> Option<usize> {
        self.options
            .workers
            .map(|(count, _)| count)
            .or(self.kind.default_workers())
    }
}
