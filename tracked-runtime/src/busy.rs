//! A task's busy time, readable while a poll runs: a task stuck in a poll
//! (a blocking call, a long loop) shows its busy time grow, and since when.

// std's atomics, or loom's for the model at the end of this file.
use crate::handoff::sync::{AtomicU64, Ordering};

/// Time spent in polls that ended, and the start of the one running now.
///
/// A poll's end clears `start` before adding the poll to `total` (both
/// Release). A reader that reads the same total before and after `start`
/// has a start that belongs with it: had the total counted the poll
/// already, the start read after it would be cleared (or the next poll's);
/// had the next poll begun after the first read, the second read would see
/// the total grow. Only the instants between an end's two stores miss that
/// poll; no moment counts one twice.
#[derive(Debug, Default)]
pub(crate) struct Busy {
    total: AtomicU64,
    /// When the poll running now began, on the tracker's clock; 0 outside one.
    start: AtomicU64,
}

impl Busy {
    /// A poll begins at `now` (never 0: the clock starts at 1).
    pub(crate) fn begin(&self, now: u64) {
        self.start.store(now, Ordering::Release);
    }

    /// The poll that began at `from` ends at `now`.
    pub(crate) fn end(&self, from: u64, now: u64) {
        self.start.store(0, Ordering::Release);
        self.total
            .fetch_add(now.saturating_sub(from), Ordering::Release);
    }

    /// Copies `from`, by the thread polling the task (the only writer): a
    /// claim's fresh record takes the old one's time, and the poll running.
    pub(crate) fn copy_from(&self, from: &Busy) {
        let relaxed = Ordering::Relaxed;
        self.total.store(from.total.load(relaxed), relaxed);
        self.start.store(from.start.load(relaxed), relaxed);
    }

    /// The busy time until `now`, the poll running then included.
    pub(crate) fn read(&self, now: u64) -> u64 {
        loop {
            let total = self.total.load(Ordering::Acquire);
            let start = self.start.load(Ordering::Acquire);
            if self.total.load(Ordering::Acquire) == total {
                let running = if start == 0 {
                    0
                } else {
                    now.saturating_sub(start)
                };
                return total + running;
            }
        }
    }

    /// When the poll running now began, if one is.
    pub(crate) fn since(&self) -> Option<u64> {
        match self.start.load(Ordering::Relaxed) {
            0 => None,
            at => Some(at),
        }
    }
}

/// A loom model of [`Busy`]: a reader beside a task's two polls never counts
/// a poll twice, nor a time that no poll took.
///
/// ```sh
/// RUSTFLAGS="--cfg loom" cargo test -p tracked-runtime --release --lib loom
/// ```
#[cfg(all(test, loom))]
mod loom {
    use std::sync::Arc;

    use ::loom::thread;

    use super::Busy;

    #[test]
    fn loom_a_running_poll_is_counted_once() {
        ::loom::model(|| {
            let busy = Arc::new(Busy::default());
            let task = {
                let busy = Arc::clone(&busy);
                thread::spawn(move || {
                    busy.begin(10);
                    busy.end(10, 30);
                    busy.begin(40);
                })
            };
            // Read at 50: before the first poll 0, in it 40, between the
            // polls 20 (or 0 between the end's two stores), in the second 30.
            let read = busy.read(50);
            assert!([0, 40, 20, 30].contains(&read), "read {read}");
            task.join().unwrap();
            assert_eq!(busy.read(50), 30);
            assert_eq!(busy.since(), Some(40));
        });
    }
}
