//! Where stacks live in the address space: one arena per size class, so that
//! an address alone tells which stack (and which header) it belongs to.
//!
//! A stack of `2^k` bytes is placed in the range `[k << 40, (k + 1) << 40)`
//! and aligned to its size. From any address inside it, `k = addr >> 40`
//! gives the size, and `(addr | (2^k - 1)) + 1` its top, where the header is.
//! This is what "find the current fiber by masking rsp" needs when fibers
//! have stacks of different sizes, and it stays right when a fiber moves to
//! another thread: the stack moves with it, a thread-local would not.
//!
//! The arenas (14 TiB to 31 TiB) sit far from where Linux puts the heap
//! (just above the executable) and `mmap` results (down from 128 TiB).
//! Mappings are made with `MAP_FIXED_NOREPLACE`, so nothing is ever clobbered.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// log2 of the address range given to each size class.
pub(crate) const ARENA_SHIFT: u32 = 40;
/// Smallest stack: 16 KiB.
pub(crate) const MIN_SHIFT: u32 = 14;
/// Largest stack: 1 GiB.
pub(crate) const MAX_SHIFT: u32 = 30;
const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;

/// Bump pointer (in slots) of each class's arena.
static NEXT_SLOT: [AtomicUsize; CLASSES] = [const { AtomicUsize::new(0) }; CLASSES];
/// Slots whose mapping was given back to the kernel, for reuse.
static FREE_SLOTS: [Mutex<Vec<usize>>; CLASSES] = [const { Mutex::new(Vec::new()) }; CLASSES];
/// Mappings (base, shift) the kernel refused to unmap, tried again at the
/// next map or unmap. Unmapping part of a mapping that neighbours merged
/// into splits it, which fails at the process's limit on mappings.
static UNMAP_LATER: Mutex<Vec<(usize, u32)>> = Mutex::new(Vec::new());
/// Whether `UNMAP_LATER` may hold anything: skips its lock otherwise.
static ANY_UNMAP_LATER: AtomicBool = AtomicBool::new(false);

/// The size class (log2 of the size) of the stack holding `addr`, if `addr`
/// lies in a stack arena.
#[inline(always)]
pub(crate) fn class_of(addr: usize) -> Option<u32> {
    let k = (addr >> ARENA_SHIFT) as u32;
    (MIN_SHIFT..=MAX_SHIFT).contains(&k).then_some(k)
}

/// The top (one past the highest byte) of the stack holding `addr`.
#[inline(always)]
pub(crate) fn top_of(addr: usize) -> Option<usize> {
    let k = class_of(addr)?;
    Some((addr | ((1usize << k) - 1)) + 1)
}

fn slot_addr(shift: u32, slot: usize) -> usize {
    (shift as usize) << ARENA_SHIFT | slot << shift
}

/// Maps `2^shift` read-write bytes aligned to their size inside the class's
/// arena, and returns the lowest address.
pub(crate) fn map(shift: u32) -> io::Result<usize> {
    retry_unmaps();
    let class = (shift - MIN_SHIFT) as usize;
    let size = 1usize << shift;
    let slots = 1usize << (ARENA_SHIFT - shift);
    let reuse = FREE_SLOTS[class]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop();
    let mut slot = match reuse {
        Some(slot) => slot,
        // Relaxed: the counter only hands out distinct numbers.
        None => NEXT_SLOT[class].fetch_add(1, Ordering::Relaxed),
    };
    loop {
        if slot >= slots {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "the arena for {} stacks is full ({slots} stacks)",
                    human(size)
                ),
            ));
        }
        let want = slot_addr(shift, slot);
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; on
        // success we own the range.
        let got = unsafe {
            libc::mmap(
                want as *mut libc::c_void,
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE
                    | libc::MAP_ANONYMOUS
                    | libc::MAP_NORESERVE
                    | libc::MAP_STACK
                    | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if got == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EEXIST) {
                // Someone else mapped here: skip the slot for good.
                slot = NEXT_SLOT[class].fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // The slot stays usable: a later map may succeed there (once
            // the process holds fewer mappings, say).
            give_back_slot(class, slot);
            return Err(map_error(err, size));
        }
        if got as usize != want {
            // A kernel older than 4.17 takes the address as a hint only.
            // SAFETY: `got` is the mapping the kernel just gave us.
            unsafe { libc::munmap(got, size) };
            return Err(io::Error::other(format!(
                "fiber stacks need MAP_FIXED_NOREPLACE (Linux 4.17 or later): \
                 asked for {want:#x}, the kernel gave {:#x}",
                got as usize
            )));
        }
        return Ok(want);
    }
}

/// Gives a mapping made by [`map`] back to the kernel.
///
/// # Safety
///
/// `base` was returned by `map(shift)` and nothing uses the memory any more.
pub(crate) unsafe fn unmap(base: usize, shift: u32) {
    retry_unmaps();
    // SAFETY: forwarded from the caller.
    if !unsafe { try_unmap(base, shift) } {
        UNMAP_LATER
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((base, shift));
        // Relaxed: a later caller that misses it tries at the call after.
        ANY_UNMAP_LATER.store(true, Ordering::Relaxed);
    }
}

/// Unmaps a mapping made by [`map`] and frees its slot; `false` if the
/// kernel refused.
///
/// # Safety
///
/// As for [`unmap`].
unsafe fn try_unmap(base: usize, shift: u32) -> bool {
    // SAFETY: the caller hands over a mapping of exactly this size.
    let rc = unsafe { libc::munmap(base as *mut libc::c_void, 1usize << shift) };
    if rc == 0 {
        let slot = (base - slot_addr(shift, 0)) >> shift;
        give_back_slot((shift - MIN_SHIFT) as usize, slot);
    }
    rc == 0
}

/// Tries again the unmaps the kernel refused before.
fn retry_unmaps() {
    // Relaxed: see `unmap`.
    if !ANY_UNMAP_LATER.load(Ordering::Relaxed) {
        return;
    }
    let mut later = UNMAP_LATER.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: each was handed over to `unmap`, unused since.
    later.retain(|&(base, shift)| !unsafe { try_unmap(base, shift) });
    // Relaxed: under the lock that guards the list.
    ANY_UNMAP_LATER.store(!later.is_empty(), Ordering::Relaxed);
}

/// Makes `slot` of class `class` available to [`map`] again.
fn give_back_slot(class: usize, slot: usize) {
    FREE_SLOTS[class]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(slot);
}

/// Turns the lowest page of a mapping into a guard page.
pub(crate) fn protect_guard(base: usize, size: usize) -> io::Result<()> {
    // SAFETY: `base` is page-aligned and the page belongs to our mapping.
    let rc = unsafe { libc::mprotect(base as *mut libc::c_void, page_size(), libc::PROT_NONE) };
    if rc != 0 {
        return Err(map_error(io::Error::last_os_error(), size));
    }
    Ok(())
}

/// Explains an `ENOMEM` from `mmap`/`mprotect`, which on Linux is most often
/// the per-process limit on memory mappings.
fn map_error(err: io::Error, size: usize) -> io::Error {
    if err.raw_os_error() != Some(libc::ENOMEM) {
        return io::Error::new(
            err.kind(),
            format!("mapping a {} fiber stack: {err}", human(size)),
        );
    }
    let limit = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "mapping a {} fiber stack: {err}. Each stack with a guard page takes two \
             memory mappings and the process may hold at most vm.max_map_count = {limit}. \
             Raise it (`sysctl -w vm.max_map_count=1048576`) or use stacks without guard \
             pages (`Builder::guard_pages(false)`, `Stack::with_guard(size, false)`)",
            human(size)
        ),
    )
}

/// The page size, read once.
pub(crate) fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    // Relaxed: every thread computes the same value; a race only repeats it.
    match PAGE.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: sysconf has no preconditions.
            let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
            PAGE.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}

/// `16 KiB`, `2 MiB`: sizes as people write them.
pub(crate) fn human(size: usize) -> String {
    match size {
        s if s >= 1 << 30 && s % (1 << 30) == 0 => format!("{} GiB", s >> 30),
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{} KiB", s >> 10),
        s => format!("{s} bytes"),
    }
}
