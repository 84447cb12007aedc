//! `fiber_rt::io::Fd`: any descriptor's waits park the fiber, never the
//! worker. Most tests run on one worker without the preemption backstop,
//! where a wait that blocked the thread would keep the fiber beside it
//! from running (or hang the test, bounded by a deadline).

use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fiber_rt::io::Fd;
use fiber_rt::Runtime;

mod common;
use common::{join_within_a_minute, one_worker, with_ticker};

fn run<T: Send + 'static>(rt: &Runtime, f: impl FnOnce() -> T + Send + 'static) -> T {
    join_within_a_minute(rt.spawn(f)).unwrap()
}

fn eventfd() -> OwnedFd {
    // SAFETY: eventfd returns a new descriptor (checked), owned from here.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(fd >= 0, "{}", io::Error::last_os_error());
    // SAFETY: as above.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A pipe: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: two new descriptors, owned from here.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// One `read(2)` or `write(2)` as an `io::Result`.
fn check(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn read_counter(fd: &OwnedFd) -> io::Result<u64> {
    let mut n = 0u64;
    // SAFETY: reads 8 bytes into a live u64.
    check(unsafe { libc::read(fd.as_raw_fd(), (&mut n as *mut u64).cast(), 8) }).map(|_| n)
}

fn add_counter(fd: &impl AsRawFd, n: u64) {
    // SAFETY: writes 8 bytes from a live u64.
    let written = unsafe { libc::write(fd.as_raw_fd(), (&n as *const u64).cast(), 8) };
    assert_eq!(written, 8);
}

#[test]
fn a_wait_parks_the_fiber_and_its_worker_runs_others() {
    let rt = one_worker();
    let events = Arc::new(Fd::new(eventfd()).unwrap());
    let writer_events = events.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        add_counter(&*writer_events, 5);
    });
    let (got, ticks) = run(&rt, move || {
        with_ticker(|| events.read_with(read_counter).unwrap())
    });
    writer.join().unwrap();
    assert_eq!(got, 5);
    assert!(
        ticks >= 20,
        "the other fiber ran {ticks} rounds during the wait"
    );
}

#[test]
fn a_full_pipe_parks_its_writer_until_the_reader_drains_it() {
    // 1 MiB through a 64 KiB pipe, both ends fibers on one worker.
    let rt = one_worker();
    let (read_end, write_end) = pipe();
    let (reader, writer) = (Fd::new(read_end).unwrap(), Fd::new(write_end).unwrap());
    let total = run(&rt, move || {
        let sender = fiber_rt::spawn(move || {
            let chunk = [7u8; 4096];
            for _ in 0..256 {
                let mut sent = 0;
                while sent < chunk.len() {
                    sent += writer
                        .write_with(|fd| {
                            let rest = &chunk[sent..];
                            // SAFETY: writes from a live slice of its length.
                            check(unsafe {
                                libc::write(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len())
                            })
                        })
                        .unwrap();
                }
            }
            // Dropped: the reader sees the end.
        });
        let mut total = 0;
        let mut buf = [0u8; 8192];
        loop {
            let n = reader
                .read_with(|fd| {
                    // SAFETY: reads into a live buffer of its length.
                    check(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
                })
                .unwrap();
            if n == 0 {
                break;
            }
            assert!(buf[..n].iter().all(|&b| b == 7));
            total += n;
        }
        sender.join().unwrap();
        total
    });
    assert_eq!(total, 1 << 20);
}

#[test]
fn a_wait_past_its_time_out_fails_with_timed_out() {
    let rt = one_worker();
    run(&rt, || {
        let events = Fd::new(eventfd()).unwrap();
        events
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        assert_eq!(events.read_timeout(), Some(Duration::from_millis(50)));
        let start = Instant::now();
        let err = events.read_with(read_counter).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert!(events.set_read_timeout(Some(Duration::ZERO)).is_err());
    });
}

#[test]
fn a_plain_thread_blocks_until_ready() {
    let events = Arc::new(Fd::new(eventfd()).unwrap());
    let writer_events = events.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        add_counter(&*writer_events, 2);
    });
    assert_eq!(events.read_with(read_counter).unwrap(), 2);
    writer.join().unwrap();
}

#[test]
fn regular_files_and_directories_are_refused() {
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    let err = Fd::new(file).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let dir = std::fs::File::open("/").unwrap();
    assert_eq!(Fd::new(dir).unwrap_err().kind(), ErrorKind::InvalidInput);
    // `try_new` gives the file back, still readable.
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    let (mut file, err) = Fd::try_new(file).expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let mut magic = [0u8; 4];
    std::io::Read::read_exact(&mut file, &mut magic).unwrap();
    assert_eq!(&magic, b"\x7fELF");
}

#[test]
fn a_descriptor_epoll_refuses_but_never_blocking_reads_on_a_fiber_as_on_a_thread() {
    // `/dev/null` (a redirected standard input, say): not a regular file,
    // yet epoll refuses it (EPERM). Its reads never wait, so they need no
    // registration.
    let read_one =
        |null: &Fd<std::fs::File>| null.read_with(|f| io::Read::read(&mut &*f, &mut [0; 8]));
    let null = Fd::new(std::fs::File::open("/dev/null").unwrap()).unwrap();
    assert_eq!(read_one(&null).unwrap(), 0);
    let rt = one_worker();
    let got = run(&rt, move || {
        (
            read_one(&null).map_err(|e| e.to_string()),
            read_one(&null).is_ok(),
        )
    });
    assert_eq!(got, (Ok(0), true));
}

#[test]
fn into_inner_hands_the_descriptor_back_out_of_the_epoll_set() {
    let rt = one_worker();
    run(&rt, || {
        let events = Fd::new(eventfd()).unwrap();
        // A read that waits: it registers the descriptor.
        let writer = fiber_rt::spawn({
            let fd = events.as_raw_fd();
            move || {
                fiber_rt::sleep(Duration::from_millis(20));
                add_counter(&fd, 1);
            }
        });
        assert_eq!(events.read_with(read_counter).unwrap(), 1);
        writer.join().unwrap();
        let fd = events.into_inner();
        // Still non-blocking: an empty counter says so at once.
        assert_eq!(read_counter(&fd).unwrap_err().kind(), ErrorKind::WouldBlock);
        // Taken anew, it registers anew (a second registration of a
        // descriptor still in the set would fail with EEXIST).
        let events = Fd::new(fd).unwrap();
        let writer = fiber_rt::spawn({
            let fd = events.as_raw_fd();
            move || {
                fiber_rt::sleep(Duration::from_millis(20));
                add_counter(&fd, 3);
            }
        });
        assert_eq!(events.read_with(read_counter).unwrap(), 3);
        writer.join().unwrap();
    });
}

#[test]
fn readable_and_writable_wait_for_readiness_alone() {
    let rt = one_worker();
    let (read_end, write_end) = pipe();
    let (reader, writer) = (Fd::new(read_end).unwrap(), Fd::new(write_end).unwrap());
    let (got, ticks) = run(&rt, move || {
        // An empty pipe has room: at once.
        writer.writable().unwrap();
        reader
            .set_read_timeout(Some(Duration::from_millis(30)))
            .unwrap();
        assert_eq!(reader.readable().unwrap_err().kind(), ErrorKind::TimedOut);
        reader.set_read_timeout(None).unwrap();
        let sender = fiber_rt::spawn(move || {
            fiber_rt::sleep(Duration::from_millis(100));
            // SAFETY: writes one byte from a live array.
            check(unsafe { libc::write(writer.as_raw_fd(), [9u8].as_ptr().cast(), 1) }).unwrap();
        });
        let woke = with_ticker(|| reader.readable().unwrap());
        sender.join().unwrap();
        // Still there: `readable` takes nothing. And ready now, at once.
        reader.readable().unwrap();
        let mut byte = [0u8; 1];
        // SAFETY: reads one byte into a live array.
        check(unsafe { libc::read(reader.as_raw_fd(), byte.as_mut_ptr().cast(), 1) }).unwrap();
        (byte[0], woke.1)
    });
    assert_eq!(got, 9);
    assert!(
        ticks >= 10,
        "the other fiber ran {ticks} rounds during the wait"
    );
}
