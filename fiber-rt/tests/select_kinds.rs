//! `Select` over `watch` and `broadcast` receivers and fibers' handles:
//! ready with a change, a message, a lag, a closed channel or a finished
//! fiber; from fibers and plain threads; and no wake-up lost to a sender
//! on another thread.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use fiber_rt::sync::{broadcast, mpsc, watch, Select};
use fiber_rt::{Builder, JoinHandle};

/// Long enough that only a lost wake-up runs out of it: it turns a hang
/// into a failure.
const LOST: Duration = Duration::from_secs(60);

/// Joins `handle` from a plain thread, failing the test instead of hanging
/// it if the fiber is not done within [`LOST`]: a `Select` that missed its
/// wake-up parks for good.
fn join_unless_lost<T: Send + 'static>(handle: JoinHandle<T>) -> T {
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(handle.join());
    });
    rx.recv_timeout(LOST).expect("every round woken").unwrap()
}

#[test]
fn a_watch_that_changes_first_is_the_one_named() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let (level, mut rx_level) = watch::channel(0u32);
        let (_jobs, rx_jobs) = mpsc::unbounded::<u32>();
        let setter = fiber_rt::spawn(move || {
            fiber_rt::yield_now();
            level.send(5).unwrap();
            level
        });
        let (i, w) = {
            let mut sel = Select::new();
            let w = sel.recv(&rx_level);
            sel.recv(&rx_jobs);
            (sel.ready(), w)
        };
        assert_eq!(i, w);
        assert_eq!(rx_level.has_changed(), Ok(true));
        assert_eq!(*rx_level.borrow_and_update(), 5);
        let level = setter.join().unwrap();
        // Seen now: not ready until the next change.
        let mut sel = Select::new();
        sel.recv(&rx_level);
        sel.recv(&rx_jobs);
        assert_eq!(sel.try_ready(), None);
        level.send(6).unwrap();
        assert_eq!(sel.try_ready(), Some(w));
    });
}

#[test]
fn a_broadcast_receiver_is_ready_after_a_send_and_after_a_lag() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let (tx, mut rx) = broadcast::channel::<u32>(2);
        let (_other_tx, other) = mpsc::unbounded::<u32>();
        {
            let mut sel = Select::new();
            let b = sel.recv(&rx);
            sel.recv(&other);
            assert_eq!(sel.try_ready(), None);
            let tx = tx.clone();
            let sender = fiber_rt::spawn(move || {
                fiber_rt::yield_now();
                tx.send(1).unwrap();
            });
            assert_eq!(sel.ready(), b);
            sender.join().unwrap();
        }
        assert_eq!(rx.try_recv(), Ok(1));
        // Pushed out of the ring before this receiver took them: ready to
        // say how many it missed.
        (2..=6).for_each(|n| assert_eq!(tx.send(n), Ok(1)));
        let (i, l) = {
            let mut sel = Select::new();
            sel.recv(&other);
            let l = sel.recv(&rx);
            (sel.ready(), l)
        };
        assert_eq!(i, l);
        assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Lagged(3)));
        assert_eq!(rx.try_recv(), Ok(5));
        assert_eq!(rx.try_recv(), Ok(6));
    });
}

#[test]
fn a_clone_that_took_its_message_does_not_make_the_other_ready() {
    let (tx, rx) = broadcast::channel::<u32>(4);
    let mut clone = rx.clone();
    tx.send(1).unwrap();
    assert_eq!(clone.try_recv(), Ok(1));
    let mut sel = Select::new();
    sel.recv(&clone);
    assert_eq!(sel.try_ready(), None, "the clone took its copy");
    drop(sel);
    let mut sel = Select::new();
    sel.recv(&rx);
    assert_eq!(sel.try_ready(), Some(0), "the original has not");
}

#[test]
fn a_gone_sender_makes_watch_and_broadcast_receivers_ready() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let (level, rx_level) = watch::channel(0u32);
        let (news, mut rx_news) = broadcast::channel::<u32>(4);
        let dropper = fiber_rt::spawn(move || {
            fiber_rt::yield_now();
            drop(level);
        });
        let mut sel = Select::new();
        let w = sel.recv(&rx_level);
        sel.recv(&rx_news);
        assert_eq!(sel.ready(), w);
        drop(sel);
        assert_eq!(rx_level.has_changed(), Err(watch::RecvError));
        dropper.join().unwrap();
        let dropper = fiber_rt::spawn(move || {
            fiber_rt::yield_now();
            drop(news);
        });
        let i = {
            let mut sel = Select::new();
            sel.recv(&rx_news);
            sel.ready()
        };
        assert_eq!(i, 0);
        assert_eq!(rx_news.try_recv(), Err(broadcast::TryRecvError::Closed));
        dropper.join().unwrap();
        // Still ready, each: the news stays.
        let mut sel = Select::new();
        sel.recv(&rx_level);
        assert_eq!(sel.try_ready(), Some(0));
        let mut sel = Select::new();
        sel.recv(&rx_news);
        assert_eq!(sel.try_ready(), Some(0));
    });
}

#[test]
fn a_handle_is_ready_once_its_fiber_has_finished() {
    let rt = Builder::new().workers(2).build().unwrap();
    rt.block_on(|| {
        let (_tx, idle) = mpsc::unbounded::<u32>();
        let (go, wait_go) = mpsc::unbounded::<()>();
        let mut fiber = fiber_rt::spawn(move || {
            wait_go.recv().unwrap();
            "done"
        });
        let timed_out = {
            let mut sel = Select::new();
            sel.recv(&idle);
            let j = sel.join(&mut fiber);
            // Not finished: a timed-out round takes its waiter back.
            let timed_out = sel.ready_timeout(Duration::from_millis(5));
            assert_eq!(sel.try_ready(), None);
            go.send(()).unwrap();
            assert_eq!(sel.ready(), j);
            timed_out
        };
        assert_eq!(timed_out, None);
        assert!(fiber.is_finished());
        assert_eq!(fiber.join().unwrap(), "done");
        // A fiber finished before the select: ready at once, and a
        // panicked one too (its join says so).
        let mut done = fiber_rt::spawn(|| 1);
        let mut panicked = fiber_rt::spawn(|| panic!("on purpose"));
        while !done.is_finished() || !panicked.is_finished() {
            fiber_rt::yield_now();
        }
        {
            let mut sel = Select::new();
            sel.recv(&idle);
            sel.join(&mut done);
            assert_ne!(sel.ready(), 0);
        }
        {
            let mut sel = Select::new();
            let p = sel.join(&mut panicked);
            assert_eq!(sel.ready(), p);
        }
        assert_eq!(done.join().unwrap(), 1);
        assert!(panicked.join().unwrap_err().is_panic());
    });
}

/// A `Select` is covariant in its borrows' lifetime, handles included: one
/// made over longer borrows passes where one of shorter borrows is asked
/// for. (Compiling is the test.)
#[test]
fn a_select_over_longer_borrows_passes_for_one_of_shorter_borrows() {
    fn shorten<'short, 'long: 'short>(sel: Select<'long>) -> Select<'short> {
        sel
    }
    let rt = Builder::new().workers(1).build().unwrap();
    rt.block_on(|| {
        let (_tx, idle) = mpsc::unbounded::<u32>();
        let mut fiber = fiber_rt::spawn(|| 7);
        let mut sel = Select::new();
        sel.recv(&idle);
        let j = sel.join(&mut fiber);
        let mut sel = shorten(sel);
        assert_eq!(sel.ready(), j);
        drop(sel);
        assert_eq!(fiber.join().unwrap(), 7);
    });
}

#[test]
fn a_plain_thread_selects_over_watch_broadcast_and_a_handle() {
    let rt = Builder::new().workers(2).build().unwrap();
    let (level, mut rx_level) = watch::channel(0u32);
    let (news, mut rx_news) = broadcast::channel::<u32>(4);
    let (go, wait_go) = mpsc::unbounded::<()>();
    let mut fiber = rt.spawn(move || {
        level.send(1).unwrap();
        wait_go.recv().unwrap();
        news.send(2).unwrap();
        wait_go.recv().unwrap();
        7
    });
    let mut got = Vec::new();
    loop {
        let i = {
            let mut sel = Select::new();
            sel.recv(&rx_level);
            sel.recv(&rx_news);
            sel.join(&mut fiber);
            sel.ready_timeout(LOST).expect("woken")
        };
        // A sender gone (with the fiber) leaves its receiver ready for
        // good: the fiber is done.
        match i {
            0 => match rx_level.has_changed() {
                Ok(_) => got.push(*rx_level.borrow_and_update()),
                Err(_) => break,
            },
            1 => match rx_news.try_recv() {
                Ok(n) => got.push(n),
                Err(broadcast::TryRecvError::Closed) => break,
                Err(e) => panic!("{e}"),
            },
            _ => break,
        }
        // One step at a time: each select sees a change it was waiting for.
        let _ = go.send(());
    }
    assert_eq!(fiber.join().unwrap(), 7);
    assert_eq!(got, [1, 2]);
}

/// A sender on another thread sends just as the selector registers; every
/// round must wake (a lost wake-up parks the selector for good).
#[test]
fn no_wake_up_is_lost_to_a_sender_on_another_thread() {
    const ROUNDS: u32 = 2000;
    let rt = Builder::new().workers(2).build().unwrap();
    let (level, mut rx_level) = watch::channel(0u32);
    let (news, mut rx_news) = broadcast::channel::<u32>(4);
    let (go, wait_go) = std_mpsc::channel::<u32>();
    // A plain thread: runs alongside the selecting fiber for sure.
    let sender = std::thread::spawn(move || {
        while let Ok(round) = wait_go.recv() {
            if round % 2 == 0 {
                level.send(round).unwrap();
            } else {
                news.send(round).unwrap();
            }
        }
    });
    let selector = rt.spawn(move || {
        let (_idle_tx, idle) = mpsc::unbounded::<u32>();
        for round in 0..ROUNDS {
            go.send(round).unwrap();
            let i = {
                let mut sel = Select::new();
                sel.recv(&idle);
                sel.recv(&rx_level);
                sel.recv(&rx_news);
                sel.ready()
            };
            if round % 2 == 0 {
                assert_eq!(i, 1);
                assert_eq!(*rx_level.borrow_and_update(), round);
            } else {
                assert_eq!(i, 2);
                assert_eq!(rx_news.try_recv(), Ok(round));
            }
        }
    });
    join_unless_lost(selector);
    sender.join().unwrap();
}

/// Fibers that finish on the other worker just as the selector watches
/// their handles: every round must wake.
#[test]
fn no_wake_up_is_lost_to_a_fiber_finishing_on_another_worker() {
    const ROUNDS: u32 = 1000;
    let rt = Builder::new().workers(2).build().unwrap();
    let selector = rt.spawn(|| {
        let (_idle_tx, idle) = mpsc::unbounded::<u32>();
        for round in 0..ROUNDS {
            let mut fiber = fiber_rt::spawn(move || round);
            let i = {
                let mut sel = Select::new();
                sel.recv(&idle);
                sel.join(&mut fiber);
                sel.ready()
            };
            assert_eq!(i, 1);
            assert!(fiber.is_finished());
            assert_eq!(fiber.join().unwrap(), round);
        }
    });
    join_unless_lost(selector);
}

/// A start hook whose `Select` waits on a fiber's handle alone, with no
/// time-out, waits for a fiber's end as a join does, and its worker runs
/// no fiber until the hook returns: it panics instead of hanging, and
/// leaves the handle as it was, to be joined elsewhere.
#[test]
fn a_start_hook_that_selects_on_handles_alone_panics_instead_of_hanging() {
    let (said, told) = std_mpsc::channel();
    let said = std::sync::Mutex::new(said);
    let rt = Builder::new()
        .workers(1)
        .on_thread_start(move || {
            let mut fiber = fiber_rt::spawn(|| 1);
            let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut sel = Select::new();
                sel.join(&mut fiber);
                sel.ready()
            }));
            let message = match waited {
                Ok(i) => format!("ready: {i}"),
                Err(payload) => payload
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_default(),
            };
            let _ = said.lock().unwrap().send((message, fiber));
        })
        .build()
        .unwrap();
    let Ok((message, fiber)) = told.recv_timeout(LOST) else {
        // Its drop would wait for the hook for good.
        std::mem::forget(rt);
        panic!("the start hook's select hangs");
    };
    assert!(
        message.contains("Select::ready in a thread start hook"),
        "{message}"
    );
    assert_eq!(join_unless_lost(fiber), 1);
}
