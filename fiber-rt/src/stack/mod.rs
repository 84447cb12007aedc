//! Fiber stacks: mmap'd, a `PROT_NONE` guard page at the low end, sizes a
//! power of two aligned to their size, a header at the top, and pooled so
//! that a reused stack costs no system call.
//!
//! ```text
//!   top ─▶ +--------------------+
//!          | StackHeader (64B)  |  found from any rsp on the stack by masking
//!          +--------------------+ ◀─ usable top (16-byte aligned)
//!          |   grows downwards  |
//!          |         ...        |
//!          +--------------------+
//!          | guard page (none)  |  a fault here is reported as an overflow
//!   base ─▶+--------------------+  aligned to the size
//! ```

pub(crate) mod arena;
pub(crate) mod chain;
pub(crate) mod header;
pub(crate) mod overflow;
mod pool;

use std::fmt;
use std::io;
use std::ptr::NonNull;

use header::HEADER_SIZE;
pub(crate) use header::{depth_here, StackHeader};
pub use pool::{pool_stats, PoolStats};
pub(crate) use pool::{trim_idle, untrimmed, TRIM_PERIOD};

/// Default stack size: 256 KiB (of address space; only touched pages cost memory).
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;
/// Smallest stack size.
pub const MIN_STACK_SIZE: usize = 1 << arena::MIN_SHIFT;
/// Largest stack size.
pub const MAX_STACK_SIZE: usize = 1 << arena::MAX_SHIFT;

/// An owned fiber stack. Dropping it returns it to the pool.
pub struct Stack {
    base: usize,
    kind: StackKind,
}

impl Stack {
    /// A stack of at least `size` bytes (rounded up to a power of two, at
    /// least [`MIN_STACK_SIZE`]) with a guard page, from the pool when one is
    /// free.
    pub fn new(size: usize) -> io::Result<Stack> {
        Self::with_guard(size, true)
    }

    /// Like [`Stack::new`]; `guard: false` gives a stack without a guard page,
    /// which takes one memory mapping instead of two (so millions fit under
    /// `vm.max_map_count`) but turns an overflow into silent corruption.
    pub fn with_guard(size: usize, guard: bool) -> io::Result<Stack> {
        StackKind::new(size, guard)?.take()
    }

    fn map(kind: StackKind) -> io::Result<Stack> {
        let base = arena::map(kind.shift())?;
        if kind.guarded {
            if let Err(e) = arena::protect_guard(base, kind.size()) {
                // Not as a `Stack`, whose drop would pool it as guarded.
                // SAFETY: mapped just above, and nothing uses it.
                unsafe { arena::unmap(base, kind.shift()) };
                return Err(e);
            }
        }
        let stack = Stack { base, kind };
        let header = stack.header_ptr().cast_mut();
        // SAFETY: the header lies in the fresh read-write mapping we own;
        // nothing else refers to it yet.
        unsafe {
            header.write(StackHeader {
                no_preempt: std::cell::Cell::new(0),
                size: stack.size(),
                guarded: kind.guarded,
                name: std::cell::Cell::new("" as *const str),
                owner: Default::default(),
                locals: std::cell::Cell::new(std::ptr::null_mut()),
                node: std::cell::Cell::new(0),
                node_names: std::cell::Cell::new(std::ptr::null()),
            })
        };
        Ok(stack)
    }

    fn reset_header(&self) {
        let h = self.header();
        // Relaxed: the stack is owned by this thread alone; handing it to
        // another (through the pool's locks or a queue) orders these stores.
        h.no_preempt.set(0);
        h.owner
            .store(std::ptr::null_mut(), std::sync::atomic::Ordering::Relaxed);
        h.name.set("" as *const str);
        h.node.set(0);
        h.node_names.set(std::ptr::null());
        debug_assert!(h.locals.get().is_null(), "a fiber's locals outlived it");
    }

    /// Size of the mapping, guard page and header included.
    pub fn size(&self) -> usize {
        self.kind.size()
    }

    /// Bytes a fiber can use: the size less the guard page and the header.
    pub fn usable_size(&self) -> usize {
        self.kind.usable_size()
    }

    /// Whether the lowest page is a guard page.
    pub fn is_guarded(&self) -> bool {
        self.kind.guarded
    }

    /// Highest usable address (exclusive), 64-byte aligned: the header sits
    /// just above it.
    pub(crate) fn top(&self) -> NonNull<u8> {
        let top = self.base + self.size() - HEADER_SIZE;
        // SAFETY: inside a live mapping, so never null.
        unsafe { NonNull::new_unchecked(top as *mut u8) }
    }

    fn header_ptr(&self) -> *const StackHeader {
        (self.base + self.size() - HEADER_SIZE) as *const StackHeader
    }

    /// The header at the top of this stack.
    pub(crate) fn header(&self) -> &StackHeader {
        // SAFETY: written when the stack was mapped and never unmapped while
        // `self` lives.
        unsafe { &*self.header_ptr() }
    }

    /// Sets the name printed if a fiber overflows this stack.
    ///
    /// # Safety
    ///
    /// `name` stays valid until the stack is dropped or named again.
    pub(crate) unsafe fn set_name(&self, name: *const str) {
        self.header().name.set(name);
    }
}

/// What a stack will be, checked, before one is taken: its size class and
/// whether it has a guard page. A fiber keeps this until its first run,
/// where the worker that runs it takes the stack from its own cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StackKind {
    shift: u8,
    guarded: bool,
}

impl StackKind {
    /// The kind of stack [`Stack::with_guard`] would give for `size`, or
    /// the error it would give for a size too large.
    pub(crate) fn new(size: usize, guard: bool) -> io::Result<StackKind> {
        Ok(StackKind {
            shift: size_shift(size)? as u8,
            guarded: guard,
        })
    }

    /// A stack of this kind: pooled (the one this thread gave back last,
    /// warm in its cache) when the pool has one, else freshly mapped.
    #[inline]
    pub(crate) fn take(self) -> io::Result<Stack> {
        match pool::take(self.shift(), self.guarded) {
            // A pooled stack's header was reset when it was given back.
            Some(base) => Ok(Stack { base, kind: self }),
            None => self.map(),
        }
    }

    /// A freshly mapped stack of this kind. If the mapping fails for want
    /// of room (the class's arena full, or the process's mappings used up)
    /// while idle stacks of the class wait in the pool (the other kind's,
    /// with or without a guard page), those are unmapped and the mapping
    /// is tried once more.
    #[cold]
    #[inline(never)]
    fn map(self) -> io::Result<Stack> {
        Stack::map(self).or_else(|err| {
            if err.kind() == io::ErrorKind::OutOfMemory && pool::release_idle(self.shift()) {
                Stack::map(self)
            } else {
                Err(err)
            }
        })
    }

    /// log2 of the size: the size class.
    fn shift(self) -> u32 {
        u32::from(self.shift)
    }

    /// Size of the mapping, guard page and header included.
    pub(crate) fn size(self) -> usize {
        1 << self.shift
    }

    /// Bytes a fiber can use on such a stack (see [`Stack::usable_size`]).
    pub(crate) fn usable_size(self) -> usize {
        self.size() - HEADER_SIZE - if self.guarded { arena::page_size() } else { 0 }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.reset_header();
        if !pool::give(self.base, self.kind.shift(), self.kind.guarded) {
            // SAFETY: the pool declined it and we own the mapping.
            unsafe { arena::unmap(self.base, self.kind.shift()) };
        }
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("base", &format_args!("{:#x}", self.base))
            .field("size", &format_args!("{}", arena::human(self.size())))
            .field("guarded", &self.kind.guarded)
            .finish()
    }
}

// SAFETY: a `Stack` is plain owned memory; the header's `Cell` is only
// touched by whoever owns the stack (or the fiber running on it).
unsafe impl Send for Stack {}

/// log2 of the size actually used for a request of `size` bytes.
fn size_shift(size: usize) -> io::Result<u32> {
    if size > MAX_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a fiber stack of {} is larger than the largest supported, {}",
                arena::human(size),
                arena::human(MAX_STACK_SIZE)
            ),
        ));
    }
    let size = size.max(MIN_STACK_SIZE).next_power_of_two();
    Ok(size.trailing_zeros())
}
