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
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracked::{TaskType, Tracker};
///
/// let tracker = Tracker::new();
/// let handle = tracker.spawn("import", TaskType::DATABASE, async {
///     let task = tracked::current().expect("inside a tracked task");
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
/// A shortcut for [`current()`] then [`CurrentTask::progress`].
pub fn progress(percent: u8, message: impl Into<String>) -> bool {
    let message = message.into();
    with_current(|current| {
        current.map(|c| report(&c.record, &c.tracker, Some(percent), Some(message)))
    })
    .is_some()
}

/// Runs `f`, which blocks, on this worker thread through tokio's
/// [`block_in_place`](tokio::task::block_in_place), and tells the watchdog
/// that the current tracked task's long poll is meant: tokio moves the
/// worker's other tasks to another thread meanwhile, so the poll holds up
/// no worker and is not warned about as a long poll. Outside a tracked task
/// it is tokio's `block_in_place`.
///
/// # Panics
///
/// As tokio's: on a current-thread runtime, where there is no other worker
/// to hand the tasks to.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() {
/// use tracked::{TaskType, Tracker};
///
/// # fn read_rows_synchronously() -> usize { 3 }
/// let tracker = Tracker::new();
/// let rows = tracker.spawn("import", TaskType::DATABASE, async {
///     tracked::block_in_place(read_rows_synchronously)
/// });
/// assert_eq!(rows.await.unwrap(), 3);
/// # }
/// ```
#[track_caller]
pub fn block_in_place<F, R>(f: F) -> R
where
    F: FnOnce() -> R,
{
    /// Unmarks the task when `f` returns or unwinds.
    struct InPlace(Option<(Arc<Record>, bool)>);
    impl Drop for InPlace {
        fn drop(&mut self) {
            if let Some((record, was)) = &self.0 {
                record.set_in_place(*was);
            }
        }
    }
    let _in_place = InPlace(with_current(|current| {
        let record = &current?.record;
        Some((Arc::clone(record), record.set_in_place(true)))
    }));
    // tracked: allow(untracked-block-in-place) -- this is the tracked block_in_place itself.
    tokio::task::block_in_place(f)
}

/// Sets the percentage (`None`: keeps the one reported last) and logs the
/// message, if any. The event is sent while the record's progress is held,
/// so that reports from several threads reach subscribers in the order the
/// record took them: the last `Progress` event says what a snapshot says.
fn report(record: &Record, tracker: &Tracker, percent: Option<u8>, message: Option<String>) {
    if record.state().is_finished() {
        // Ignored, as below; checked first so that nothing is cut or locked.
        return;
    }
    let message = message.map(|text| cut(text, MAX_MESSAGE_BYTES));
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
    let percent = percent.unwrap_or(progress.percent).min(100);
    if inner.events.wanted() {
        let kind = crate::EventKind::Progress {
            percent,
            message: message.clone(),
        };
        tracker.emit(record, kind);
    }
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
        report(
            &self.record,
            &self.tracker,
            Some(percent),
            Some(message.into()),
        );
    }

    /// Sets the progress percentage without a message.
    pub fn set_percent(&self, percent: u8) {
        report(&self.record, &self.tracker, Some(percent), None);
    }

    /// Logs a message, keeping the current percentage (the one reported
    /// last, also when another thread reports at the same time).
    pub fn message(&self, message: impl Into<String>) {
        report(&self.record, &self.tracker, None, Some(message.into()));
    }

    /// The task's cancellation token: cancelled when a cancel of its group,
    /// its type, or a shutdown tier asks it to stop. A task that watches it
    /// (`token.cancelled().await`, or `tokio::select!` on it) stops cleanly;
    /// one that does not is aborted at the cancel's deadline. In a
    /// `#[tracked]` fn awaited inside a task, it is the fn's own token,
    /// cancelled also whenever the task is asked to stop.
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

    /// A snapshot of the task as it is now; once it has ended, as it ended,
    /// without an estimated completion (as in history).
    pub fn snapshot(&self) -> TaskSnapshot {
        let inner = &self.tracker.inner;
        let mut snapshot = TaskSnapshot::of_live(&self.record, &inner.clock);
        if snapshot.state.is_finished() {
            if let Some(progress) = &mut snapshot.progress {
                progress.estimated_completion = None;
            }
        }
        snapshot
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    use super::*;
    use crate::{EventKind, Received, TaskType};

    /// A runtime with one worker thread, and timers.
    fn one_worker() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap()
    }

    /// A live task's handle, from a task that waits until `stop` is
    /// dropped, on `runtime`.
    fn live_task(
        runtime: &tokio::runtime::Runtime,
        tracker: &Tracker,
    ) -> (CurrentTask, tokio::sync::oneshot::Sender<()>) {
        let (handle, taken) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let _entered = runtime.enter();
        tracker.spawn("import", TaskType::DATABASE, async move {
            handle.send(current().expect("tracked")).unwrap();
            let _ = stopped.await;
        });
        (taken.recv().unwrap(), stop)
    }

    /// Reports from several threads at once reach subscribers in the order
    /// the task's record took them: the last `Progress` event says what a
    /// snapshot then says, and a message keeps the percentage set last,
    /// whoever set it.
    #[test]
    fn concurrent_reports_agree_with_the_events_they_send() {
        if cfg!(miri) {
            return; // Many rounds of threads; the logic is plain.
        }
        let runtime = one_worker();
        let tracker = Tracker::new();
        let (task, stop) = live_task(&runtime, &tracker);
        let mut events = tracker.subscribe();
        let rounds = 20_000;
        let start = Arc::new(Barrier::new(3));
        let done = Arc::new(Barrier::new(3));
        let reporters: Vec<_> = (0..2u8)
            .map(|which| {
                let (task, start, done) = (task.clone(), start.clone(), done.clone());
                std::thread::spawn(move || {
                    for round in 0..rounds {
                        start.wait();
                        if which == 0 {
                            task.set_percent((round % 100) as u8);
                        } else {
                            task.message(format!("round {round}"));
                        }
                        done.wait();
                    }
                })
            })
            .collect();
        for round in 0..rounds {
            start.wait();
            done.wait();
            let mut last = None;
            while let Some(received) = events.try_recv() {
                let Received::Event(event) = received else {
                    panic!("no event missed");
                };
                if let EventKind::Progress { percent, message } = event.kind {
                    last = Some((percent, message));
                }
            }
            let progress = task.snapshot().progress.expect("reported");
            let (percent, message) = last.expect("two reports");
            assert_eq!(percent, progress.percent, "round {round}");
            assert_eq!(
                progress.log.last().map(|m| &m.message),
                Some(&format!("round {round}")),
                "round {round}"
            );
            if message.is_some() {
                // The message came last: it kept this round's percentage.
                assert_eq!(percent, (round % 100) as u8, "round {round}");
            }
        }
        for reporter in reporters {
            reporter.join().unwrap();
        }
        drop(stop);
    }

    /// A handle kept past its task's end snapshots the task as it ended:
    /// no forecast of a completion that will never come.
    #[test]
    fn an_ended_tasks_snapshot_has_no_estimated_completion() {
        if cfg!(miri) {
            return; // Quanta's clock; see `clock.rs`.
        }
        let runtime = one_worker();
        let tracker = Tracker::new();
        let (task, stop) = live_task(&runtime, &tracker);
        // Some time since the first poll, so that there is a rate.
        std::thread::sleep(std::time::Duration::from_millis(2));
        task.progress(50, "half");
        let live = task.snapshot().progress.expect("reported");
        assert!(live.estimated_completion.is_some());
        drop(stop);
        while !task.snapshot().state.is_finished() {
            std::thread::yield_now();
        }
        let ended = task.snapshot();
        let progress = ended.progress.expect("kept");
        assert_eq!(progress.percent, 50);
        assert_eq!(progress.estimated_completion, None);
    }

    /// Waits for `task` to end, then checks that no event of the ones
    /// received so far came after its `Finished`.
    fn nothing_after_the_end(task: &CurrentTask, events: &mut crate::EventStream, round: usize) {
        while !task.snapshot().state.is_finished() {
            std::thread::yield_now();
        }
        let mut ended = false;
        while let Some(received) = events.try_recv() {
            let Received::Event(event) = received else {
                panic!("no event missed");
            };
            match event.kind {
                EventKind::Finished { .. } => ended = true,
                kind => assert!(!ended, "round {round}: {kind:?} after the end"),
            }
        }
    }

    /// Progress reported from another thread while the task ends comes
    /// before the task's `Finished` event, or not at all: a subscriber that
    /// forgets a task at its end never sees it again.
    #[test]
    fn no_progress_event_follows_the_end() {
        if cfg!(miri) {
            return; // Many rounds of threads; the logic is plain.
        }
        let runtime = one_worker();
        let tracker = Tracker::new();
        let mut events = tracker.subscribe();
        for round in 0..300 {
            let (task, stop) = live_task(&runtime, &tracker);
            let start = Arc::new(Barrier::new(2));
            let reporter = std::thread::spawn({
                let (task, start) = (task.clone(), start.clone());
                move || {
                    start.wait();
                    for percent in 0..2000 {
                        if task.snapshot().state.is_finished() {
                            break;
                        }
                        task.set_percent((percent % 100) as u8);
                    }
                }
            });
            start.wait();
            drop(stop);
            reporter.join().unwrap();
            nothing_after_the_end(&task, &mut events, round);
        }
    }

    /// A task that stops as soon as it is asked still has its
    /// `CancelRequested` event, before its `Finished`: the event is sent
    /// before the token wakes the task.
    #[test]
    fn a_task_that_stops_at_once_has_its_cancel_event() {
        if cfg!(miri) {
            return; // Many rounds on a runtime; the logic is plain.
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let tracker = Tracker::new();
        let mut events = tracker.subscribe();
        for round in 0..200 {
            let (ready, started) = std::sync::mpsc::channel();
            let handle = {
                let _entered = runtime.enter();
                tracker.spawn("polite", TaskType::NETWORK, async move {
                    let token = current().expect("tracked").cancellation_token();
                    ready.send(()).unwrap();
                    token.cancelled().await;
                })
            };
            started.recv().unwrap();
            let id = handle.id();
            runtime.block_on(async {
                tracker.cancel_task(id, Duration::from_secs(60)).await;
                handle.await.unwrap();
            });
            let mut kinds = Vec::new();
            while let Some(received) = events.try_recv() {
                let Received::Event(event) = received else {
                    panic!("no event missed");
                };
                if event.id == id {
                    kinds.push(event.kind);
                }
            }
            let cancel = kinds.iter().position(|k| *k == EventKind::CancelRequested);
            let end = kinds
                .iter()
                .position(|k| matches!(k, EventKind::Finished { .. }));
            assert!(
                matches!((cancel, end), (Some(c), Some(e)) if c < e),
                "round {round}: {kinds:?}"
            );
        }
    }

    /// A cancel racing the task's end: its `CancelRequested` event comes
    /// before the task's `Finished`, or not at all.
    #[test]
    fn no_cancel_event_follows_the_end() {
        if cfg!(miri) {
            return; // Many rounds of threads; the logic is plain.
        }
        let runtime = one_worker();
        let tracker = Tracker::new();
        let mut events = tracker.subscribe();
        for round in 0..1000 {
            let (task, stop) = live_task(&runtime, &tracker);
            let start = Arc::new(Barrier::new(2));
            let ender = std::thread::spawn({
                let start = start.clone();
                move || {
                    start.wait();
                    drop(stop);
                }
            });
            start.wait();
            let timeout = std::time::Duration::from_secs(60);
            runtime.block_on(tracker.cancel_task(task.id(), timeout));
            ender.join().unwrap();
            nothing_after_the_end(&task, &mut events, round);
        }
    }
}
