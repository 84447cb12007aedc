//! Reads of memory that another thread may change or unmap meanwhile: a
//! parked fiber's stack (its fiber may be woken, run and finish while a
//! dump walks it) and fields of its control block that its own thread
//! writes without atomics.
//!
//! Every read goes through `process_vm_readv` on our own process: the
//! kernel copies the bytes into our buffer, and an address that is not
//! mapped any more gives `EFAULT` instead of a crash. Being a copy made by
//! the kernel, a read that races with a write yields stale or mixed bytes
//! that the caller validates, never undefined behaviour in our code.

/// Copies `buf.len()` bytes from `addr` in this process; `false` if any
/// of them is not readable.
pub(crate) fn read_bytes(addr: usize, buf: &mut [u8]) -> bool {
    if buf.is_empty() {
        return true;
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, which we own mutably; the kernel
    // checks `remote` itself and fails with EFAULT where it is unmapped.
    let copied = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    copied == buf.len() as isize
}

/// The machine word at `addr`, if readable.
pub(crate) fn read_word(addr: usize) -> Option<usize> {
    let mut buf = [0u8; 8];
    read_bytes(addr, &mut buf).then(|| usize::from_ne_bytes(buf))
}

/// A string of at most `max` bytes at `addr`, if readable; bytes that are
/// not UTF-8 are replaced.
pub(crate) fn read_str(addr: usize, len: usize, max: usize) -> Option<String> {
    let mut buf = vec![0u8; len.min(max)];
    read_bytes(addr, &mut buf).then(|| String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mapped_memory_and_refuses_unmapped() {
        let value: usize = 0x1234_5678_9abc_def0;
        assert_eq!(read_word(std::ptr::addr_of!(value) as usize), Some(value));
        assert_eq!(read_word(8), None, "the zero page is never mapped");
        let text = "parked here";
        assert_eq!(
            read_str(text.as_ptr() as usize, text.len(), 64).as_deref(),
            Some(text)
        );
    }
}
