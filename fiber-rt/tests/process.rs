//! `fiber_rt::process`: child processes whose waits and pipes park the
//! fiber, never the worker. Most tests run on one worker without the
//! preemption backstop, where a wait that blocked the thread would keep
//! the fiber beside it from running (or hang the test, bounded by a
//! deadline).

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use fiber_rt::process::Command;
use fiber_rt::Runtime;

mod common;
use common::{join_within_a_minute, one_worker, with_ticker};

/// Runs `f` as a fiber on `rt` and returns its result, within a minute.
fn run<T: Send + 'static>(rt: &Runtime, f: impl FnOnce() -> T + Send + 'static) -> T {
    join_within_a_minute(rt.spawn(f)).unwrap()
}

#[test]
fn a_wait_parks_the_fiber_and_its_worker_runs_others() {
    let rt = one_worker();
    let (status, ticks) = run(&rt, || {
        with_ticker(|| Command::new("sleep").arg("0.3").status().unwrap())
    });
    assert!(status.success());
    // 300 ms of 1 ms rounds; a blocked worker would have run none.
    assert!(
        ticks >= 20,
        "the other fiber ran {ticks} rounds during the wait"
    );
}

#[test]
fn the_exit_code_and_the_killing_signal_are_reported() {
    let rt = one_worker();
    run(&rt, || {
        let status = Command::new("sh").args(["-c", "exit 3"]).status().unwrap();
        assert_eq!(status.code(), Some(3));

        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        assert!(child.try_wait().unwrap().is_none());
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // Reaped once; later calls give the same status, and a kill is
        // no error (the id may name another process by now).
        assert_eq!(child.try_wait().unwrap(), Some(status));
        assert_eq!(child.wait().unwrap(), status);
        child.kill().unwrap();
        // Every exit code, and another signal, come back as std reads them.
        let status = Command::new("sh")
            .args(["-c", "exit 255"])
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(255));
        let mut child = Command::new("sh")
            .args(["-c", "kill -TERM $$; sleep 5"])
            .spawn()
            .unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
        let mut child = Command::new("sh").args(["-c", "exit 9"]).spawn().unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            fiber_rt::sleep(Duration::from_millis(1));
        };
        assert_eq!((status.code(), status.signal()), (Some(9), None));
    });
}

#[test]
fn wait_timeout_gives_none_while_the_child_runs_and_the_status_after() {
    let rt = one_worker();
    run(&rt, || {
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        let start = Instant::now();
        assert_eq!(
            child.wait_timeout(Duration::from_millis(100)).unwrap(),
            None
        );
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        child.kill().unwrap();
        let status = child.wait_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(status.and_then(|s| s.signal()), Some(libc::SIGKILL));
    });
}

#[test]
fn a_filter_streams_a_megabyte_through_both_pipes() {
    // More than a pipe holds (64 KiB) in each direction: the writer and the
    // reader, two fibers on one worker, each park in turn.
    let rt = one_worker();
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    let sent = data.clone();
    let (got, status) = run(&rt, move || {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = fiber_rt::spawn(move || stdin.write_all(&sent).unwrap());
        let mut got = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        (got, child.wait().unwrap())
    });
    assert!(status.success());
    assert!(
        got == data,
        "{} bytes came back, {} sent",
        got.len(),
        data.len()
    );
}

#[test]
fn output_reads_both_streams_at_once() {
    // Each stream gets 256 KiB: reading one to its end before the other
    // would leave the child stuck on the full one.
    let script = "head -c 262144 /dev/zero; head -c 262144 /dev/zero >&2; echo done >&2";
    let rt = one_worker();
    let out = run(&rt, move || {
        Command::new("sh").args(["-c", script]).output().unwrap()
    });
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 262144);
    assert_eq!(out.stderr.len(), 262144 + 5);
    assert!(out.stderr.ends_with(b"done\n"));
}

#[test]
fn output_keeps_the_streams_set_on_the_command() {
    let rt = one_worker();
    run(&rt, || {
        // Standard output set to null: not captured, and the setting stays.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; test -n \"$QUIET\" || echo err >&2"])
            .stdout(Stdio::null());
        let out = cmd.output().unwrap();
        assert_eq!(out.stdout, b"");
        assert_eq!(out.stderr, b"err\n");
        // A spawn after `output` gets no pipe it did not ask for.
        let mut child = cmd.env("QUIET", "1").spawn().unwrap();
        assert!(child.stdout.is_none() && child.stderr.is_none() && child.stdin.is_none());
        assert!(child.wait().unwrap().success());
        // Standard input is empty for `output`.
        let out = Command::new("cat").output().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"");
    });
}

#[test]
fn a_plain_thread_waits_and_reads_by_blocking() {
    let out = Command::new("sh")
        .args(["-c", "sleep 0.05; echo out; echo err >&2; exit 7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        (&out.stdout[..], &out.stderr[..]),
        (&b"out\n"[..], &b"err\n"[..])
    );
    let mut child = Command::new("sleep").arg("10").spawn().unwrap();
    assert_eq!(child.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    child.kill().unwrap();
    assert!(child.wait().unwrap().signal().is_some());
}

#[test]
fn wait_closes_standard_input_first() {
    // `cat` ends at the end of its input, which only the close gives it.
    let rt = one_worker();
    run(&rt, || {
        let mut child = Command::new("cat").stdin(Stdio::piped()).spawn().unwrap();
        let status = child.wait_timeout(Duration::from_secs(30)).unwrap();
        assert!(status.is_some_and(|s| s.success()));
    });
}

#[test]
fn a_read_past_its_time_out_fails_with_timed_out() {
    let rt = one_worker();
    run(&rt, || {
        let mut child = Command::new("sleep")
            .arg("10")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.as_mut().unwrap();
        stdout
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        assert_eq!(stdout.read_timeout(), Some(Duration::from_millis(50)));
        let err = stdout.read(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn a_cancelled_waiter_unwinds_and_the_child_runs_on() {
    let rt = Runtime::new().unwrap();
    let (tx, rx) = std_mpsc::channel();
    let waiter = rt.spawn(move || {
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        tx.send(child.id()).unwrap();
        child.wait()
    });
    let pid = rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    waiter.cancel();
    let err = waiter.join().unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
    // Still running (not a zombie): nobody killed it. Cleaned up here.
    assert_eq!(process_state(pid), Some('S'));
    // SAFETY: a plain system call; `pid` is our unreaped child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    // SAFETY: reaps our own child; a null status pointer is allowed.
    unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0) };
}

#[test]
fn kill_on_drop_kills_a_child_not_waited_for() {
    let rt = one_worker();
    let pid = run(&rt, || {
        let child = Command::new("sleep")
            .arg("10")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        child.id()
    });
    // Gone, or a zombie until this process ends: not sleeping.
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_state(pid) == Some('S') {
        assert!(Instant::now() < deadline, "the child still runs");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn children_dropped_unwaited_are_reaped_by_a_later_spawn() {
    let rt = one_worker();
    run(&rt, || {
        let pids: Vec<u32> = (0..20)
            .map(|_| Command::new("true").spawn().unwrap().id())
            .collect();
        // Exited: zombies until someone reaps them (std never does), or
        // reaped already by the drops and spawns that came after them.
        let deadline = Instant::now() + Duration::from_secs(10);
        while pids
            .iter()
            .any(|&pid| matches!(process_state(pid), Some(state) if state != 'Z'))
        {
            assert!(Instant::now() < deadline, "the children did not exit");
            fiber_rt::sleep(Duration::from_millis(5));
        }
        assert!(Command::new("true").status().unwrap().success());
        for pid in pids {
            assert_eq!(process_state(pid), None, "child {pid} is still a zombie");
        }
    });
}

#[test]
fn a_pipe_hands_over_to_another_child_in_blocking_mode() {
    let rt = one_worker();
    run(&rt, || {
        let mut first = Command::new("echo")
            .arg("piped along")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = first.stdout.take().unwrap();
        let fd = stdout.into_owned_fd().unwrap();
        // SAFETY: F_GETFL on an open descriptor we own.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(
            flags & libc::O_NONBLOCK,
            0,
            "another process expects blocking mode"
        );
        let out = Command::new("tr")
            .args(["a-z", "A-Z"])
            .stdin(Stdio::from(fd))
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"PIPED ALONG\n");
        assert!(first.wait().unwrap().success());
        // The conversion straight into a `Stdio`.
        let mut first = Command::new("echo")
            .arg("again")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = Stdio::try_from(first.stdout.take().unwrap()).unwrap();
        let out = Command::new("cat").stdin(stdin).output().unwrap();
        assert_eq!(out.stdout, b"again\n");
        assert!(first.wait().unwrap().success());
    });
}

#[test]
fn many_children_waited_for_at_once_all_report() {
    // 50 fibers each wait for a child that exits with its own code.
    let rt = Runtime::new().unwrap();
    let codes = run(&rt, || {
        let waiters: Vec<_> = (0..50)
            .map(|i| {
                fiber_rt::spawn(move || {
                    let script = format!("sleep 0.0{}; exit {i}", i % 10);
                    Command::new("sh")
                        .args(["-c", &script])
                        .status()
                        .unwrap()
                        .code()
                })
            })
            .collect();
        waiters
            .into_iter()
            .map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(codes, (0..50).map(Some).collect::<Vec<_>>());
}

#[test]
fn a_spawn_failure_is_an_error() {
    let rt = one_worker();
    run(&rt, || {
        let err = Command::new("/nonexistent/program").spawn().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    });
}

/// The state letter of process `pid` in `/proc` (`S` sleeping, `Z`
/// zombie), or `None` once it is gone.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses.
    stat.rsplit_once(") ")?.1.chars().next()
}
