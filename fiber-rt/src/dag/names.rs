//! The node names of a run-time graph, kept in one buffer: a graph of a
//! million nodes frees its names at once instead of looking at each.

use std::fmt;

/// Names in node order.
#[derive(Default)]
pub(super) struct Names {
    text: String,
    /// Where each name ends in `text`; it starts where the one before ends.
    ends: Vec<usize>,
}

impl Names {
    /// Room for `count` names before the table of their ends grows.
    pub(super) fn with_capacity(count: usize) -> Self {
        Names {
            text: String::new(),
            ends: super::huge::with_capacity(count),
        }
    }

    pub(super) fn push(&mut self, name: &str) {
        self.text.push_str(name);
        super::huge::push(&mut self.ends, self.text.len());
    }

    /// Node `node`'s name.
    pub(super) fn get(&self, node: usize) -> &str {
        let start = node.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.text[start..self.ends[node]]
    }

    /// Where the names are, as plain data (they stay there until the
    /// names are dropped or pushed to).
    pub(super) fn node_names(&self) -> crate::stack::header::NodeNames {
        crate::stack::header::NodeNames {
            kind: crate::stack::header::NodeNames::PACKED,
            first: self.text.as_ptr() as usize,
            step: self.ends.as_ptr() as usize,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

impl fmt::Debug for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries((0..self.len()).map(|node| self.get(node)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Names;

    #[test]
    fn names_come_back_in_order_empty_ones_too() {
        let mut names = Names::default();
        for name in ["load", "", "parse ü", "x"] {
            names.push(name);
        }
        assert_eq!(names.len(), 4);
        let back: Vec<_> = (0..names.len()).map(|n| names.get(n)).collect();
        assert_eq!(back, ["load", "", "parse ü", "x"]);
        assert_eq!(format!("{names:?}"), r#"["load", "", "parse ü", "x"]"#);
    }
}
