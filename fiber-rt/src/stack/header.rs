//! The header kept at the top of every stack, found from any address on the
//! stack by [`arena::top_of`].

use std::cell::Cell;
use std::sync::atomic::AtomicPtr;

use super::arena;

/// Bytes reserved for the header at the top of each stack.
pub(crate) const HEADER_SIZE: usize = std::mem::size_of::<StackHeader>();

/// Per-stack data that code running on the stack finds without a
/// thread-local. One cache line: a spawn writes it, and a second line would
/// be a second miss on a stack last used by another core.
#[repr(C, align(64))]
pub(crate) struct StackHeader {
    /// Owner-defined pointer: the fiber's control block.
    pub(crate) owner: AtomicPtr<()>,
    /// Name of the fiber running on this stack, for messages. Points into
    /// the owner's data and is valid while the owner uses the stack.
    pub(crate) name: Cell<*const str>,
    /// Size of the whole mapping, guard page included.
    pub(crate) size: usize,
    /// Depth of `no_preempt` regions the fiber is in. (The preemption
    /// flag itself is the thread's, see `preempt`: a probe reads no header.)
    pub(crate) no_preempt: Cell<u32>,
    /// Whether the lowest page is a guard page.
    pub(crate) guarded: bool,
    /// The values of the fiber-locals (`fiber_local!`) of the fiber whose
    /// own stack this is, or null: made at the first use, dropped when
    /// the fiber's closure is done (see `local::drop_current`).
    pub(crate) locals: Cell<*mut ()>,
    /// The graph node running on this stack, as its index plus one, or 0:
    /// set by the graph's runner around each node, for messages and dumps.
    pub(crate) node: Cell<u32>,
    /// Where the names of that node's run are (set by the runner for its
    /// run, in which it lives), or null.
    pub(crate) node_names: Cell<*const NodeNames>,
}

/// Where a graph run's node names are, as plain data, so that a signal
/// handler or a dump (which reads memory as a checked copy) can find one
/// without calling into the run.
/// (`pub` but unreachable from outside: the hidden `Plan` trait names it.)
#[repr(C)]
#[derive(Debug)]
pub struct NodeNames {
    /// [`STRIDED`](Self::STRIDED), [`PACKED`](Self::PACKED) or
    /// [`NONE`](Self::NONE).
    pub(crate) kind: usize,
    /// Strided: the address of the first node's `&'static str`. Packed:
    /// the names' bytes, laid end to end.
    pub(crate) first: usize,
    /// Strided: bytes from one node's name to the next's. Packed: the
    /// address of the table of ends (`usize`s; name `i` ends at
    /// `ends[i]` and starts where name `i - 1` ends).
    pub(crate) step: usize,
}

impl NodeNames {
    pub(crate) const NONE: usize = 0;
    pub(crate) const STRIDED: usize = 1;
    pub(crate) const PACKED: usize = 2;

    /// Node `index`'s name, or `None` for a run without names.
    ///
    /// # Safety
    ///
    /// The run these names describe is alive, and `index` is one of its
    /// nodes.
    pub(crate) unsafe fn get(&self, index: u32) -> Option<&str> {
        let index = index as usize;
        match self.kind {
            // SAFETY: the caller's contract: the table is the run's
            // (static) node table, and `index` is in it.
            Self::STRIDED => Some(unsafe { *((self.first + index * self.step) as *const &str) }),
            Self::PACKED => {
                let ends = self.step as *const usize;
                // SAFETY: as above: the run's table of ends, `index` in it,
                // and its names made of whole `&str`s pushed end to end.
                unsafe {
                    let start = if index == 0 { 0 } else { *ends.add(index - 1) };
                    let end = *ends.add(index);
                    let bytes = std::slice::from_raw_parts(
                        (self.first as *const u8).add(start),
                        end - start,
                    );
                    Some(std::str::from_utf8_unchecked(bytes))
                }
            }
            _ => None,
        }
    }
}

const _: () = assert!(HEADER_SIZE == 64, "the header is one cache line");

impl StackHeader {
    /// The header of the stack holding `addr`, if `addr` is in a stack arena.
    ///
    /// The pointer is only meaningful when `addr` lies inside a live stack.
    #[inline(always)]
    pub(crate) fn of_addr(addr: usize) -> Option<*const StackHeader> {
        arena::top_of(addr).map(|top| (top - HEADER_SIZE) as *const StackHeader)
    }

    /// The graph node running on this stack, if any.
    ///
    /// # Safety
    ///
    /// Called on this stack (by code running there, or by a handler of a
    /// signal it caught), so that the run its node belongs to is alive.
    pub(crate) unsafe fn running_node(&self) -> Option<&str> {
        let (node, names) = (self.node.get(), self.node_names.get());
        if node == 0 || names.is_null() {
            return None;
        }
        // SAFETY: set together by the run's runner, which is running on
        // this stack (the caller's contract), so the run is alive.
        unsafe { (*names).get(node - 1) }.filter(|name| !name.is_empty())
    }

    /// The header of the stack the caller runs on, if it runs on a fiber
    /// stack (not a thread's own stack).
    #[inline(always)]
    pub(crate) fn current() -> Option<*const StackHeader> {
        Self::of_addr(current_sp())
    }
}

/// Bytes of the caller's stack in use above its stack pointer (header
/// included), if it runs on a fiber stack.
#[inline(always)]
pub(crate) fn depth_here() -> Option<usize> {
    let sp = current_sp();
    arena::top_of(sp).map(|top| top - sp)
}

/// The caller's stack pointer (any address in its frame will do).
#[inline(always)]
pub(crate) fn current_sp() -> usize {
    let sp: usize;
    // SAFETY: reads rsp; no memory access, no side effects.
    unsafe {
        std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    sp
}
