//! The rules a `depends!` graph must follow that can be checked from its
//! syntax, one function each. Rules about types (is it a `#[fiber]`, does
//! an output fit its parameter, the number of inputs, `Send`/`Sync`, moving
//! a shared output) are left to rustc through the expansion, with spans on
//! the tokens they concern.

use std::collections::HashSet;

use super::ast::GraphDef;
use super::model::Model;
use crate::errors::Errors;

/// Runs every rule, then builds the model (which finds cycles), and
/// reports all errors together.
pub(crate) fn check(graph: &GraphDef) -> syn::Result<Model<'_>> {
    let mut errors = Errors::default();
    let rules: [fn(&GraphDef, &mut Errors); 7] = [
        not_empty,
        inputs_named_once,
        inputs_are_not_fibers,
        fibers_listed_once,
        no_self_dependency,
        dependencies_listed_once,
        inputs_are_used,
    ];
    for rule in rules {
        rule(graph, &mut errors);
    }
    match Model::build(graph) {
        Ok(model) => errors.finish(model),
        Err(cycle) => Err(errors.with(syn::Error::new_spanned(
            cycle.closing,
            format!(
                "cycle: {}; a graph's dependencies cannot loop back",
                cycle.path.join(" -> ")
            ),
        ))),
    }
}

/// A graph runs at least one fiber.
fn not_empty(graph: &GraphDef, errors: &mut Errors) {
    if graph.stmts.is_empty() {
        errors.push(syn::Error::new(
            graph.body_span,
            format!("graph `{}` has no fibers: list each with its dependencies, as in `report(sum, max);`", graph.name),
        ));
    }
}

/// Each input has its own name.
fn inputs_named_once(graph: &GraphDef, errors: &mut Errors) {
    let mut seen = HashSet::new();
    for input in &graph.inputs {
        if !seen.insert(crate::names::name(&input.name)) {
            errors.push(syn::Error::new_spanned(
                &input.name,
                format!("the graph has two inputs named `{}`", input.name),
            ));
        }
    }
}

/// A name is either an input or a fiber, so a dependency is unambiguous.
fn inputs_are_not_fibers(graph: &GraphDef, errors: &mut Errors) {
    for stmt in &graph.stmts {
        if graph
            .inputs
            .iter()
            .any(|input| crate::names::name(&input.name) == crate::names::name(&stmt.node))
        {
            errors.push(syn::Error::new_spanned(
                &stmt.node,
                format!(
                    "`{}` is an input of the graph, not a fiber: rename the input or the fiber",
                    stmt.node
                ),
            ));
        }
    }
}

/// A fiber appears in one statement that lists all its dependencies.
fn fibers_listed_once(graph: &GraphDef, errors: &mut Errors) {
    let mut seen = HashSet::new();
    for stmt in &graph.stmts {
        if !seen.insert(crate::names::name(&stmt.node)) {
            errors.push(syn::Error::new_spanned(
                &stmt.node,
                format!(
                    "`{}` is listed twice: list a fiber once, with all its dependencies, as in `{}(a, b);`",
                    stmt.node, stmt.node
                ),
            ));
        }
    }
}

/// A fiber cannot wait for its own output.
fn no_self_dependency(graph: &GraphDef, errors: &mut Errors) {
    for stmt in &graph.stmts {
        for dep in stmt.deps.iter().filter(|dep| **dep == stmt.node) {
            errors.push(syn::Error::new_spanned(
                dep,
                format!(
                    "`{}` depends on itself: a fiber cannot wait for its own output",
                    stmt.node
                ),
            ));
        }
    }
}

/// A dependency is listed once per fiber: its output binds to one
/// parameter (borrow it as `&T` to read it there).
fn dependencies_listed_once(graph: &GraphDef, errors: &mut Errors) {
    for stmt in &graph.stmts {
        let mut seen = HashSet::new();
        for dep in &stmt.deps {
            if !seen.insert(crate::names::name(dep)) {
                errors.push(syn::Error::new_spanned(
                    dep,
                    format!(
                        "`{}` already depends on `{dep}`: list each dependency once",
                        stmt.node
                    ),
                ));
            }
        }
    }
}

/// An input that no fiber reads is a mistake (a typo, or a leftover).
fn inputs_are_used(graph: &GraphDef, errors: &mut Errors) {
    for input in &graph.inputs {
        if !graph
            .stmts
            .iter()
            .any(|stmt| stmt.deps.contains(&input.name))
        {
            errors.push(syn::Error::new_spanned(
                &input.name,
                format!(
                    "input `{}` is not used: pass it to a fiber, as in `node({});`, or remove it",
                    input.name, input.name
                ),
            ));
        }
    }
}
