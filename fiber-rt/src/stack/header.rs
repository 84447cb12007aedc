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
