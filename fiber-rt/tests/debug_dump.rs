//! Fiber dumps: every live fiber with its state, its age, and for a fiber
//! off its stack a backtrace naming the functions it is in; and the same
//! report on SIGQUIT.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fiber_rt::debug::{Dump, FiberInfo, FiberState};
use fiber_rt::sync::{mpsc, Mutex};
use fiber_rt::{Builder, FiberBuilder, Runtime};

#[inline(never)]
fn wait_here(rx: &mpsc::Receiver<u32>) -> Option<u32> {
    rx.recv().ok()
}

#[inline(never)]
fn lock_here(mutex: &Mutex<u32>) -> u32 {
    *mutex.lock()
}

#[inline(never)]
fn nap_here() -> u32 {
    fiber_rt::sleep(Duration::from_secs(60));
    // Work after the call keeps it from being a tail call, which would
    // leave no frame of this function on the stack.
    std::hint::black_box(3)
}

/// Ends a spinning fiber's loop when dropped, so a failed assertion does
/// not leave the runtime's drop waiting for it forever.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // Release: pairs with the spinner's Acquire load.
        self.0.store(false, Ordering::Release);
    }
}

/// Takes dumps until `ready` holds for one, or fails after 10 s.
fn dump_when(rt: &Runtime, ready: impl Fn(&Dump) -> bool) -> Dump {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dump = rt.dump();
        if ready(&dump) {
            return dump;
        }
        assert!(
            Instant::now() < deadline,
            "the dump never got there:\n{dump}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn named<'a>(dump: &'a Dump, name: &str) -> &'a FiberInfo {
    dump.fibers
        .iter()
        .find(|f| f.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no fiber {name} in\n{dump}"))
}

/// The index of the first frame in a function whose name contains `name`.
fn frame_of(fiber: &FiberInfo, name: &str) -> usize {
    fiber
        .backtrace
        .iter()
        .position(|f| f.function().contains(name))
        .unwrap_or_else(|| panic!("no frame in {name}:\n{fiber}"))
}

#[test]
fn a_dump_lists_parked_sleeping_and_running_fibers_with_backtraces() {
    // Without the preemption backstop, which would detach the spinner
    // below (it has no probes) from its worker after two slices.
    let rt = Builder::new()
        .workers(2)
        .preempt_signals(false)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::bounded::<u32>(1);
    let mutex = Arc::new(Mutex::new(7));
    let held = mutex.lock();
    let spin = Arc::new(AtomicBool::new(true));

    let receiver = FiberBuilder::new()
        .name("receiver")
        .spawn_on(&rt, move || wait_here(&rx))
        .unwrap();
    let locker = {
        let mutex = mutex.clone();
        FiberBuilder::new()
            .name("locker")
            .spawn_on(&rt, move || lock_here(&mutex))
            .unwrap()
    };
    let napper = FiberBuilder::new()
        .name("napper")
        .spawn_on(&rt, nap_here)
        .unwrap();
    let spinner = {
        let spin = spin.clone();
        FiberBuilder::new()
            .name("spinner")
            .spawn_on(&rt, move || {
                // Acquire: pairs with the Release store that ends the test.
                while spin.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
            })
            .unwrap()
    };
    let stop_spinner = StopOnDrop(spin.clone());
    let spawned = Instant::now();
    std::thread::sleep(Duration::from_millis(60));

    let dump = dump_when(&rt, |d| {
        d.fibers.len() == 4
            && d.fibers.iter().all(|f| {
                !matches!(f.state, FiberState::Ready)
                    && (matches!(f.state, FiberState::Running { .. }) || !f.backtrace.is_empty())
            })
    });
    let text = dump.to_string();
    println!("{text}");
    assert!(
        text.starts_with("fiber dump: 4 fibers on 2 workers\n"),
        "{text}"
    );

    let r = named(&dump, "receiver");
    assert_eq!(
        r.state,
        FiberState::Parked {
            on: "mpsc::Receiver::recv".into()
        }
    );
    // Innermost first: the channel's `recv` is called by `wait_here`.
    assert!(
        frame_of(r, "Receiver<T>::recv") < frame_of(r, "wait_here"),
        "{r}"
    );
    assert!(
        text.contains("\"receiver\" [parked on mpsc::Receiver::recv, "),
        "{text}"
    );

    let l = named(&dump, "locker");
    assert_eq!(
        l.state,
        FiberState::Parked {
            on: "Mutex::lock".into()
        }
    );
    frame_of(l, "lock_here");

    let n = named(&dump, "napper");
    match n.state {
        FiberState::Sleeping { until } => {
            assert!(until > Instant::now() + Duration::from_secs(30), "{n}")
        }
        ref other => panic!("napper is {other:?}"),
    }
    frame_of(n, "nap_here");
    assert!(text.contains("\"napper\" [sleeping, "), "{text}");

    let s = named(&dump, "spinner");
    assert!(
        matches!(s.state, FiberState::Running { worker } if worker < 2),
        "{s}"
    );
    assert!(
        s.backtrace.is_empty(),
        "a running fiber's stack is not read"
    );

    // Ages are measured on a coarse clock (a few ms per tick).
    let bound = spawned.elapsed() + Duration::from_millis(20);
    for fiber in &dump.fibers {
        assert!(fiber.age >= Duration::from_millis(40), "{fiber}");
        assert!(fiber.age <= bound, "{fiber}");
    }
    assert!(dump.fibers.windows(2).all(|w| w[0].id < w[1].id));

    drop(stop_spinner);
    spinner.join().unwrap();
    tx.send(5).unwrap();
    assert_eq!(receiver.join().unwrap(), Some(5));
    drop(held);
    assert_eq!(locker.join().unwrap(), 7);
    drop(rt);
    assert!(napper.join().unwrap_err().is_cancelled());
}

#[test]
fn a_queued_fiber_shows_as_ready() {
    // Without the backstop, so the spinner keeps the only worker.
    let rt = Builder::new()
        .workers(1)
        .preempt_signals(false)
        .build()
        .unwrap();
    let spin = Arc::new(AtomicBool::new(true));
    let started = Arc::new(AtomicBool::new(false));
    let spinner = {
        let (spin, started) = (spin.clone(), started.clone());
        rt.spawn(move || {
            // Release/Acquire: plain hand-shakes with the test thread.
            started.store(true, Ordering::Release);
            while spin.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        })
    };
    while !started.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    let stop_spinner = StopOnDrop(spin.clone());
    // The only worker is busy: this one waits in the queue.
    let queued = FiberBuilder::new()
        .name("queued")
        .spawn_on(&rt, || 1)
        .unwrap();
    let dump = rt.dump();
    assert_eq!(named(&dump, "queued").state, FiberState::Ready, "{dump}");
    assert!(dump
        .fibers
        .iter()
        .any(|f| f.state == FiberState::Running { worker: 0 }));
    drop(stop_spinner);
    spinner.join().unwrap();
    assert_eq!(queued.join().unwrap(), 1);
}

#[test]
fn a_fiber_the_backstop_moved_off_its_worker_shows_as_detached() {
    let rt = Builder::new()
        .workers(1)
        .time_slice(Duration::from_millis(2))
        .build()
        .unwrap();
    let spin = Arc::new(AtomicBool::new(true));
    let stop_spinner = StopOnDrop(spin.clone());
    let spinner = {
        let spin = spin.clone();
        FiberBuilder::new()
            .name("hog")
            .spawn_on(&rt, move || {
                // Acquire: pairs with the Release store of `StopOnDrop`.
                while spin.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
            })
            .unwrap()
    };
    // The worker goes on with other fibers on a fresh thread.
    let after = rt.spawn(|| 2);
    let dump = dump_when(&rt, |d| {
        d.fibers
            .iter()
            .any(|f| f.name.as_deref() == Some("hog") && f.state == FiberState::Detached)
    });
    assert!(named(&dump, "hog").backtrace.is_empty());
    assert!(dump
        .to_string()
        .contains("\"hog\" [running, detached from its worker, "));
    assert_eq!(after.join().unwrap(), 2);
    drop(stop_spinner);
    spinner.join().unwrap();
}

#[test]
fn dumps_taken_while_fibers_park_and_wake_never_crash() {
    let rt = Builder::new().workers(2).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let pairs: Vec<_> = (0..4)
        .map(|_| {
            let (ping_tx, ping_rx) = mpsc::bounded::<u32>(1);
            let (pong_tx, pong_rx) = mpsc::bounded::<u32>(1);
            let stop = stop.clone();
            let a = rt.spawn(move || {
                let mut n = 0;
                // Relaxed: a stop request; the channels order the rest.
                while !stop.load(Ordering::Relaxed) {
                    ping_tx.send(n).unwrap();
                    n = pong_rx.recv().unwrap() + 1;
                }
                n
            });
            let b = rt.spawn(move || {
                while let Ok(n) = ping_rx.recv() {
                    if pong_tx.send(n).is_err() {
                        break;
                    }
                }
            });
            (a, b)
        })
        .collect();
    let until = Instant::now() + Duration::from_millis(300);
    let mut dumps = 0;
    let mut frames = 0;
    while Instant::now() < until {
        let dump = rt.dump();
        frames += dump.fibers.iter().map(|f| f.backtrace.len()).sum::<usize>();
        dumps += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let mut round_trips = 0;
    for (a, b) in pairs {
        round_trips += a.join().unwrap();
        b.join().unwrap();
    }
    assert!(round_trips > 100, "{round_trips} round trips");
    assert!(dumps > 10, "{dumps} dumps");
    assert!(frames > 0, "some fibers were caught off their stacks");
}

/// Run as a child process by the test below: parks a fiber, sends itself
/// SIGQUIT, and waits to be killed.
fn sigquit_child() {
    let rt = Builder::new()
        .workers(1)
        .dump_on_sigquit(true)
        .build()
        .unwrap();
    let (_tx, rx) = mpsc::bounded::<u32>(1);
    let _waiter = FiberBuilder::new()
        .name("sigquit-waiter")
        .spawn_on(&rt, move || wait_here(&rx))
        .unwrap();
    dump_when(&rt, |d| d.fibers.iter().any(|f| f.in_function("wait_here")));
    // SAFETY: sends a signal to this process, whose handler is installed.
    unsafe { libc::kill(libc::getpid(), libc::SIGQUIT) };
    std::thread::sleep(Duration::from_secs(20));
}

/// Runs `test` of this binary again as a child process with `env` set
/// (so that it plays its child's part), and sends its standard error's
/// lines as they come, up to and including `last` if given.
fn child_stderr(
    test: &str,
    env: &str,
    last: Option<&'static str>,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .env(env, "1")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let end = last == Some(line.as_str());
            if lines_tx.send(line).is_err() || end {
                break;
            }
        }
    });
    (child, lines_rx)
}

#[test]
fn sigquit_prints_a_dump_to_stderr_and_the_process_lives_on() {
    if std::env::var_os("FIBER_SIGQUIT_CHILD").is_some() {
        return sigquit_child();
    }
    let (mut child, lines_rx) = child_stderr(
        "sigquit_prints_a_dump_to_stderr_and_the_process_lives_on",
        "FIBER_SIGQUIT_CHILD",
        Some("end of fiber dump"),
    );
    let mut report = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Ok(line) = lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        report.push_str(&line);
        report.push('\n');
        if line == "end of fiber dump" {
            break;
        }
    }
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(report.contains("SIGQUIT: fiber dump"), "{report}");
    assert!(
        report.contains("\"sigquit-waiter\" [parked on mpsc::Receiver::recv"),
        "{report}"
    );
    assert!(report.contains("wait_here"), "{report}");
    assert!(report.ends_with("end of fiber dump\n"), "{report}");
    assert!(alive, "the process keeps running after a dump");
}

/// SIGQUITs this child sends itself while it holds stderr's lock, which
/// keeps the dump thread from printing: more than a pipe holds (64 KiB).
const QUIT_STORM: usize = 70_000;

/// Run as a child process by the test below: a storm of SIGQUITs that
/// come while the dump thread cannot print, then a line saying it lived.
fn sigquit_storm_child() {
    let rt = Builder::new()
        .workers(1)
        .dump_on_sigquit(true)
        .build()
        .unwrap();
    let stderr = std::io::stderr();
    let lock = stderr.lock();
    for _ in 0..QUIT_STORM {
        // SAFETY: sends a signal to this thread, whose handler is installed.
        unsafe { libc::raise(libc::SIGQUIT) };
    }
    drop(lock);
    eprintln!("raised every SIGQUIT");
    // Time for the dumps the storm asked for to be printed.
    std::thread::sleep(Duration::from_secs(2));
    drop(rt);
    eprintln!("child done");
    std::process::exit(0);
}

/// A signal handler must never block: the SIGQUIT handler's write to its
/// pipe blocked once the pipe was full, so a storm of SIGQUITs that came
/// while the dump thread was held up (here, by stderr's lock, which the
/// blocked thread itself held) hung the process for good. Now a full
/// pipe drops the byte, and the SIGQUITs that wait in the pipe while a
/// dump is taken give one dump more, not one each.
#[test]
fn a_storm_of_sigquits_neither_blocks_the_process_nor_floods_stderr() {
    if std::env::var_os("FIBER_SIGQUIT_STORM_CHILD").is_some() {
        return sigquit_storm_child();
    }
    let (mut child, lines_rx) = child_stderr(
        "a_storm_of_sigquits_neither_blocks_the_process_nor_floods_stderr",
        "FIBER_SIGQUIT_STORM_CHILD",
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut dumps, mut raised, mut done) = (0, false, false);
    while let Ok(line) = lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        dumps += usize::from(line == "SIGQUIT: fiber dump");
        raised |= line == "raised every SIGQUIT";
        if line == "child done" {
            done = true;
            break;
        }
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    assert!(
        raised,
        "the child hung while it sent itself SIGQUITs ({dumps} dumps printed, {status})"
    );
    assert!(done, "the child did not finish: {status}");
    assert!(
        (1..=16).contains(&dumps),
        "{dumps} dumps for a storm of {QUIT_STORM} SIGQUITs"
    );
}

#[fiber_rt::fiber(name = "waits for the gate")]
fn gatekeeper(gate: &fiber_rt::sync::WaitGroup) -> usize {
    // Parked here while the test dumps.
    gate.wait();
    fiber_rt::current()
        .and_then(|me| me.node)
        .map_or(0, |node| node.len())
}

fiber_rt::depends! {
    graph Gated(gate: fiber_rt::sync::WaitGroup) {
        gatekeeper(gate);
    }
}

#[test]
fn a_fiber_parked_in_a_graph_node_shows_the_node() {
    let rt = Builder::new().workers(2).build().unwrap();
    let gate = fiber_rt::sync::WaitGroup::new();
    gate.add(1);
    let run = rt.spawn({
        let gate = gate.clone();
        move || fiber_rt::run(Gated::new(gate))
    });
    let dump = dump_when(&rt, |dump| {
        dump.fibers
            .iter()
            .any(|f| f.node.as_deref() == Some("waits for the gate"))
    });
    assert!(
        dump.to_string().contains("(node waits for the gate)"),
        "{dump}"
    );
    gate.done();
    // The node saw its own name through `current`.
    let out = run.join().unwrap().unwrap();
    assert_eq!(out.gatekeeper, "waits for the gate".len());
    // Outside a node, no node.
    assert_eq!(rt.block_on(|| fiber_rt::current().unwrap().node), None);
}

#[test]
fn a_sleep_until_centuries_away_shows_as_that_far_away() {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let rt = Builder::new().workers(1).build().unwrap();
    // Past what a u64 of nanoseconds counts (584 years).
    let until = Instant::now() + 600 * YEAR;
    let napper = FiberBuilder::new()
        .name("far")
        .spawn_on(&rt, move || fiber_rt::sleep_until(until))
        .unwrap();
    let begun = Instant::now();
    let shown = loop {
        let dump = rt.dump();
        if let FiberState::Sleeping { until } = named(&dump, "far").state {
            break until;
        }
        assert!(begun.elapsed() < Duration::from_secs(10), "{dump}");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(
        shown > Instant::now() + 500 * YEAR,
        "shown {:?} away",
        shown - Instant::now()
    );
    napper.cancel();
}
