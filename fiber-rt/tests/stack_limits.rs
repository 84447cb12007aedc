//! What happens at the edges of stack memory, each run in a child process
//! because the outcome is an abort or an exhausted address space.

use std::process::{Command, Output};

use fiber_rt::fiber::Fiber;
use fiber_rt::stack::Stack;

/// Runs the test `name` of this binary in a child process with `FIBER_CHILD`
/// set, and returns what it did.
fn run_child(name: &str) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("FIBER_CHILD", name)
        .output()
        .unwrap()
}

fn is_child(name: &str) -> bool {
    std::env::var("FIBER_CHILD").as_deref() == Ok(name)
}

#[inline(never)]
fn bottomless(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    // The test never lets this end: the stack overflows first.
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    bottomless(depth + 1) + std::hint::black_box(frame)[0]
}

#[test]
fn overflow_names_the_fiber_and_aborts() {
    if is_child("overflow_names_the_fiber_and_aborts") {
        let stack = Stack::new(64 * 1024).unwrap();
        let mut fib =
            Fiber::<(), (), u64>::with_stack(stack, "parser", |_, ()| bottomless(0)).unwrap();
        let _ = fib.resume(());
        unreachable!("the overflow aborts the process");
    }
    let out = run_child("overflow_names_the_fiber_and_aborts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fiber 'parser' has overflowed its stack (64 KiB)"),
        "stderr was: {stderr}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "status {:?}",
        out.status
    );
}

#[test]
fn faults_that_are_not_overflows_still_kill_with_sigsegv() {
    if is_child("faults_that_are_not_overflows_still_kill_with_sigsegv") {
        // Install our handler first, then fault somewhere else entirely.
        let mut fib = Fiber::<(), (), ()>::new(|_, ()| ()).unwrap();
        fib.resume(()).unwrap();
        // SAFETY: deliberately not safe: the point is the fault.
        unsafe { std::ptr::write_volatile(16 as *mut u64, 1) };
        unreachable!();
    }
    let out = run_child("faults_that_are_not_overflows_still_kill_with_sigsegv");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "status {:?}",
        out.status
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("overflowed"));
}

fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn running_out_of_mappings_names_the_sysctl() {
    let limit = max_map_count();
    if limit > 200_000 {
        eprintln!("vm.max_map_count is {limit}: too high to exhaust in a test, skipped");
        return;
    }
    if is_child("running_out_of_mappings_names_the_sysctl") {
        let mut stacks = Vec::new();
        let err = loop {
            match Stack::new(16 * 1024) {
                Ok(s) => stacks.push(s),
                Err(e) => break e,
            }
        };
        println!("STACKS={} ERROR={err}", stacks.len());
        // A stack whose guard page could not be made was not kept as a
        // guarded one: whatever the next take hands out has its guard.
        if let Ok(next) = Stack::new(16 * 1024) {
            let debug = format!("{next:?}");
            let hex = debug.split("base: 0x").nth(1).expect("the base");
            let hex: String = hex.chars().take_while(char::is_ascii_hexdigit).collect();
            let base = usize::from_str_radix(&hex, 16).unwrap();
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            let lowest = maps.lines().find(|line| {
                let (lo, hi) = line.split(' ').next().unwrap().split_once('-').unwrap();
                let lo = usize::from_str_radix(lo, 16).unwrap();
                let hi = usize::from_str_radix(hi, 16).unwrap();
                (lo..hi).contains(&base)
            });
            let guarded = lowest.is_some_and(|line| line.split(' ').nth(1) == Some("---p"));
            println!("NEXT_GUARDED={guarded}");
        }
        // Without guard pages, neighbouring stacks share one mapping: far
        // more of them fit than the limit allows guarded ones.
        drop(stacks);
        let unguarded: Vec<Stack> = (0..100_000)
            .map(|_| Stack::with_guard(16 * 1024, false).unwrap())
            .collect();
        println!("UNGUARDED={}", unguarded.len());
        return;
    }
    let out = run_child("running_out_of_mappings_names_the_sysctl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.split_once("STACKS=").expect("child reports").1;
    let count: usize = line.split(' ').next().unwrap().parse().unwrap();
    assert!(
        count > limit / 3,
        "only {count} guarded stacks before the limit {limit}"
    );
    assert!(line.contains("vm.max_map_count"), "{line}");
    assert!(line.contains("without guard"), "{line}");
    assert!(stdout.contains("UNGUARDED=100000"), "{stdout}");
    assert!(!stdout.contains("NEXT_GUARDED=false"), "{stdout}");
}

#[fiber_rt::fiber(name = "deep parser")]
fn deep_parse() -> u64 {
    bottomless(0)
}

fiber_rt::depends! {
    graph Deep {
        deep_parse();
    }
}

#[test]
fn an_overflow_in_a_graph_node_names_the_node() {
    if is_child("an_overflow_in_a_graph_node_names_the_node") {
        let rt = fiber_rt::Builder::new().workers(1).build().unwrap();
        let _ = rt.run(Deep);
        unreachable!("the overflow aborts the process");
    }
    let out = run_child("an_overflow_in_a_graph_node_names_the_node");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("running graph node 'deep parser', has overflowed its stack"),
        "stderr was: {stderr}"
    );
}

/// A handler installed without `SA_ONSTACK`, as `signal(3)` installs one.
extern "C" fn on_usr1(_: libc::c_int) {
    let msg = b"SIGUSR1 HANDLED\n";
    // SAFETY: write(2) is async-signal-safe; the buffer is static.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// Recurses until the stack pointer is below `limit`, then raises SIGUSR1.
#[inline(never)]
fn raise_below(limit: usize) -> usize {
    let here = 0u8;
    let sp = std::hint::black_box(&here) as *const u8 as usize;
    if sp < limit {
        // SAFETY: raise(3) has no preconditions.
        unsafe { libc::raise(libc::SIGUSR1) };
        println!("WENT ON");
        return sp;
    }
    let frame = std::hint::black_box([0u8; 64]);
    raise_below(limit) + usize::from(std::hint::black_box(frame)[0])
}

#[test]
fn a_signal_frame_that_does_not_fit_is_an_overflow() {
    if is_child("a_signal_frame_that_does_not_fit_is_an_overflow") {
        // SAFETY: installs a handler that only writes to stderr.
        let old = unsafe { libc::signal(libc::SIGUSR1, on_usr1 as *const () as usize) };
        assert_ne!(old, libc::SIG_ERR);
        let stack = Stack::new(64 * 1024).unwrap();
        let mut fib = Fiber::<(), (), usize>::with_stack(stack, "handler", |_, ()| {
            let here = 0u8;
            let sp = std::hint::black_box(&here) as *const u8 as usize;
            let base = sp & !(64 * 1024 - 1);
            // 1 KiB above the guard page: room for raise(3), none for the
            // kernel's signal frame (over 1 KiB on any x86_64), let alone
            // the handler.
            raise_below(base + 4096 + 1024)
        })
        .unwrap();
        let _ = fib.resume(());
        unreachable!("the overflow aborts the process");
    }
    let out = run_child("a_signal_frame_that_does_not_fit_is_an_overflow");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains("WENT ON"), "the fiber went on: {stdout}");
    assert!(
        stderr.contains("fiber 'handler' has overflowed its stack (64 KiB)"),
        "stderr was: {stderr}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "status {:?}",
        out.status
    );
}

/// Recurses until the stack pointer is below `limit`, then writes through
/// a non-canonical address: a general-protection fault, which also comes
/// as a SIGSEGV from the kernel with no address.
#[inline(never)]
fn protection_fault_below(limit: usize) -> usize {
    let here = 0u8;
    let sp = std::hint::black_box(&here) as *const u8 as usize;
    if sp < limit {
        // SAFETY: deliberately not safe: the point is the fault.
        unsafe { std::ptr::write_volatile(0x8000_0000_0000_0000_usize as *mut u64, 1) };
        return sp;
    }
    let frame = std::hint::black_box([0u8; 64]);
    protection_fault_below(limit) + usize::from(std::hint::black_box(frame)[0])
}

#[test]
fn a_protection_fault_near_the_guard_page_is_not_an_overflow() {
    if is_child("a_protection_fault_near_the_guard_page_is_not_an_overflow") {
        let stack = Stack::new(64 * 1024).unwrap();
        let mut fib = Fiber::<(), (), usize>::with_stack(stack, "wild", |_, ()| {
            let here = 0u8;
            let sp = std::hint::black_box(&here) as *const u8 as usize;
            protection_fault_below((sp & !(64 * 1024 - 1)) + 4096 + 1024)
        })
        .unwrap();
        let _ = fib.resume(());
        unreachable!("the fault kills the process");
    }
    let out = run_child("a_protection_fault_near_the_guard_page_is_not_an_overflow");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "status {:?}",
        out.status
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("overflowed"));
}

#[test]
fn idle_pooled_stacks_of_the_other_kind_do_not_fill_the_arena() {
    if is_child("idle_pooled_stacks_of_the_other_kind_do_not_fill_the_arena") {
        // The arena of 1 GiB stacks has room for 1024 of them.
        let mut unguarded = Vec::new();
        while let Ok(stack) = Stack::with_guard(1 << 30, false) {
            unguarded.push(stack);
        }
        println!("UNGUARDED={}", unguarded.len());
        // All of them idle in the pool now, none in use.
        drop(unguarded);
        match Stack::new(1 << 30) {
            Ok(stack) => println!("GUARDED={}", stack.is_guarded()),
            Err(e) => println!("GUARDED_ERROR={e}"),
        }
        return;
    }
    let out = run_child("idle_pooled_stacks_of_the_other_kind_do_not_fill_the_arena");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("UNGUARDED="), "{stdout}");
    assert!(stdout.contains("GUARDED=true"), "{stdout}");
}
