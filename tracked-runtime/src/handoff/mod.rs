//! The two lock-free hand-offs on a task's record, kept apart so that loom
//! can check them (`loom.rs`; its module docs give the command).
//!
//! - **Cancel meets token.** A cancel request sets `cancel_requested`, then
//!   cancels the token if the task created one; the task creates its token on
//!   first use, then cancels it if the flag is set. Whatever the interleaving,
//!   the token a task obtains is cancelled once a cancel was requested.
//! - **Claim meets spawner.** A `#[tracked]` claim replaces a record by a
//!   fresh one while the spawner may still be storing the task's abort
//!   handle, or a canceller asking it to stop, on the old one. Either the
//!   claim copies the handle and the request, or the spawner and the
//!   canceller see the claim and hand them on ([`Delivery::HandOn`]).
//!
//! Where a side stores one location and then loads another that the other
//! side stores (the cancel flag against the token's cell, the cancel flag
//! against `superseded`), each side issues a `SeqCst` fence in between: of two
//! such fences one comes first in the single total order of `SeqCst`
//! operations, and the side whose fence comes second sees the other side's
//! store. `SeqCst` loads and stores alone would do in the C++ model only if
//! every access involved were `SeqCst`, and the once-cell's are not; loom,
//! besides, models `SeqCst` fences but not `SeqCst` accesses. The abort handle
//! needs no fence: both sides take its slot's lock, which orders them.

#[cfg(all(test, loom))]
mod loom;
pub(crate) mod sync;

use tokio_util::sync::CancellationToken;

use sync::{fence, AtomicBool, Mutex, MutexGuard, OnceCell, Ordering};

/// A record's hand-off flags: one-byte atomics, alignment 1, kept out of
/// [`Control`] so that the record packs them with its other one-byte fields
/// (inside `Control` their padding would make every record 8 bytes larger).
#[derive(Debug)]
pub(crate) struct Flags {
    /// Cancellation asked for.
    cancel_requested: AtomicBool,
    /// A claim replaced this record with another one for the same task.
    superseded: AtomicBool,
    /// An abort asked for before the spawner stored the handle, carried out
    /// when it does. Read and written only under the abort slot's lock, so
    /// Relaxed; a flag here rather than a third state of the slot, which
    /// would take a tag and 8 bytes more in every record.
    abort_requested: AtomicBool,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            cancel_requested: AtomicBool::new(false),
            superseded: AtomicBool::new(false),
            abort_requested: AtomicBool::new(false),
        }
    }
}

/// What aborts a task: tokio's `AbortHandle`, a counting stand-in in the
/// models.
pub(crate) trait AbortTask: Clone {
    fn abort(&self);
}

impl AbortTask for tokio::task::AbortHandle {
    fn abort(&self) {
        tokio::task::AbortHandle::abort(self);
    }
}

/// How a record is stopped from outside: the token the task may watch
/// (created on first use) and the slot of the handle `H` that aborts it.
#[derive(Debug)]
pub(crate) struct Control<H> {
    token: OnceCell<CancellationToken>,
    /// Empty until the spawner stores the handle. A mutex rather than a
    /// once-cell: setting it once per spawn costs half as many instructions,
    /// for the same two atomic operations; and an abort asked for before the
    /// handle is stored waits under it ([`Flags`]' `abort_requested`).
    abort: Mutex<Option<H>>,
}

impl<H> Default for Control<H> {
    fn default() -> Self {
        Control {
            token: OnceCell::new(),
            abort: Mutex::new(None),
        }
    }
}

impl<H> Control<H> {
    /// The abort handle's slot, locked.
    pub(crate) fn abort_slot(&self) -> MutexGuard<'_, Option<H>> {
        // Nothing can panic while the handle is being set or read.
        self.abort.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the abort handle out of a record no one else holds, at its
    /// task's end: it keeps tokio's task allocation alive.
    pub(crate) fn take_abort(&mut self) -> Option<H> {
        self.abort
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// Where a cancel request or an abort handle stored on a record must go next.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// This record stands for the task: what was stored here reaches it.
    Kept,
    /// A claim replaced this record meanwhile and may have missed what was
    /// stored: the caller repeats it on the record that stands for the task
    /// now, which the claim put in the live list under the shard lock.
    HandOn,
}

/// One record's side of the hand-offs: its [`Flags`] and its [`Control`],
/// borrowed from the record's two fields.
#[derive(Debug)]
pub(crate) struct Handoff<'a, H> {
    flags: &'a Flags,
    control: &'a Control<H>,
}

// Two references, copied whatever `H` is (a derive would ask `H: Copy`).
impl<H> Clone for Handoff<'_, H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<H> Copy for Handoff<'_, H> {}

impl<'a, H: AbortTask> Handoff<'a, H> {
    pub(crate) fn new(flags: &'a Flags, control: &'a Control<H>) -> Self {
        Handoff { flags, control }
    }

    /// Asks the task to stop: its token, now or when it is created, is
    /// cancelled.
    pub(crate) fn request_cancel(self) -> Delivery {
        // Relaxed: the fence below orders it before both loads that follow.
        self.flags.cancel_requested.store(true, Ordering::Relaxed);
        // Pairs with the fence in `token` (either the token is seen here, or
        // the flag there) and with the one in `supersede` (either the claim
        // copies the flag, or the claim is seen here).
        fence(Ordering::SeqCst);
        self.control.token.get_map(CancellationToken::cancel);
        self.delivery()
    }

    /// Whether a cancel was requested; a report that publishes nothing, so
    /// Relaxed. The token is what carries the request reliably.
    pub(crate) fn cancel_requested(self) -> bool {
        self.flags.cancel_requested.load(Ordering::Relaxed)
    }

    /// The task's cancellation token, created on first use; cancelled if a
    /// cancel was requested.
    pub(crate) fn token(self) -> CancellationToken {
        let token = self
            .control
            .token
            .get_or_init_map(CancellationToken::new, CancellationToken::clone);
        // Pairs with the fence in `request_cancel`.
        fence(Ordering::SeqCst);
        if self.flags.cancel_requested.load(Ordering::Relaxed) {
            token.cancel();
        }
        token
    }

    /// Stores the handle that aborts the task. Gives a copy back if a claim
    /// replaced this record meanwhile ([`Delivery::HandOn`]), for the caller
    /// to store on the record that stands for the task now; cloning only then
    /// keeps the spawn path at one store.
    pub(crate) fn set_abort(self, handle: H) -> Option<H> {
        // No fence: both sides take the slot's lock. If the claim takes it
        // first, its `superseded` store happens before our unlock-ordered
        // load below; if we take it first, the claim reads the handle.
        {
            let mut slot = self.control.abort_slot();
            if self.flags.abort_requested.load(Ordering::Relaxed) {
                handle.abort();
            }
            *slot = Some(handle);
        }
        match self.delivery() {
            Delivery::Kept => None,
            Delivery::HandOn => self.control.abort_slot().clone(),
        }
    }

    /// Aborts the task through its handle, or, if the spawner has not
    /// stored it yet, as soon as it does: either way the task is aborted.
    pub(crate) fn abort(self) {
        let slot = self.control.abort_slot();
        match &*slot {
            Some(handle) => handle.abort(),
            None => self.flags.abort_requested.store(true, Ordering::Relaxed),
        }
    }

    /// Marks this record replaced by a fresh one, not yet shared, and
    /// copies the control state over: abort handle, token and cancel request.
    pub(crate) fn supersede(self, fresh_flags: &mut Flags, fresh: &mut Control<H>) {
        // Relaxed: the fence below orders it before the loads that follow.
        self.flags.superseded.store(true, Ordering::Relaxed);
        // Pairs with the fence in `request_cancel`. The abort handle needs
        // none: its slot's lock orders this side against `set_abort`.
        fence(Ordering::SeqCst);
        {
            let slot = self.control.abort_slot();
            *fresh.abort.get_mut().unwrap_or_else(|p| p.into_inner()) = slot.clone();
            let aborting = self.flags.abort_requested.load(Ordering::Relaxed);
            fresh_flags.abort_requested = AtomicBool::new(aborting);
        }
        if let Some(token) = self.control.token.get_map(CancellationToken::clone) {
            fresh.token = OnceCell::with_value(token);
        }
        let requested = self.flags.cancel_requested.load(Ordering::Relaxed);
        fresh_flags.cancel_requested = AtomicBool::new(requested);
    }

    /// Read after a store and a fence: whether a claim may have missed it.
    fn delivery(self) -> Delivery {
        if self.flags.superseded.load(Ordering::Relaxed) {
            Delivery::HandOn
        } else {
            Delivery::Kept
        }
    }
}
