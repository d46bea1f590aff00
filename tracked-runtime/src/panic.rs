//! Panics in tracked tasks: where they happened, and what the tracker does
//! about them beyond recording them ([`OnPanic`]).
//!
//! A panic payload carries the message but not the location, which only the
//! panic hook sees. The hook below is installed once, the first time a
//! tracker is built; it forwards every panic to the hook that was installed
//! before it, and only for panics inside a tracked task stores the location
//! in a thread-local for the task's wrapper to pick up, with the task and
//! poll it was seen in: a panic the task catches itself leaves its location
//! there, and a later panic the hook never sees (`resume_unwind`) must not
//! take it, in another task or in a later poll. A hook installed
//! later with `std::panic::set_hook` replaces it; panics are then still
//! recorded, with an unknown location.
//!
//! A panic in a `#[tracked]` fn awaited inside a task unwinds out of the
//! fn's record, then out of each record enclosing it, up to the task's:
//! each ends `Panicked` with the same location. The first logs the panic;
//! the others do not log it again. [`OnPanic`] acts when the panic leaves
//! the task (a panic the task catches acts on nothing, as with tokio),
//! taking the strongest action of the types it unwound out of. Each record
//! hands that on to the one it unwinds into, for the payload it unwinds
//! with (`resume_unwind` keeps the payload's box, so its address follows
//! the panic, also when the task catches it and resumes it polls later).
//! A hand-on older than a panic the hook saw in the record since is not
//! taken: the payload it was for is gone, and its address may be reused.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic;
use std::sync::Once;

use crate::instrument::running;
use crate::record::Record;
use crate::{TaskId, TaskType, Tracker};

/// Where a panic in a tracked task happened (seen by the hook), in which
/// task and poll, and the how-manyth panic on this thread it was.
struct Seen {
    task: TaskId,
    polls: u64,
    location: String,
    seq: u64,
}

/// What a record a panic unwound out of leaves to the record `to` it
/// unwinds into, for the payload at address `payload`.
struct Handed {
    to: TaskId,
    payload: usize,
    location: Option<String>,
    unwound: Unwound,
    /// The thread's panic count when it was handed on.
    seq: u64,
}

/// Hand-ons kept per thread: those of panics caught and never resumed are
/// dropped oldest first.
const MAX_HANDED: usize = 8;

/// What the records a panic unwound out of so far leave to the next one.
#[derive(Default)]
pub(crate) struct Unwound {
    /// One of them logged the panic.
    pub(crate) told: bool,
    /// The strongest [`OnPanic`] of their types, with its cause, if not
    /// `Continue`.
    pub(crate) action: Option<(OnPanic, String)>,
}

impl Unwound {
    /// Keeps the stronger of the actions so far and `action`.
    pub(crate) fn add(&mut self, action: OnPanic, cause: impl FnOnce() -> String) {
        let stronger = match &self.action {
            Some((so_far, _)) => action.strength() > so_far.strength(),
            None => action != OnPanic::Continue,
        };
        if stronger {
            self.action = Some((action, cause()));
        }
    }
}

thread_local! {
    static SEEN: RefCell<Option<Seen>> = const { RefCell::new(None) };
    static HANDED: RefCell<Vec<Handed>> = const { RefCell::new(Vec::new()) };
    static PANICS: Cell<u64> = const { Cell::new(0) };
}

pub(crate) fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if let (Some((task, polls)), Some(location)) = (running(), info.location()) {
                let _ = PANICS.try_with(|count| {
                    let seq = count.get() + 1;
                    count.set(seq);
                    let _ = SEEN.try_with(|slot| {
                        *slot.borrow_mut() = Some(Seen {
                            task,
                            polls,
                            location: location.to_string(),
                            seq,
                        });
                    });
                });
            }
            previous(info);
        }));
    });
}

/// The address that identifies a panic's payload while it unwinds.
fn address(payload: &(dyn Any + Send)) -> usize {
    (payload as *const (dyn Any + Send)).cast::<()>().addr()
}

/// The location of the panic `record`'s task is unwinding from with
/// `payload`, and what the records it unwound out of before left to this
/// one: handed on by the record it came out of, or else seen by the hook
/// in this task and poll (the last panic it saw on this thread).
pub(crate) fn take(record: &Record, payload: &(dyn Any + Send)) -> (Option<String>, Unwound) {
    let (id, at) = (record.id, address(payload));
    let handed = HANDED
        .try_with(|handed| {
            let mut handed = handed.borrow_mut();
            let found = handed.iter().position(|h| h.to == id && h.payload == at);
            found.map(|index| handed.remove(index))
        })
        .ok()
        .flatten();
    let polls = record.polls.load(std::sync::atomic::Ordering::Relaxed);
    let seen = SEEN
        .try_with(|slot| slot.borrow_mut().take())
        .ok()
        .flatten()
        .filter(|seen| seen.task == id && seen.polls == polls);
    match (handed, seen) {
        // The record itself panicked since: a payload at the same address
        // is a new one.
        (Some(handed), Some(seen)) if seen.seq > handed.seq => {
            (Some(seen.location), Unwound::default())
        }
        (Some(handed), _) => (handed.location, handed.unwound),
        (None, Some(seen)) => (Some(seen.location), Unwound::default()),
        (None, None) => (None, Unwound::default()),
    }
}

/// Leaves a panic's location and what it unwound out of so far to the
/// record current on this thread, which it unwinds into next with
/// `payload`.
pub(crate) fn hand_on(payload: &(dyn Any + Send), location: Option<String>, unwound: Unwound) {
    let Some((to, _)) = running() else {
        return;
    };
    let seq = PANICS.try_with(Cell::get).unwrap_or(0);
    let _ = HANDED.try_with(|handed| {
        let mut handed = handed.borrow_mut();
        if handed.len() == MAX_HANDED {
            handed.remove(0);
        }
        handed.push(Handed {
            to,
            payload: address(payload),
            location,
            unwound,
            seq,
        });
    });
}

/// Forgets the panic the hook last saw on this thread: one the tracker
/// caught itself (an error's text that panicked), whose location no panic
/// unwinding later in this poll may take.
pub(crate) fn forget_seen() {
    let _ = SEEN.try_with(|slot| slot.borrow_mut().take());
}

/// What a tracker does when one of its tasks panics, besides recording it.
///
/// Whatever the action, the panic is recorded first: the task is
/// `Panicked` with its message and location, counted, and logged at error
/// level with its name, type and site. On stable tokio a runtime cannot be
/// told to stop on a task's panic (`unhandled_panic` needs
/// `--cfg tokio_unstable`); this is that choice, per task type.
///
/// It acts on a panic that leaves the task, as `unhandled_panic` would: a
/// panic in a `#[tracked]` fn that the task catches (`catch_unwind`) is
/// recorded on the fn and does nothing more. One that unwinds out of such
/// fns and then the task takes the strictest action of all their types.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// use tracked::{OnPanic, TaskType, Tracker};
///
/// // A consensus task that panics leaves the node wrong: stop the service.
/// let tracker = Tracker::builder()
///     .on_panic(Some(TaskType::CONSENSUS), OnPanic::Shutdown)
///     .build();
/// let stop = tracker.shutdown_token();
/// // In `main`: `stop.cancelled().await`, then `tracker.shutdown(plan).await`.
/// # drop(stop);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnPanic {
    /// Nothing more: the payload goes to whoever awaits the task's handle,
    /// as with tokio. The default.
    #[default]
    Continue,
    /// Ask the service to stop: [`Tracker::shutdown_token`] is cancelled and
    /// [`Tracker::shutdown_cause`] names the task and the panic. How to stop
    /// is the service's to decide (usually [`Tracker::shutdown`]); the
    /// task's handle still gets the payload.
    Shutdown,
    /// Abort the process once the panic is recorded and logged: fail fast
    /// rather than run on without the task. Nothing after it runs:
    /// destructors, buffered log writers and the journal's queued events
    /// are lost; prefer `Shutdown` when those matter.
    Abort,
}

impl OnPanic {
    fn strength(self) -> u8 {
        match self {
            OnPanic::Continue => 0,
            OnPanic::Shutdown => 1,
            OnPanic::Abort => 2,
        }
    }
}

/// The action for each task type.
#[derive(Clone, Debug, Default)]
pub(crate) struct PanicPolicy {
    default: OnPanic,
    by_type: Vec<(TaskType, OnPanic)>,
}

impl PanicPolicy {
    pub(crate) fn set(&mut self, ty: Option<TaskType>, action: OnPanic) {
        let Some(ty) = ty else {
            self.default = action;
            return;
        };
        match self.by_type.iter_mut().find(|(known, _)| *known == ty) {
            Some(entry) => entry.1 = action,
            None => self.by_type.push((ty, action)),
        }
    }

    pub(crate) fn action(&self, ty: TaskType) -> OnPanic {
        self.by_type
            .iter()
            .find(|(known, _)| *known == ty)
            .map_or(self.default, |(_, action)| *action)
    }
}

/// Carries out `action` for a panic described by `cause`, once it has been
/// recorded.
#[cold]
#[inline(never)]
pub(crate) fn act(tracker: &Tracker, action: OnPanic, cause: String) {
    match action {
        OnPanic::Continue => {}
        OnPanic::Shutdown => tracker.request_shutdown(cause),
        OnPanic::Abort => {
            eprintln!("tracked: {cause}; aborting the process (OnPanic::Abort)");
            std::process::abort();
        }
    }
}
