//! Running a `Future` to completion from a fiber, parking the fiber (never
//! the worker) while the future is pending: the way into async code, with
//! whatever runs its I/O (an async runtime of its own, a thread).

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake};

use crate::sched::park::Waker;
use crate::sync::waiter::park_until;

/// Polls `future` until it is ready and returns its output. While it is
/// pending, a fiber parks (its worker runs other fibers) and a plain thread
/// blocks, until the future's waker is called; the waker may be called
/// from any thread, before or after the future returns `Pending`.
///
/// The future's own I/O and timers must be driven by something else: a
/// future of an async runtime needs that runtime running (a handle's
/// `spawn`, whose join handle is a future, is the usual bridge). A future
/// that needs its async runtime's context on the polling thread (one that
/// uses `tokio::spawn` inside, say) does not find it here.
///
/// If the fiber is cancelled while it waits, the future is dropped during
/// the unwinding, as any value on the fiber's stack.
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use std::sync::{Arc, Mutex};
/// use std::task::{Context, Poll, Waker};
///
/// /// A value another thread delivers, as an async library's future would.
/// #[derive(Default)]
/// struct Delivery(Mutex<(Option<u32>, Option<Waker>)>);
///
/// struct Receive(Arc<Delivery>);
///
/// impl Future for Receive {
///     type Output = u32;
///     fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
///         let mut slot = self.0 .0.lock().unwrap();
///         match slot.0.take() {
///             Some(value) => Poll::Ready(value),
///             None => {
///                 slot.1 = Some(cx.waker().clone());
///                 Poll::Pending
///             }
///         }
///     }
/// }
///
/// let rt = fiber_rt::Runtime::new().unwrap();
/// let delivery = Arc::new(Delivery::default());
/// let receiver = rt.spawn({
///     let delivery = delivery.clone();
///     move || fiber_rt::block_on_future(Receive(delivery))
/// });
/// std::thread::sleep(std::time::Duration::from_millis(10));
/// let waker = {
///     let mut slot = delivery.0.lock().unwrap();
///     slot.0 = Some(42);
///     slot.1.take()
/// };
/// if let Some(waker) = waker {
///     waker.wake();
/// }
/// assert_eq!(receiver.join().unwrap(), 42);
/// ```
pub fn block_on_future<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let signal = Arc::new(Signal {
        waker: Waker::current(),
        woken: AtomicBool::new(false),
    });
    let waker = std::task::Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // AcqRel: takes the wake-up (so the next wait waits for a new one)
        // and sees what the waker's caller did before it.
        if signal.woken.swap(false, Ordering::AcqRel) {
            // Woken during its own poll (a future that yields to others so):
            // let them run before polling again, or this loop would spin.
            crate::yield_now();
            continue;
        }
        park_until(None, &"block_on_future", || {
            signal.woken.swap(false, Ordering::AcqRel)
        });
    }
}

/// The future's waker: sets a flag and wakes the polling fiber or thread.
struct Signal {
    waker: Waker,
    woken: AtomicBool,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Release: pairs with the poller's AcqRel swap.
        self.woken.store(true, Ordering::Release);
        // A fiber abandoned by the shutdown never polls again: nothing to
        // hand on.
        let _ = self.waker.wake();
    }
}
