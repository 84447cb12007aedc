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
    let rules: [fn(&GraphDef, &mut Errors); 8] = [
        not_empty,
        inputs_named_once,
        inputs_are_owned,
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

/// An input is moved into the run, which may outlive its caller (the
/// run's fibers can be cancelled and abandoned): it owns its data, or
/// borrows it for `'static`.
fn inputs_are_owned(graph: &GraphDef, errors: &mut Errors) {
    struct Borrows<'e> {
        input: &'e syn::Ident,
        errors: &'e mut Errors,
    }
    impl<'ast> syn::visit::Visit<'ast> for Borrows<'_> {
        fn visit_type_reference(&mut self, reference: &'ast syn::TypeReference) {
            if reference.lifetime.is_none() {
                self.errors.push(syn::Error::new_spanned(
                    reference.and_token,
                    format!(
                        "input `{}` borrows: a graph's inputs are moved into the run; make it owned (`Vec<T>`, `String`, `Arc<T>`) or `&'static`",
                        self.input
                    ),
                ));
            }
            syn::visit::visit_type_reference(self, reference);
        }
        fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
            if lifetime.ident != "static" {
                self.errors.push(syn::Error::new_spanned(
                    lifetime,
                    format!(
                        "input `{}` borrows for `{lifetime}`: a graph's inputs are moved into the run; make it owned (`Vec<T>`, `String`, `Arc<T>`) or `&'static`",
                        self.input
                    ),
                ));
            }
        }
        // A function pointer's or trait object's own borrows are its
        // business (higher-ranked), not the input's.
        fn visit_type_bare_fn(&mut self, _: &'ast syn::TypeBareFn) {}
        fn visit_type_trait_object(&mut self, _: &'ast syn::TypeTraitObject) {}
    }
    for input in &graph.inputs {
        let mut borrows = Borrows {
            input: &input.name,
            errors,
        };
        syn::visit::Visit::visit_type(&mut borrows, &input.ty);
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
        let node = crate::names::name(&stmt.node);
        // By name: `r#count` and `count` are one fiber.
        for dep in stmt
            .deps
            .iter()
            .filter(|dep| crate::names::name(dep) == node)
        {
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

/// An input that no fiber reads is a mistake (a typo, or a leftover). A
/// dependency spelt nearly like it, and not a fiber of the graph's own
/// statements, is likely the typo: it is pointed at too (rustc would say
/// nothing of it, as it stops at these errors).
fn inputs_are_used(graph: &GraphDef, errors: &mut Errors) {
    let is_node = |dep: &syn::Ident| {
        let name = crate::names::name(dep);
        graph
            .stmts
            .iter()
            .any(|stmt| crate::names::name(&stmt.node) == name)
    };
    for input in &graph.inputs {
        // By name: `r#xs` and `xs` are one input.
        let wanted = crate::names::name(&input.name);
        if graph.stmts.iter().any(|stmt| {
            stmt.deps
                .iter()
                .any(|dep| crate::names::name(dep) == wanted)
        }) {
            continue;
        }
        errors.push(syn::Error::new_spanned(
            &input.name,
            format!(
                "input `{}` is not used: pass it to a fiber, as in `node({});`, or remove it",
                input.name, input.name
            ),
        ));
        let is_input = |name: &String| {
            graph
                .inputs
                .iter()
                .any(|input| crate::names::name(&input.name) == *name)
        };
        let typos = graph
            .stmts
            .iter()
            .flat_map(|stmt| &stmt.deps)
            .filter(|dep| !is_node(dep))
            .filter(|dep| {
                let name = crate::names::name(dep);
                !is_input(&name) && close(&name, &wanted)
            });
        for dep in typos {
            errors.push(syn::Error::new_spanned(
                dep,
                format!(
                    "`{dep}` is not an input of the graph: did you mean the unused input `{}`?",
                    input.name
                ),
            ));
        }
    }
}

/// Whether two names are at most two edits apart (and not equal), by
/// Levenshtein distance.
fn close(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a == b || a.len().abs_diff(b.len()) > 2 {
        return false;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()] <= 2
}
