//! Backtraces of fibers that are off their stacks, read by walking the
//! frame-pointer chain from the context they saved when they switched away.
//!
//! What `fiber_asm_switch` leaves at the saved stack pointer (see the
//! diagram in `asm/src/x86_64.S`):
//!
//! ```text
//!   sp + 56  return address into the function that switched away
//!   sp + 48  its rbp: the head of the frame-pointer chain
//!   sp + 40  rbx, then r12-r15 below it
//!   sp +  0  the slot for MXCSR and the x87 control word
//! ```
//!
//! From there each frame holds `[rbp]` = the caller's rbp and `[rbp + 8]` =
//! the return address into the caller. The chain ends at the rbp of 0 that
//! a new fiber's stack starts with (see `fiber_asm::init_stack`); a walk
//! also stops at a misaligned rbp, one that does not move up the stack, or
//! one outside the fiber's stack, so a stack that changes under the walk
//! (its fiber was woken meanwhile) gives a short backtrace, never a crash:
//! every read is a checked copy ([`memory`](super::memory)).

use super::memory::read_word;
use crate::stack::arena;
use crate::stack::header::{StackHeader, HEADER_SIZE};

/// Where the switched-away function's rbp is saved, from the saved sp.
const SAVED_RBP: usize = 48;
/// Where the return address into it is, from the saved sp.
const SAVED_RETURN: usize = 56;
/// A backtrace deeper than this is cut (and most likely a broken chain).
pub(crate) const MAX_FRAMES: usize = 128;

/// The return addresses of a fiber suspended with its context saved at
/// `saved_sp`, innermost first: the first is in the function that
/// switched away, the next in its caller, and so on.
pub(crate) fn walk(saved_sp: usize) -> Vec<usize> {
    let mut frames = Vec::new();
    let Some(top) = arena::top_of(saved_sp) else {
        return frames;
    };
    let header = top - HEADER_SIZE;
    // The stack's own extent, from its header: the lowest address a frame
    // may be at is the saved sp itself, the highest is below the header.
    let size = read_word(header + std::mem::offset_of!(StackHeader, size)).unwrap_or(0);
    if size == 0 || top - size > saved_sp {
        return frames;
    }
    let inside = |addr: usize| addr >= saved_sp && addr.saturating_add(16) <= header;
    let (Some(ret), Some(mut rbp)) = (
        read_word(saved_sp + SAVED_RETURN),
        read_word(saved_sp + SAVED_RBP),
    ) else {
        return frames;
    };
    if ret == 0 {
        return frames;
    }
    frames.push(ret);
    let mut floor = saved_sp + SAVED_RETURN;
    while frames.len() < MAX_FRAMES {
        if rbp == 0 || rbp % 8 != 0 || rbp < floor || !inside(rbp) {
            break;
        }
        let (Some(caller_rbp), Some(ret)) = (read_word(rbp), read_word(rbp + 8)) else {
            break;
        };
        if ret == 0 {
            break;
        }
        frames.push(ret);
        // The next frame must be strictly above this one: no loops.
        floor = rbp + 16;
        rbp = caller_rbp;
    }
    frames
}
