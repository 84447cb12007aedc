//! Turning a fault in a fiber stack's guard page into the message std gives
//! for threads, instead of a bare SIGSEGV:
//!
//! ```text
//! fiber 'parser' has overflowed its stack (256 KiB)
//! fatal runtime error: stack overflow, aborting
//! ```
//!
//! The handler runs on an alternate signal stack (the faulting stack has no
//! room left). Faults that are not in one of our guard pages go to whatever
//! handler was installed before ours (std's own overflow handler, a
//! sanitizer's, or the default action).
//!
//! A fiber stack also overflows when a signal whose handler runs on the
//! interrupted stack (one installed without `SA_ONSTACK`) arrives with too
//! little room left above the guard page for the frame the kernel pushes.
//! Nothing faults in user code then: the kernel drops that signal and
//! sends a SIGSEGV of its own, with no address. Handed on, that SIGSEGV
//! would reset the handlers to the default action and return, and the
//! fiber would go on with its signal lost and no overflow reported, ever
//! again. It is reported as the overflow it is.

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

use super::arena;
use super::header::StackHeader;

/// Handlers that were installed before ours, indexed by [`slot`].
static mut PREVIOUS: [MaybeUninit<libc::sigaction>; 2] = [MaybeUninit::zeroed(); 2];
/// Set once the matching PREVIOUS is written.
static READY: [AtomicBool; 2] = [const { AtomicBool::new(false) }; 2];
static INSTALL: Once = Once::new();

/// Size of the alternate signal stacks we create for threads that lack one.
const ALT_STACK_SIZE: usize = 64 * 1024;

/// Bytes below the interrupted stack pointer the kernel needs to push a
/// signal frame: the red zone it skips, and the frame itself (its size
/// depends on the CPU's extended state; the kernel tells it since Linux
/// 5.14, `AT_MINSIGSTKSZ`). Set by [`install`].
static FRAME_ROOM: AtomicUsize = AtomicUsize::new(0);
/// What [`FRAME_ROOM`] is before it is set, and where the kernel does not
/// tell the frame's size: room for a frame with AVX-512 state.
const FRAME_ROOM_DEFAULT: usize = 128 + 4096;
/// The red zone below the stack pointer that the kernel leaves alone when
/// it pushes a signal frame.
const RED_ZONE: usize = 128;
/// The trap number of a general-protection fault, which also comes as a
/// SIGSEGV from the kernel with no address.
const TRAP_GP: libc::greg_t = 13;

fn slot(sig: libc::c_int) -> usize {
    usize::from(sig == libc::SIGBUS)
}

/// Installs the SIGSEGV/SIGBUS handler once per process and makes sure the
/// calling thread has an alternate signal stack. Cheap after the first call
/// on a thread.
pub(crate) fn ensure_handler() {
    INSTALL.call_once(install);
    thread_local!(static HAS_ALT: Cell<bool> = const { Cell::new(false) });
    if !HAS_ALT.get() {
        ensure_alt_stack();
        HAS_ALT.set(true);
    }
}

fn install() {
    // SAFETY: getauxval has no preconditions; 0 means not told.
    let frame = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize;
    if frame != 0 {
        // Relaxed: read by the handler installed just below; one that
        // misses it (on another thread, in the moment between) uses the
        // default, which is as large.
        FRAME_ROOM.store(RED_ZONE + frame, Ordering::Relaxed);
    }
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: a valid, zero-initialised action; PREVIOUS[slot] is
        // written once, here, and read only after `wait_written` on its
        // READY flag.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let previous = ptr::addr_of_mut!(PREVIOUS[slot(sig)]).cast::<libc::sigaction>();
            super::chain::install(sig, &action, previous, &READY[slot(sig)]);
        }
    }
}

/// std gives its own threads an alternate signal stack; threads made some
/// other way may have none, and a handler for a stack overflow cannot run on
/// the overflowed stack.
fn ensure_alt_stack() {
    // SAFETY: queries the current alternate stack into a zeroed struct.
    let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: a null new stack only queries.
    unsafe { libc::sigaltstack(ptr::null(), &mut current) };
    if current.ss_flags & libc::SS_DISABLE == 0 {
        return;
    }
    // SAFETY: a fresh anonymous mapping; kept for the life of the thread
    // (a few tens of KiB, once per thread that runs fibers and lacked one).
    let mem = unsafe {
        libc::mmap(
            ptr::null_mut(),
            ALT_STACK_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        return; // without it, an overflow ends in a plain SIGSEGV
    }
    let stack = libc::stack_t {
        ss_sp: mem,
        ss_flags: 0,
        ss_size: ALT_STACK_SIZE,
    };
    // SAFETY: `stack` describes the mapping above, which is never freed.
    unsafe { libc::sigaltstack(&stack, ptr::null_mut()) };
}

/// If `addr` is in the guard page of one of our stacks, that stack's header.
fn guard_hit(addr: usize) -> Option<*const StackHeader> {
    let k = arena::class_of(addr)?;
    let base = addr & !((1usize << k) - 1);
    if addr >= base + arena::page_size() {
        return None;
    }
    StackHeader::of_addr(addr)
}

/// If this SIGSEGV is the kernel's own, sent because a signal frame did
/// not fit on the guarded fiber stack the thread was running on (see the
/// module's docs), that stack's header.
fn frame_did_not_fit(
    sig: libc::c_int,
    info: *const libc::siginfo_t,
    ctx: *const libc::c_void,
) -> Option<*const StackHeader> {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    if sig != libc::SIGSEGV || ctx.is_null() || unsafe { (*info).si_code } != libc::SI_KERNEL {
        return None;
    }
    // SAFETY: for SA_SIGINFO handlers the third argument is the
    // interrupted context, a `ucontext_t`.
    let regs = unsafe { &(*ctx.cast::<libc::ucontext_t>()).uc_mcontext.gregs };
    if regs[libc::REG_TRAPNO as usize] == TRAP_GP {
        return None; // a general-protection fault: not about room
    }
    let sp = regs[libc::REG_RSP as usize] as usize;
    let k = arena::class_of(sp)?;
    let lowest = (sp & !((1usize << k) - 1)) + arena::page_size();
    // Relaxed: see `install`.
    let room = match FRAME_ROOM.load(Ordering::Relaxed) {
        0 => FRAME_ROOM_DEFAULT,
        room => room,
    };
    // A stack pointer in the guard page itself counts too: nothing more
    // fits there.
    if sp >= lowest + room {
        return None;
    }
    StackHeader::of_addr(sp)
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(header) = guard_hit(addr).or_else(|| frame_did_not_fit(sig, info, ctx)) {
        // A fault in our guard page, or a frame that did not fit on the
        // stack the thread was running on.
        // SAFETY: that stack is mapped, its header set, its names in the
        // owner's data (and the run's plan), alive while it runs.
        let (name, owner, node, size, guarded) = unsafe {
            (
                &*(*header).name.get(),
                (*header).owner.load(std::sync::atomic::Ordering::Relaxed),
                (*header).running_node().unwrap_or_default(),
                (*header).size,
                (*header).guarded,
            )
        };
        // SAFETY: the owner of a stack its fiber runs on is null or that
        // fiber's live task. (Relaxed above: stored by this thread, or
        // before the fiber moved to it.)
        let id = unsafe { crate::sched::task::Task::id_of_owner(owner) };
        if guarded {
            report_overflow(name, id, node, size);
        }
    }
    // Not ours: hand the fault on.
    super::chain::wait_written(&READY[slot(sig)]);
    // SAFETY: PREVIOUS[slot] is written (see `wait_written`), and never
    // again.
    let previous = unsafe { *ptr::addr_of!(PREVIOUS[slot(sig)]).cast::<libc::sigaction>() };
    if !super::chain::call_previous(&previous, sig, info, ctx) {
        // Restore the default action and return: the faulting instruction
        // runs again and the process dies of the signal, as it would have.
        // SAFETY: resetting a signal to its default is always allowed.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// Prints the overflow message with async-signal-safe calls only, then
/// aborts. An unnamed fiber is named by its id, as in its `JoinError`.
fn report_overflow(name: &str, id: Option<u64>, node: &str, size: usize) -> ! {
    let mut buf = [0u8; 512];
    let mut w = Writer {
        buf: &mut buf,
        len: 0,
    };
    w.put(b"\nfiber '");
    match id {
        _ if !name.is_empty() => w.put(name.as_bytes()),
        Some(id) => {
            w.put(b"fiber-");
            w.num(id as usize);
        }
        None => w.put(b"<unnamed>"),
    }
    w.put(b"'");
    if !node.is_empty() {
        w.put(b", running graph node '");
        w.put(node.as_bytes());
        w.put(b"',");
    }
    w.put(b" has overflowed its stack (");
    let (n, unit): (usize, &[u8]) = match size {
        s if s >= 1 << 30 => (s >> 30, b" GiB"),
        s if s >= 1 << 20 => (s >> 20, b" MiB"),
        s => (s >> 10, b" KiB"),
    };
    w.num(n);
    w.put(unit);
    w.put(b")\nfatal runtime error: stack overflow, aborting\n");
    // SAFETY: write(2) and abort(3) are async-signal-safe; `buf` is ours.
    unsafe {
        libc::write(2, w.buf.as_ptr().cast(), w.len);
        libc::abort()
    }
}

/// A tiny formatter into a fixed buffer: no allocation in a signal handler.
struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn num(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }
}
