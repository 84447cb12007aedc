//! `fiber_rt::net`: sockets whose waits park the fiber, never the worker.
//! Most tests run client and server on a runtime of one worker without the
//! preemption signal (whose backstop would hand a blocked worker to a new
//! thread): there a wait that blocked the thread instead of parking the
//! fiber hangs the test, and each is joined with a deadline, so a hang
//! fails it.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fiber_rt::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
use fiber_rt::{Builder, JoinHandle, Runtime};

/// Two workers, no preemption signal, the longest slice: the monitor's
/// ticks, which also take sockets' events while every worker is busy, come
/// only every 500 ms, so an event that waits for one shows.
fn two_workers_with_rare_ticks() -> Runtime {
    Builder::new()
        .workers(2)
        .preempt_signals(false)
        .time_slice(Duration::from_secs(1))
        .build()
        .unwrap()
}

/// Runs `f` as a fiber on `rt` and returns its result, within a minute.
fn run<T: Send + 'static>(rt: &Runtime, f: impl FnOnce() -> T + Send + 'static) -> T {
    join_within_a_minute(rt.spawn(f)).unwrap()
}

mod common;
use common::{join_within_a_minute, one_worker};

/// A listener on a free local port.
fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Echoes every connection `listener` accepts, each on a fiber of its own,
/// until `connections` have been served.
fn echo_server(listener: TcpListener, connections: usize) {
    let served: Vec<_> = (0..connections)
        .map(|_| {
            let (mut stream, _) = listener.accept().unwrap();
            fiber_rt::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    let n = stream.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    stream.write_all(&buf[..n]).unwrap();
                }
            })
        })
        .collect();
    served.into_iter().for_each(|h| h.join().unwrap());
}

#[test]
fn many_clients_and_their_server_share_one_worker() {
    const CLIENTS: usize = 64;
    const ROUNDS: usize = 50;
    let rt = one_worker();
    let (listener, addr) = listener();
    let server = rt.spawn(move || echo_server(listener, CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            rt.spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_nodelay(true).unwrap();
                for round in 0..ROUNDS {
                    let message = format!("client {id} round {round}\n");
                    stream.write_all(message.as_bytes()).unwrap();
                    let mut reply = vec![0; message.len()];
                    stream.read_exact(&mut reply).unwrap();
                    assert_eq!(reply, message.as_bytes());
                }
                stream.shutdown(Shutdown::Write).unwrap();
                let mut rest = Vec::new();
                stream.read_to_end(&mut rest).unwrap();
                assert!(rest.is_empty(), "the server echoes nothing more");
                ROUNDS
            })
        })
        .collect();
    let rounds: usize = clients
        .into_iter()
        .map(|c| join_within_a_minute(c).unwrap())
        .sum();
    assert_eq!(rounds, CLIENTS * ROUNDS);
    join_within_a_minute(server).unwrap();
}

#[test]
fn megabytes_written_past_the_socket_buffers_arrive_whole_and_in_order() {
    // Far more than the kernel buffers on both sides: the writer has to
    // wait for room (the write direction's edges), the reader for data.
    const LEN: usize = 16 << 20;
    let rt = one_worker();
    let (listener, addr) = listener();
    let reader = rt.spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut received = Vec::with_capacity(LEN);
        stream.read_to_end(&mut received).unwrap();
        received
    });
    let writer = rt.spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
        stream.write_all(&data).unwrap();
    });
    join_within_a_minute(writer).unwrap();
    let received = join_within_a_minute(reader).unwrap();
    assert_eq!(received.len(), LEN);
    assert!(received
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 251) as u8));
}

#[test]
fn a_read_time_out_ends_the_wait_and_the_worker_runs_others_meanwhile() {
    let rt = one_worker();
    let (listener, addr) = listener();
    let ticks = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    // A fiber that counts while the reader waits: on one worker it only
    // runs if the wait parked the reader.
    let ticker = {
        let (ticks, done) = (ticks.clone(), done.clone());
        rt.spawn(move || {
            while !done.load(SeqCst) {
                ticks.fetch_add(1, SeqCst);
                fiber_rt::sleep(Duration::from_millis(1));
            }
        })
    };
    let reader = rt.spawn(move || {
        let _client = TcpStream::connect(addr).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert_eq!(
            stream.read_timeout().unwrap(),
            Some(Duration::from_millis(100))
        );
        let start = Instant::now();
        let error = stream.read(&mut [0; 8]).unwrap_err();
        (error.kind(), start.elapsed())
    });
    let (kind, waited) = join_within_a_minute(reader).unwrap();
    done.store(true, SeqCst);
    join_within_a_minute(ticker).unwrap();
    assert_eq!(kind, ErrorKind::TimedOut);
    assert!(waited >= Duration::from_millis(100), "waited {waited:?}");
    assert!(
        ticks.load(SeqCst) >= 10,
        "the other fiber ran {} times during the wait",
        ticks.load(SeqCst)
    );
}

#[test]
fn a_zero_time_out_is_refused_as_std_refuses_it() {
    let (listener, _) = listener();
    let error = listener
        .set_accept_timeout(Some(Duration::ZERO))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(listener.accept_timeout().unwrap(), None);
    let error =
        TcpStream::connect_timeout(&listener.local_addr().unwrap(), Duration::ZERO).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
}

#[test]
fn accept_times_out_when_nobody_connects() {
    let rt = one_worker();
    let kind = run(&rt, move || {
        let (listener, _) = listener();
        listener
            .set_accept_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        listener.accept().unwrap_err().kind()
    });
    assert_eq!(kind, ErrorKind::TimedOut);
}

#[test]
fn a_refused_connection_is_an_error_not_a_hang() {
    let rt = one_worker();
    // A port that was free a moment ago: nothing listens there.
    let addr = listener().1;
    let kind = run(&rt, move || TcpStream::connect(addr).unwrap_err().kind());
    assert_eq!(kind, ErrorKind::ConnectionRefused);
}

#[test]
fn connect_timeout_connects_to_a_listening_socket() {
    let rt = one_worker();
    let (listener, addr) = listener();
    let peer = run(&rt, move || {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(stream.local_addr().unwrap(), peer);
        stream.peer_addr().unwrap()
    });
    assert_eq!(peer, addr);
}

#[test]
fn a_cancelled_reader_unwinds_out_of_its_wait_and_the_socket_stays_usable() {
    let rt = Builder::new().workers(2).build().unwrap();
    let (listener, addr) = listener();
    let client = Arc::new(run(&rt, move || TcpStream::connect(addr).unwrap()));
    let (mut server, _) = run(&rt, move || listener.accept().unwrap());
    let (started_tx, started) = std_mpsc::channel();
    let reading = {
        let client = client.clone();
        rt.spawn(move || {
            started_tx.send(()).unwrap();
            (&*client).read(&mut [0; 8])
        })
    };
    started.recv().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    reading.cancel();
    assert!(join_within_a_minute(reading).unwrap_err().is_cancelled());
    // The socket still works for the next reader, which gets the bytes the
    // cancelled one never read.
    server.write_all(b"after").unwrap();
    let mut buf = [0; 5];
    let read = rt.spawn(move || {
        (&*client).read_exact(&mut buf).unwrap();
        buf
    });
    assert_eq!(&join_within_a_minute(read).unwrap(), b"after");
}

#[test]
fn a_reader_and_a_writer_share_a_stream_through_try_clone() {
    const MESSAGES: u32 = 1000;
    let rt = Builder::new().workers(2).build().unwrap();
    let (listener, addr) = listener();
    let server = rt.spawn(move || echo_server(listener, 1));
    let stream = run(&rt, move || TcpStream::connect(addr).unwrap());
    let mut writer = stream.try_clone().unwrap();
    let mut reader = stream;
    let sent = rt.spawn(move || {
        for i in 0..MESSAGES {
            writer.write_all(&i.to_le_bytes()).unwrap();
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let received = rt.spawn(move || {
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        all.chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect::<Vec<_>>()
    });
    join_within_a_minute(sent).unwrap();
    assert_eq!(
        join_within_a_minute(received).unwrap(),
        (0..MESSAGES).collect::<Vec<_>>()
    );
    join_within_a_minute(server).unwrap();
}

#[test]
fn peek_leaves_the_bytes_for_the_next_read() {
    let rt = one_worker();
    let (listener, addr) = listener();
    let (peeked, read) = run(&rt, move || {
        let mut client = TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        let peeking = fiber_rt::spawn(move || {
            let mut peeked = [0; 4];
            let n = server.peek(&mut peeked).unwrap();
            let mut read = [0; 4];
            (&server).read_exact(&mut read).unwrap();
            (peeked[..n].to_vec(), read)
        });
        fiber_rt::sleep(Duration::from_millis(5));
        client.write_all(b"data").unwrap();
        peeking.join().unwrap()
    });
    assert!(!peeked.is_empty() && b"data".starts_with(&peeked));
    assert_eq!(&read, b"data");
}

#[test]
fn sockets_work_from_plain_threads_too() {
    let (listener, addr) = listener();
    let server = std::thread::spawn(move || echo_server_on_thread(listener));
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"thread").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    client.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "thread");
    server.join().unwrap();
}

fn echo_server_on_thread(listener: TcpListener) {
    let (mut stream, _) = listener.accept().unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).unwrap();
    stream.write_all(&all).unwrap();
}

#[test]
fn udp_ping_pong_on_one_worker() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    datagram_ping_pong_on_one_worker(a, b, UdpSocket::send, UdpSocket::recv);
}

/// Send and receive on a connected datagram socket.
type SendFn<S> = fn(&S, &[u8]) -> std::io::Result<usize>;
type RecvFn<S> = fn(&S, &mut [u8]) -> std::io::Result<usize>;

/// Two fibers on one worker bounce a counter between the connected
/// datagram sockets `a` and `b` 2000 times: each receive parks its fiber
/// until the other has sent.
fn datagram_ping_pong_on_one_worker<S: Send + 'static>(
    a: S,
    b: S,
    send: SendFn<S>,
    recv: RecvFn<S>,
) {
    const ROUNDS: u32 = 2000;
    let rt = one_worker();
    let ponger = rt.spawn(move || {
        let mut buf = [0; 4];
        for _ in 0..ROUNDS {
            let n = recv(&b, &mut buf).unwrap();
            let value = u32::from_le_bytes(buf[..n].try_into().unwrap());
            send(&b, &(value + 1).to_le_bytes()).unwrap();
        }
    });
    let pinger = rt.spawn(move || {
        let mut value = 0u32;
        let mut buf = [0; 4];
        for _ in 0..ROUNDS {
            send(&a, &value.to_le_bytes()).unwrap();
            let n = recv(&a, &mut buf).unwrap();
            value = u32::from_le_bytes(buf[..n].try_into().unwrap());
        }
        value
    });
    assert_eq!(join_within_a_minute(pinger).unwrap(), ROUNDS);
    join_within_a_minute(ponger).unwrap();
}

#[test]
fn udp_recv_from_reports_the_sender_and_times_out() {
    let rt = one_worker();
    let (from, kind) = run(&rt, move || {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.send_to(b"x", b.local_addr().unwrap()).unwrap();
        let mut buf = [0; 1];
        let (_, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(from, a.local_addr().unwrap());
        b.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        (from, b.recv_from(&mut buf).unwrap_err().kind())
    });
    assert_eq!(from.ip().to_string(), "127.0.0.1");
    assert_eq!(kind, ErrorKind::TimedOut);
}

#[test]
fn udp_peek_waits_for_a_datagram_and_leaves_it_for_recv() {
    let rt = one_worker();
    let (peeked, received) = run(&rt, move || {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        let target = b.local_addr().unwrap();
        // Sent once the peek has parked: it must wait, not fail.
        let sender = fiber_rt::spawn(move || {
            fiber_rt::sleep(Duration::from_millis(5));
            a.send_to(b"ping", target).unwrap();
        });
        let mut buf = [0; 8];
        let n = b.peek(&mut buf).unwrap();
        let peeked = buf[..n].to_vec();
        let n = b.recv(&mut buf).unwrap();
        sender.join().unwrap();
        (peeked, buf[..n].to_vec())
    });
    assert_eq!(peeked, b"ping");
    assert_eq!(received, b"ping");
}

#[test]
fn closed_sockets_leave_nothing_registered_to_wake() {
    // Open and close many sockets, each waited on once: a descriptor
    // number reused by a later socket must not wake or confuse its waits.
    let rt = one_worker();
    run(&rt, move || {
        for _ in 0..200 {
            let (listener, addr) = listener();
            let mut client = TcpStream::connect(addr).unwrap();
            let (mut server, _) = listener.accept().unwrap();
            let reader = fiber_rt::spawn(move || {
                let mut buf = [0; 2];
                server.read_exact(&mut buf).unwrap();
                buf
            });
            client.write_all(b"ok").unwrap();
            assert_eq!(&reader.join().unwrap(), b"ok");
        }
    });
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<TcpListener>();
    check::<TcpStream>();
    check::<UdpSocket>();
    check::<UnixListener>();
    check::<UnixStream>();
}

#[test]
fn a_unix_stream_pair_ping_pongs_on_one_worker() {
    const ROUNDS: u32 = 2000;
    let rt = one_worker();
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let ponger = rt.spawn(move || {
        let mut buf = [0; 4];
        while b.read_exact(&mut buf).is_ok() {
            b.write_all(&(u32::from_le_bytes(buf) + 1).to_le_bytes())
                .unwrap();
        }
    });
    let pinger = rt.spawn(move || {
        let mut value = 0u32;
        let mut buf = [0; 4];
        for _ in 0..ROUNDS {
            a.write_all(&value.to_le_bytes()).unwrap();
            a.read_exact(&mut buf).unwrap();
            value = u32::from_le_bytes(buf);
        }
        value
    });
    assert_eq!(join_within_a_minute(pinger).unwrap(), ROUNDS);
    join_within_a_minute(ponger).unwrap();
}

#[test]
fn a_unix_listener_serves_many_clients_on_one_worker_and_times_out() {
    const CLIENTS: usize = 32;
    let dir = std::env::temp_dir().join(format!("fiber-net-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let rt = one_worker();
    let listener = UnixListener::bind(&path).unwrap();
    let server = rt.spawn(move || {
        let served: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (mut stream, _) = listener.accept().unwrap();
                fiber_rt::spawn(move || {
                    let mut all = Vec::new();
                    stream.read_to_end(&mut all).unwrap();
                    stream.write_all(&all).unwrap();
                })
            })
            .collect();
        served.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(listener.accept_timeout().unwrap(), None);
        listener
            .set_accept_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        assert_eq!(
            listener.accept_timeout().unwrap(),
            Some(Duration::from_millis(10))
        );
        listener.accept().unwrap_err().kind()
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let path = path.clone();
            rt.spawn(move || {
                let mut stream = UnixStream::connect(&path).unwrap();
                stream.write_all(format!("client {id}").as_bytes()).unwrap();
                stream.shutdown(Shutdown::Write).unwrap();
                let mut reply = String::new();
                stream.read_to_string(&mut reply).unwrap();
                reply == format!("client {id}")
            })
        })
        .collect();
    for client in clients {
        assert!(join_within_a_minute(client).unwrap());
    }
    assert_eq!(join_within_a_minute(server).unwrap(), ErrorKind::TimedOut);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dropping_the_runtime_cancels_fibers_parked_on_sockets() {
    let (listener, addr) = listener();
    let unwound = Arc::new(AtomicUsize::new(0));
    /// Counts the fibers whose destructors ran.
    struct Unwound(Arc<AtomicUsize>);
    impl Drop for Unwound {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    let (parked_tx, parked) = std_mpsc::channel();
    let rt = one_worker();
    let guard = Unwound(unwound.clone());
    let accepting = rt.spawn(move || {
        let _guard = guard;
        let (stream, _) = listener.accept().unwrap();
        stream
    });
    let guard = Unwound(unwound.clone());
    let _reading = rt.spawn(move || {
        let _guard = guard;
        let mut stream = TcpStream::connect(addr).unwrap();
        parked_tx.send(()).unwrap();
        stream.read(&mut [0; 8])
    });
    parked.recv().unwrap();
    let _server_side = join_within_a_minute(accepting).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let (dropped_tx, dropped) = std_mpsc::channel();
    std::thread::spawn(move || {
        drop(rt);
        dropped_tx.send(()).unwrap();
    });
    dropped
        .recv_timeout(Duration::from_secs(60))
        .expect("the runtime's drop returned");
    assert_eq!(unwound.load(SeqCst), 2, "both fibers unwound");
}

#[test]
fn a_time_out_set_on_the_std_socket_carries_over() {
    let (listener, addr) = listener();
    let std_stream = std::net::TcpStream::connect(addr).unwrap();
    std_stream
        .set_read_timeout(Some(Duration::from_millis(30)))
        .unwrap();
    // As the kernel keeps it (rounded to its clock's ticks).
    let kept = std_stream.read_timeout().unwrap();
    assert!(kept.is_some());
    let stream = TcpStream::from_std(std_stream).unwrap();
    assert_eq!(stream.read_timeout().unwrap(), kept);
    let _server_side = listener.accept().unwrap();
    // On a plain thread, which polls the socket itself.
    let start = Instant::now();
    let error = (&stream).read(&mut [0; 4]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TimedOut);
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[test]
fn fibers_on_two_runtimes_wait_on_sockets_at_once() {
    // Each runtime's idle worker waits for the same epoll instance; a
    // socket's event wakes its fiber whichever of them takes it.
    let (a, b) = (one_worker(), one_worker());
    let (listener, addr) = listener();
    let server = a.spawn(move || echo_server(listener, 2));
    let clients: Vec<_> = [&a, &b]
        .into_iter()
        .map(|rt| {
            rt.spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                for round in 0..200u32 {
                    stream.write_all(&round.to_le_bytes()).unwrap();
                    let mut buf = [0; 4];
                    stream.read_exact(&mut buf).unwrap();
                    assert_eq!(u32::from_le_bytes(buf), round);
                }
            })
        })
        .collect();
    for client in clients {
        join_within_a_minute(client).unwrap();
    }
    join_within_a_minute(server).unwrap();
}

#[test]
fn a_destructor_reading_a_socket_during_the_runtime_s_drop_is_woken() {
    // The workers are gone by then: the shutdown's own thread has to take
    // the socket's events, or the fiber is abandoned at the time-out.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let rt = one_worker();
    let acknowledged = Arc::new(AtomicBool::new(false));
    /// Waits for the peer's acknowledgement as it is dropped.
    struct Goodbye(TcpStream, Arc<AtomicBool>);
    impl Drop for Goodbye {
        fn drop(&mut self) {
            let mut ack = [0; 3];
            if self.0.read_exact(&mut ack).is_ok() && &ack == b"ack" {
                self.1.store(true, SeqCst);
            }
        }
    }
    let (connected_tx, connected) = std_mpsc::channel();
    let flag = acknowledged.clone();
    let _sleeper = rt.spawn(move || {
        let _goodbye = Goodbye(TcpStream::connect(addr).unwrap(), flag);
        connected_tx.send(()).unwrap();
        fiber_rt::sleep(Duration::from_secs(3600));
    });
    connected.recv().unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    let acker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        peer.write_all(b"ack").unwrap();
        peer
    });
    drop(rt);
    assert!(
        acknowledged.load(SeqCst),
        "the destructor's read was never woken"
    );
    acker.join().unwrap();
}

#[test]
fn a_socket_is_still_waited_for_when_its_waiting_worker_goes_to_run_a_spinner() {
    // Two workers, no preemption signal, the longest slice: the worker
    // that waited for sockets wakes a fiber that then spins on it for
    // 700 ms. The other worker, asleep meanwhile, has to take the waiting
    // over, or a socket's event waits for the monitor's next tick (up to
    // 500 ms here). Three rounds, so that a tick that happens to come
    // soon after the ping does not hide it.
    let rt = two_workers_with_rare_ticks();
    let (b, mut b_peer) = connected_pair();
    let echo = rt.spawn(move || {
        let mut byte = [0; 1];
        while (&b).read(&mut byte).unwrap() == 1 {
            (&b).write_all(&byte).unwrap();
        }
    });
    let mut pings = Vec::new();
    for _ in 0..3 {
        let (a, mut a_peer) = connected_pair();
        let spinner = rt.spawn(move || {
            (&a).read_exact(&mut [0; 2]).unwrap();
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(700) {
                std::hint::spin_loop();
            }
        });
        // Both fibers parked on their sockets, both workers idle.
        std::thread::sleep(Duration::from_millis(50));
        a_peer.write_all(b"go").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let start = Instant::now();
        b_peer.write_all(b"p").unwrap();
        b_peer.read_exact(&mut [0; 1]).unwrap();
        pings.push(start.elapsed());
        join_within_a_minute(spinner).unwrap();
    }
    assert!(
        pings.iter().all(|&ping| ping < Duration::from_millis(150)),
        "pings waited {pings:?} while a worker slept"
    );
    drop(b_peer);
    join_within_a_minute(echo).unwrap();
}

/// A connected pair: ours, and the peer's plain std end.
fn connected_pair() -> (TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (ours, _) = listener.accept().unwrap();
    (TcpStream::from_std(ours).unwrap(), peer)
}

#[test]
fn host_names_are_resolved_in_every_form_from_fibers_and_threads() {
    // "localhost" comes from the hosts file: no network needed. It may
    // resolve to ::1 first, where nothing listens: connect tries each.
    let rt = one_worker();
    let listener = TcpListener::bind(("localhost", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(listener.local_addr().unwrap().ip().is_loopback());
    let server = rt.spawn(move || {
        for _ in 0..3 {
            let (mut stream, _) = listener.accept().unwrap();
            stream.write_all(b"hi").unwrap();
        }
    });
    let read_hi = |mut stream: TcpStream| {
        let mut buf = [0; 2];
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    };
    let client = rt.spawn(move || {
        read_hi(TcpStream::connect(("localhost", port)).unwrap());
        read_hi(TcpStream::connect(format!("localhost:{port}")).unwrap());
        let found: Vec<SocketAddr> = fiber_rt::net::lookup_host("localhost:7").unwrap().collect();
        assert!(
            found.iter().all(|a| a.ip().is_loopback() && a.port() == 7),
            "{found:?}"
        );
        assert!(!found.is_empty());
        let udp = UdpSocket::bind("localhost:0").unwrap();
        udp.connect(("localhost", port)).unwrap();
    });
    join_within_a_minute(client).unwrap();
    // A plain thread resolves the name itself.
    read_hi(TcpStream::connect(("localhost", port)).unwrap());
    join_within_a_minute(server).unwrap();
}

#[test]
fn unix_datagrams_go_by_path_and_a_full_queue_parks_the_sender() {
    const DATAGRAMS: u32 = 2000;
    let dir = std::env::temp_dir().join(format!("fiber-net-dgram-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (server_path, client_path) = (dir.join("server.sock"), dir.join("client.sock"));
    let rt = one_worker();
    let server = UnixDatagram::bind(&server_path).unwrap();
    let client = UnixDatagram::bind(&client_path).unwrap();
    // Far more than the receiver's queue holds (`net.unix.max_dgram_qlen`,
    // 10 by default): the sender waits while it is full, parked, and only
    // the receiver, on the same worker, can empty it.
    let receiver = rt.spawn(move || {
        // Lets the queue fill first, and the sender wait.
        fiber_rt::sleep(Duration::from_millis(200));
        let mut buf = [0; 8];
        let mut last_from = None;
        for expected in 0..DATAGRAMS {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!(u32::from_le_bytes(buf[..n].try_into().unwrap()), expected);
            last_from = Some(from);
        }
        let client_addr = last_from.unwrap();
        assert!(client_addr.as_pathname().is_some());
        server.send_to_addr(b"done", &client_addr).unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        server.recv(&mut buf).unwrap_err().kind()
    });
    let sender = rt.spawn(move || {
        for i in 0..DATAGRAMS {
            client.send_to(&i.to_le_bytes(), &server_path).unwrap();
        }
        let mut buf = [0; 8];
        let n = client.recv(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    assert_eq!(join_within_a_minute(sender).unwrap(), b"done");
    assert_eq!(join_within_a_minute(receiver).unwrap(), ErrorKind::TimedOut);
    // Each refused send parked the sender again at once before (20 000
    // times in the receiver's 200 ms sleep).
    let parks = rt.metrics().parks;
    assert!(parks < 2000, "{parks} parks");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_unix_datagram_pair_ping_pongs_on_one_worker() {
    let (a, b) = UnixDatagram::pair().unwrap();
    datagram_ping_pong_on_one_worker(a, b, UnixDatagram::send, UnixDatagram::recv);
}

#[test]
fn udp_multicast_settings_read_back() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_multicast_loop_v4(false).unwrap();
    assert!(!socket.multicast_loop_v4().unwrap());
    socket.set_multicast_ttl_v4(7).unwrap();
    assert_eq!(socket.multicast_ttl_v4().unwrap(), 7);
}

#[test]
fn a_writer_waiting_for_room_is_woken_by_its_own_side_s_shutdown() {
    // The kernel tells a Unix stream's writer nothing of its own side's
    // shutdown while the buffer stays full: the shutdown itself wakes it,
    // and its next try reports the broken pipe. TCP too, for good measure.
    fn check<S: Send + Sync + 'static>(ours: S, shutdown: fn(&S) -> std::io::Result<()>)
    where
        for<'a> &'a S: Write,
    {
        let rt = one_worker();
        let ours = Arc::new(ours);
        let writer = rt.spawn({
            let ours = ours.clone();
            move || {
                let big = vec![7u8; 64 << 20];
                (&*ours).write_all(&big).map_err(|e| e.kind())
            }
        });
        let shut = rt.spawn(move || {
            // Long enough for the writer to fill the buffer and park.
            fiber_rt::sleep(Duration::from_millis(100));
            shutdown(&ours).unwrap();
        });
        join_within_a_minute(shut).unwrap();
        assert_eq!(
            join_within_a_minute(writer).unwrap(),
            Err(ErrorKind::BrokenPipe)
        );
    }
    let (ours, _peer) = UnixStream::pair().unwrap();
    check(ours, |s| s.shutdown(Shutdown::Write));
    let (listener, addr) = listener();
    let peer = std::thread::spawn(move || listener.accept().unwrap());
    let ours = TcpStream::connect(addr).unwrap();
    let _peer = peer.join().unwrap();
    check(ours, |s| s.shutdown(Shutdown::Write));
}

#[test]
fn a_plain_thread_waiting_for_room_sees_its_own_side_shut_down() {
    // A plain thread waits in `poll`, which the kernel never ends for this
    // on a Unix stream: it looks again every 100 ms. Whether or not a
    // fiber registered the socket first.
    for register_first in [false, true] {
        let (ours, _peer) = UnixStream::pair().unwrap();
        let ours = Arc::new(ours);
        let rt = one_worker();
        if register_first {
            let ours = ours.clone();
            run(&rt, move || (&*ours).write_all(b"x").unwrap());
        }
        let (done, finished) = std_mpsc::channel();
        let writer = ours.clone();
        std::thread::spawn(move || {
            let big = vec![7u8; 64 << 20];
            let _ = done.send((&*writer).write_all(&big).map_err(|e| e.kind()));
        });
        std::thread::sleep(Duration::from_millis(100));
        ours.shutdown(Shutdown::Write).unwrap();
        match finished.recv_timeout(Duration::from_secs(20)) {
            Ok(result) => assert_eq!(result, Err(ErrorKind::BrokenPipe)),
            Err(_) => panic!("the writer never saw the shutdown (registered: {register_first})"),
        }
    }
}

#[test]
fn a_writer_waiting_for_room_sees_the_peer_shut_its_read_half() {
    // The kernel sends a Unix stream's writer no edge when the peer shuts
    // its read half while the buffer is full: a waiting writer looks again
    // every 100 ms, from a fiber as from a thread, and then sees the
    // broken pipe.
    let rt = one_worker();
    let (ours, peer) = UnixStream::pair().unwrap();
    let writer = parked_writer(&rt, Arc::new(ours));
    peer.shutdown(Shutdown::Read).unwrap();
    assert_eq!(
        join_within_a_minute(writer).unwrap(),
        Err(ErrorKind::BrokenPipe)
    );
}

/// A fiber writing 64 MiB to `ours`, parked by the time this returns (the
/// buffer full); its join gives the write's error kind, if any.
fn parked_writer(rt: &Runtime, ours: Arc<UnixStream>) -> JoinHandle<Result<(), ErrorKind>> {
    let writer = rt.spawn(move || {
        let big = vec![7u8; 64 << 20];
        (&*ours).write_all(&big).map_err(|e| e.kind())
    });
    // Long enough for the writer to fill the buffer and park.
    std::thread::sleep(Duration::from_millis(100));
    writer
}

#[test]
fn a_writer_waiting_for_room_sees_a_shutdown_through_another_descriptor() {
    // A shutdown made with `libc::shutdown` on the raw descriptor bypasses
    // the handle, which cannot wake the writer itself: the writer's next
    // look finds it.
    use std::os::fd::AsRawFd;
    let rt = one_worker();
    let (ours, _peer) = UnixStream::pair().unwrap();
    let ours = Arc::new(ours);
    let writer = parked_writer(&rt, ours.clone());
    // SAFETY: the descriptor is open (`ours` holds it) and shutdown only
    // changes the socket's state.
    let shut = unsafe { libc::shutdown(ours.as_raw_fd(), libc::SHUT_WR) };
    assert_eq!(shut, 0);
    assert_eq!(
        join_within_a_minute(writer).unwrap(),
        Err(ErrorKind::BrokenPipe)
    );
}

#[test]
fn a_worker_asleep_since_before_the_first_socket_waits_for_its_events() {
    // Both workers fall asleep while no socket is in use. A fiber then
    // wakes a spinner into its own worker's LIFO slot (which signals no
    // sleeper), registers a socket by waiting on it, and parks. Its worker
    // spins, so the sleeping one must take the socket's event: woken by
    // the registration, it waits for sockets. Without that, the event
    // waited for the monitor's tick (half the slice: up to 500 ms here),
    // and three rounds all under 150 ms were unlikely (about 3%).
    let rt = two_workers_with_rare_ticks();
    let mut latencies = Vec::new();
    for _ in 0..3 {
        let (tx, rx) = fiber_rt::sync::mpsc::unbounded::<()>();
        let spinner = rt.spawn(move || {
            rx.recv().unwrap();
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(700) {
                std::hint::spin_loop();
            }
        });
        std::thread::sleep(Duration::from_millis(100)); // both workers asleep
        let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let ours = UnixStream::from_std(ours).unwrap();
        let reader = rt.spawn(move || {
            tx.send(()).unwrap();
            (&ours).read_exact(&mut [0u8; 1]).unwrap();
            Instant::now()
        });
        std::thread::sleep(Duration::from_millis(50)); // the reader parks
        let sent = Instant::now();
        peer.write_all(b"x").unwrap();
        latencies.push(join_within_a_minute(reader).unwrap() - sent);
        join_within_a_minute(spinner).unwrap();
    }
    assert!(
        latencies.iter().all(|l| *l < Duration::from_millis(150)),
        "{latencies:?}"
    );
}

#[test]
fn unix_sockets_bind_and_connect_by_address_abstract_names_included() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr as UnixAddr;
    let rt = one_worker();
    let name = format!("fiber-rt-test-{}", std::process::id());
    let stream_addr = UnixAddr::from_abstract_name(format!("{name}-stream")).unwrap();
    let listener = UnixListener::bind_addr(&stream_addr).unwrap();
    let server = rt.spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut got = [0u8; 5];
        stream.read_exact(&mut got).unwrap();
        stream.write_all(&got).unwrap();
    });
    let echoed = rt.spawn(move || {
        let mut stream = UnixStream::connect_addr(&stream_addr).unwrap();
        stream.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        stream.read_exact(&mut got).unwrap();
        got
    });
    join_within_a_minute(server).unwrap();
    assert_eq!(&join_within_a_minute(echoed).unwrap(), b"hello");

    let datagram_addr = UnixAddr::from_abstract_name(format!("{name}-datagram")).unwrap();
    let receiver = UnixDatagram::bind_addr(&datagram_addr).unwrap();
    let sender = UnixDatagram::unbound().unwrap();
    sender.connect_addr(&datagram_addr).unwrap();
    let got = rt.spawn(move || {
        let mut buf = [0u8; 8];
        let n = receiver.recv(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    sender.send(b"dgram").unwrap();
    assert_eq!(join_within_a_minute(got).unwrap(), b"dgram");
}
