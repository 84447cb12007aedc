//! An idle runtime sleeps: its workers and timer use next to no CPU. Alone
//! in its own test binary, so no other test's work is counted.

use std::time::Duration;

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
