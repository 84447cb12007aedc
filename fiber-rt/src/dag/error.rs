//! What a failed run reports: which fibers failed, how, and what was skipped.

use std::any::Any;
use std::error::Error;
use std::fmt;

/// How one fiber of a graph failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The fiber panicked; the message is the panic's.
    Panicked,
    /// The fiber returned `Err`; the message is the error's `Display` (or
    /// `Debug` when it has no `Display`).
    Returned,
    /// The fiber never ran: whatever was running the graph dropped its
    /// task (a runtime shutting down), or the runner it was handed to was
    /// cancelled before it could run it.
    Dropped,
    /// The fiber was cancelled while it ran: its runtime shut down, or a
    /// handle to the fiber running it cancelled it (which abandons the
    /// run, see [`GraphError`]).
    Cancelled,
}

/// One fiber that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFailure {
    /// The fiber's name, as in the node table.
    pub node: String,
    /// How it failed.
    pub kind: FailureKind,
    /// The panic message or the error text.
    pub message: String,
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = &self.node;
        match self.kind {
            FailureKind::Panicked => write!(f, "fiber `{node}` panicked: {}", self.message),
            FailureKind::Returned => {
                write!(f, "fiber `{node}` returned an error: {}", self.message)
            }
            FailureKind::Dropped => write!(f, "fiber `{node}` never ran: {}", self.message),
            FailureKind::Cancelled => {
                write!(f, "fiber `{node}` was cancelled: {}", self.message)
            }
        }
    }
}

/// A graph run that did not complete: at least one fiber failed.
///
/// Every fiber that does not depend on a failed one still ran to the end;
/// the dependents of a failed fiber (directly or not) were skipped. (Unless
/// the run was abandoned: a fiber running it was cancelled, and every
/// fiber not started by then was skipped too.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    failures: Vec<NodeFailure>,
    skipped: usize,
    /// The names of some of the skipped fibers, in node-table order.
    skipped_names: Vec<String>,
}

impl GraphError {
    pub(crate) fn new(
        failures: Vec<NodeFailure>,
        skipped: usize,
        skipped_names: Vec<String>,
    ) -> Self {
        GraphError {
            failures,
            skipped,
            skipped_names,
        }
    }

    /// The fibers that failed, in node-table order.
    pub fn failures(&self) -> &[NodeFailure] {
        &self.failures
    }

    /// The first failed fiber's name.
    pub fn node(&self) -> Option<&str> {
        self.failures.first().map(|failure| failure.node.as_str())
    }

    /// How many fibers were skipped because something they depend on
    /// failed (panicked, returned `Err`, was cancelled, or never ran), or
    /// because the run was abandoned.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The names of the fibers [`skipped`](Self::skipped) counts (of the
    /// first 64 skipped, in a large graph), in node-table order (a graph
    /// built at run time: in the order added).
    pub fn skipped_nodes(&self) -> impl ExactSizeIterator<Item = &str> {
        self.skipped_names.iter().map(String::as_str)
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.failures.as_slice() {
            [] => f.write_str("graph run failed")?,
            [one] => write!(f, "{one}")?,
            many => {
                write!(f, "{} fibers failed: ", many.len())?;
                for (i, failure) in many.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{failure}")?;
                }
            }
        }
        match self.skipped {
            0 => Ok(()),
            1 => f.write_str(" (1 dependent fiber skipped)"),
            n => write!(f, " ({n} dependent fibers skipped)"),
        }
    }
}

impl Error for GraphError {}

/// Why one node's body did not produce an output. Made by the code that
/// `#[fiber]` generates when the function returns `Err`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub(crate) message: String,
}

impl Failure {
    /// A failure carrying the error's text.
    pub fn error(message: String) -> Self {
        Failure { message }
    }
}

/// The text of a panic payload: `panic!` gives a `&str` or a `String`.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    crate::fiber::panic_message(payload)
        .unwrap_or("(a panic payload that is not a string)")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(node: &str, kind: FailureKind, message: &str) -> NodeFailure {
        NodeFailure {
            node: node.into(),
            kind,
            message: message.into(),
        }
    }

    #[test]
    fn one_failure_reads_as_a_sentence() {
        let err = GraphError::new(
            vec![failure("load", FailureKind::Returned, "no such file")],
            2,
            vec!["parse".into(), "report".into()],
        );
        assert_eq!(
            err.to_string(),
            "fiber `load` returned an error: no such file (2 dependent fibers skipped)"
        );
        assert_eq!(err.node(), Some("load"));
    }

    #[test]
    fn several_failures_are_all_named() {
        let err = GraphError::new(
            vec![
                failure("a", FailureKind::Panicked, "boom"),
                failure("b", FailureKind::Dropped, "shut down"),
            ],
            0,
            Vec::new(),
        );
        assert_eq!(
            err.to_string(),
            "2 fibers failed: fiber `a` panicked: boom; fiber `b` never ran: shut down"
        );
    }

    #[test]
    fn panic_payloads_become_text() {
        assert_eq!(panic_message(&"static"), "static");
        assert_eq!(panic_message(&String::from("owned")), "owned");
        assert!(panic_message(&7u8).contains("not a string"));
    }
}
