//! Counters: totals and per type, consistent under concurrency.

use std::collections::BTreeMap;
use std::ops::AddAssign;

use crate::TaskType;

/// Lifecycle counters for a set of tasks.
///
/// `spawned == live() + finished()` holds exactly in every `Counts` the
/// tracker returns, however many tasks are spawning and ending meanwhile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tasks spawned.
    pub spawned: u64,
    /// Live tasks not yet polled.
    pub pending: u64,
    /// Live tasks polled at least once.
    pub running: u64,
    /// Tasks that returned a non-failure output.
    pub completed: u64,
    /// Tasks that returned an `Err`.
    pub failed: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// Tasks aborted or dropped by their runtime.
    pub cancelled: u64,
}

impl Counts {
    /// Tasks spawned and not finished.
    pub fn live(&self) -> u64 {
        self.pending + self.running
    }

    /// Tasks that ended, in any way.
    pub fn finished(&self) -> u64 {
        self.completed + self.failed + self.panicked + self.cancelled
    }
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.spawned += other.spawned;
        self.pending += other.pending;
        self.running += other.running;
        self.completed += other.completed;
        self.failed += other.failed;
        self.panicked += other.panicked;
        self.cancelled += other.cancelled;
    }
}

/// Counters for all tasks of a tracker, and per type.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracked_runtime::{TaskType, Tracker};
///
/// let tracker = Tracker::new();
/// tracker.spawn("tick", TaskType::MAINTENANCE, async {}).await.unwrap();
///
/// let stats = tracker.stats();
/// assert_eq!(stats.total.completed, 1);
/// assert_eq!(stats.by_type[&TaskType::MAINTENANCE].spawned, 1);
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sum over all types.
    pub total: Counts,
    /// Per type, for every type that ever spawned a task in this tracker.
    pub by_type: BTreeMap<TaskType, Counts>,
}

impl Stats {
    pub(crate) fn from_rows(rows: Vec<(TaskType, Counts)>) -> Stats {
        let mut stats = Stats::default();
        for (ty, counts) in rows {
            stats.total += counts;
            *stats.by_type.entry(ty).or_default() += counts;
        }
        stats
    }
}
