//! Dependency graphs of fibers: checked and laid out at compile time by
//! `depends!`, or built at run time with [`GraphBuilder`].
//!
//! # Declaring a graph
//!
//! ```
//! use fiber_rt::{depends, fiber};
//!
//! #[fiber]
//! fn load() -> Vec<u64> { (1..=1000).collect() }
//! #[fiber]
//! fn sum(xs: &[u64]) -> u64 { xs.iter().sum() }
//! #[fiber]
//! fn max(xs: &[u64]) -> u64 { xs.iter().copied().max().unwrap_or(0) }
//! #[fiber]
//! fn report(total: &u64, top: &u64) -> String { format!("sum={total} max={top}") }
//!
//! depends! {
//!     /// Summary statistics over a loaded data set.
//!     pub graph Stats {
//!         sum(load);
//!         max(load);
//!         report(sum, max);
//!     }
//! }
//!
//! // Any spawner runs it; a runtime runs each node as a fiber.
//! let out = fiber_rt::dag::run_with(Stats, |task| task.run()).unwrap();
//! assert_eq!(out.report, "sum=500500 max=1000");
//! assert_eq!(out.sum, 500500);
//! assert_eq!(Stats::TABLE.nodes[0].name, "load");
//! ```
//!
//! `report(sum, max)` says: `report` runs after `sum` and `max`, and is
//! called with their outputs, in that order. Every name is a `#[fiber]`
//! function in scope (a `use` brings one in from another module), or one of
//! the graph's inputs. A name that only ever appears as a dependency (`load`
//! above) is a source: it takes no inputs. A fiber that nothing depends on
//! and that depends on nothing is listed on its own, as `tick();`.
//!
//! # `#[fiber]`
//!
//! The function stays an ordinary function, callable as before (with a
//! preemption probe, [`preempt::point`](crate::preempt::point), at its entry
//! and at the top of each `loop` and `while` body; a no-op outside a
//! runtime). Beside it the attribute emits a braced struct of the same name (it lives in the
//! type namespace, so the two do not clash) that a graph refers to. Options:
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `name = "text"` | name in the node table, in `dot()` and in errors | the function's name |
//! | `stack = 65536` or `stack = "64 KiB"` | stack size for the fiber (`KiB`, `MiB`, `K`, `M`) | the runtime's |
//! | `cost = 10` | cost hint for scheduling (see *ranks* below) | 1 |
//! | `fallible` / `fallible = false` | whether the return type is a `Result` to unwrap | see below |
//! | `crate = "path::to::fiber_rt"` | where the generated code finds this crate, for a crate that reaches it through a re-export or under another name (on a graph: `#[depends(crate = "..")]`) | `::fiber_rt` |
//!
//! **Parameters** are `&T` (borrow the dependency's output; any number of
//! fibers may borrow the same output) or `T` (take it by value: allowed only
//! when that dependency has exactly one consumer, or `T` is `Copy`, checked
//! at compile time). A `Vec<T>` output can also be borrowed as `&[T]`, and
//! a `String` as `&str`; a `&'static T` parameter takes a `&'static T`
//! output by value.
//! Any irrefutable pattern works, since the function is called as written.
//! A fiber cannot be `async`, `unsafe`, generic (lifetimes and `where`
//! clauses included), take `impl Trait` or `self`, take `&mut T`, or
//! return `impl Trait` or a borrow. It is a free function: in an `impl`
//! block the struct the attribute emits has no place (rustc's errors
//! there are about that struct), so call an associated function from a
//! free one instead. Its output type is named in a public trait's impl for
//! the node struct, which has the function's visibility, so rustc asks the
//! type to be at least that visible (`pub(crate) struct Secret` for a
//! `pub(crate)` fiber).
//!
//! For the same reason (the parameter and output types are named in that
//! impl, where nothing may be elided) a lifetime hidden in a path must be
//! written out: `&Cow<'_, str>` or `Cow<'static, str>`, not `Cow<str>`,
//! which rustc refuses as a missing lifetime specifier. A macro cannot
//! tell that a type has a lifetime parameter when none is written.
//!
//! **Fallible fibers**: when the return type's last path segment is
//! `Result` (`Result<T, E>`, `io::Result<T>`, `anyhow::Result<T>`), the
//! fiber is fallible: dependents receive the `T`, and an `Err` fails the
//! node; the run's [`GraphError`] names the fiber and shows the error's
//! `Display` text (its `Debug` when it has no `Display`, its type name when
//! it has neither). Write `#[fiber(fallible = false)]` to hand the `Result` itself
//! on as a value, or `#[fiber(fallible)]` for a `Result` behind another
//! alias name.
//!
//! **Fibers that never return** (`-> !`: a server loop, or a fiber that
//! always panics) output [`Infallible`](std::convert::Infallible), the
//! stable type with no values: a dependent may name it (`&Infallible`),
//! and never runs, since the fiber never produces it.
//!
//! # Inputs
//!
//! A graph can take values at run time:
//!
//! ```
//! # use fiber_rt::{depends, fiber};
//! #[fiber]
//! fn total(xs: &[u64]) -> u64 { xs.iter().sum() }
//! #[fiber]
//! fn scaled(total: &u64, factor: &u64) -> u64 { total * factor }
//!
//! depends! {
//!     pub graph Scale(xs: Vec<u64>, factor: u64) {
//!         total(xs);
//!         scaled(total, factor);
//!     }
//! }
//!
//! let run = |xs, factor| fiber_rt::dag::run_with(Scale::new(xs, factor), |t| t.run()).unwrap().scaled;
//! assert_eq!(run(vec![1, 2, 3], 10), 60);
//! assert_eq!(run(vec![5], 2), 10);
//! ```
//!
//! The graph is then a struct with a public field per input (`Scale { xs,
//! factor }`, or `Scale::new(xs, factor)`); without inputs it is a unit
//! struct. Attributes written on the graph (doc comments, `#[derive(..)]`)
//! go on that struct, with the graph's visibility. Running consumes the
//! value, so one graph type serves many runs.
//! Inputs follow the same rules as outputs (`&T` to borrow, `T` to take
//! when a single fiber reads it) and are not part of the outputs.
//!
//! # Outputs
//!
//! A successful run gives `NameOutputs` (`StatsOutputs` above): a struct
//! with a public field per fiber, named after the function. The one
//! exception is an output that its only consumer took by value: it no
//! longer exists, and its field has the type [`Moved`], which says so.
//! The struct is also `<Name as Graph>::Outputs`. (Its field types are
//! written in terms of each fiber's node, so rustdoc shows them as
//! projections; the docs on each field name the fiber.)
//!
//! The graph's struct and `NameOutputs` are items of the module the
//! graph is declared in: a type of either name there is an error on the
//! graph's name (and for `NameOutputs`, the graph's code then reads the
//! other type, so rustc also finds its fields missing).
//!
//! A graph with a compile error keeps its struct, constructor, `TABLE`,
//! `NODES` and `dot()`, so code using them adds no errors; but it does not
//! implement [`Graph`], so a call that runs it adds one of its own.
//!
//! # The node table
//!
//! `depends!` computes the table at compile time and stores it in static
//! memory: `Name::TABLE` ([`Table`]) has every node's name, cost, stack
//! size, in-degree, successors and critical-path rank, in a topological
//! order; `Name::NODES` is its node list, `Name::dot()` its Graphviz text.
//! A node's *rank* is its cost plus the largest rank among its successors
//! (the cost of the longest path from it to the end). When a node finishes,
//! the highest-ranked successor that became ready runs next on the same
//! worker and the others are queued in rank order.
//!
//! # Compile-time checks
//!
//! Each is an error with a span on the offending token: a cycle (the message
//! lists it, `cycle: a -> b -> a`), a fiber depending on itself, a fiber
//! listed twice, a dependency listed twice, a name that is not a `#[fiber]`,
//! the wrong number of dependencies, an output whose type does not fit the
//! parameter, a `T` parameter (not `Copy`) fed by an output with several
//! consumers, an
//! empty graph, an unused input, an input named like a fiber, a path where
//! a bare name belongs, and outputs that cannot cross threads
//! (nodes run on any worker: every output must be `Send`, and a borrowed
//! one also `Sync`).
//!
//! # Failures
//!
//! A fiber that panics or returns `Err` fails the run: every fiber that
//! depends on it (directly or not) is skipped, every other one still runs,
//! and the [`GraphError`] names each failed fiber with its panic message or
//! error text. No failure leaves a run hanging (a node that waits for
//! something that never comes does: a channel whose sender the run holds
//! as an output; see the book's chapter on errors). A run-time input goes
//! as soon as the last fiber reading it is done with it.
//!
//! # Graphs built at run time
//!
//! [`GraphBuilder`] takes closures as nodes and edges between them, and
//! [`GraphBuilder::build`] returns [`CycleError`] naming a cycle. The result
//! is a [`DynGraph`] that runs on the same executor.
//!
//! # Running
//!
//! A runtime runs a graph with [`start`], handing it a callback that runs a
//! [`Task`] (on a fiber) and one that receives the result;
//! [`run_with`] does the same and blocks for the result, with any spawner.
//! `Runtime::run` and `fiber_rt::run` called from a fiber of the runtime
//! also run nodes on that fiber, which would otherwise only wait: on its
//! own stack if enough of it is left for what the nodes ask, on a stack
//! borrowed from the pool otherwise.

mod builder;
mod dot;
mod end;
pub(crate) mod error;
pub(crate) mod exec;
pub(crate) mod graph;
mod huge;
mod job;
mod lanes;
mod names;
mod shared_queue;
pub(crate) mod slot;
pub(crate) mod table;

pub use builder::{CycleError, DynGraph, GraphBuilder, NodeId};
pub use error::{FailureKind, GraphError, NodeFailure};
pub use exec::{run_with, start, Done, Spawn, Task};
pub use graph::Graph;
pub use table::{InputInfo, NodeInfo, Table};

/// The field of an output that its only consumer took by value: the value
/// now lives on in that consumer's output. Take `&T` in the consumer to
/// keep the value in the outputs instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Moved;

#[cfg(test)]
mod lanes_tests;
