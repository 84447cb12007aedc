//! A `Child` whose process was reaped by someone else (a `waitpid(-1)`
//! elsewhere, or `SIGCHLD` ignored) leaves its number free for the next
//! child: dropping or killing it must not reap or kill that one. Alone in its file, since it
//! steers the next process's number through `ns_last_pid` (where this
//! process may write it, as root may; elsewhere it says so and passes).

use std::process::Command as StdCommand;

use fiber_rt::process::{Child, Command};

/// The tests steer the same counter: one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes the next process of this pid namespace take the number `pid`;
/// `false` where that is not allowed.
fn next_pid_is(pid: i32) -> bool {
    std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).is_ok()
}

/// Waits until `pid` has exited, leaving it a zombie.
fn exited_unreaped(pid: i32) {
    // SAFETY: an all-zero siginfo_t is a valid value to overwrite.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is live and writable; WNOWAIT leaves the child as it is.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
}

/// A `Child` (of `true`) reaped behind its back, as a `waitpid(-1)` would,
/// and a std child of `second` that took its number since; `None` (said
/// on standard error) where the number cannot be steered, or no child took
/// it in 20 tries.
fn on_a_reused_number(second: &mut StdCommand) -> Option<(Child, std::process::Child)> {
    for _ in 0..20 {
        let first = Command::new("true").spawn().unwrap();
        let pid = first.id() as i32;
        let mut status = 0;
        // SAFETY: `status` is live and writable.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        if !next_pid_is(pid) {
            eprintln!("the next process's number cannot be chosen here: not tested");
            return None;
        }
        let mut taker = second.spawn().unwrap();
        if taker.id() as i32 == pid {
            return Some((first, taker));
        }
        // Another process took the number first: again.
        let _ = taker.kill();
        taker.wait().unwrap();
    }
    eprintln!("no child took the number: not tested");
    None
}

#[test]
fn a_drop_after_an_outside_reap_leaves_the_child_that_took_the_number() {
    let _serial = serial();
    let Some((first, mut second)) = on_a_reused_number(&mut StdCommand::new("true")) else {
        return;
    };
    exited_unreaped(second.id() as i32);
    drop(first);
    let reaped = second.wait();
    assert!(
        reaped.as_ref().is_ok_and(|s| s.success()),
        "the child that took the number of a dropped one was reaped by the drop: {reaped:?}"
    );
}

#[test]
fn a_kill_after_an_outside_reap_leaves_the_child_that_took_the_number() {
    let _serial = serial();
    let mut sleeper = StdCommand::new("sleep");
    sleeper.arg("0.3");
    let Some((mut first, mut second)) = on_a_reused_number(&mut sleeper) else {
        return;
    };
    // The first child is gone: a kill is no error, and reaches nobody.
    first.kill().unwrap();
    let status = second.wait().unwrap();
    assert!(
        status.success(),
        "the child that took the number of a killed one was killed: {status:?}"
    );
}

#[test]
fn a_wait_after_an_outside_reap_leaves_the_child_that_took_the_number() {
    let _serial = serial();
    let Some((mut first, mut second)) = on_a_reused_number(&mut StdCommand::new("true")) else {
        return;
    };
    exited_unreaped(second.id() as i32);
    // The first child is gone: its waits say so (as std's do while the
    // number is free), and take nothing from the second.
    let looked = first.try_wait();
    assert!(looked.is_err(), "a wait on a gone child: {looked:?}");
    assert!(first.wait().is_err());
    let reaped = second.wait();
    assert!(
        reaped.as_ref().is_ok_and(|s| s.success()),
        "the child that took the number was reaped by another's wait: {reaped:?}"
    );
}
