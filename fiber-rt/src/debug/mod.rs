//! Seeing inside a runtime: fiber dumps with backtraces, traces of graph
//! runs drawn as pictures, and the counters of
//! [`Runtime::metrics`](crate::Runtime::metrics).
//!
//! # Fiber dumps
//!
//! [`Runtime::dump`](crate::Runtime::dump) lists every live fiber: id,
//! name, state (running on worker N, ready, parked on what, sleeping until
//! when, finished), age, and for a fiber that is off its stack a
//! symbolized backtrace. With
//! [`Builder::dump_on_sigquit`](crate::Builder::dump_on_sigquit), `kill
//! -QUIT <pid>` (or Ctrl-\ in a terminal) prints the same report to stderr.
//! The report leaves out the runtime's own frames (parking, the spawn
//! wrapper); format it with `{:#}` for every frame, or read
//! [`FiberInfo::backtrace`], which has them all.
//!
//! Backtraces come from walking the frame-pointer chain of the context a
//! fiber saved when it switched away, and names from the executable's
//! symbol table. So a build needs frame pointers
//! (`RUSTFLAGS="-C force-frame-pointers=yes"`, or in `.cargo/config.toml`:
//! `[build] rustflags = ["-C", "force-frame-pointers=yes"]`) and an
//! unstripped binary (the default for Cargo profiles; `strip = true`
//! leaves only addresses). Functions that were inlined show as their
//! caller: mark one `#[inline(never)]` to see it on its own.
//!
//! # Run traces
//!
//! [`Runtime::run_traced`](crate::Runtime::run_traced) runs a graph like
//! [`Runtime::run`](crate::Runtime::run) and also returns a [`Trace`]: per
//! node, start, end, worker and preemptions. Write it as a Chrome/Perfetto
//! trace ([`Trace::write_chrome_json`]), draw it as an SVG Gantt chart with
//! the critical path in red ([`Trace::write_svg`]), or as Graphviz text
//! with the measured times ([`Trace::dot`]).

pub(crate) mod clock;
mod demangle;
mod dump;
mod frames;
mod memory;
pub(crate) mod recorder;
pub(crate) mod sigquit;
mod svg;
mod symbols;
mod trace;

pub use dump::{Dump, FiberInfo, FiberState, Frame};
pub use symbols::Symbol;
pub use trace::{NodeTrace, Span, Trace};

pub(crate) use dump::take as take_dump;
