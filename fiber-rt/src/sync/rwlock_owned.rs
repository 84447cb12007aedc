//! Guards of a shared [`RwLock`] that own its `Arc`: no lifetime, so a
//! lock taken by one fiber can move into another (or a thread) and be
//! released there, as [`Mutex::lock_owned`](super::Mutex::lock_owned)
//! allows for a mutex.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::rwlock::RwLock;

/// Shared access to a shared [`RwLock`], owning its `Arc` (see
/// [`RwLock::read_owned`]); released when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedRwLockReadGuard<T: ?Sized> {
    lock: Arc<RwLock<T>>,
}

/// Exclusive access to a shared [`RwLock`], owning its `Arc` (see
/// [`RwLock::write_owned`]); released when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedRwLockWriteGuard<T: ?Sized> {
    lock: Arc<RwLock<T>>,
}

impl<T: ?Sized> RwLock<T> {
    /// Locks a shared lock for reading, parking the caller while a writer
    /// holds it or waits before it; the guard owns the `Arc`, so it can
    /// move into a spawned fiber.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use fiber_rt::sync::RwLock;
    ///
    /// let rt = fiber_rt::Runtime::new().unwrap();
    /// rt.block_on(|| {
    ///     let config = Arc::new(RwLock::new("v1"));
    ///     let mut editing = config.clone().write_owned();
    ///     // The lock is taken here and released by the fiber.
    ///     let editor = fiber_rt::spawn(move || *editing = "v2");
    ///     assert_eq!(*config.clone().read_owned(), "v2");
    ///     editor.join().unwrap();
    /// });
    /// ```
    pub fn read_owned(self: Arc<Self>) -> OwnedRwLockReadGuard<T> {
        self.acquire(false);
        OwnedRwLockReadGuard { lock: self }
    }

    /// Locks a shared lock for writing, parking the caller while anyone
    /// holds it; the guard owns the `Arc`.
    pub fn write_owned(self: Arc<Self>) -> OwnedRwLockWriteGuard<T> {
        self.acquire(true);
        OwnedRwLockWriteGuard { lock: self }
    }

    /// [`read_owned`](Self::read_owned) if that would not wait.
    pub fn try_read_owned(self: Arc<Self>) -> Option<OwnedRwLockReadGuard<T>> {
        self.try_acquire(false)
            .then(|| OwnedRwLockReadGuard { lock: self })
    }

    /// [`write_owned`](Self::write_owned) if that would not wait.
    pub fn try_write_owned(self: Arc<Self>) -> Option<OwnedRwLockWriteGuard<T>> {
        self.try_acquire(true)
            .then(|| OwnedRwLockWriteGuard { lock: self })
    }
}

impl<T: ?Sized> OwnedRwLockReadGuard<T> {
    /// The lock this guard holds.
    pub fn lock(&self) -> &Arc<RwLock<T>> {
        &self.lock
    }
}

impl<T: ?Sized> OwnedRwLockWriteGuard<T> {
    /// The lock this guard holds.
    pub fn lock(&self) -> &Arc<RwLock<T>> {
        &self.lock
    }
}

impl<T: ?Sized> Deref for OwnedRwLockReadGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read guard proves no writer holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Deref for OwnedRwLockWriteGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a write guard proves exclusive access.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for OwnedRwLockWriteGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: a write guard proves exclusive access.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for OwnedRwLockReadGuard<T> {
    fn drop(&mut self) {
        self.lock.release(false);
    }
}

impl<T: ?Sized> Drop for OwnedRwLockWriteGuard<T> {
    fn drop(&mut self) {
        self.lock.release(true);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for OwnedRwLockReadGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for OwnedRwLockWriteGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
