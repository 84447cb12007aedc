//! The code a graph expands to: its struct, its outputs struct, the node
//! table as constants, and the trait impls the executor runs it through.
//! Tokens that rustc may complain about carry the span of the user's token
//! they concern, so type errors point into the graph.

use proc_macro2::{Delimiter, Group, Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;

use super::ast::GraphDef;
use super::model::{Dep, Model, Source};

/// The graph's own struct beside the errors of a graph that has some, so
/// that code using it still resolves: its input types with every borrow
/// made `'static`, so that an input that borrows (an error already) adds
/// no errors about lifetimes.
pub(crate) fn graph_struct_for_errors(graph: &GraphDef) -> TokenStream {
    struct Static;
    impl syn::visit_mut::VisitMut for Static {
        fn visit_type_reference_mut(&mut self, reference: &mut syn::TypeReference) {
            let span = reference.and_token.span;
            reference.lifetime = Some(syn::Lifetime::new("'static", span));
            syn::visit_mut::visit_type_reference_mut(self, reference);
        }
        fn visit_lifetime_mut(&mut self, lifetime: &mut syn::Lifetime) {
            *lifetime = syn::Lifetime::new("'static", lifetime.span());
        }
        fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}
        fn visit_type_trait_object_mut(&mut self, _: &mut syn::TypeTraitObject) {}
    }
    let mut graph = graph.clone_header();
    for input in &mut graph.inputs {
        syn::visit_mut::VisitMut::visit_type_mut(&mut Static, &mut input.ty);
    }
    let item = graph_struct(&graph);
    // Its associated items too (with an empty table: the program does not
    // build anyway), so that code calling them shows no errors of its own.
    let (name, vis) = (&graph.name, &graph.vis);
    let constructor = constructor(&graph);
    let graph_name = crate::names::name(name);
    let cfgs = cfgs(&graph);
    quote! {
        #item
        #(#cfgs)*
        #[allow(dead_code)]
        impl #name {
            #vis const TABLE: &'static ::fiber_rt::__private::Table = &::fiber_rt::__private::Table {
                graph: #graph_name,
                nodes: &[],
                sources: &[],
                inputs: &[],
            };
            #vis const NODES: &'static [::fiber_rt::__private::NodeInfo] = &[];
            #vis fn dot() -> ::fiber_rt::__private::String {
                ::fiber_rt::__private::String::new()
            }
            #constructor
        }
    }
}

/// The graph's `#[cfg(..)]` attributes, which hold for all it emits.
fn cfgs(graph: &GraphDef) -> Vec<&syn::Attribute> {
    graph
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg"))
        .collect()
}

/// The graph's own struct: unit, or one public field per input.
pub(crate) fn graph_struct(graph: &GraphDef) -> TokenStream {
    let GraphDef {
        attrs, vis, name, ..
    } = graph;
    // Located on the graph's name, so a type of that name already in the
    // module is reported there; still from the macro (not the user's
    // code) for lints such as `missing_debug_implementations`.
    let span = Span::call_site().located_at(name.span());
    if graph.inputs.is_empty() {
        return quote_spanned!(span=> #(#attrs)* #vis struct #name;);
    }
    let fields = graph.inputs.iter().map(|input| {
        let (field, ty) = (&input.name, &input.ty);
        let doc = format!("Run-time input `{field}`.");
        quote!(#[doc = #doc] #vis #field: #ty,)
    });
    quote_spanned!(span=> #(#attrs)* #vis struct #name { #(#fields)* })
}

/// Everything `depends!` emits for a valid graph.
pub(crate) fn graph(graph: &GraphDef, model: &Model<'_>) -> TokenStream {
    let item = graph_struct(graph);
    let name = &graph.name;
    let vis = &graph.vis;
    let outputs = format_ident!("{}Outputs", name);
    let outputs_struct = outputs_struct(graph, model, &outputs);
    let outputs_debug = outputs_debug(model, &outputs);
    let table = table(graph, model);
    let constructor = constructor(graph);
    let slots = slots_struct(graph, model);
    // On the graph's name: a name in the graph that is not a fiber makes the
    // plan's type invalid, and rustc reports it here.
    let graph_impl = quote_spanned! {name.span()=>
        impl ::fiber_rt::__private::Graph for #name {
            type Outputs = #outputs;
            type Plan = ::fiber_rt::__private::StaticPlan<#name>;
            fn into_plan(self) -> ::fiber_rt::__private::StaticPlan<#name> {
                ::fiber_rt::__private::StaticPlan::new(self)
            }
        }
    };
    let run_node = run_node(model);
    let skip_node = skip_node(model);
    let finish = finish(model, &outputs);
    let into_slots = into_slots(graph, model);
    // `#[cfg(..)]` on the graph holds for all of it, not the struct alone.
    let cfgs = cfgs(graph);
    quote! {
        #item
        #(#cfgs)*
        #outputs_struct

        #(#cfgs)*
        const _: () = {
            #slots
            #table
            #outputs_debug

            #[allow(dead_code)]
            impl #name {
                /// The graph's node table, computed at compile time: names,
                /// in-degrees, successors and critical-path ranks, in a
                /// topological order.
                #vis const TABLE: &'static ::fiber_rt::__private::Table = &__TABLE;
                /// The graph's nodes in a topological order (`TABLE.nodes`).
                #vis const NODES: &'static [::fiber_rt::__private::NodeInfo] = __TABLE.nodes;

                /// The graph in Graphviz `dot` syntax.
                #vis fn dot() -> ::fiber_rt::__private::String {
                    __TABLE.dot()
                }

                #constructor
            }

            // SAFETY: the slots are `Slot`s alone, which are `Send` and
            // `Sync` (see `StaticGraph`).
            unsafe impl ::fiber_rt::__private::StaticGraph for #name {
                type Slots = __Slots;
                type Outputs = #outputs;
                const TABLE: &'static ::fiber_rt::__private::Table = &__TABLE;
                #into_slots
                #run_node
                #skip_node
                #finish
            }

            #graph_impl
        };
    }
}

/// `<node as Node>::ITEM`, every token on the node's name.
fn node_item(ident: &Ident, item: &str) -> TokenStream {
    let item = Ident::new(item, ident.span());
    quote_spanned!(ident.span()=> <#ident as ::fiber_rt::__private::Node>::#item)
}

fn unsuffixed(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

/// The outputs struct: a field per node, named after its function.
fn outputs_struct(graph: &GraphDef, model: &Model<'_>, outputs: &Ident) -> TokenStream {
    let vis = &graph.vis;
    let fields = model.nodes.iter().map(|node| {
        let ident = node.ident;
        let ty = field_type(model, node.ident, &node.consumers);
        let doc = match node.consumers.as_slice() {
            [(consumer, _)] => format!(
                "Output of `{ident}`, or [`Moved`](::fiber_rt::dag::Moved) when `{}` takes it by value.",
                model.nodes[*consumer].ident
            ),
            _ => format!("Output of `{ident}`."),
        };
        // The statement's own doc comments first, if it has any.
        let docs = node.stmt.map(|stmt| &stmt.docs[..]).unwrap_or_default();
        let doc = if docs.is_empty() { doc } else { format!("\n\n{doc}") };
        quote!(#(#docs)* #[doc = #doc] #vis #ident: #ty,)
    });
    let doc = format!(
        "Outputs of a successful run of [`{}`]: a field per fiber. Its `Debug` shows each field's value, or the name of its type where that has no `Debug`.",
        graph.name
    );
    // Located on the graph's name, as the graph's own struct.
    let span = Span::call_site().located_at(graph.name.span());
    quote_spanned! {span=>
        #[doc = #doc]
        // A run fills every field; a program reads the ones it needs. The
        // field types name each fiber's node type, which may be private to
        // the crate while the graph is public: the types they stand for are
        // what users see, so that is not a leak.
        #[allow(dead_code, private_interfaces)]
        #vis struct #outputs { #(#fields)* }
    }
}

/// `Debug` for the outputs struct: every field, shown by its `Debug` where
/// it has one, else by its type's name, so that `{:?}`, `dbg!` and
/// `Result::unwrap_err` work whatever the fibers output.
fn outputs_debug(model: &Model<'_>, outputs: &Ident) -> TokenStream {
    let shown = model.nodes.iter().map(|node| {
        let ident = node.ident;
        let field = crate::names::name(ident);
        // On the node's name: a name that is not a fiber is reported there
        // once, not again here.
        quote_spanned!(ident.span()=> .field(#field, &(&&::fiber_rt::__private::FieldDebug(&self.#ident)).__fiber_rt_debug_field()))
    });
    let outputs_name = outputs.to_string();
    quote! {
        impl ::core::fmt::Debug for #outputs {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                #[allow(unused_imports)]
                use ::fiber_rt::__private::{DebugOpaque as _, DebugValue as _};
                f.debug_struct(#outputs_name)
                    #(#shown)*
                    .finish()
            }
        }
    }
}

/// A node's output type, or, with a single consumer, whatever that
/// consumer's parameter leaves of it (the output, or `Moved`).
fn field_type(model: &Model<'_>, ident: &Ident, consumers: &[(usize, usize)]) -> TokenStream {
    let output = node_item(ident, "Output");
    match consumers {
        [(consumer, param)] => {
            let mode = param_mode(model, *consumer, *param);
            let span = model.nodes[*consumer].deps[*param].ident.span();
            quote_spanned!(span=> <#mode as ::fiber_rt::__private::Kept<#output>>::Field)
        }
        _ => output,
    }
}

/// `<consumer as Param<I>>::Mode`, spanned on the edge.
fn param_mode(model: &Model<'_>, consumer: usize, param: usize) -> TokenStream {
    let consumer_node = &model.nodes[consumer];
    let edge = consumer_node.deps[param].ident;
    let ident = consumer_node.ident;
    let param = unsuffixed(param);
    quote_spanned!(edge.span()=> <#ident as ::fiber_rt::__private::Param<#param>>::Mode)
}

/// The node table as constants; ranks and successor order are computed by
/// `const fn`s from the cost hints, which only rustc knows.
fn table(graph: &GraphDef, model: &Model<'_>) -> TokenStream {
    let count = model.nodes.len();
    let mut starts = vec![0usize];
    let mut successors = Vec::new();
    for node in &model.nodes {
        successors.extend(
            node.consumers
                .iter()
                .map(|&(consumer, _)| unsuffixed(consumer)),
        );
        starts.push(successors.len());
    }
    let edges = successors.len();
    let starts = starts.into_iter().map(unsuffixed);
    let costs = model.nodes.iter().map(|node| {
        let cost = node_item(node.ident, "COST");
        quote_spanned!(node.ident.span()=> #cost as u64)
    });
    let sources: Vec<_> = model.sources().map(unsuffixed).collect();
    let source_count = sources.len();
    let nodes = model.nodes.iter().enumerate().map(|(i, node)| {
        let (name, cost, stack) = (
            node_item(node.ident, "NAME"),
            node_item(node.ident, "COST"),
            node_item(node.ident, "STACK"),
        );
        let field = crate::names::name(node.ident);
        let in_degree = unsuffixed(model.in_degree(i));
        let i = unsuffixed(i);
        quote! {
            ::fiber_rt::__private::NodeInfo {
                name: #name,
                field: #field,
                cost: #cost,
                stack_size: #stack,
                in_degree: #in_degree,
                successors: ::fiber_rt::__private::row(&__SORTED, &__STARTS, #i),
                rank: __RANKS[#i],
            }
        }
    });
    let inputs = model.inputs.iter().map(|input| {
        let name = crate::names::name(&input.def.name);
        let consumers = input
            .consumers
            .iter()
            .map(|&(consumer, _)| unsuffixed(consumer));
        quote!(::fiber_rt::__private::InputInfo { name: #name, consumers: &[#(#consumers),*] })
    });
    let graph_name = crate::names::name(&graph.name);
    quote! {
        const __STARTS: [u32; #count + 1] = [#(#starts),*];
        const __SUCCESSORS: [u32; #edges] = [#(#successors),*];
        const __RANKS: [u64; #count] = ::fiber_rt::__private::ranks([#(#costs),*], &__STARTS, &__SUCCESSORS);
        const __SORTED: [u32; #edges] = ::fiber_rt::__private::sort_rows(__SUCCESSORS, &__STARTS, &__RANKS);
        const __SOURCES: [u32; #source_count] =
            ::fiber_rt::__private::sort_rows([#(#sources),*], &[0, #source_count as u32], &__RANKS);
        const __TABLE: ::fiber_rt::__private::Table = ::fiber_rt::__private::Table {
            graph: #graph_name,
            nodes: &[#(#nodes),*],
            sources: &__SOURCES,
            inputs: &[#(#inputs),*],
        };
    }
}

/// `Name::new(inputs..)` for graphs with inputs.
fn constructor(graph: &GraphDef) -> TokenStream {
    if graph.inputs.is_empty() {
        return TokenStream::new();
    }
    let vis = &graph.vis;
    let names: Vec<_> = graph.inputs.iter().map(|input| &input.name).collect();
    let types = graph.inputs.iter().map(|input| &input.ty);
    quote! {
        /// The graph with its run-time inputs, ready for one run.
        #vis fn new(#(#names: #types),*) -> Self {
            Self { #(#names),* }
        }
    }
}

/// One slot per node output and per input.
fn slots_struct(graph: &GraphDef, model: &Model<'_>) -> TokenStream {
    let nodes = model.nodes.iter().map(|node| {
        let (ident, output) = (node.ident, node_item(node.ident, "Output"));
        let ty = quote_spanned!(ident.span()=> ::fiber_rt::__private::Slot<#output>);
        quote!(#ident: #ty,)
    });
    let inputs = graph.inputs.iter().map(|input| {
        let (ident, ty) = (&input.name, &input.ty);
        quote!(#ident: ::fiber_rt::__private::Slot<#ty>,)
    });
    let input_count = graph.inputs.len();
    let node_count = model.nodes.len();
    // The run's own arrays beside the slots, not among them, so that no
    // name a user gives a fiber or an input can clash with theirs.
    quote! {
        #[doc(hidden)]
        pub struct __Fields {
            #(#nodes)*
            #(#inputs)*
        }

        /// The slots; per input, its readers not done with it yet (see
        /// `InputRead`); the run's counters, one per node (see
        /// `Plan::counters`).
        #[doc(hidden)]
        pub struct __Slots(
            __Fields,
            [::fiber_rt::__private::AtomicU32; #input_count],
            [::fiber_rt::__private::AtomicU32; #node_count],
        );
    }
}

fn into_slots(graph: &GraphDef, model: &Model<'_>) -> TokenStream {
    let nodes = model.nodes.iter().map(|node| {
        let ident = node.ident;
        let empty = quote_spanned!(ident.span()=> ::fiber_rt::__private::Slot::empty());
        quote!(#ident: #empty,)
    });
    let inputs = graph.inputs.iter().map(|input| {
        let ident = &input.name;
        // Spanned on the input: an input that is not `Send` is reported there.
        let fill = quote_spanned!(input.ty_span()=> ::fiber_rt::__private::input_slot(self.#ident));
        quote!(#ident: #fill,)
    });
    let readers = model.inputs.iter().map(|input| {
        let count = input.consumers.len() as u32;
        quote!(::fiber_rt::__private::AtomicU32::new(#count))
    });
    let counters = (0..model.nodes.len()).map(|node| {
        let in_degree = Literal::u32_unsuffixed(model.in_degree(node) as u32);
        quote!(::fiber_rt::__private::AtomicU32::new(#in_degree))
    });
    quote! {
        fn into_slots(self) -> __Slots {
            __Slots(
                __Fields {
                    #(#nodes)*
                    #(#inputs)*
                },
                [#(#readers),*],
                [#(#counters),*],
            )
        }

        #[inline]
        fn counters(slots: &__Slots) -> &[::fiber_rt::__private::AtomicU32] {
            &slots.2
        }
    }
}

/// Runs node `n`: fetch each dependency's output as the parameter at its
/// position takes it, call the fiber, store the output.
fn run_node(model: &Model<'_>) -> TokenStream {
    let arms = model.nodes.iter().enumerate().map(|(i, node)| {
        let ident = node.ident;
        let reads = input_reads(model, node);
        let args = node.deps.iter().map(|dep| argument(model, dep));
        let call = node_item(ident, "CALL");
        let callee = quote_spanned!(ident.span()=> (#call));
        let mut args = Group::new(Delimiter::Parenthesis, quote!(#(#args),*));
        args.set_span(node.stmt.map_or(ident.span(), |stmt| stmt.parens));
        // Spanned on the node: an output that is not `Send` is reported there.
        let store =
            quote_spanned!(ident.span()=> ::fiber_rt::__private::store(&slots.0.#ident, value));
        let i = Literal::u32_unsuffixed(i as u32);
        // The whole arm on the node's name: rustc reports problems with the
        // node's output type (not `Send`, not a fiber) there.
        let value = Ident::new("value", ident.span());
        quote_spanned! {ident.span()=>
            #i => {
                #reads
                let #value = #callee #args?;
                #store;
            }
        }
    });
    quote! {
        // A fiber returning `()` binds `()`: fine here. Inline: its one
        // caller is the runner's loop, where a small graph's nodes are
        // best inlined (left to itself, the compiler stopped doing so
        // after unrelated changes: 26 instructions a run of an 8-node
        // graph).
        #[allow(clippy::let_unit_value)]
        #[inline]
        unsafe fn run_node(
            slots: &__Slots,
            node: u32,
        ) -> ::fiber_rt::__private::Result<(), ::fiber_rt::__private::Failure> {
            match node {
                #(#arms)*
                _ => {}
            }
            ::fiber_rt::__private::Result::Ok(())
        }
    }
}

/// Drops what a node that never runs would have taken by value: the
/// slots it alone reads, if its parameter moves them.
fn skip_node(model: &Model<'_>) -> TokenStream {
    let arms = model.nodes.iter().enumerate().map(|(i, node)| {
        let drops = node.deps.iter().enumerate().filter_map(|(param, dep)| {
            let (field, consumers) = match dep.source {
                Source::Node(n) => (model.nodes[n].ident, model.nodes[n].consumers.len()),
                Source::Input(input) => (
                    &model.inputs[input].def.name,
                    model.inputs[input].consumers.len(),
                ),
            };
            (consumers == 1).then(|| {
                let mode = param_mode(model, i, param);
                // On the edge, like the argument it stands for: a name
                // that is not a fiber is reported there, once.
                let span = dep.ident.span();
                let field = crate::names::respanned(field, span);
                quote_spanned!(span=> <#mode as ::fiber_rt::__private::Discard>::discard(&slots.0.#field);)
            })
        });
        let reads = input_reads(model, node);
        let i = Literal::u32_unsuffixed(i as u32);
        // The reads drop at the end of the arm, after the discards.
        quote!(#i => { #reads #(#drops)* })
    });
    quote! {
        unsafe fn skip_node(slots: &__Slots, node: u32) {
            match node {
                #(#arms)*
                _ => {}
            }
        }
    }
}

/// For each run-time input `node` reads, an `InputRead` that counts the
/// node out of its readers when the arm ends (the call returned, failed or
/// unwound, or the node was skipped), so that the last reader drops the
/// input.
fn input_reads(model: &Model<'_>, node: &super::model::Node<'_>) -> TokenStream {
    let reads = node.deps.iter().filter_map(|dep| match dep.source {
        Source::Input(input) => {
            let field = &model.inputs[input].def.name;
            let read = format_ident!("__read_{}", input);
            let index = unsuffixed(input);
            // Each reader of the input makes one `InputRead`, in its arm,
            // before its argument borrows the input, and it drops at the
            // end of the arm, after the call's borrow has ended; an arm runs
            // once per node (`run_node`'s and `skip_node`'s contract), and
            // nothing else borrows an input: so the generated SAFETY holds.
            Some(quote! {
                let #read = unsafe {
                    ::fiber_rt::__private::InputRead::new(&slots.0.#field, &slots.1[#index])
                };
            })
        }
        Source::Node(_) => None,
    });
    quote!(#(#reads)*)
}

/// One argument: borrowed or taken from the dependency's slot, spanned on
/// the dependency as written, so a type mismatch points at that edge.
fn argument(model: &Model<'_>, dep: &Dep<'_>) -> TokenStream {
    let (field, consumers) = match dep.source {
        Source::Node(node) => (model.nodes[node].ident, model.nodes[node].consumers.len()),
        Source::Input(input) => (
            &model.inputs[input].def.name,
            model.inputs[input].consumers.len(),
        ),
    };
    let span = dep.ident.span();
    let fetch = Ident::new(
        if consumers > 1 {
            "shared_input"
        } else {
            "input"
        },
        span,
    );
    // Every token on the edge's span, so rustc points at the edge itself.
    let field = crate::names::respanned(field, span);
    quote_spanned!(span=> ::fiber_rt::__private::#fetch(&slots.0.#field))
}

/// Moves the outputs out of the slots.
fn finish(model: &Model<'_>, outputs: &Ident) -> TokenStream {
    let fields = model.nodes.iter().map(|node| {
        let ident = node.ident;
        let value = match node.consumers.as_slice() {
            [(consumer, param)] => {
                let mode = param_mode(model, *consumer, *param);
                let span = model.nodes[*consumer].deps[*param].ident.span();
                let field = crate::names::respanned(ident, span);
                quote_spanned!(span=> <#mode as ::fiber_rt::__private::Kept<_>>::field(&mut slots.0.#field)?)
            }
            _ => quote_spanned!(ident.span()=> ::fiber_rt::__private::keep(&mut slots.0.#ident)?),
        };
        quote!(#ident: #value,)
    });
    quote! {
        #[inline]
        fn finish(slots: &mut __Slots) -> ::fiber_rt::__private::Option<#outputs> {
            ::fiber_rt::__private::Option::Some(#outputs { #(#fields)* })
        }
    }
}

impl super::ast::InputDef {
    /// The span of the input's type, for errors about the type.
    fn ty_span(&self) -> Span {
        syn::spanned::Spanned::span(&self.ty)
    }
}
