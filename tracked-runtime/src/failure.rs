//! An `Err` returned through `#[tracked]` fns awaited inside a task: each
//! record it passes through ends `Failed` with its text, and it is logged
//! once, where it was returned first. A record that fails with the same
//! text in the poll in which a fn awaited in it failed is taken to pass it
//! on (`?`), and does not log it again; one that fails otherwise does.

use std::cell::Cell;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use crate::record::Record;
use crate::TaskId;

thread_local! {
    /// The record a failure was passed on to, its poll, and the text's hash.
    static PASSED: Cell<Option<(TaskId, u64, u64)>> = const { Cell::new(None) };
}

fn hash(text: &str) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(text)
}

/// Whether a fn awaited in `record` logged this failure, passed on to it
/// in this poll.
pub(crate) fn told(record: &Record, text: &str) -> bool {
    let Ok(Some((to, polls, passed))) = PASSED.try_with(Cell::take) else {
        return false;
    };
    let now = record.polls.load(std::sync::atomic::Ordering::Relaxed);
    to == record.id && polls == now && passed == hash(text)
}

/// Passes a failure on to the record current on this thread: the one that
/// awaited the fn that returned it.
pub(crate) fn pass_on(text: &str) {
    if let Some((to, polls)) = crate::instrument::running() {
        let _ = PASSED.try_with(|passed| passed.set(Some((to, polls, hash(text)))));
    }
}
