//! Handing a signal that is not ours to the handler installed before ours
//! (std's overflow handler, a sanitizer's, the application's).

use std::sync::atomic::{AtomicBool, Ordering};

/// Installs `action` for `sig` in one call that also writes the action it
/// replaces into `previous` (so no other handler installed meanwhile is
/// lost), then marks `previous` written in `ready`.
///
/// # Safety
///
/// `action` is a valid action for `sig`; `previous` is written here only,
/// once, and read only after [`wait_written`] on `ready`.
pub(crate) unsafe fn install(
    sig: libc::c_int,
    action: &libc::sigaction,
    previous: *mut libc::sigaction,
    ready: &AtomicBool,
) {
    // SAFETY: the caller's contract.
    unsafe { libc::sigaction(sig, action, previous) };
    // Release: pairs with `wait_written`'s Acquire.
    ready.store(true, Ordering::Release);
}

/// Waits, in a handler, until the action its `install` replaced is
/// written. The kernel installs the new action before it writes the old
/// one back, so a signal on another thread may come in between: it waits
/// the few hundred nanoseconds left. One on the installing thread comes
/// after the call returned, when the old action is written, but may come
/// before `ready` is set: the wait is bounded, and then goes on.
pub(crate) fn wait_written(ready: &AtomicBool) {
    // Acquire: pairs with `install`'s Release.
    for _ in 0..1 << 20 {
        if ready.load(Ordering::Acquire) {
            return;
        }
        std::hint::spin_loop();
    }
}

/// Calls `previous` for `sig`; `false` when it is `SIG_DFL` or `SIG_IGN`,
/// which the caller deals with as its signal needs.
pub(crate) fn call_previous(
    previous: &libc::sigaction,
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
) -> bool {
    let action = previous.sa_sigaction;
    if action == libc::SIG_DFL || action == libc::SIG_IGN {
        return false;
    }
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler asked for the three-argument form.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(action) };
        f(sig, info, ctx);
    } else {
        // SAFETY: the previous handler is a one-argument `sa_handler`.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(action) };
        f(sig);
    }
    true
}
