//! Task ids: unique within the process, handed out without contention.

use std::cell::Cell;
use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

/// The identity of a tracked task, unique within the process.
///
/// Ids are never reused. They grow roughly with spawn order but are not
/// strictly ordered across threads: each thread takes a block of ids at a
/// time so that spawning from many threads never contends on one counter.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(NonZeroU64);

const BLOCK: u64 = 1024;

/// The next unassigned block; starts at 1 so that 0 is never an id.
static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The next id this thread hands out, and the end of its block.
    static LOCAL: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

impl TaskId {
    /// Allocates a fresh id.
    pub(crate) fn next() -> TaskId {
        // Relaxed is enough: the counter only has to hand out disjoint
        // blocks, it orders no other memory.
        let id = LOCAL
            .try_with(|local| {
                let (mut next, mut end) = local.get();
                if next == end {
                    next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
                    end = next + BLOCK;
                }
                local.set((next + 1, end));
                next
            })
            // During thread teardown, take a whole block for one id.
            .unwrap_or_else(|_| NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed));
        TaskId(NonZeroU64::new(id).unwrap_or(NonZeroU64::MAX))
    }

    /// The id as a number, for logs and wire formats.
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }

    /// Rebuilds an id from [`TaskId::as_u64`]; `None` for 0.
    pub fn from_u64(id: u64) -> Option<TaskId> {
        NonZeroU64::new(id).map(TaskId)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({})", self.0)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_across_threads() {
        // Fewer under Miri, which interprets every step.
        let per_thread = if cfg!(miri) { 200 } else { 5000 };
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..per_thread).map(|_| TaskId::next()).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for handle in handles {
            for id in handle.join().unwrap() {
                assert!(seen.insert(id), "duplicate id {id}");
            }
        }
        assert_eq!(seen.len(), 4 * per_thread);
    }
}
