//! A value on cache lines of its own.

use std::ops::Deref;

/// `T` alone on its cache lines: writes to it do not slow down readers
/// and writers of its neighbours (false sharing). Two lines, not one:
/// the CPUs this was measured on fetch lines in adjacent pairs.
///
/// A struct with a `Padded` field is itself aligned to 128 bytes, so in an
/// `Arc` its reference counts sit alone on the allocation's first line,
/// where the clones and drops of every fiber's reference land.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> Deref for Padded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}
