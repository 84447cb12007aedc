//! Handing a signal that is not ours to the handler installed before ours
//! (std's overflow handler, a sanitizer's, the application's).

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
