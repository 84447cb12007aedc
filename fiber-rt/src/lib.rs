//! fiber-rt: stackful fibers on their own stacks, switched by a few lines of
//! assembly.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod fiber;
pub mod stack;

pub use fiber_macros::fiber;
