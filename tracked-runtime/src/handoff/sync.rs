//! The primitives the hand-offs (and the wake state, `wake.rs`) are built
//! from: the standard library's, or loom's when the crate's unit tests are
//! built with `--cfg loom`, so that the model checker runs the production
//! protocol itself.
//!
//! `cfg(all(test, loom))` rather than `cfg(loom)`, as tokio does: loom is a
//! dev-dependency, and a `--cfg loom` build of anything but this crate's unit
//! tests (its doctests, the facade, the integration tests) keeps std's types.

#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(all(test, loom))]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// A cell written once, read without a lock: `std::sync::OnceLock`.
///
/// Its API hands out the value to a closure rather than as a reference,
/// because loom has no once-cell and the model below keeps the value behind a
/// lock.
#[cfg(not(all(test, loom)))]
#[derive(Debug)]
pub(crate) struct OnceCell<T>(std::sync::OnceLock<T>);

#[cfg(not(all(test, loom)))]
impl<T> OnceCell<T> {
    pub(crate) fn new() -> Self {
        OnceCell(std::sync::OnceLock::new())
    }

    pub(crate) fn with_value(value: T) -> Self {
        OnceCell(std::sync::OnceLock::from(value))
    }

    /// Applies `f` to the value if it is set; an `Acquire` load that takes no
    /// lock, and gives no ordering at all when the cell is still empty.
    pub(crate) fn get_map<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.0.get().map(f)
    }

    /// Applies `f` to the value, set by `init` first if it is not yet.
    pub(crate) fn get_or_init_map<R>(
        &self,
        init: impl FnOnce() -> T,
        f: impl FnOnce(&T) -> R,
    ) -> R {
        f(self.0.get_or_init(init))
    }
}

/// The model of `OnceLock` under loom, with the same guarantees and no more:
/// a `get` that sees the value synchronises with its initialisation (a
/// `Release` store then an `Acquire` load of `ready`), a `get` that sees the
/// cell empty synchronises with nothing (it takes no lock), and initialisers
/// are exclusive (the lock).
#[cfg(all(test, loom))]
#[derive(Debug)]
pub(crate) struct OnceCell<T> {
    ready: AtomicBool,
    value: Mutex<Option<T>>,
}

#[cfg(all(test, loom))]
impl<T> OnceCell<T> {
    pub(crate) fn new() -> Self {
        OnceCell {
            ready: AtomicBool::new(false),
            value: Mutex::new(None),
        }
    }

    pub(crate) fn with_value(value: T) -> Self {
        OnceCell {
            ready: AtomicBool::new(true),
            value: Mutex::new(Some(value)),
        }
    }

    pub(crate) fn get_map<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        if !self.ready.load(Ordering::Acquire) {
            return None;
        }
        let value = self
            .value
            .lock()
            .expect("the model never panics holding it");
        value.as_ref().map(f)
    }

    pub(crate) fn get_or_init_map<R>(
        &self,
        init: impl FnOnce() -> T,
        f: impl FnOnce(&T) -> R,
    ) -> R {
        let mut slot = self
            .value
            .lock()
            .expect("the model never panics holding it");
        if slot.is_none() {
            *slot = Some(init());
            self.ready.store(true, Ordering::Release);
        }
        f(slot.as_ref().expect("set above if it was not"))
    }
}

impl<T> Default for OnceCell<T> {
    fn default() -> Self {
        OnceCell::new()
    }
}
