//! The node table of a `depends!` graph: constant data, computed while the
//! program compiles, that the executor walks without allocating.

use super::dot;

/// One node of a graph's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    /// Display name: `#[fiber(name = "..")]`, else the function's name.
    pub name: &'static str,
    /// The function's name, which is also its field in the outputs struct.
    pub field: &'static str,
    /// Cost hint from `#[fiber(cost = ..)]` (1 when not given).
    pub cost: u32,
    /// Stack size from `#[fiber(stack = ..)]` in bytes, 0 for the runtime's default.
    pub stack_size: usize,
    /// How many fibers this one waits for.
    pub in_degree: u32,
    /// Indices of the fibers that wait for this one, highest `rank` first.
    pub successors: &'static [u32],
    /// Critical-path rank: this node's cost plus the largest rank among its
    /// successors, i.e. the cost of the longest path from here to a sink.
    /// Ready nodes with a higher rank are started first.
    pub rank: u64,
}

/// A run-time input of a graph (`graph Name(input: T) { .. }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputInfo {
    /// The input's name, which is also its field in the graph struct.
    pub name: &'static str,
    /// Indices of the fibers that read it.
    pub consumers: &'static [u32],
}

/// The node table of a `depends!` graph, available as `Name::TABLE`.
///
/// `nodes` is in a topological order: every node comes after all the nodes
/// it depends on, so walking it front to back is a valid sequential run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// The graph's name.
    pub graph: &'static str,
    /// Every node, in topological order.
    pub nodes: &'static [NodeInfo],
    /// Indices of the nodes that depend on nothing, highest rank first.
    pub sources: &'static [u32],
    /// The graph's run-time inputs.
    pub inputs: &'static [InputInfo],
}

impl Table {
    /// The node called `name` (display name or field name) and its index.
    pub fn node(&self, name: &str) -> Option<(usize, &'static NodeInfo)> {
        self.nodes
            .iter()
            .enumerate()
            .find(|(_, node)| node.name == name || node.field == name)
    }

    /// The nodes that `node` waits for, as indices.
    pub fn dependencies(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        let node = node as u32;
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(_, n)| n.successors.contains(&node))
            .map(|(i, _)| i)
    }

    /// The longest chain of nodes by cost, from a source to a sink: the
    /// least time any schedule needs with unbounded workers.
    pub fn critical_path(&self) -> Vec<&'static str> {
        let mut path = Vec::new();
        let mut next = self.sources.first().copied();
        while let Some(index) = next {
            let node = &self.nodes[index as usize];
            path.push(node.name);
            // Successors are sorted by rank, so the first one continues the path.
            next = node.successors.first().copied();
        }
        path
    }

    /// The graph in Graphviz `dot` syntax.
    pub fn dot(&self) -> String {
        let nodes = self.nodes.iter().map(|n| dot::Node {
            name: n.name,
            cost: n.cost,
            rank: n.rank,
            successors: n.successors,
        });
        let inputs = self.inputs.iter().map(|i| (i.name, i.consumers));
        dot::render(self.graph, nodes, inputs)
    }
}

/// Critical-path ranks of nodes given in topological order, with their
/// successors in compressed rows (`successors[starts[i]..starts[i + 1]]`).
pub const fn ranks<const N: usize>(
    costs: [u64; N],
    starts: &[u32],
    successors: &[u32],
) -> [u64; N] {
    let mut rank = [0u64; N];
    let mut i = N;
    // Successors come later in a topological order, so a backward walk sees
    // every successor's rank before the node's own.
    while i > 0 {
        i -= 1;
        let mut longest = 0;
        let mut e = starts[i] as usize;
        while e < starts[i + 1] as usize {
            let succ = rank[successors[e] as usize];
            if succ > longest {
                longest = succ;
            }
            e += 1;
        }
        rank[i] = costs[i].saturating_add(longest);
    }
    rank
}

/// Sorts each row of `successors` (rows as in [`ranks`]) by rank, highest
/// first; equal ranks keep their order.
pub const fn sort_rows<const E: usize>(
    mut successors: [u32; E],
    starts: &[u32],
    rank: &[u64],
) -> [u32; E] {
    let mut row = 0;
    while row + 1 < starts.len() {
        let (start, end) = (starts[row] as usize, starts[row + 1] as usize);
        // Insertion sort: rows are short, and it is stable and const.
        let mut i = start + 1;
        while i < end {
            let mut j = i;
            while j > start && rank[successors[j - 1] as usize] < rank[successors[j] as usize] {
                let swap = successors[j - 1];
                successors[j - 1] = successors[j];
                successors[j] = swap;
                j -= 1;
            }
            i += 1;
        }
        row += 1;
    }
    successors
}

/// Row `row` of a compressed-row array, as a `'static` slice.
pub const fn row(all: &'static [u32], starts: &[u32], row: usize) -> &'static [u32] {
    let (head, _) = all.split_at(starts[row + 1] as usize);
    let (_, row) = head.split_at(starts[row] as usize);
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    // 0 -> 1, 0 -> 2, 1 -> 3, 2 -> 3, with 2 the expensive branch.
    const STARTS: [u32; 5] = [0, 2, 3, 4, 4];
    const SUCC: [u32; 4] = [1, 2, 3, 3];
    const RANK: [u64; 4] = ranks([1, 1, 10, 1], &STARTS, &SUCC);
    const SORTED: [u32; 4] = sort_rows(SUCC, &STARTS, &RANK);

    #[test]
    fn ranks_follow_the_longest_path() {
        assert_eq!(RANK, [12, 2, 11, 1]);
    }

    #[test]
    fn rows_put_the_highest_rank_first() {
        assert_eq!(SORTED, [2, 1, 3, 3]);
        assert_eq!(row(&SORTED, &STARTS, 0), &[2, 1]);
        assert_eq!(row(&SORTED, &STARTS, 3), &[] as &[u32]);
    }

    #[test]
    fn table_queries() {
        const NODES: &[NodeInfo] = &[
            NodeInfo {
                name: "a",
                field: "a",
                cost: 1,
                stack_size: 0,
                in_degree: 0,
                successors: &[2, 1],
                rank: 12,
            },
            NodeInfo {
                name: "b",
                field: "b",
                cost: 1,
                stack_size: 0,
                in_degree: 1,
                successors: &[3],
                rank: 2,
            },
            NodeInfo {
                name: "heavy",
                field: "c",
                cost: 10,
                stack_size: 0,
                in_degree: 1,
                successors: &[3],
                rank: 11,
            },
            NodeInfo {
                name: "d",
                field: "d",
                cost: 1,
                stack_size: 0,
                in_degree: 2,
                successors: &[],
                rank: 1,
            },
        ];
        let table = Table {
            graph: "G",
            nodes: NODES,
            sources: &[0],
            inputs: &[],
        };
        assert_eq!(table.critical_path(), ["a", "heavy", "d"]);
        assert_eq!(
            table.node("c").map(|(i, n)| (i, n.name)),
            Some((2, "heavy"))
        );
        assert_eq!(table.dependencies(3).collect::<Vec<_>>(), [1, 2]);
    }
}
