//! Panic locations: a chained panic hook notes where a tracked task panicked.
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
