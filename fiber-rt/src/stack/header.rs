//! The header kept at the top of every stack, found from any address on the
//! stack by [`arena::top_of`](super::arena::top_of).

use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, AtomicU32};

use super::arena;

/// Bytes reserved for the header at the top of each stack.
pub(crate) const HEADER_SIZE: usize = std::mem::size_of::<StackHeader>();

/// Per-stack data that code running on the stack finds without a
/// thread-local.
#[repr(C, align(64))]
pub(crate) struct StackHeader {
    /// The preemption flag of the worker running the fiber on this stack
    /// (non-zero: yield at the next probe), or [`NEVER`] when no worker
    /// runs it. The flag itself lives in the worker, so the monitor only
    /// ever writes to memory that lives as long as the runtime; a probe
    /// reads this pointer, then the flag: two loads, both hot in cache.
    pub(crate) preempt_flag: AtomicPtr<AtomicU32>,
    /// Depth of `no_preempt` regions the fiber is in.
    pub(crate) no_preempt: Cell<u32>,
    pub(crate) _probe_line: [u8; 52],
    /// Size of the whole mapping, guard page included.
    pub(crate) size: usize,
    /// Whether the lowest page is a guard page.
    pub(crate) guarded: bool,
    /// Name of the fiber running on this stack, for messages. Points into
    /// the owner's data and is valid while the owner uses the stack.
    pub(crate) name: Cell<*const str>,
    /// Owner-defined pointer: the fiber's control block.
    pub(crate) owner: AtomicPtr<()>,
}

const _: () = assert!(HEADER_SIZE == 128, "the header is two cache lines");

/// The flag of a stack no worker runs: never set.
pub(crate) static NEVER: AtomicU32 = AtomicU32::new(0);

/// The flag of a fiber the preemption backstop detached from its worker:
/// always set, so the fiber rejoins the runtime at its next probe.
pub(crate) static ALWAYS: AtomicU32 = AtomicU32::new(1);

/// [`ALWAYS`] as the header stores it.
pub(crate) fn always() -> *mut AtomicU32 {
    std::ptr::addr_of!(ALWAYS).cast_mut()
}

/// [`NEVER`] as the header stores it.
pub(crate) fn never() -> *mut AtomicU32 {
    std::ptr::addr_of!(NEVER).cast_mut()
}

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
