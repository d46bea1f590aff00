//! One shard's history of finished tasks: oldest first, evicted from the
//! front, pushed at the back. Entries are numbered in the order they were
//! pushed, so a reader can walk the history a few entries per hold of the
//! shard's lock and go on from where it stopped, whatever was evicted or
//! pushed in between.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::clock::Clock;
use crate::record::Record;
use crate::snapshot::{Failure, TaskSnapshot};

/// A finished task in history: its record, which no longer changes, and
/// what the record does not hold. Snapshots are built only when history is
/// queried, so ending a task copies nothing. An evicted entry's record goes
/// back to the pool.
#[derive(Clone)]
pub(crate) struct Finished {
    pub(crate) record: Arc<Record>,
    pub(crate) finished_at: u64,
    pub(crate) failure: Option<Arc<Failure>>,
}

impl Finished {
    /// The finished task as reported; its record no longer changes.
    pub(crate) fn snapshot(&self, clock: &Clock) -> TaskSnapshot {
        TaskSnapshot::of_finished(
            &self.record,
            self.finished_at,
            self.failure.as_deref(),
            clock,
        )
    }
}

#[derive(Default)]
pub(crate) struct History {
    entries: VecDeque<Finished>,
    /// Entries evicted so far: the number of the front entry.
    evicted: u64,
}

impl History {
    pub(crate) fn push(&mut self, entry: Finished) {
        self.entries.push_back(entry);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn oldest(&self) -> Option<&Finished> {
        self.entries.front()
    }

    pub(crate) fn evict_oldest(&mut self) -> Option<Finished> {
        let oldest = self.entries.pop_front()?;
        self.evicted += 1;
        Some(oldest)
    }

    /// Calls `f` on at most `max` entries from entry number `from` on (or
    /// from the oldest, if that one was evicted); returns the number to go
    /// on from, `None` past the newest.
    pub(crate) fn scan(&self, from: u64, max: usize, f: impl FnMut(&Finished)) -> Option<u64> {
        let start = usize::try_from(from.saturating_sub(self.evicted)).unwrap_or(usize::MAX);
        let start = start.min(self.entries.len());
        let end = start.saturating_add(max).min(self.entries.len());
        self.entries.range(start..end).for_each(f);
        (end < self.entries.len()).then_some(self.evicted + end as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(finished_at: u64) -> Finished {
        Finished {
            record: Arc::new(Record::blank()),
            finished_at,
            failure: None,
        }
    }

    fn times(history: &History, from: u64, max: usize) -> (Vec<u64>, Option<u64>) {
        let mut seen = Vec::new();
        let next = history.scan(from, max, |e| seen.push(e.finished_at));
        (seen, next)
    }

    /// A walk in steps sees every entry present throughout exactly once,
    /// though entries are evicted and pushed between its steps.
    #[test]
    fn a_walk_goes_on_where_it_stopped_across_evictions() {
        let mut history = History::default();
        (1..=5).for_each(|t| history.push(entry(t)));
        let (seen, next) = times(&history, 0, 2);
        assert_eq!((seen, next), (vec![1, 2], Some(2)));
        history.evict_oldest();
        history.push(entry(6));
        let (seen, next) = times(&history, 2, 2);
        assert_eq!((seen, next), (vec![3, 4], Some(4)));
        // Evicted past the walk's position: it goes on from the oldest left.
        (0..4).for_each(|_| drop(history.evict_oldest()));
        assert_eq!(history.oldest().map(|e| e.finished_at), Some(6));
        history.push(entry(7));
        assert_eq!(times(&history, 4, 2), (vec![6, 7], None));
        assert_eq!(times(&History::default(), 0, 2), (vec![], None));
    }
}
