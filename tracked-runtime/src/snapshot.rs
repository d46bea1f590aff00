//! Owned, point-in-time views of tasks, as queries return them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::record::{Label, Progress, Record, Site, SpawnKind, TaskName, TaskState};
use crate::{StaticSite, TaskId, TaskType};

/// A copy of one task's record, live or finished.
#[derive(Clone, Debug)]
pub struct TaskSnapshot {
    /// The task's id.
    pub id: TaskId,
    /// The tracked task that spawned it, if any.
    pub parent: Option<TaskId>,
    /// Its name.
    pub name: TaskName,
    /// Its type.
    pub ty: TaskType,
    /// Its owner (group, session, tenant); inherited from the parent unless set.
    pub owner: Option<Arc<str>>,
    /// Labels attached at spawn.
    pub labels: Vec<Label>,
    /// Where it was spawned.
    pub site: Site,
    /// How it was spawned.
    pub kind: SpawnKind,
    /// The `#[tracked]` fn it runs, if it is one.
    pub fn_site: Option<&'static StaticSite>,
    /// The spawn rewritten by `#[tracked]` that started it, if any.
    pub spawn_site: Option<&'static StaticSite>,
    /// Its state when the snapshot was taken.
    pub state: TaskState,
    /// When it was spawned.
    pub spawned_at: Instant,
    /// When it was first polled.
    pub first_polled_at: Option<Instant>,
    /// When it ended.
    pub finished_at: Option<Instant>,
    /// How many times it was polled.
    pub polls: u64,
    /// Time spent inside `poll`, when the tracker measures busy time; a
    /// poll running when the snapshot was taken counts up to then.
    pub busy: Option<Duration>,
    /// When the poll running now began, when the tracker measures busy
    /// time: a task stuck in a poll (a blocking call, a long loop) shows
    /// how long. `None` between polls. See [`TaskSnapshot::in_poll`].
    pub in_poll_since: Option<Instant>,
    /// When a live task went idle: the end of its latest poll, when the
    /// tracker measures busy time. `None` while a poll runs, before the
    /// first poll ends, and once the task has ended. See [`TaskSnapshot::idle`].
    pub idle_since: Option<Instant>,
    /// Its wakes, when the tracker follows them
    /// ([`TrackerBuilder::wakes`](crate::TrackerBuilder::wakes)); boxed, so
    /// that snapshots of trackers that do not stay small.
    pub wakes: Option<Box<crate::Wakes>>,
    /// Progress, if the task reported any.
    pub progress: Option<ProgressSnapshot>,
    /// The text of an `Err` output (see [`Outcome`](crate::Outcome)), or the panic message;
    /// its first 4 KiB, cut on a character boundary and ended with `…`.
    pub error: Option<String>,
    /// Where the task panicked, as `file:line:col`, when known.
    pub panic_location: Option<String>,
    /// What the watchdog warned about it: long-running, long poll, idle,
    /// lost waker.
    pub warned: crate::Warned,
}

impl TaskSnapshot {
    /// How long the task has lived: until it ended, or until `now`.
    pub fn age(&self, now: Instant) -> Duration {
        self.finished_at
            .unwrap_or(now)
            .saturating_duration_since(self.spawned_at)
    }

    /// How long a live task has waited since its latest poll ended, at
    /// `now`; `None` when [`idle_since`](TaskSnapshot::idle_since) is.
    /// A task idle for long is waiting on something: a leak, or a wake-up
    /// that never comes.
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # use std::time::Duration;
    /// # use tracked::{Query, Tracker};
    /// # let tracker = Tracker::builder().busy_time(true).build();
    /// let now = std::time::Instant::now();
    /// for task in tracker.tasks(&Query::new()) {
    ///     if task.idle(now) > Some(Duration::from_secs(60)) {
    ///         println!("{} at {} has waited a minute or more", task.name, task.site);
    ///     }
    /// }
    /// ```
    pub fn idle(&self, now: Instant) -> Option<Duration> {
        self.idle_since
            .map(|since| now.saturating_duration_since(since))
    }

    /// How long the poll running at the snapshot has lasted, at `now`;
    /// `None` when [`in_poll_since`](TaskSnapshot::in_poll_since) is.
    pub fn in_poll(&self, now: Instant) -> Option<Duration> {
        self.in_poll_since
            .map(|since| now.saturating_duration_since(since))
    }

    pub(crate) fn of_live(record: &Record, clock: &Clock) -> TaskSnapshot {
        let progress = record
            .progress()
            .as_deref()
            .map(|p| ProgressSnapshot::new(p, clock));
        TaskSnapshot {
            id: record.id,
            parent: record.parent,
            name: record.name.clone(),
            ty: record.ty,
            owner: record.owner().cloned(),
            labels: record.labels().to_vec(),
            site: record.site(),
            kind: record.kind,
            fn_site: record.fn_site,
            spawn_site: record.spawn_site,
            state: record.state(),
            spawned_at: clock.instant(record.spawned_at),
            first_polled_at: first_poll(record, clock),
            finished_at: None,
            polls: record.polls.load(std::sync::atomic::Ordering::Relaxed),
            busy: record.busy_ns(clock.now()).map(Duration::from_nanos),
            in_poll_since: record.poll_start().map(|at| clock.instant(at)),
            idle_since: record.idle_since().map(|at| clock.instant(at)),
            wakes: record.wakes(clock).map(Box::new),
            progress,
            error: None,
            panic_location: None,
            warned: crate::Warned::from_bits(
                record.warned.load(std::sync::atomic::Ordering::Relaxed),
            ),
        }
    }

    /// The snapshot of a finished task kept in history, built when history
    /// is queried: the record no longer changes once it is there.
    pub(crate) fn of_finished(
        record: &Record,
        finished_at: u64,
        failure: Option<&Failure>,
        clock: &Clock,
    ) -> TaskSnapshot {
        let mut snapshot = TaskSnapshot::of_live(record, clock);
        snapshot.finished_at = Some(clock.instant(finished_at));
        if let Some(progress) = &mut snapshot.progress {
            // A forecast for a live task; an ended one reaches no 100 %.
            progress.estimated_completion = None;
        }
        if let Some(failure) = failure {
            snapshot.error = Some(failure.error.clone());
            snapshot.panic_location.clone_from(&failure.panic_location);
        }
        snapshot
    }
}

fn first_poll(record: &Record, clock: &Clock) -> Option<Instant> {
    match record
        .first_poll_at
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        0 => None,
        at => Some(clock.instant(at)),
    }
}

/// How a task ended, as recorded by the tracker.
#[derive(Clone, Debug)]
pub(crate) enum Ending {
    Completed,
    Failed(String),
    Panicked {
        message: String,
        location: Option<String>,
    },
    Cancelled,
}

/// What a failed or panicked task leaves besides its state.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The text of the `Err` output (see [`Outcome`](crate::Outcome)), or the panic message.
    pub(crate) error: String,
    pub(crate) panic_location: Option<String>,
}

impl Ending {
    /// The error text and panic location, for tasks that failed or panicked.
    #[inline]
    pub(crate) fn into_failure(self) -> Option<Arc<Failure>> {
        match self {
            Ending::Completed | Ending::Cancelled => None,
            failed => failed.into_failure_slow(),
        }
    }

    /// The allocating half of [`Ending::into_failure`], out of the common path.
    #[cold]
    #[inline(never)]
    fn into_failure_slow(self) -> Option<Arc<Failure>> {
        match self {
            Ending::Completed | Ending::Cancelled => None,
            Ending::Failed(error) => Some(Arc::new(Failure {
                error,
                panic_location: None,
            })),
            Ending::Panicked { message, location } => Some(Arc::new(Failure {
                error: message,
                panic_location: location,
            })),
        }
    }

    pub(crate) fn state(&self) -> TaskState {
        match self {
            Ending::Completed => TaskState::Completed,
            Ending::Failed(_) => TaskState::Failed,
            Ending::Panicked { .. } => TaskState::Panicked,
            Ending::Cancelled => TaskState::Cancelled,
        }
    }
}

/// Progress reported by a task, with its recent messages.
#[derive(Clone, Debug)]
pub struct ProgressSnapshot {
    /// The last reported percentage, 0 to 100.
    pub percent: u8,
    /// When progress was last reported.
    pub updated_at: Instant,
    /// When the task should reach 100 % at the rate seen from its first poll
    /// to its last report, or, once that time has passed without reaching
    /// 100 %, at the rate seen up to now (so a stalled task's estimate moves
    /// on instead of staying in the past); `None` until it has made some
    /// progress, and once it has ended.
    pub estimated_completion: Option<Instant>,
    /// The most recent messages, oldest first (bounded per task).
    pub log: Vec<ProgressMessage>,
}

/// One timestamped progress message.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressMessage {
    /// When it was reported.
    pub at: Instant,
    /// The percentage reported with it.
    pub percent: u8,
    /// The message.
    pub message: String,
}

impl ProgressSnapshot {
    fn new(progress: &Progress, clock: &Clock) -> Self {
        let elapsed = progress.last_at.saturating_sub(progress.since);
        let estimated_completion = (progress.percent > 0 && elapsed > 0).then(|| {
            // At the rate seen from `since` to `to`, when 100 % comes.
            let at_rate_until = |to: u64| {
                let total =
                    to.saturating_sub(progress.since) as f64 * 100.0 / f64::from(progress.percent);
                progress.since.saturating_add(total as u64).max(to)
            };
            let mut done = at_rate_until(progress.last_at);
            if progress.percent < 100 {
                let now = clock.now();
                if done < now {
                    done = at_rate_until(now);
                }
            }
            clock.instant(done)
        });
        ProgressSnapshot {
            percent: progress.percent,
            updated_at: clock.instant(progress.last_at),
            estimated_completion,
            log: progress
                .log
                .iter()
                .map(|entry| ProgressMessage {
                    at: clock.instant(entry.at),
                    percent: entry.percent,
                    message: entry.message.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(percent: u8, since: u64, last_at: u64) -> Progress {
        Progress {
            percent,
            since,
            last_at,
            log: Default::default(),
        }
    }

    /// Half done one second in: done two seconds in, while that is ahead.
    /// Once it has passed without a report, the estimate is at the rate
    /// seen up to now, never in the past.
    #[test]
    fn a_stalled_tasks_estimate_moves_on() {
        if cfg!(miri) {
            return; // Quanta's clock; see `clock.rs`.
        }
        let second = 1_000_000_000;
        let clock = Clock::new();
        let start = clock.now();
        let ahead = progress(50, start, start + second);
        let snapshot = ProgressSnapshot::new(&ahead, &clock);
        assert_eq!(
            snapshot.estimated_completion,
            Some(clock.instant(ahead.since + 2 * second))
        );

        let stalled = progress(50, 1, 2);
        while clock.now() < 1_000 {
            std::hint::spin_loop();
        }
        let before = clock.now();
        let estimate = ProgressSnapshot::new(&stalled, &clock)
            .estimated_completion
            .expect("some progress");
        assert!(
            estimate >= clock.instant(2 * (before - 1)),
            "{estimate:?} is before {:?}",
            clock.instant(before)
        );

        let done = progress(100, 1, 2);
        let snapshot = ProgressSnapshot::new(&done, &clock);
        assert_eq!(snapshot.estimated_completion, Some(clock.instant(2)));
    }
}
