//! The syntax of `depends!`:
//!
//! ```text
//! /// docs and other attributes
//! pub graph Name(input: Type, ..) {
//!     node(dependency, dependency);
//!     source();
//! }
//! ```

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{braced, parenthesized, Attribute, Ident, Token, Type, Visibility};

syn::custom_keyword!(graph);

/// A whole `depends!` invocation.
pub(crate) struct GraphDef {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub inputs: Vec<InputDef>,
    /// The braces, for errors about the graph as a whole.
    pub body_span: Span,
    pub stmts: Vec<NodeStmt>,
    /// `#[depends(crate = "..")]`: the path generated code reaches
    /// `fiber_rt` by.
    pub krate: Option<syn::Path>,
}

/// `input: Type` in the graph's header.
pub(crate) struct InputDef {
    pub name: Ident,
    pub ty: Type,
}

/// `node(dep, dep);`, after its doc comments, if any.
pub(crate) struct NodeStmt {
    /// `///` lines, which document the node's field of the outputs struct.
    pub docs: Vec<Attribute>,
    pub node: Ident,
    /// The parentheses, so an arity error covers `node(..)`.
    pub parens: Span,
    pub deps: Vec<Ident>,
}

impl GraphDef {
    /// The graph's attributes, visibility, name and inputs, without its
    /// statements.
    pub fn clone_header(&self) -> GraphDef {
        GraphDef {
            attrs: self.attrs.clone(),
            vis: self.vis.clone(),
            name: self.name.clone(),
            inputs: self
                .inputs
                .iter()
                .map(|input| InputDef {
                    name: input.name.clone(),
                    ty: input.ty.clone(),
                })
                .collect(),
            body_span: self.body_span,
            stmts: Vec::new(),
            krate: self.krate.clone(),
        }
    }
}

impl Parse for GraphDef {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut attrs = input.call(Attribute::parse_outer)?;
        let mut krate = None;
        if let Some(at) = attrs
            .iter()
            .position(|attr| attr.path().is_ident("depends"))
        {
            let attr = attrs.remove(at);
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("crate") {
                    krate = Some(crate::krate::parse(&meta.value()?.parse()?)?);
                    Ok(())
                } else {
                    Err(meta.error(
                        "the one option of `#[depends(..)]` is `crate = \"path::to::fiber_rt\"`",
                    ))
                }
            })?;
        }
        let vis = input.parse()?;
        if !input.peek(graph) {
            return Err(
                input.error("expected `graph Name { .. }`, as in `pub graph Stats { sum(load); }`")
            );
        }
        input.parse::<graph>()?;
        let name = input.parse()?;
        if input.peek(Token![<]) {
            return Err(input.error(
                "a graph cannot be generic: its fibers and inputs have concrete types, and its inputs are owned (`Vec<T>`, `String`, `Arc<T>`) or `&'static`",
            ));
        }
        let mut inputs = Vec::new();
        if input.peek(syn::token::Paren) {
            let content;
            parenthesized!(content in input);
            inputs = Punctuated::<InputDef, Token![,]>::parse_terminated(&content)?
                .into_iter()
                .collect();
        }
        if !input.peek(syn::token::Brace) {
            return Err(input.error("expected the graph's body: `{ node(dependency, ..); .. }`"));
        }
        let content;
        let brace = braced!(content in input);
        let mut stmts = Vec::new();
        while !content.is_empty() {
            stmts.push(content.parse()?);
        }
        if !input.is_empty() {
            return Err(input.error(
                "one `depends!` declares one graph; write another `depends!` for the next",
            ));
        }
        Ok(GraphDef {
            attrs,
            vis,
            name,
            inputs,
            body_span: brace.span.join(),
            stmts,
            krate,
        })
    }
}

impl Parse for InputDef {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name = input.parse()?;
        input.parse::<Token![:]>()?;
        Ok(InputDef {
            name,
            ty: input.parse()?,
        })
    }
}

impl Parse for NodeStmt {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let docs = input.call(Attribute::parse_outer)?;
        if let Some(other) = docs.iter().find(|attr| !attr.path().is_ident("doc")) {
            return Err(syn::Error::new_spanned(
                other,
                "only doc comments go on a graph's statement: put attributes on the `#[fiber]` function",
            ));
        }
        let node: Ident = input.parse()?;
        if input.peek(Token![::]) {
            let mut path = node.to_string();
            while input.peek(Token![::]) {
                input.parse::<Token![::]>()?;
                path = format!("{path}::{}", input.parse::<Ident>()?);
            }
            let last = path.rsplit("::").next().unwrap_or_default().to_owned();
            return Err(syn::Error::new_spanned(
                &node,
                format!("name fibers by their bare name: add `use {path};` and write `{last}(..)`"),
            ));
        }
        if !input.peek(syn::token::Paren) {
            return Err(syn::Error::new_spanned(
                &node,
                format!("expected `{node}(dependencies);`, or `{node}();` for a fiber without dependencies"),
            ));
        }
        let content;
        let parens = parenthesized!(content in input);
        let deps = Punctuated::<Dependency, Token![,]>::parse_terminated(&content)?
            .into_iter()
            .map(|dep| dep.0)
            .collect();
        if !input.peek(Token![;]) {
            return Err(input.error(format!("expected `;` after `{node}(..)`")));
        }
        input.parse::<Token![;]>()?;
        Ok(NodeStmt {
            docs,
            node,
            parens: parens.span.join(),
            deps,
        })
    }
}

/// One dependency: a fiber's or an input's name, nothing more.
struct Dependency(Ident);

impl Parse for Dependency {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(Token![&]) {
            return Err(input.error(
                "write the dependency's name alone: the parameter's type says how it is read (`&T` borrows the output, `T` takes it)",
            ));
        }
        if !input.peek(Ident) {
            return Err(input.error("expected the name of a `#[fiber]` function or of an input"));
        }
        let name: Ident = input.parse()?;
        if !input.is_empty() && !input.peek(Token![,]) {
            return Err(input.error(format!(
                "expected `,` or `)` after `{name}`: a dependency is a name alone"
            )));
        }
        Ok(Dependency(name))
    }
}
