//! The run's shared FIFO of ready nodes: the sources beyond those handed
//! straight to the first runners, and nodes queued by tasks without a lane.
//!
//! Little traffic goes through it, so it is a locked `VecDeque`, which
//! costs nothing to make (a lock-free queue allocates a block of slots for
//! every run), with a length that thieves read without the lock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

#[derive(Default)]
pub(crate) struct SharedQueue {
    nodes: Mutex<VecDeque<u32>>,
    /// `nodes.len()`, kept up to date under the lock.
    len: AtomicUsize,
}

impl SharedQueue {
    pub(crate) fn push(&self, node: u32) {
        let mut nodes = self.lock();
        nodes.push_back(node);
        self.publish(&nodes);
    }

    /// Queues `nodes` in their order, under one lock: a run may start
    /// with hundreds of thousands of sources.
    pub(crate) fn extend(&self, nodes: &[u32]) {
        if nodes.is_empty() {
            return;
        }
        let mut queue = self.lock();
        queue.extend(nodes);
        self.publish(&queue);
    }

    /// Takes the oldest node.
    pub(crate) fn steal(&self) -> Option<u32> {
        self.steal_batch(|_| unreachable!("a batch of none"), 0)
    }

    /// Takes the oldest node, and hands up to `batch` of the next ones (at
    /// most half of what is left) to `more`, which runs under the queue's
    /// lock and so must not touch this queue.
    pub(crate) fn steal_batch(&self, more: impl FnMut(u32), batch: usize) -> Option<u32> {
        if self.is_empty() {
            return None;
        }
        let mut nodes = self.lock();
        let first = nodes.pop_front();
        let taken = (nodes.len() / 2).min(batch);
        nodes.drain(..taken).for_each(more);
        self.publish(&nodes);
        first
    }

    pub(crate) fn is_empty(&self) -> bool {
        // Relaxed: a caller that needs this ordered against a push (a
        // retiring runner) puts a SeqCst fence before it, and the pusher
        // one after its push.
        self.len.load(Ordering::Relaxed) == 0
    }

    fn publish(&self, nodes: &VecDeque<u32>) {
        // Relaxed: see `is_empty`; the lock orders the nodes themselves.
        self.len.store(nodes.len(), Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<u32>> {
        // A panic never happens under this lock; the queue is whole anyway.
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    //! Sources queued at once come out in the order they went in, oldest
    //! first, and thieves see them counted.

    use super::SharedQueue;

    #[test]
    fn extended_nodes_come_out_in_their_order_and_are_counted() {
        let queue = SharedQueue::default();
        queue.extend(&[]);
        assert!(queue.is_empty());
        queue.push(7);
        queue.extend(&[3, 9, 1]);
        assert!(!queue.is_empty());
        let mut batch = Vec::new();
        // The oldest, then at most half of the rest.
        assert_eq!(queue.steal_batch(|node| batch.push(node), 8), Some(7));
        assert_eq!(batch, [3]);
        assert_eq!(queue.steal(), Some(9));
        assert_eq!(queue.steal(), Some(1));
        assert!(queue.is_empty());
        assert_eq!(queue.steal(), None);
    }
}
