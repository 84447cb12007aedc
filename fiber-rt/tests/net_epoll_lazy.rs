//! The process's epoll instance is made when a fiber first waits on a
//! socket, and not before: a program that forks may use sockets from
//! plain threads until then (see the book's limits chapter). A binary of
//! its own, as the instance is the process's.

use std::io::{Read, Write};

use fiber_rt::net::{TcpListener, TcpStream};

/// Open epoll instances of this process.
fn epoll_instances() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains("eventpoll"))
        .count()
}

#[test]
fn sockets_used_and_dropped_by_plain_threads_make_no_epoll_instance() {
    let before = epoll_instances();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    server.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    drop((client, server, listener));
    assert_eq!(epoll_instances(), before, "no fiber used a socket");

    // A fiber's first wait makes it.
    let rt = fiber_rt::Builder::new().workers(1).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = rt.spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut got = [0u8; 4];
        stream.read_exact(&mut got).unwrap();
        got
    });
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client.write_all(b"pong").unwrap();
    assert_eq!(&server.join().unwrap(), b"pong");
    assert_eq!(epoll_instances(), before + 1);
}
