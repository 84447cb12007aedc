//! The trace of one graph run, from
//! [`Runtime::run_traced`](crate::Runtime::run_traced): when each node ran
//! and where, as data, as a Chrome/Perfetto trace file, as an SVG Gantt
//! chart ([`svg`](super::svg)) and as Graphviz text with the measured times.

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::Duration;

/// The trace of one graph run.
#[derive(Clone, Debug)]
pub struct Trace {
    graph: String,
    nodes: Vec<NodeTrace>,
    wall: Duration,
}

/// One node of a traced run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeTrace {
    /// The node's display name.
    pub name: String,
    /// Indices of the nodes that waited for this one.
    pub successors: Vec<usize>,
    /// When and where it ran; `None` if it was skipped (a dependency failed).
    pub span: Option<Span>,
}

/// When and where a node ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Span {
    /// Since the run started.
    pub start: Duration,
    /// Since the run started.
    pub end: Duration,
    /// The worker it started on (`None` outside a worker).
    pub worker: Option<usize>,
    /// Times it was preempted (yielded at a probe when asked to).
    pub preemptions: u32,
}

impl Span {
    /// How long the node ran, preemptions included.
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

impl Trace {
    pub(crate) fn new(graph: String, nodes: Vec<NodeTrace>, wall: Duration) -> Trace {
        Trace { graph, nodes, wall }
    }

    /// The graph's name.
    pub fn graph(&self) -> &str {
        &self.graph
    }

    /// Every node, indexed like the graph's nodes.
    pub fn nodes(&self) -> &[NodeTrace] {
        &self.nodes
    }

    /// From the start of the run to its end.
    pub fn wall_time(&self) -> Duration {
        self.wall
    }

    /// The number of workers that ran nodes: one past the highest index.
    pub fn workers(&self) -> usize {
        self.nodes
            .iter()
            .filter_map(|n| n.span?.worker)
            .max()
            .map_or(0, |w| w + 1)
    }

    /// The chain of nodes, from a source to a sink, whose measured run
    /// times add up to the most: what bounded this run. Node indices.
    pub fn critical_path(&self) -> Vec<usize> {
        let n = self.nodes.len();
        let weight = |i: usize| self.nodes[i].span.map_or(Duration::ZERO, |s| s.duration());
        // Longest path ending at each node, over a topological order.
        let mut in_degree = vec![0usize; n];
        for node in &self.nodes {
            for &s in &node.successors {
                in_degree[s] += 1;
            }
        }
        let mut order: Vec<usize> = (0..n).filter(|&i| in_degree[i] == 0).collect();
        let mut next = 0;
        while next < order.len() {
            let i = order[next];
            next += 1;
            for &s in &self.nodes[i].successors {
                in_degree[s] -= 1;
                if in_degree[s] == 0 {
                    order.push(s);
                }
            }
        }
        let mut best = vec![Duration::ZERO; n];
        let mut from: Vec<Option<usize>> = vec![None; n];
        for &i in &order {
            best[i] += weight(i);
            for &s in &self.nodes[i].successors {
                // Before any predecessor is seen, `best[s]` is zero.
                if from[s].is_none() || best[i] > best[s] {
                    best[s] = best[i];
                    from[s] = Some(i);
                }
            }
        }
        let Some(mut at) = (0..n).max_by_key(|&i| best[i]) else {
            return Vec::new();
        };
        let mut path = vec![at];
        while let Some(prev) = from[at] {
            path.push(prev);
            at = prev;
        }
        path.reverse();
        path
    }

    /// The Chrome trace event format: one complete (`"ph": "X"`) event per
    /// node that ran, `ts`/`dur` in microseconds, `tid` = worker, plus a
    /// name for each worker's row. Opens in <https://ui.perfetto.dev> and
    /// `chrome://tracing`.
    pub fn to_chrome_json(&self) -> String {
        let critical = self.critical_path();
        let mut out = String::from("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
        let mut first = true;
        let mut sep = |out: &mut String| {
            if !std::mem::take(&mut first) {
                out.push_str(",\n");
            }
        };
        for worker in 0..self.workers() {
            sep(&mut out);
            // Writing to a String cannot fail.
            let _ = write!(
                out,
                "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{worker},\"args\":{{\"name\":\"worker {worker}\"}}}}"
            );
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let Some(span) = node.span else { continue };
            sep(&mut out);
            let _ = write!(
                out,
                "{{\"name\":{},\"cat\":\"node\",\"ph\":\"X\",\"ts\":{:.3},\"dur\":{:.3},\"pid\":1,\"tid\":{},\"args\":{{\"node\":{i},\"preemptions\":{},\"critical\":{}}}}}",
                json_string(&node.name),
                span.start.as_nanos() as f64 / 1000.0,
                span.duration().as_nanos() as f64 / 1000.0,
                span.worker.map_or(-1, |w| w as i64),
                span.preemptions,
                critical.contains(&i),
            );
        }
        out.push_str("\n]}\n");
        out
    }

    /// Writes [`to_chrome_json`](Self::to_chrome_json) to `path`.
    pub fn write_chrome_json(&self, path: impl AsRef<Path>) -> io::Result<()> {
        std::fs::write(path, self.to_chrome_json())
    }

    /// Writes [`to_svg`](Self::to_svg) to `path`.
    pub fn write_svg(&self, path: impl AsRef<Path>) -> io::Result<()> {
        std::fs::write(path, self.to_svg())
    }

    /// Graphviz text of the graph with each node's measured time in its
    /// label; the measured critical path is drawn in red.
    pub fn dot(&self) -> String {
        let critical = self.critical_path();
        let on_path = |i: usize| critical.contains(&i);
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", json_string(&self.graph));
        out.push_str("    rankdir=LR;\n    node [shape=box, style=rounded];\n");
        for (i, node) in self.nodes.iter().enumerate() {
            let time = node
                .span
                .map_or_else(|| "skipped".to_owned(), |s| human(s.duration()));
            let style = if on_path(i) {
                ", color=red, penwidth=2"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    n{i} [label={}{style}];",
                json_string(&format!("{}\n{time}", node.name))
            );
            for &s in &node.successors {
                let style = if on_path(i) && on_path(s) {
                    " [color=red, penwidth=2]"
                } else {
                    ""
                };
                let _ = writeln!(out, "    n{i} -> n{s}{style};");
            }
        }
        out.push_str("}\n");
        out
    }
}

/// A double-quoted string, escaped for JSON (and for Graphviz, whose
/// quoted strings accept the same escapes for `"`, `\` and newlines).
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `850us`, `12.3ms`, `1.20s`.
pub(crate) fn human(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{}us", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{:.1}ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, successors: &[usize], start_ms: u64, end_ms: u64) -> NodeTrace {
        NodeTrace {
            name: name.to_owned(),
            successors: successors.to_vec(),
            span: Some(Span {
                start: Duration::from_millis(start_ms),
                end: Duration::from_millis(end_ms),
                worker: Some(0),
                preemptions: 0,
            }),
        }
    }

    #[test]
    fn critical_path_follows_measured_times() {
        // a -> {b (long), c (short)} -> d
        let trace = Trace::new(
            "G".into(),
            vec![
                node("a", &[1, 2], 0, 1),
                node("b", &[3], 1, 9),
                node("c", &[3], 1, 3),
                node("d", &[], 9, 10),
            ],
            Duration::from_millis(10),
        );
        assert_eq!(trace.critical_path(), vec![0, 1, 3]);
        let dot = trace.dot();
        assert!(dot.contains("n1 [label=\"b\\n8.0ms\", color=red"), "{dot}");
        assert!(dot.contains("n0 -> n2;"), "{dot}");
        assert!(dot.contains("n1 -> n3 [color=red"), "{dot}");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
