//! Graphviz output shared by static graphs and graphs built at run time.

use std::fmt::Write;

/// What the renderer needs to know about one node.
pub(crate) struct Node<'a> {
    pub name: &'a str,
    pub cost: u32,
    pub rank: u64,
    pub successors: &'a [u32],
}

/// Renders a graph: nodes are `n0`, `n1`, .. labelled with their names,
/// run-time inputs are ellipses `in0`, `in1`, ..
pub(crate) fn render<'a>(
    graph: &str,
    nodes: impl Iterator<Item = Node<'a>>,
    inputs: impl Iterator<Item = (&'a str, &'a [u32])>,
) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "digraph \"{}\" {{", escape(graph));
    out.push_str("    rankdir=LR;\n    node [shape=box, style=rounded];\n");
    for (i, (name, consumers)) in inputs.enumerate() {
        let _ = writeln!(
            out,
            "    in{i} [label=\"{}\", shape=ellipse];",
            escape(name)
        );
        for consumer in consumers {
            let _ = writeln!(out, "    in{i} -> n{consumer};");
        }
    }
    for (i, node) in nodes.enumerate() {
        let _ = writeln!(
            out,
            "    n{i} [label=\"{}\", tooltip=\"cost {}, rank {}\"];",
            escape(node.name),
            node.cost,
            node.rank
        );
        for succ in node.successors {
            let _ = writeln!(out, "    n{i} -> n{succ};");
        }
    }
    out.push_str("}\n");
    out
}

/// Escapes a name for a double-quoted `dot` string.
fn escape(name: &str) -> String {
    name.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nodes_edges_and_inputs() {
        let nodes = [
            Node {
                name: "load",
                cost: 1,
                rank: 2,
                successors: &[1],
            },
            Node {
                name: "say \"hi\"",
                cost: 1,
                rank: 1,
                successors: &[],
            },
        ];
        let dot = render("G", nodes.into_iter(), [("path", &[0u32][..])].into_iter());
        assert!(dot.starts_with("digraph \"G\" {\n"), "{dot}");
        assert!(
            dot.contains("in0 [label=\"path\", shape=ellipse];\n    in0 -> n0;"),
            "{dot}"
        );
        assert!(dot.contains("n0 -> n1;"), "{dot}");
        assert!(dot.contains("label=\"say \\\"hi\\\"\""), "{dot}");
        assert!(dot.ends_with("}\n"));
    }
}
