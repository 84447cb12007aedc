//! The only assembly in fiber: a context switch that keeps just the
//! callee-saved state (see [`KEEPS_FP_CONTROL`] for the floating-point
//! control words), the trampoline a new fiber starts in, and a byte of
//! thread-local storage per thread that fiber-rt uses as its preemption flag.
//!
//! This crate is the thin `unsafe` face of `x86_64.S`. It knows nothing about
//! fibers, schedulers or stacks beyond a stack pointer; `fiber-rt` builds all
//! of that on top.
//!
//! ```text
//!   side A                                   side B (suspended)
//!   switch(&mut a_sp, b_sp, 7) ──────────▶   its own switch(..) returns 7
//!   switch(..) returns 9       ◀──────────   switch(&mut b_sp, a_sp, 9)
//! ```
//!
//! See `x86_64.S` for the stack diagrams and the register contracts.
#![no_std]

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!(
    "fiber supports x86_64 Linux only: its context switch is x86_64 System V assembly \
     and its stacks and preemption use Linux system calls"
);

use core::ptr::NonNull;

// `x86_64.S` keeps the floating-point control words in a switch only when
// this symbol is 1; see the note at its top.
#[cfg(all(target_arch = "x86_64", target_os = "linux", feature = "fp-control"))]
core::arch::global_asm!(".set FIBER_ASM_FP_CONTROL, 1", include_str!("x86_64.S"));
#[cfg(all(
    target_arch = "x86_64",
    target_os = "linux",
    not(feature = "fp-control")
))]
core::arch::global_asm!(".set FIBER_ASM_FP_CONTROL, 0", include_str!("x86_64.S"));

/// Whether a switch keeps the MXCSR control bits and the x87 control word
/// per context (the `fp-control` feature).
///
/// Off by default: Rust assumes both hold the ABI's defaults wherever Rust
/// code runs (changing them is undefined behaviour; see the deprecation of
/// `core::arch::x86_64::_mm_setcsr`), and a switch is always called from
/// Rust code, so keeping them would only ever save and load the defaults,
/// at about 5.5 ns a switch for reading MXCSR alone. Without it the control
/// words belong to the thread: a switch leaves them as they are. Turn it on
/// for foreign code that changes them and then reaches a switch (a C
/// library that sets a rounding mode and calls back into a fiber that
/// parks, say).
pub const KEEPS_FP_CONTROL: bool = cfg!(feature = "fp-control");

/// The stored stack pointer of a suspended context: it points at a switch
/// frame (see the module docs of `x86_64.S`).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackPointer(pub NonNull<u8>);

impl StackPointer {
    /// The address, for diagnostics and frame walking.
    pub fn addr(self) -> usize {
        self.0.as_ptr() as usize
    }
}

/// What a fiber's entry function returns: the context to switch to for good,
/// and the value it receives. Returned in `rax:rdx`.
#[repr(C)]
#[derive(Debug)]
pub struct Exit {
    /// Context to resume; the fiber's own stack is never touched again.
    pub to: StackPointer,
    /// Value that context's switch returns.
    pub value: usize,
}

/// A fiber's entry function: called once, on the fiber's own stack, with the
/// value of the first switch and the data pointer given to [`init_stack`].
pub type EntryFn = unsafe extern "sysv64" fn(value: usize, data: *mut u8) -> Exit;

extern "sysv64" {
    fn fiber_asm_switch(save: *mut StackPointer, load: StackPointer, value: usize) -> usize;
    fn fiber_asm_trampoline();
    fn fiber_asm_call_on_stack(arg: usize, f: OnStackFn, top: *mut u8);
}

/// Size in bytes of the frame [`init_stack`] writes below `top`.
pub const INIT_FRAME_SIZE: usize = 80;

/// Initial MXCSR: all exceptions masked, round to nearest (the ABI's default).
const MXCSR_DEFAULT: u32 = 0x1F80;
/// Initial x87 control word: all exceptions masked, 64-bit precision, nearest.
const X87_CW_DEFAULT: u32 = 0x037F;

/// With [`KEEPS_FP_CONTROL`], sets the calling thread's MXCSR control bits
/// and x87 control word to the ABI's initial values, the state a context
/// starts in on a stack laid out by [`init_stack`]. For code that starts a
/// new context on a stack another one finished on, without a switch:
/// whatever rounding or flush-to-zero mode the finished one left must not
/// carry over. Without it, does nothing: the control words are the
/// thread's, and a new context starts with them as a switch would leave
/// them.
#[inline]
pub fn reset_control_words() {
    if !KEEPS_FP_CONTROL {
        return;
    }
    let mxcsr = MXCSR_DEFAULT;
    let cw = X87_CW_DEFAULT as u16;
    // SAFETY: loads the two control registers from valid locals; the values
    // are the ABI's defaults, which the compiler assumes anyway.
    unsafe {
        core::arch::asm!(
            "ldmxcsr [{mxcsr}]",    // MXCSR control and status bits
            "fldcw [{cw}]",         // x87 control word
            mxcsr = in(reg) &mxcsr,
            cw = in(reg) &cw,
            options(nostack, readonly, preserves_flags),
        )
    };
}

/// Lays out a new stack so that the first [`switch`] to the returned pointer
/// runs `entry(value, data)` on it.
///
/// Should `entry` return, the context named by its [`Exit`] is resumed and
/// this stack is never used again.
///
/// # Safety
///
/// - `top` is 16-byte aligned and the [`INIT_FRAME_SIZE`] bytes below it are
///   writable memory that stays valid, and is used by nothing else, for as
///   long as the context may run; the memory below that is the fiber's stack
///   and must be large enough for what `entry` does.
/// - `entry` must not unwind: a panic must be caught before it returns.
pub unsafe fn init_stack(top: NonNull<u8>, entry: EntryFn, data: *mut u8) -> StackPointer {
    let top = top.as_ptr() as *mut usize;
    debug_assert!(
        (top as usize).is_multiple_of(16),
        "stack top must be 16-byte aligned"
    );
    let words: [usize; 10] = [
        MXCSR_DEFAULT as usize | ((X87_CW_DEFAULT as usize) << 32), // top - 80
        0,                                                          // r15
        0,                                                          // r14
        data as usize,                                              // r13
        entry as *const () as usize,                                // r12
        0,                                                          // rbx
        0,                                                          // rbp
        fiber_asm_trampoline as *const () as usize,                 // return address
        0,                                                          // alignment pad
        0,                                                          // alignment pad
    ];
    // SAFETY: the caller guarantees the 80 bytes below `top` are writable and
    // ours; `top` is aligned, so `top - 10` words is aligned too.
    unsafe {
        let sp = top.sub(words.len());
        core::ptr::copy_nonoverlapping(words.as_ptr(), sp, words.len());
        StackPointer(NonNull::new_unchecked(sp as *mut u8))
    }
}

/// Suspends the current context, storing its stack pointer in `*save`, and
/// resumes the context at `load`, whose own switch returns `value`.
///
/// Returns when something switches back to `*save`, with the value it passed.
///
/// # Safety
///
/// - `load` is a context made by [`init_stack`] or stored by an earlier
///   `switch`, that has not been resumed since, whose stack is still valid.
/// - `save` is valid for a write, and stays valid and untouched by others
///   until the stored context is resumed (or deliberately abandoned).
/// - Whatever runs on the resumed side must keep the contracts of this
///   module: no unwinding across a switch, and a context is resumed at most
///   once per suspension.
#[inline(always)]
pub unsafe fn switch(save: *mut StackPointer, load: StackPointer, value: usize) -> usize {
    // SAFETY: forwarded from the caller's contract; the assembly keeps every
    // callee-saved register, as an ordinary `sysv64` call must.
    unsafe { fiber_asm_switch(save, load, value) }
}

/// A function that [`call_on_stack`] runs on another stack.
pub type OnStackFn = unsafe extern "sysv64" fn(arg: usize);

/// Calls `f(arg)` with the stack pointer at `top`, on another stack, and
/// returns once `f` has returned. No context is made: `f` runs as part of
/// the caller, which may be a fiber that switches away while `f` runs (its
/// switch frame then lies on the new stack, and it may be resumed on
/// another thread). Debuggers and unwinders walk from `f`'s frames back
/// onto the caller's stack.
///
/// # Safety
///
/// - `top` is 16-byte aligned, and the memory below it is writable, used
///   by nothing else until `f` returns, and large enough for what `f` does.
/// - `f` must not unwind: a panic must be caught before it returns.
#[inline]
pub unsafe fn call_on_stack(arg: usize, f: OnStackFn, top: NonNull<u8>) {
    debug_assert!(
        (top.as_ptr() as usize).is_multiple_of(16),
        "stack top must be 16-byte aligned"
    );
    // SAFETY: forwarded from the caller's contract; the assembly keeps every
    // callee-saved register and returns on the caller's own stack.
    unsafe { fiber_asm_call_on_stack(arg, f, top.as_ptr()) }
}

/// The calling thread's preemption flag: non-zero when fiber-rt's monitor
/// asked the fiber running on this thread to yield; 0 on threads it never
/// looked at.
///
/// Two instructions with no call: the flag's offset from the thread
/// pointer (an immediate, once the linker has relaxed the GOT load in an
/// executable), then the byte at that offset in `fs`. Not `pure`: every
/// call reads the flag afresh, so a loop cannot keep one reading, and code
/// that moved to another thread (a fiber resumed elsewhere) reads its new
/// thread's flag.
#[inline(always)]
pub fn preempt_flag() -> u8 {
    let flag: u64;
    // SAFETY: reads one byte of the calling thread's static TLS block,
    // which exists as long as the thread; `fs` is its thread pointer.
    unsafe {
        core::arch::asm!(
            "mov {f}, qword ptr [rip + fiber_asm_preempt_flag@gottpoff]",
            "movzx {f:e}, byte ptr fs:[{f}]",
            f = out(reg) flag,
            options(nostack, readonly, preserves_flags)
        )
    };
    flag as u8
}

/// The offset from the thread pointer of the static-TLS symbol named by the
/// literal: the same in every thread, so the block is `pure` (it may stay
/// in a register across a loop, and across a switch to another thread).
macro_rules! tls_offset {
    ($symbol:literal) => {{
        let offset: usize;
        // The GOT entry is written by the loader before any code runs (in
        // an executable the linker turns the load into an immediate).
        // SAFETY: reads that constant; nothing Rust can reach aliases it,
        // hence `nomem`.
        unsafe {
            core::arch::asm!(
                concat!("mov {o}, qword ptr [rip + ", $symbol, "@gottpoff]"),
                o = out(reg) offset,
                options(pure, nomem, nostack, preserves_flags)
            )
        };
        offset
    }};
}

/// Calls `on_request` if the calling thread's preemption flag is set: the
/// probe [`preempt_flag`] feeds, in one compare and branch.
///
/// The flag's offset from the thread pointer is the same in every thread
/// (static TLS), so it is computed by a `pure` instruction the compiler may
/// keep in a register across a loop; the byte itself is read from `fs`
/// afresh at every call, so code that moved to another thread reads its
/// new thread's flag. The branch is `asm goto`: the compare sets the flags
/// and jumps to `on_request`'s block, with no register for the byte read.
#[inline(always)]
pub fn if_preempt_requested<F: FnOnce()>(on_request: F) {
    let offset = tls_offset!("fiber_asm_preempt_flag");
    // SAFETY: reads one byte of the calling thread's static TLS block,
    // which exists as long as the thread; `fs` is its thread pointer.
    unsafe {
        core::arch::asm!(
            "cmp byte ptr fs:[{o}], 0",
            "jne {requested}",
            o = in(reg) offset,
            requested = label { on_request() },
            options(nostack, readonly)
        )
    };
}

/// How many bytes [`thread_flag`] and [`set_thread_flag`] reach.
pub const THREAD_FLAGS: usize = 2;

/// The offset of the calling thread's flag bytes from the thread pointer.
#[inline(always)]
fn thread_flags_offset() -> usize {
    tls_offset!("fiber_asm_thread_flags")
}

/// Byte `I` of the calling thread's flags: two bytes of static TLS, zero
/// in a new thread, that fiber-rt keeps for its own bookkeeping. One
/// instruction (and the offset), no call: a fiber that moved to another
/// thread reads its new thread's byte.
#[inline(always)]
pub fn thread_flag<const I: usize>() -> u8 {
    const { assert!(I < THREAD_FLAGS, "no such thread flag") };
    let value: u32;
    // SAFETY: reads byte `I` of the symbol's two bytes in this thread's
    // static TLS block, which lives as long as the thread.
    unsafe {
        core::arch::asm!(
            "movzx {v:e}, byte ptr fs:[{o} + {i}]",
            o = in(reg) thread_flags_offset(),
            i = const I,
            v = out(reg) value,
            options(nostack, readonly, preserves_flags)
        )
    };
    value as u8
}

/// Sets byte `I` of the calling thread's flags (see [`thread_flag`]). Not
/// reordered with the caller's other memory accesses: the compiler takes
/// the store for one that may touch any memory.
#[inline(always)]
pub fn set_thread_flag<const I: usize>(value: u8) {
    const { assert!(I < THREAD_FLAGS, "no such thread flag") };
    // SAFETY: writes byte `I` of the symbol's two bytes in this thread's
    // static TLS block, which only this thread (and its signal handlers)
    // reads.
    unsafe {
        core::arch::asm!(
            "mov byte ptr fs:[{o} + {i}], {v}",
            o = in(reg) thread_flags_offset(),
            i = const I,
            v = in(reg_byte) value,
            options(nostack, preserves_flags)
        )
    };
}

/// The address of the calling thread's preemption flag, for another
/// thread to set it. Valid while the thread's static TLS block is, that is
/// until the thread has ended and been joined.
#[inline]
pub fn preempt_flag_addr() -> *mut u8 {
    let addr: usize;
    // SAFETY: `fs:[0]` holds the thread pointer itself (the x86_64 TLS
    // ABI); adding the flag's offset gives its address. Reads only.
    unsafe {
        core::arch::asm!(
            "mov {a}, qword ptr [rip + fiber_asm_preempt_flag@gottpoff]",
            "add {a}, qword ptr fs:[0]",
            a = out(reg) addr,
            options(nostack, readonly)
        )
    };
    addr as *mut u8
}
