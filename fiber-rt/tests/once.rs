//! One-time initialisation: `OnceLock` runs one closure however many
//! parties race for it, and the others wait parked, so an initialiser that
//! parks on the same worker still finishes; a closure that fails, panics
//! or is cancelled leaves the cell for the next party; `LazyLock` makes its
//! value once and is poisoned by a panic.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fiber_rt::sync::{oneshot, LazyLock, OnceLock};
use fiber_rt::Builder;

mod common;
use common::one_worker;

const LONG: Duration = Duration::from_secs(30);

#[test]
fn waiters_park_while_an_initialiser_parks_on_the_same_worker() {
    let rt = one_worker();
    let cell = Arc::new(OnceLock::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..8)
        .map(|i| {
            let (cell, runs) = (cell.clone(), runs.clone());
            rt.spawn(move || {
                *cell.get_or_init(|| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    // Parks: the worker must go on running the others,
                    // and come back here.
                    fiber_rt::sleep(Duration::from_millis(20));
                    i
                })
            })
        })
        .collect();
    let values: Vec<u32> = readers
        .into_iter()
        .map(|r| match r.join_timeout(LONG) {
            Ok(value) => value.unwrap(),
            Err(_) => panic!("a reader never got the value: the worker is stuck"),
        })
        .collect();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the closure ran more than once"
    );
    assert!(values.iter().all(|&v| v == values[0]), "{values:?}");
    assert_eq!(cell.get(), Some(&values[0]));
}

#[test]
fn a_failed_panicked_or_cancelled_initialiser_leaves_the_cell_to_the_next() {
    let rt = one_worker();
    let cell: Arc<OnceLock<&str>> = Arc::new(OnceLock::new());

    // An `Err` leaves it empty.
    assert_eq!(cell.get_or_try_init(|| Err("not yet")), Err("not yet"));
    assert!(cell.get().is_none());

    // A panic too, and a party waiting meanwhile initialises it then.
    let (started, wait_started) = oneshot::channel::<()>();
    let panicking = rt.spawn({
        let cell = cell.clone();
        move || {
            cell.get_or_init(|| {
                started.send(()).unwrap();
                fiber_rt::sleep(Duration::from_millis(10));
                panic!("init failed")
            });
        }
    });
    wait_started.recv().unwrap();
    let waiting = rt.spawn({
        let cell = cell.clone();
        move || *cell.get_or_init(|| "second")
    });
    assert!(panicking.join().unwrap_err().is_panic());
    assert_eq!(waiting.join().unwrap(), "second");

    // A cancelled initialiser, parked in its closure, also lets go.
    let other: Arc<OnceLock<&str>> = Arc::new(OnceLock::new());
    let (started, wait_started) = oneshot::channel::<()>();
    let stuck = rt.spawn({
        let other = other.clone();
        move || {
            other.get_or_init(|| {
                started.send(()).unwrap();
                fiber_rt::sleep(Duration::from_secs(3600));
                "never"
            });
        }
    });
    wait_started.recv().unwrap();
    let waiting = rt.spawn({
        let other = other.clone();
        move || *other.get_or_init(|| "after the cancel")
    });
    stuck.cancel();
    assert!(stuck.join().unwrap_err().is_cancelled());
    match waiting.join_timeout(LONG) {
        Ok(value) => assert_eq!(value.unwrap(), "after the cancel"),
        Err(_) => panic!("the waiter was never woken after the initialiser's cancel"),
    }
}

#[test]
fn set_take_into_inner_and_drop_keep_one_value() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let mut cell = OnceLock::new();
    assert!(cell.set(Counted(drops.clone())).is_ok());
    let refused = cell.set(Counted(drops.clone())).unwrap_err();
    drop(refused);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the refused value is given back"
    );
    assert!(cell.take().is_some());
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert!(cell.get().is_none());
    assert!(cell.set(Counted(drops.clone())).is_ok());
    drop(cell);
    assert_eq!(drops.load(Ordering::SeqCst), 3, "the cell drops its value");
    let cell = OnceLock::from(Counted(drops.clone()));
    assert!(cell.into_inner().is_some());
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

#[test]
fn fibers_and_threads_racing_for_a_cell_see_one_value() {
    let rt = Builder::new().workers(2).build().unwrap();
    for round in 0..200u32 {
        let cell = Arc::new(OnceLock::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let init = |cell: &OnceLock<u32>, runs: &AtomicUsize, by: u32| {
            *cell.get_or_init(|| {
                runs.fetch_add(1, Ordering::SeqCst);
                if by.is_multiple_of(2) {
                    fiber_rt::yield_now();
                }
                by
            })
        };
        let fibers: Vec<_> = (0..4)
            .map(|by| {
                let (cell, runs) = (cell.clone(), runs.clone());
                rt.spawn(move || init(&cell, &runs, by))
            })
            .collect();
        let threads: Vec<_> = (4..6)
            .map(|by| {
                let (cell, runs) = (cell.clone(), runs.clone());
                std::thread::spawn(move || init(&cell, &runs, by))
            })
            .collect();
        let mut seen: Vec<u32> = fibers.into_iter().map(|f| f.join().unwrap()).collect();
        seen.extend(threads.into_iter().map(|t| t.join().unwrap()));
        assert_eq!(runs.load(Ordering::SeqCst), 1, "round {round}");
        assert!(
            seen.iter().all(|&v| v == seen[0]),
            "round {round}: {seen:?}"
        );
    }
}

#[test]
fn a_lazy_value_is_made_once_and_a_panic_poisons_it() {
    static MADE: AtomicUsize = AtomicUsize::new(0);
    static SQUARES: LazyLock<Vec<u64>> = LazyLock::new(|| {
        MADE.fetch_add(1, Ordering::SeqCst);
        fiber_rt::sleep(Duration::from_millis(5));
        (0..10).map(|i| i * i).collect()
    });
    let rt = one_worker();
    let sums: Vec<u64> = (0..4)
        .map(|_| rt.spawn(|| SQUARES.iter().sum::<u64>()))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(sums, [285; 4]);
    assert_eq!(MADE.load(Ordering::SeqCst), 1);

    let broken: Arc<LazyLock<u32, Box<dyn FnOnce() -> u32 + Send>>> =
        Arc::new(LazyLock::new(Box::new(|| panic!("cannot make it"))));
    let first = rt.spawn({
        let broken = broken.clone();
        move || **broken
    });
    assert_eq!(
        first.join().unwrap_err().panic_message(),
        Some("cannot make it")
    );
    let again = rt.spawn(move || **broken);
    assert_eq!(
        again.join().unwrap_err().panic_message(),
        Some("LazyLock instance has previously been poisoned")
    );
}

#[test]
fn wait_parks_until_another_party_sets_the_cell() {
    let rt = one_worker();
    let cell: Arc<OnceLock<u32>> = Arc::new(OnceLock::new());
    let waiting = rt.spawn({
        let cell = cell.clone();
        move || *cell.wait()
    });
    let thread_waiting = std::thread::spawn({
        let cell = cell.clone();
        move || *cell.wait()
    });
    // An initialiser that gives up first: the waiters wait on.
    assert!(rt.block_on({
        let cell = cell.clone();
        move || {
            fiber_rt::sleep(Duration::from_millis(10));
            cell.get_or_try_init(|| Err::<u32, _>("not yet")).is_err()
        }
    }));
    assert!(!waiting.is_finished());
    rt.block_on({
        let cell = cell.clone();
        move || cell.set(5).unwrap()
    });
    match waiting.join_timeout(LONG) {
        Ok(value) => assert_eq!(value.unwrap(), 5),
        Err(_) => panic!("the waiting fiber was never woken"),
    }
    assert_eq!(thread_waiting.join().unwrap(), 5);
}

#[test]
fn a_call_from_inside_its_own_initialisation_panics_instead_of_waiting_for_itself() {
    let rt = one_worker();
    let cell: Arc<OnceLock<u32>> = Arc::new(OnceLock::new());
    let reentrant = rt.spawn({
        let cell = cell.clone();
        move || *cell.get_or_init(|| *cell.get_or_init(|| 1) + 1)
    });
    match reentrant.join_timeout(LONG) {
        Ok(result) => assert_eq!(
            result.unwrap_err().panic_message(),
            Some("OnceLock waited on from inside its own initialisation")
        ),
        Err(_) => panic!("the re-entrant call waited for itself"),
    }
    // The panic left the cell empty, for the next party.
    assert_eq!(*cell.get_or_init(|| 7), 7);
}

/// Fibers on two workers race for cells whose every initialiser calls
/// the cell again from inside: each call must panic, also that of an
/// initialiser that won the cell just as the one before gave it up (whose
/// clean-up once cleared the new one's name, and its re-entrant call
/// then waited for itself).
#[test]
fn re_entrance_panics_also_in_an_initialiser_that_took_over_from_a_failed_one() {
    const ROUNDS: usize = 10_000;
    const MESSAGE: &str = "OnceLock waited on from inside its own initialisation";
    // Thousands of these panics, each said on standard error otherwise.
    let said = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&MESSAGE) {
            said(info);
        }
    }));
    let rt = Builder::new().workers(2).build().unwrap();
    let rounds = Arc::new(AtomicUsize::new(0));
    let racing = rt.spawn({
        let rounds = rounds.clone();
        move || {
            for _ in 0..ROUNDS {
                let cell: Arc<OnceLock<u32>> = Arc::new(OnceLock::new());
                let racers: Vec<_> = (0..6)
                    .map(|_| {
                        let cell = cell.clone();
                        fiber_rt::spawn(move || *cell.get_or_init(|| *cell.get_or_init(|| 1) + 1))
                    })
                    .collect();
                for racer in racers {
                    let error = racer.join().unwrap_err();
                    assert_eq!(error.panic_message(), Some(MESSAGE));
                }
                rounds.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    // Stuck: a round that makes no progress for 2 s waits for good.
    let mut racing = Some(racing);
    let mut last = (0, std::time::Instant::now());
    while let Some(handle) = racing.take() {
        match handle.join_timeout(Duration::from_millis(100)) {
            Ok(result) => result.unwrap(),
            Err(handle) => racing = Some(handle),
        }
        let now = rounds.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, std::time::Instant::now());
        }
        assert!(
            last.1.elapsed() < Duration::from_secs(2),
            "a re-entrant initialiser waited for itself in round {now}"
        );
    }
}

#[test]
fn clone_eq_and_the_lazy_value_s_mutable_access_work_as_std_s() {
    let cell = OnceLock::new();
    assert_eq!(cell.clone(), OnceLock::<String>::new());
    cell.set("a".to_string()).unwrap();
    let copy = cell.clone();
    assert_eq!(copy.get().map(String::as_str), Some("a"));
    assert_eq!(copy, cell);

    let mut lazy: LazyLock<Vec<u32>> = LazyLock::default();
    assert!(LazyLock::get(&lazy).is_none());
    lazy.push(3); // made by `DerefMut`, then changed
    assert_eq!(LazyLock::get(&lazy), Some(&vec![3]));
    LazyLock::get_mut(&mut lazy).unwrap().push(4);
    assert_eq!(*LazyLock::force(&lazy), [3, 4]);
}
