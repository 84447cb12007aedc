//! The graph behind the syntax: nodes in a topological order, with their
//! dependencies and consumers resolved to indices.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use syn::Ident;

use super::ast::{GraphDef, InputDef, NodeStmt};

pub(crate) struct Model<'a> {
    /// Every node, each after all of its dependencies.
    pub nodes: Vec<Node<'a>>,
    pub inputs: Vec<Input<'a>>,
}

pub(crate) struct Node<'a> {
    /// The statement's name, or the first mention of a source that has no
    /// statement: errors about the node point here.
    pub ident: &'a Ident,
    pub stmt: Option<&'a NodeStmt>,
    pub deps: Vec<Dep<'a>>,
    /// `(consumer, parameter position)` for each fiber reading the output.
    pub consumers: Vec<(usize, usize)>,
}

pub(crate) struct Dep<'a> {
    /// The dependency as written in this node's statement.
    pub ident: &'a Ident,
    pub source: Source,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Node(usize),
    Input(usize),
}

pub(crate) struct Input<'a> {
    pub def: &'a InputDef,
    pub consumers: Vec<(usize, usize)>,
}

/// A cycle, as node names in edge order with the first repeated at the
/// end, and the dependency token that closes it.
pub(crate) struct Cycle<'a> {
    pub path: Vec<String>,
    pub closing: &'a Ident,
}

/// The nodes in order of first mention: a statement's dependencies come
/// before its node, which keeps sources first when the user lists them so.
struct Mentions<'a> {
    idents: Vec<&'a Ident>,
    index: HashMap<String, usize>,
}

impl<'a> Mentions<'a> {
    fn collect(graph: &'a GraphDef) -> Self {
        let mut mentions = Mentions {
            idents: Vec::new(),
            index: HashMap::new(),
        };
        for stmt in &graph.stmts {
            for dep in &stmt.deps {
                if !graph
                    .inputs
                    .iter()
                    .any(|input| crate::names::name(&input.name) == crate::names::name(dep))
                {
                    mentions.add(dep);
                }
            }
            mentions.add(&stmt.node);
        }
        mentions
    }

    fn add(&mut self, ident: &'a Ident) {
        let next = self.idents.len();
        self.index
            .entry(crate::names::name(ident))
            .or_insert_with(|| {
                self.idents.push(ident);
                next
            });
    }
}

impl<'a> Model<'a> {
    /// Builds the model, using the first statement of a node listed twice
    /// and ignoring self-dependencies and repeated edges (each reported by
    /// `valid`). Fails with a cycle.
    pub fn build(graph: &'a GraphDef) -> Result<Model<'a>, Cycle<'a>> {
        let mentions = Mentions::collect(graph);
        let count = mentions.idents.len();
        let mut stmts: Vec<Option<&NodeStmt>> = vec![None; count];
        for stmt in &graph.stmts {
            stmts[mentions.index[&crate::names::name(&stmt.node)]].get_or_insert(stmt);
        }
        let input_index = |ident: &Ident| {
            let name = crate::names::name(ident);
            graph
                .inputs
                .iter()
                .position(|input| crate::names::name(&input.name) == name)
        };
        // Dependencies in mention indices.
        let deps: Vec<Vec<Dep<'a>>> = stmts
            .iter()
            .enumerate()
            .map(|(node, stmt)| {
                let mut deps: Vec<Dep<'a>> = Vec::new();
                for ident in stmt.map_or(&[][..], |stmt| &stmt.deps[..]) {
                    let source = match input_index(ident) {
                        Some(input) => Source::Input(input),
                        None => Source::Node(mentions.index[&crate::names::name(ident)]),
                    };
                    if source != Source::Node(node) && !deps.iter().any(|dep| dep.source == source)
                    {
                        deps.push(Dep { ident, source });
                    }
                }
                deps
            })
            .collect();
        // Where each node's statement is, to start a reported cycle at the
        // first one written.
        let stmt_at: Vec<usize> = stmts
            .iter()
            .map(|stmt| {
                stmt.and_then(|s| graph.stmts.iter().position(|t| std::ptr::eq(s, t)))
                    .unwrap_or(usize::MAX)
            })
            .collect();
        let order = topological_order(&deps)
            .map_err(|stuck| find_cycle(&deps, &stuck, &mentions.idents, &stmt_at))?;
        let mut position = vec![0; count];
        for (at, &node) in order.iter().enumerate() {
            position[node] = at;
        }
        let renumber = |source: Source| match source {
            Source::Node(node) => Source::Node(position[node]),
            input => input,
        };
        let mut deps = deps;
        let mut nodes: Vec<Node<'a>> = order
            .iter()
            .map(|&node| Node {
                ident: stmts[node].map_or(mentions.idents[node], |stmt| &stmt.node),
                stmt: stmts[node],
                deps: std::mem::take(&mut deps[node])
                    .into_iter()
                    .map(|dep| Dep {
                        ident: dep.ident,
                        source: renumber(dep.source),
                    })
                    .collect(),
                consumers: Vec::new(),
            })
            .collect();
        let mut inputs: Vec<Input<'a>> = graph
            .inputs
            .iter()
            .map(|def| Input {
                def,
                consumers: Vec::new(),
            })
            .collect();
        for consumer in 0..nodes.len() {
            for param in 0..nodes[consumer].deps.len() {
                match nodes[consumer].deps[param].source {
                    Source::Node(node) => nodes[node].consumers.push((consumer, param)),
                    Source::Input(input) => inputs[input].consumers.push((consumer, param)),
                }
            }
        }
        Ok(Model { nodes, inputs })
    }

    /// The nodes that depend on nothing, in table order.
    pub fn sources(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&node| self.in_degree(node) == 0)
    }

    /// How many nodes `node` waits for (inputs are ready from the start).
    pub fn in_degree(&self, node: usize) -> usize {
        self.nodes[node]
            .deps
            .iter()
            .filter(|dep| matches!(dep.source, Source::Node(_)))
            .count()
    }
}

/// Kahn's algorithm, always taking the earliest-mentioned ready node, so
/// the order follows the source text where it can. `Err` holds the nodes
/// left waiting, which contain a cycle.
fn topological_order(deps: &[Vec<Dep<'_>>]) -> Result<Vec<usize>, Vec<bool>> {
    let count = deps.len();
    let mut waiting: Vec<usize> = deps
        .iter()
        .map(|d| {
            d.iter()
                .filter(|d| matches!(d.source, Source::Node(_)))
                .count()
        })
        .collect();
    let mut successors = vec![Vec::new(); count];
    for (node, deps) in deps.iter().enumerate() {
        for dep in deps {
            if let Source::Node(from) = dep.source {
                successors[from].push(node);
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..count)
        .filter(|&n| waiting[n] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(count);
    while let Some(Reverse(node)) = ready.pop() {
        order.push(node);
        for &succ in &successors[node] {
            waiting[succ] -= 1;
            if waiting[succ] == 0 {
                ready.push(Reverse(succ));
            }
        }
    }
    if order.len() == count {
        Ok(order)
    } else {
        Err(waiting.iter().map(|&w| w > 0).collect())
    }
}

/// Every node left waiting waits for another such node, so walking from
/// one to a waiting dependency must come back to a node already seen.
fn find_cycle<'a>(
    deps: &[Vec<Dep<'a>>],
    stuck: &[bool],
    idents: &[&'a Ident],
    stmt_at: &[usize],
) -> Cycle<'a> {
    let waiting_dep = |node: usize| {
        deps[node].iter().find_map(|dep| match dep.source {
            Source::Node(from) if stuck[from] => Some(from),
            _ => None,
        })
    };
    let mut seen_at = vec![usize::MAX; deps.len()];
    let mut walk = Vec::new();
    let mut node = stuck.iter().position(|&s| s).unwrap_or(0);
    while seen_at[node] == usize::MAX {
        seen_at[node] = walk.len();
        walk.push(node);
        node = waiting_dep(node).unwrap_or(node);
    }
    // The walk went from consumers to dependencies: reverse it into edge
    // order, starting at the node whose statement comes first.
    let mut cycle: Vec<usize> = walk[seen_at[node]..].iter().rev().copied().collect();
    let first = (0..cycle.len())
        .min_by_key(|&i| stmt_at[cycle[i]])
        .unwrap_or(0);
    cycle.rotate_left(first);
    let (head, last) = (cycle[0], cycle[cycle.len() - 1]);
    let closing = deps[head]
        .iter()
        .find(|dep| dep.source == Source::Node(last))
        .map_or(idents[head], |dep| dep.ident);
    cycle.push(head);
    Cycle {
        path: cycle
            .iter()
            .map(|&n| crate::names::name(idents[n]))
            .collect(),
        closing,
    }
}
