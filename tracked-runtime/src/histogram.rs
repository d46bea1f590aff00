//! Task durations per type: fixed buckets, counted when a task ends.
//!
//! Each registry row holds one histogram, updated under the shard lock the
//! end of a task already takes (the bucket is picked before the lock), so
//! the counts survive history eviction and cost a few additions per task.

use std::collections::BTreeMap;
use std::ops::AddAssign;
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

/// How long tasks lived, from spawn to end, in fixed buckets.
///
/// The buckets' upper bounds are [`DurationHistogram::BOUNDS`] plus an
/// unbounded last bucket; a duration equal to a bound falls in that bound's
/// bucket, as Prometheus' `le` label says.
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
/// let durations = tracker.durations();
/// let ticks = &durations[&TaskType::MAINTENANCE];
/// assert_eq!(ticks.count(), 1);
/// // Cumulative counts, one per bound and a last one for `+Inf`.
/// assert_eq!(ticks.cumulative().last(), Some(&1));
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DurationHistogram {
    /// Tasks per bucket, not cumulative; the last is above every bound.
    buckets: [u64; BOUNDS_NS.len() + 1],
    /// Sum of the durations, in nanoseconds.
    sum_ns: u128,
}

impl DurationHistogram {
    /// The finite upper bounds of the buckets, in increasing order.
    pub const BOUNDS: [Duration; 12] = {
        let mut bounds = [Duration::ZERO; 12];
        let mut i = 0;
        while i < BOUNDS_NS.len() {
            bounds[i] = Duration::from_nanos(BOUNDS_NS[i]);
            i += 1;
        }
        bounds
    };

    /// The bucket a duration in nanoseconds falls in; cheap enough to run
    /// before the shard lock is taken.
    pub(crate) fn bucket(nanos: u64) -> usize {
        BOUNDS_NS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BOUNDS_NS.len())
    }

    /// Counts one duration already placed in `bucket`.
    pub(crate) fn add(&mut self, bucket: usize, nanos: u64) {
        self.buckets[bucket.min(BOUNDS_NS.len())] += 1;
        self.sum_ns += u128::from(nanos);
    }

    /// Tasks counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The sum of their durations.
    pub fn sum(&self) -> Duration {
        let secs = u64::try_from(self.sum_ns / 1_000_000_000).unwrap_or(u64::MAX);
        Duration::new(secs, (self.sum_ns % 1_000_000_000) as u32)
    }

    /// Cumulative counts: element `i` counts durations up to `BOUNDS[i]`;
    /// the last element, for `+Inf`, equals [`count`](Self::count).
    pub fn cumulative(&self) -> [u64; 13] {
        let mut out = self.buckets;
        for i in 1..out.len() {
            out[i] += out[i - 1];
        }
        out
    }
}

impl AddAssign for DurationHistogram {
    fn add_assign(&mut self, other: DurationHistogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self.sum_ns += other.sum_ns;
    }
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
}
