//! Task and poll durations per type: fixed buckets.
//!
//! Task durations: each registry row holds one histogram, updated under the
//! shard lock the end of a task already takes (the bucket is picked before
//! the lock), so the counts survive history eviction and cost a few
//! additions per task.
//!
//! Poll durations, only when busy time is measured: each shard keeps one
//! histogram of atomics per type row, bumped after each poll with two
//! relaxed additions (the clock reads are the ones busy time already takes).

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::ops::AddAssign;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{TaskType, Tracker};

/// Upper bounds of the duration buckets, in nanoseconds: 1 ms to 1 h.
const BOUNDS_NS: [u64; 12] = [
    1_000_000,
    5_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    500_000_000,
    1_000_000_000,
    5_000_000_000,
    10_000_000_000,
    60_000_000_000,
    300_000_000_000,
    3_600_000_000_000,
];

/// Which buckets a [`Histogram`] has: its finite upper bounds.
pub trait Bounds {
    /// The finite upper bounds, in nanoseconds, in increasing order.
    const NANOS: [u64; 12];
}

/// The buckets of task durations: 1 ms to 1 h.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskLifetimes;

impl Bounds for TaskLifetimes {
    const NANOS: [u64; 12] = BOUNDS_NS;
}

/// The buckets of poll durations: 10 µs to 1 s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollTimes;

impl Bounds for PollTimes {
    const NANOS: [u64; 12] = POLL_BOUNDS_NS;
}

/// Durations in fixed buckets: 12 bounds from `B` and an unbounded last
/// bucket; a duration equal to a bound falls in that bound's bucket, as
/// Prometheus' `le` label says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Histogram<B> {
    /// Counts per bucket, not cumulative; the last is above every bound.
    buckets: [u64; 13],
    /// Sum of the durations, in nanoseconds.
    sum_ns: u128,
    bounds: PhantomData<B>,
}

/// How long tasks lived, from spawn to end, in fixed buckets.
///
/// The buckets' upper bounds are [`DurationHistogram::BOUNDS`] plus an
/// unbounded last bucket.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracked::{TaskType, Tracker};
///
/// let tracker = Tracker::new();
/// tracker.spawn("tick", TaskType::MAINTENANCE, async {}).await.unwrap();
///
/// let durations = tracker.durations();
/// let ticks = &durations[&TaskType::MAINTENANCE];
/// assert_eq!(ticks.count(), 1);
/// // Cumulative counts, one per bound and a last one for `+Inf`.
/// assert_eq!(ticks.cumulative().last(), Some(&1));
/// # }
/// ```
pub type DurationHistogram = Histogram<TaskLifetimes>;

/// Upper bounds of the poll duration buckets, in nanoseconds: 10 µs to 1 s.
const POLL_BOUNDS_NS: [u64; 12] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    10_000_000,
    50_000_000,
    100_000_000,
    1_000_000_000,
];

/// How long single polls of tasks took, in fixed buckets; counted only when
/// busy time is measured ([`TrackerBuilder::busy_time`](crate::TrackerBuilder::busy_time)).
///
/// A poll that blocks its worker for milliseconds delays every other task
/// on it; the upper buckets show how often that happens, per type. The runs
/// of blocking tasks are not polls and are not counted.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracked::{TaskType, Tracker};
///
/// let tracker = Tracker::builder().busy_time(true).build();
/// tracker
///     .spawn("tick", TaskType::MAINTENANCE, async { tokio::task::yield_now().await })
///     .await
///     .unwrap();
///
/// let polls = &tracker.poll_durations()[&TaskType::MAINTENANCE];
/// assert_eq!(polls.count(), 2);
/// assert_eq!(polls.cumulative().last(), Some(&2));
/// # }
/// ```
pub type PollHistogram = Histogram<PollTimes>;

impl<B: Bounds> Histogram<B> {
    /// The finite upper bounds of the buckets, in increasing order.
    pub const BOUNDS: [Duration; 12] = {
        let mut bounds = [Duration::ZERO; 12];
        let mut i = 0;
        while i < B::NANOS.len() {
            bounds[i] = Duration::from_nanos(B::NANOS[i]);
            i += 1;
        }
        bounds
    };

    /// The bucket a duration in nanoseconds falls in; cheap enough to run
    /// before a lock is taken.
    pub(crate) fn bucket(nanos: u64) -> usize {
        bucket_of(&B::NANOS, nanos)
    }

    /// Counts one duration already placed in `bucket`.
    pub(crate) fn add(&mut self, bucket: usize, nanos: u64) {
        self.buckets[bucket.min(B::NANOS.len())] += 1;
        self.sum_ns += u128::from(nanos);
    }

    /// Durations counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The sum of the durations.
    pub fn sum(&self) -> Duration {
        let secs = u64::try_from(self.sum_ns / 1_000_000_000).unwrap_or(u64::MAX);
        Duration::new(secs, (self.sum_ns % 1_000_000_000) as u32)
    }

    /// Cumulative counts: element `i` counts durations up to `BOUNDS[i]`;
    /// the last element, for `+Inf`, equals [`count`](Self::count).
    pub fn cumulative(&self) -> [u64; 13] {
        let mut buckets = self.buckets;
        for i in 1..buckets.len() {
            buckets[i] += buckets[i - 1];
        }
        buckets
    }

    /// Counts per bucket, not cumulative, as OTLP sends them.
    pub fn buckets(&self) -> [u64; 13] {
        self.buckets
    }
}

impl<B> AddAssign for Histogram<B> {
    fn add_assign(&mut self, other: Histogram<B>) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self.sum_ns += other.sum_ns;
    }
}

/// One type's poll durations in one shard, bumped without a lock by
/// whichever thread polled the task.
#[derive(Default)]
pub(crate) struct PollCounter {
    buckets: [AtomicU64; POLL_BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl PollCounter {
    #[inline]
    pub(crate) fn add(&self, nanos: u64) {
        // Relaxed: the counts are independent tallies; a reader may see a
        // poll in its bucket a moment before its sum, which a scrape
        // tolerates (as it does between two series).
        self.buckets[bucket_of(&POLL_BOUNDS_NS, nanos)].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn load(&self) -> PollHistogram {
        PollHistogram {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum_ns: u128::from(self.sum_ns.load(Ordering::Relaxed)),
            bounds: PhantomData,
        }
    }
}

fn bucket_of(bounds: &[u64], nanos: u64) -> usize {
    bounds
        .iter()
        .position(|&bound| nanos <= bound)
        .unwrap_or(bounds.len())
}

impl Tracker {
    /// Durations of finished tasks, spawn to end, per type: every task that
    /// ended in this tracker, whether or not it is still in history.
    pub fn durations(&self) -> BTreeMap<TaskType, DurationHistogram> {
        let mut out: BTreeMap<TaskType, DurationHistogram> = BTreeMap::new();
        for (ty, histogram) in self.inner.registry.durations() {
            *out.entry(ty).or_default() += histogram;
        }
        out
    }

    /// Durations of single polls, per type, for every type polled since the
    /// tracker was built; empty unless busy time is measured.
    pub fn poll_durations(&self) -> BTreeMap<TaskType, PollHistogram> {
        let mut out: BTreeMap<TaskType, PollHistogram> = BTreeMap::new();
        for (ty, histogram) in self.inner.registry.poll_durations() {
            *out.entry(ty).or_default() += histogram;
        }
        out
    }

    /// Per type, how long tasks waited for a worker once woken: from each
    /// wake to the poll it led to. Kept when the tracker follows wakes
    /// ([`TrackerBuilder::wakes`](crate::TrackerBuilder::wakes)); empty
    /// otherwise. A delay that grows for every type at once says the runtime
    /// is overloaded, or a worker is blocked. Same buckets as
    /// [`Tracker::poll_durations`].
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tracked::{TaskType, Tracker};
    ///
    /// let tracker = Tracker::builder().wakes(true).build();
    /// tracker
    ///     .spawn("tick", TaskType::MAINTENANCE, async {
    ///         let (tx, rx) = tokio::sync::oneshot::channel();
    ///         tracked::spawn("reply", TaskType::GENERAL, async move {
    ///             let _ = tx.send(());
    ///         });
    ///         rx.await.unwrap(); // woken once, then polled
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(tracker.scheduling_delays()[&TaskType::MAINTENANCE].count(), 1);
    /// # }
    /// ```
    pub fn scheduling_delays(&self) -> BTreeMap<TaskType, PollHistogram> {
        let mut out: BTreeMap<TaskType, PollHistogram> = BTreeMap::new();
        for (ty, histogram) in self.inner.registry.scheduling_delays() {
            *out.entry(ty).or_default() += histogram;
        }
        out
    }

    /// Whether this tracker measures busy time and poll durations.
    pub fn measures_busy_time(&self) -> bool {
        self.inner.busy_time
    }

    /// Whether this tracker follows wakes ([`TrackerBuilder::wakes`](crate::TrackerBuilder::wakes)).
    pub fn follows_wakes(&self) -> bool {
        self.inner.registry.follows_wakes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_on_a_bound_falls_in_that_bound() {
        assert_eq!(DurationHistogram::bucket(0), 0);
        assert_eq!(DurationHistogram::bucket(1_000_000), 0);
        assert_eq!(DurationHistogram::bucket(1_000_001), 1);
        assert_eq!(DurationHistogram::bucket(u64::MAX), 12);
    }

    #[test]
    fn cumulative_counts_end_with_the_total() {
        let mut h = DurationHistogram::default();
        for nanos in [10, 2_000_000, 2_000_000_000, u64::MAX] {
            h.add(DurationHistogram::bucket(nanos), nanos);
        }
        let c = h.cumulative();
        assert_eq!((c[0], c[1], c[7], c[11], c[12]), (1, 2, 3, 3, 4));
        assert_eq!(h.count(), 4);
        assert!(h.sum() > Duration::from_secs(2));
    }

    #[test]
    fn polls_fall_in_their_buckets() {
        let counter = PollCounter::default();
        for nanos in [0, 10_000, 10_001, 1_000_000_000, 1_000_000_001] {
            counter.add(nanos);
        }
        let h = counter.load();
        assert_eq!(h.buckets()[..2], [2, 1]);
        assert_eq!((h.buckets()[11], h.buckets()[12]), (1, 1));
        assert_eq!(h.count(), 5);
        assert_eq!(h.sum(), Duration::from_nanos(2_000_020_002));
    }
}
