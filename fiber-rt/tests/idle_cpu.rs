//! An idle runtime sleeps: its workers and timer use next to no CPU, also
//! while its fibers wait on sockets. Alone in its own test binary, and
//! one test that runs each case in turn, so no other work is counted.

use std::io::{Read, Write};
use std::time::Duration;

use fiber_rt::net::TcpListener;

fn process_cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[test]
fn idle_runtimes_use_under_one_percent_of_a_core() {
    an_idle_runtime_uses_under_one_percent_of_a_core();
    fibers_parked_on_sockets_leave_the_runtime_idle_and_still_wake();
}

fn an_idle_runtime_uses_under_one_percent_of_a_core() {
    let rt = fiber_rt::Builder::new().workers(4).build().unwrap();
    // Some work first, so every worker has been through its loop.
    let handles: Vec<_> = (0..100).map(|i| rt.spawn(move || i * 2)).collect();
    handles.into_iter().for_each(|h| drop(h.join()));
    std::thread::sleep(Duration::from_millis(50));

    let before = process_cpu_time();
    std::thread::sleep(Duration::from_millis(500));
    let used = process_cpu_time() - before;
    assert!(
        used < Duration::from_millis(5),
        "an idle runtime used {used:?} of CPU in 500 ms"
    );
    drop(rt);
}

/// A runtime whose fibers wait on sockets is idle too: the worker that
/// waits for the sockets in place of sleeping uses next to no CPU, and no
/// socket event is missed for it.
fn fibers_parked_on_sockets_leave_the_runtime_idle_and_still_wake() {
    let rt = fiber_rt::Builder::new().workers(2).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A fiber parked in accept, then in read.
    let server = rt.spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0; 5];
        stream.read_exact(&mut buf).unwrap();
        buf
    });
    let client = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        // Connected; the message comes after the idle time below.
        std::thread::sleep(Duration::from_millis(700));
        stream.write_all(b"later").unwrap();
    });
    // Another fiber parked in an accept that never comes.
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let _accepting = rt.spawn(move || other.accept().map(drop));
    std::thread::sleep(Duration::from_millis(100));

    let before = process_cpu_time();
    std::thread::sleep(Duration::from_millis(500));
    let used = process_cpu_time() - before;
    assert!(
        used < Duration::from_millis(5),
        "a runtime idle but for fibers parked on sockets used {used:?} of CPU in 500 ms"
    );
    assert_eq!(&server.join().unwrap(), b"later");
    client.join().unwrap();
}
