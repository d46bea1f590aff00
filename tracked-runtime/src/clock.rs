//! The tracker's clock: cheap timestamps as nanoseconds since the tracker's epoch.

use std::time::{Duration, Instant, SystemTime};

/// The clock read on the hot path. Miri cannot run quanta's `cpuid` and
/// `rdtsc`, so under Miri it is std's, which has the same API.
#[cfg(not(miri))]
type Fast = quanta::Instant;
#[cfg(miri)]
type Fast = Instant;

/// Timestamps are taken up to three times per task (spawn, first poll, end),
/// so they come from `quanta`'s calibrated TSC reads (about a third of the cost
/// of `Instant::now` on the machines we measured) and are stored as `u64`
/// nanoseconds since `epoch`, which keeps records small.
#[derive(Debug)]
pub(crate) struct Clock {
    epoch: Epoch,
    epoch_std: Instant,
    epoch_wall: SystemTime,
}

/// What reading a tracker's clock needs, small enough for a task's waker to
/// carry a copy (see `wake`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Epoch(Fast);

impl Epoch {
    /// Nanoseconds since the epoch; never 0, so 0 can mean "not yet".
    #[inline]
    pub(crate) fn now(self) -> u64 {
        let ns = Fast::now().duration_since(self.0).as_nanos();
        u64::try_from(ns).unwrap_or(u64::MAX).max(1)
    }
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            epoch: Epoch(Fast::now()),
            epoch_std: Instant::now(),
            epoch_wall: SystemTime::now(),
        }
    }

    /// Nanoseconds since the epoch; never 0, so 0 can mean "not yet".
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.epoch.now()
    }

    pub(crate) fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub(crate) fn instant(&self, ns: u64) -> Instant {
        self.epoch_std + Duration::from_nanos(ns)
    }

    pub(crate) fn system_time(&self, at: Instant) -> SystemTime {
        match at.checked_duration_since(self.epoch_std) {
            Some(after) => self.epoch_wall + after,
            None => self.epoch_wall - self.epoch_std.duration_since(at),
        }
    }

    /// Wall-clock time of the epoch: when counting started, for exports
    /// that say since when their sums run.
    #[cfg_attr(
        not(feature = "otel"),
        allow(dead_code, reason = "only the OTLP export reads it")
    )]
    pub(crate) fn epoch_wall(&self) -> SystemTime {
        self.epoch_wall
    }

    /// The timestamp `age` before now, for history cut-offs.
    pub(crate) fn ago(&self, age: Duration) -> u64 {
        let age = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
        self.now().saturating_sub(age)
    }
}
