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
//! taking the strongest action of the types it unwound out of.

use std::cell::RefCell;
use std::panic;
use std::sync::Once;

use crate::record::Record;
use crate::{TaskId, TaskType, Tracker};

/// Where a panic in a tracked task happened, and the task and poll whose
/// record ends with it next.
struct Seen {
    task: TaskId,
    polls: u64,
    location: Option<String>,
    unwound: Unwound,
}

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
    static LOCATION: RefCell<Option<Seen>> = const { RefCell::new(None) };
}

/// The task running on this thread and its poll count, if any.
fn running() -> Option<(TaskId, u64)> {
    crate::instrument::with_current(|current| {
        current.map(|c| {
            let polls = c.record.polls.load(std::sync::atomic::Ordering::Relaxed);
            (c.record.id, polls)
        })
    })
}

pub(crate) fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if let (Some((task, polls)), Some(location)) = (running(), info.location()) {
                let _ = LOCATION.try_with(|slot| {
                    *slot.borrow_mut() = Some(Seen {
                        task,
                        polls,
                        location: Some(location.to_string()),
                        unwound: Unwound::default(),
                    });
                });
            }
            previous(info);
        }));
    });
}

/// The location of the panic `record`'s task is unwinding from, if the
/// hook saw it (the last one it saw on this thread, in this task and poll),
/// and what the records it unwound out of before left to this one.
pub(crate) fn take(record: &Record) -> (Option<String>, Unwound) {
    let seen = LOCATION
        .try_with(|slot| slot.borrow_mut().take())
        .ok()
        .flatten();
    let polls = record.polls.load(std::sync::atomic::Ordering::Relaxed);
    match seen {
        Some(seen) if seen.task == record.id && seen.polls == polls => {
            (seen.location, seen.unwound)
        }
        _ => (None, Unwound::default()),
    }
}

/// Leaves a panic's location and what it unwound out of so far to the
/// record current on this thread, which it unwinds into next.
pub(crate) fn hand_on(location: Option<String>, unwound: Unwound) {
    if let Some((task, polls)) = running() {
        let _ = LOCATION.try_with(|slot| {
            *slot.borrow_mut() = Some(Seen {
                task,
                polls,
                location,
                unwound,
            });
        });
    }
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
/// use tracked_runtime::{OnPanic, TaskType, Tracker};
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
