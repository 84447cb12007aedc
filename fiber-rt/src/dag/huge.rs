//! Big per-node arrays of a run-time graph, on huge pages where the kernel
//! allows it.
//!
//! A graph of a million nodes keeps about 60 MB of arrays (closures, edge
//! rows, counters, names). On 4 KiB pages that is 15 000 page faults while
//! it is built, a TLB miss every few hundred nodes while it runs, and as
//! many pages for the kernel to take back when it is freed at the end of
//! the run. Freeing alone took a 1M-node chain about 9 ns a node, as long
//! as running it. So an array that grows past [`HUGE_FROM`] bytes is
//! moved to a buffer that asks for transparent huge pages
//! (`madvise(MADV_HUGEPAGE)`), before anything is written to it, which is
//! when the hint counts. With transparent huge pages off (or `never`), the
//! hint does nothing and the arrays are plain `Vec`s as before.

/// Size of a huge page on x86_64.
const HUGE_PAGE: usize = 2 << 20;

/// Arrays from this many bytes on ask for huge pages: below it, the hint
/// could cover no whole huge page, or too few to matter.
const HUGE_FROM: usize = 2 * HUGE_PAGE;

/// A `Vec` with room for `capacity` items, whose room asks for huge pages
/// if it is big enough.
pub(super) fn with_capacity<T>(capacity: usize) -> Vec<T> {
    let vec = Vec::with_capacity(capacity);
    advise(&vec);
    vec
}

/// `len` copies of `value`, on huge pages if the array is big enough.
pub(super) fn filled<T: Clone>(len: usize, value: T) -> Vec<T> {
    let mut vec = with_capacity(len);
    vec.resize(len, value);
    vec
}

/// Pushes `value`, moving the array to a bigger buffer that asks for huge
/// pages when it is full and big enough.
#[inline]
pub(super) fn push<T>(vec: &mut Vec<T>, value: T) {
    if vec.len() == vec.capacity() {
        grow(vec);
    }
    vec.push(value);
}

/// Doubles `vec`'s room, like `Vec` does, in a buffer asking for huge
/// pages if it is big enough. A `Vec` would grow in place where it can,
/// but the pages its old buffer touched would stay small ones.
#[cold]
#[inline(never)]
fn grow<T>(vec: &mut Vec<T>) {
    let capacity = vec.capacity().max(4).saturating_mul(2);
    if capacity.saturating_mul(std::mem::size_of::<T>()) < HUGE_FROM {
        vec.reserve(capacity - vec.len());
        return;
    }
    let mut grown = with_capacity(capacity);
    grown.append(vec);
    *vec = grown;
}

/// Asks for huge pages for the whole huge pages inside `vec`'s room, if
/// it is big enough. A hint only: it fails harmlessly (and is not
/// checked) where transparent huge pages are not available.
fn advise<T>(vec: &Vec<T>) {
    let bytes = vec.capacity().saturating_mul(std::mem::size_of::<T>());
    if bytes < HUGE_FROM {
        return;
    }
    let start = vec.as_ptr() as usize;
    let first = start.next_multiple_of(HUGE_PAGE);
    let end = (start + bytes) / HUGE_PAGE * HUGE_PAGE;
    if end > first {
        // SAFETY: the range lies inside `vec`'s own allocation, and
        // MADV_HUGEPAGE changes how its pages are backed, never what they
        // hold, so nothing that reads or writes them can tell.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_keep_every_item_in_order_across_the_move_to_huge_pages() {
        let mut vec = Vec::new();
        let len = 3 * HUGE_FROM / std::mem::size_of::<u64>();
        for i in 0..len as u64 {
            push(&mut vec, i);
        }
        assert_eq!(vec.len(), len);
        assert!(vec.iter().enumerate().all(|(i, &v)| v == i as u64));
    }

    #[test]
    fn filled_arrays_hold_their_value_big_or_small() {
        for len in [0, 10, HUGE_FROM] {
            let vec = filled(len, 7u8);
            assert_eq!(vec.len(), len);
            assert!(vec.iter().all(|&v| v == 7));
        }
    }
}
