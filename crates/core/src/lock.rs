//! The one lock type core uses, over a platform-supplied raw lock.
//!
//! Callbacks that touch shared state run at up to `DISPATCH_LEVEL` on Windows, where only a
//! spin lock that raises IRQL is legal; the mock host uses a plain spin lock. Core is written
//! against [`RawLock`] and wraps data in [`Mutex`], whose guard releases the lock (restoring the
//! saved IRQL) when dropped.
//!
//! Rules for code holding a [`MutexGuard`]: no platform call (a platform may call back into
//! core), no waiting, no allocation. Take what you need, drop the guard, then act.

use core::cell::UnsafeCell;
use core::fmt;
use core::ops::{Deref, DerefMut};

/// A raw mutual-exclusion primitive supplied by the platform.
///
/// On Windows: a `KSPIN_LOCK` taken with `KeAcquireSpinLockRaiseToDpc`, whose token is the
/// previous `KIRQL` handed back to `KeReleaseSpinLock`. In the mock: [`SpinRawLock`].
///
/// # Safety
///
/// Implementations must provide mutual exclusion: between a `lock` that returned and the
/// matching `unlock`, no other `lock` on the same value may return.
pub unsafe trait RawLock {
    /// What `lock` returns and `unlock` consumes (the saved IRQL on Windows).
    type Token;

    /// An unlocked lock. A constant so that tables holding locks can be built by `const fn`
    /// (a `KSPIN_LOCK` is a zeroed `usize`), for example in a driver's `static`.
    const UNLOCKED: Self;

    /// Spins until the lock is held; never sleeps.
    fn lock(&self) -> Self::Token;

    /// Releases the lock.
    ///
    /// # Safety
    ///
    /// The caller holds the lock, and `token` is the one the matching `lock` returned.
    unsafe fn unlock(&self, token: Self::Token);
}

/// A portable spin lock over `spin::Mutex<()>`, for the simulated host and for tests.
pub struct SpinRawLock(spin::Mutex<()>);

// SAFETY: `spin::Mutex` provides mutual exclusion; `lock` forgets the guard so the lock stays
// held until `unlock` calls `force_unlock`.
unsafe impl RawLock for SpinRawLock {
    type Token = ();

    const UNLOCKED: Self = Self(spin::Mutex::new(()));

    #[inline]
    fn lock(&self) -> Self::Token {
        core::mem::forget(self.0.lock());
    }

    #[inline]
    unsafe fn unlock(&self, (): Self::Token) {
        // SAFETY: the caller holds the lock (this trait method's contract), and the guard that
        // `lock` took was forgotten, so nothing else will release it.
        unsafe { self.0.force_unlock() }
    }
}

/// Data guarded by a platform [`RawLock`].
pub struct Mutex<R: RawLock, T> {
    raw: R,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by `raw` (RawLock's contract); `T: Send` because the
// value is reached from whichever CPU holds the lock.
unsafe impl<R: RawLock + Sync, T: Send> Sync for Mutex<R, T> {}
// SAFETY: moving the mutex moves the value and an unlocked raw lock.
unsafe impl<R: RawLock + Send, T: Send> Send for Mutex<R, T> {}

impl<R: RawLock, T> Mutex<R, T> {
    /// Wraps `value` under a new, unlocked lock.
    pub const fn new(value: T) -> Self {
        Self {
            raw: R::UNLOCKED,
            data: UnsafeCell::new(value),
        }
    }

    /// Takes the lock; the guard releases it when dropped.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, R, T> {
        let token = self.raw.lock();
        MutexGuard {
            mutex: self,
            token: Some(token),
        }
    }

    /// Exclusive access without locking: `&mut self` proves nobody else holds it.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<R: RawLock, T> fmt::Debug for Mutex<R, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mutex { .. }")
    }
}

/// Proof that the lock is held; gives access to the data.
pub struct MutexGuard<'a, R: RawLock, T> {
    mutex: &'a Mutex<R, T>,
    /// `Some` until `drop` hands it back to `unlock`.
    token: Option<R::Token>,
}

impl<R: RawLock, T> Deref for MutexGuard<'_, R, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while the lock is held, so no `&mut` to the data exists
        // elsewhere.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<R: RawLock, T> DerefMut for MutexGuard<'_, R, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while the lock is held, and `&mut self` makes this the
        // only reference derived from it.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<R: RawLock, T> Drop for MutexGuard<'_, R, T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            // SAFETY: this guard was created by `Mutex::lock`, which took the lock and stored
            // its token here; this is the only place the token is consumed.
            unsafe { self.mutex.raw.unlock(token) }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::{Mutex, SpinRawLock};
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn guards_serialise_increments_across_threads() {
        let counter = Arc::new(Mutex::<SpinRawLock, u64>::new(0));
        let threads: std::vec::Vec<_> = (0..4)
            .map(|_| {
                let counter = Arc::clone(&counter);
                thread::spawn(move || {
                    for _ in 0..10_000 {
                        let mut guard = counter.lock();
                        // A torn read-modify-write would lose increments.
                        let seen = *guard;
                        *guard = seen + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*counter.lock(), 40_000);
    }

    #[test]
    fn dropping_the_guard_releases_the_lock() {
        let m = Mutex::<SpinRawLock, u8>::new(1);
        drop(m.lock());
        // Would spin forever if the first guard had not released.
        *m.lock() += 1;
        assert_eq!(m.into_inner(), 2);
    }
}
