//! Panics in tracked tasks: where they happened, and what the tracker does
//! about them beyond recording them ([`OnPanic`]).
//!
//! A panic payload carries the message but not the location, which only the
//! panic hook sees. The hook below is installed once, the first time a
//! tracker is built; it forwards every panic to the hook that was installed
//! before it, and only for panics inside a tracked task stores the location
//! in a thread-local for the task's wrapper to pick up. A hook installed
//! later with `std::panic::set_hook` replaces it; panics are then still
//! recorded, with an unknown location.

use std::cell::RefCell;
use std::panic;
use std::sync::Once;

use crate::{TaskType, Tracker};

thread_local! {
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub(crate) fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if crate::task_id().is_some() {
                if let Some(location) = info.location() {
                    let _ = LOCATION.try_with(|slot| {
                        *slot.borrow_mut() = Some(location.to_string());
                    });
                }
            }
            previous(info);
        }));
    });
}

/// The location of the last panic in a tracked task on this thread.
pub(crate) fn take_location() -> Option<String> {
    LOCATION
        .try_with(|slot| slot.borrow_mut().take())
        .ok()
        .flatten()
}

/// What a tracker does when one of its tasks panics, besides recording it.
///
/// Whatever the action, the panic is recorded first: the task is
/// `Panicked` with its message and location, counted, and logged at error
/// level with its name, type and site. On stable tokio a runtime cannot be
/// told to stop on a task's panic (`unhandled_panic` needs
/// `--cfg tokio_unstable`); this is that choice, per task type.
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
