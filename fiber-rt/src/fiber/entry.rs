//! The two sides of a [`Fiber`](super::Fiber) switch, and the function a
//! fiber starts in.
//!
//! Values cross a switch by pointer: each resume passes the address of a
//! [`Transfer`] on the resumer's stack; the fiber takes the input out of it
//! and puts its outcome in before switching back.

use std::any::Any;
use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;

use fiber_asm::{Exit, StackPointer};

use super::Suspender;
use crate::stack::Stack;

/// What a resume hands to the fiber.
pub(super) enum Message<I> {
    Resume(I),
    /// The fiber is being dropped: unwind its stack and finish.
    Unwind,
}

/// What the fiber hands back.
pub(super) enum Outcome<Y, R> {
    Yielded(Y),
    Complete(R),
    Panicked(Box<dyn Any + Send>),
    /// Finished by [`Message::Unwind`].
    Unwound,
}

/// One exchange, on the resumer's stack.
pub(super) struct Transfer<I, Y, R> {
    input: Option<Message<I>>,
    output: Option<Outcome<Y, R>>,
}

impl<I, Y, R> Transfer<I, Y, R> {
    pub(super) fn new(input: Message<I>) -> Self {
        Transfer {
            input: Some(input),
            output: None,
        }
    }
}

/// The panic payload that unwinds a fiber being dropped.
struct ForcedUnwind;

/// State shared by the resumer and the fiber, at the top of the fiber's stack.
pub(super) struct Control<I, Y, R> {
    /// Where the resumer is suspended while the fiber runs.
    parent_sp: Cell<Option<StackPointer>>,
    /// Where the fiber is suspended while the resumer runs.
    fiber_sp: Cell<Option<StackPointer>>,
    /// The current resume's exchange.
    transfer: Cell<*mut Transfer<I, Y, R>>,
    /// Set once a drop has started unwinding the fiber.
    unwinding: Cell<bool>,
}

/// The control block and the closure it starts, laid out together.
#[repr(C)]
struct Block<I, Y, R, F> {
    control: Control<I, Y, R>, // first: a `*mut Block` is a `*mut Control`
    func: Cell<Option<F>>,
    _types: PhantomData<fn(I) -> (Y, R)>,
}

impl<I, Y, R> Control<I, Y, R> {
    /// Moves `f` to the top of `stack` and lays out the stack so the first
    /// switch runs it.
    #[inline]
    pub(super) fn install<F>(stack: &Stack, f: F) -> io::Result<NonNull<Self>>
    where
        F: FnOnce(&Suspender<I, Y, R>, I) -> R,
    {
        let top = stack.top().as_ptr() as usize;
        let need = std::mem::size_of::<Block<I, Y, R, F>>();
        let align = std::mem::align_of::<Block<I, Y, R, F>>().max(16);
        // The block starts up to `align - 1` bytes below `top - need`: a
        // closure aligned to more than its size leaves that much unused.
        if need + align + fiber_asm::INIT_FRAME_SIZE + 4096 > stack.usable_size() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the fiber's closure ({need} bytes) does not fit its stack ({} usable)",
                    stack.usable_size()
                ),
            ));
        }
        let at = (top - need) & !(align - 1);
        let block = at as *mut Block<I, Y, R, F>;
        // SAFETY: `[at, top)` lies in the stack's usable range (at most
        // `need + align` bytes, checked above, with room below for the
        // first frame), is aligned for `Block`, and nothing else uses it.
        unsafe {
            block.write(Block {
                control: Control {
                    parent_sp: Cell::new(None),
                    fiber_sp: Cell::new(None),
                    transfer: Cell::new(std::ptr::null_mut()),
                    unwinding: Cell::new(false),
                },
                func: Cell::new(Some(f)),
                _types: PhantomData,
            })
        };
        // SAFETY: `at` is 16-aligned with the stack's memory below it; the
        // entry is monomorphised for this very block type and never unwinds.
        let sp = unsafe {
            fiber_asm::init_stack(
                NonNull::new_unchecked(at as *mut u8),
                start::<I, Y, R, F>,
                block.cast(),
            )
        };
        // SAFETY: just written above.
        let control = unsafe { &(*block).control };
        control.fiber_sp.set(Some(sp));
        Ok(NonNull::from(control))
    }

    /// Resumer side: runs the fiber until it switches back.
    ///
    /// # Safety
    ///
    /// The fiber is live and suspended (or not started), and this is called
    /// from outside it.
    #[inline]
    pub(super) unsafe fn switch_in(&self, transfer: &mut Transfer<I, Y, R>) -> Outcome<Y, R> {
        let target = self
            .fiber_sp
            .take()
            .expect("a suspended fiber has a saved context");
        // SAFETY: `target` is the fiber's saved context, resumed once; the
        // resumer's context is saved in `parent_sp`, which the fiber uses to
        // come back. `Option<StackPointer>` has the layout of a pointer.
        unsafe {
            fiber_asm::switch(
                self.parent_sp.as_ptr().cast(),
                target,
                transfer as *mut Transfer<I, Y, R> as usize,
            )
        };
        transfer
            .output
            .take()
            .expect("a fiber always leaves an outcome before switching back")
    }

    /// Fiber side: hands `value` out and waits for the next input.
    ///
    /// # Safety
    ///
    /// Called on the fiber's own stack while it runs.
    #[inline]
    pub(super) unsafe fn switch_out(&self, value: Y) -> I {
        if self.unwinding.get() {
            // The closure caught our unwind and tried to go on: unwind again.
            panic::resume_unwind(Box::new(ForcedUnwind));
        }
        // SAFETY: the transfer of the resume that is waiting for us.
        unsafe { (*self.transfer.get()).output = Some(Outcome::Yielded(value)) };
        let parent = self.parent_sp.get().expect("a running fiber has a resumer");
        // SAFETY: the resumer's saved context; ours goes to `fiber_sp`.
        let next = unsafe { fiber_asm::switch(self.fiber_sp.as_ptr().cast(), parent, 0) };
        self.receive(next as *mut Transfer<I, Y, R>)
    }

    /// Takes the input out of the transfer a resume passed in.
    #[inline]
    fn receive(&self, transfer: *mut Transfer<I, Y, R>) -> I {
        self.transfer.set(transfer);
        // SAFETY: the resumer's transfer stays alive until we switch back.
        match unsafe { (*transfer).input.take() } {
            Some(Message::Resume(input)) => input,
            Some(Message::Unwind) => {
                self.unwinding.set(true);
                panic::resume_unwind(Box::new(ForcedUnwind))
            }
            None => unreachable!("every resume carries a message"),
        }
    }

    /// Unwinds a suspended (or never started) fiber's stack.
    ///
    /// # Safety
    ///
    /// As for [`switch_in`](Self::switch_in); the stack is dead afterwards.
    pub(super) unsafe fn unwind(this: NonNull<Self>) {
        let mut transfer = Transfer::new(Message::Unwind);
        // SAFETY: forwarded from the caller.
        match unsafe { this.as_ref().switch_in(&mut transfer) } {
            Outcome::Unwound | Outcome::Complete(_) | Outcome::Panicked(_) => {}
            Outcome::Yielded(_) => unreachable!("suspend unwinds once a drop has begun"),
        }
    }
}

/// The first Rust code on a fiber's stack: runs the closure, catching any
/// panic, and leaves its outcome in the last resume's transfer.
unsafe extern "sysv64" fn start<I, Y, R, F>(first: usize, data: *mut u8) -> Exit
where
    F: FnOnce(&Suspender<I, Y, R>, I) -> R,
{
    let block = data as *const Block<I, Y, R, F>;
    // SAFETY: `data` is the block `install` wrote; it lives until we return.
    let (control, func) = unsafe { (&(*block).control, (*block).func.take()) };
    let func = func.expect("a fiber starts once");
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let input = control.receive(first as *mut Transfer<I, Y, R>);
        let suspender = Suspender {
            control: NonNull::from(control),
            _not_send: PhantomData,
        };
        func(&suspender, input)
    }));
    let outcome = match outcome {
        Ok(r) => Outcome::Complete(r),
        Err(payload) if payload.is::<ForcedUnwind>() => Outcome::Unwound,
        Err(payload) => Outcome::Panicked(payload),
    };
    // SAFETY: the transfer of the resume that is waiting for us.
    unsafe { (*control.transfer.get()).output = Some(outcome) };
    let to = control
        .parent_sp
        .get()
        .expect("a running fiber has a resumer");
    Exit { to, value: 0 }
}
