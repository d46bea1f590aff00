//! The current-task handle: what a tracked task can say about itself.

use std::fmt;
use std::sync::Arc;

use crate::instrument::with_current;
use crate::record::{Progress, Record};
use crate::snapshot::TaskSnapshot;
use crate::text::{cut, MAX_MESSAGE_BYTES};
use crate::{TaskId, Tracker};

/// A handle to the tracked task that obtained it, through [`current`].
///
/// It can be kept across `.await`s and moved to other threads. Reports made
/// through it after its task ended are ignored.
#[derive(Clone)]
pub struct CurrentTask {
    record: Arc<Record>,
    tracker: Tracker,
}

/// The tracked task running on this thread, if any.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracked_runtime::{TaskType, Tracker};
///
/// let tracker = Tracker::new();
/// let handle = tracker.spawn("import", TaskType::DATABASE, async {
///     let task = tracked_runtime::current().expect("inside a tracked task");
///     task.progress(50, "half the rows");
///     task.snapshot().progress.unwrap().percent
/// });
/// assert_eq!(handle.await.unwrap(), 50);
/// # }
/// ```
pub fn current() -> Option<CurrentTask> {
    with_current(|current| {
        current.map(|c| CurrentTask {
            record: Arc::clone(&c.record),
            tracker: Tracker::clone(&c.tracker),
        })
    })
}

/// Reports progress for the current task; returns `false` outside one.
/// A message longer than 1 KiB is cut, as in [`CurrentTask::progress`].
///
/// A shortcut for `current().map(|t| t.progress(percent, message))`.
pub fn progress(percent: u8, message: impl Into<String>) -> bool {
    let message = message.into();
    with_current(|current| current.map(|c| report(&c.record, &c.tracker, percent, Some(message))))
        .is_some()
}

fn report(record: &Record, tracker: &Tracker, percent: u8, message: Option<String>) {
    if record.state().is_finished() {
        // Ignored, as below; checked first so that no event is sent.
        return;
    }
    let message = message.map(|text| cut(text, MAX_MESSAGE_BYTES));
    if tracker.inner.events.wanted() {
        let kind = crate::EventKind::Progress {
            percent: percent.min(100),
            message: message.clone(),
        };
        tracker.emit(record, kind);
    }
    let inner = &tracker.inner;
    let now = inner.clock.now();
    let mut progress = record.progress();
    if record.state().is_finished() {
        // The record is in history now, where it no longer changes.
        return;
    }
    let progress = progress.get_or_insert_with(|| {
        let first_poll = record
            .first_poll_at
            .load(std::sync::atomic::Ordering::Relaxed);
        Box::new(Progress {
            since: if first_poll == 0 { now } else { first_poll },
            ..Progress::default()
        })
    });
    progress.report(now, percent, message, inner.progress_log);
}

impl CurrentTask {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.record.id
    }

    /// The tracker the task belongs to.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Sets the progress percentage (clamped to 100) and logs `message`
    /// (its first 1 KiB, cut on a character boundary and ended with `…`,
    /// if it is longer).
    pub fn progress(&self, percent: u8, message: impl Into<String>) {
        report(&self.record, &self.tracker, percent, Some(message.into()));
    }

    /// Sets the progress percentage without a message.
    pub fn set_percent(&self, percent: u8) {
        report(&self.record, &self.tracker, percent, None);
    }

    /// Logs a message, keeping the current percentage.
    pub fn message(&self, message: impl Into<String>) {
        let percent = self.record.progress().as_ref().map_or(0, |p| p.percent);
        report(&self.record, &self.tracker, percent, Some(message.into()));
    }

    /// The task's cancellation token: cancelled when a cancel of its group,
    /// its type, or a shutdown tier asks it to stop. A task that watches it
    /// (`token.cancelled().await`, or `tokio::select!` on it) stops cleanly;
    /// one that does not is aborted at the cancel's deadline.
    ///
    /// It is tokio-util's `CancellationToken`, so it can be passed to code
    /// that takes one, or used as a parent of child tokens.
    pub fn cancellation_token(&self) -> tokio_util::sync::CancellationToken {
        self.record.cancellation_token()
    }

    /// Whether the task has been asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.record.cancel_requested()
    }

    /// A snapshot of the task as it is now.
    pub fn snapshot(&self) -> TaskSnapshot {
        let inner = &self.tracker.inner;
        TaskSnapshot::of_live(&self.record, &inner.clock)
    }
}

impl fmt::Debug for CurrentTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentTask")
            .field("id", &self.record.id)
            .field("name", &self.record.name)
            .finish_non_exhaustive()
    }
}
