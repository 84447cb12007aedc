//! `depends!`: a graph of `#[fiber]` functions, checked and laid out while
//! the program compiles.

mod ast;
mod expand;
mod model;
mod valid;

use proc_macro2::TokenStream;

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let graph = match syn::parse2::<ast::GraphDef>(input) {
        Ok(graph) => graph,
        Err(err) => return err.to_compile_error(),
    };
    let tokens = match valid::check(&graph) {
        Ok(model) => expand::graph(&graph, &model),
        Err(err) => {
            // The graph's struct still exists, so code using it resolves and
            // only the graph itself shows errors.
            let item = expand::graph_struct_for_errors(&graph);
            let errors = err.to_compile_error();
            quote::quote!(#item #errors)
        }
    };
    match &graph.krate {
        Some(path) => crate::krate::replace(tokens, path),
        None => tokens,
    }
}
