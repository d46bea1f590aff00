//! The heartbeat: one tracked task on one timer drives many named phases.
//!
//! Services often run a handful of interval tasks for maintenance (refresh,
//! reconnect, cleanup, metrics). A heartbeat replaces them with one task and
//! one timer, running the phases in a fixed order on each tick, and keeps
//! per-phase statistics. The tracker's own housekeeping runs as phases too
//! (see [`Heartbeat::housekeeping`]).

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::time::{Interval, MissedTickBehavior};

use crate::{JoinHandle, TaskName, TaskOutput, TaskType, Tracker};

type PhaseFuture = Pin<Box<dyn Future<Output = Option<String>> + Send>>;
type PhaseFn = Box<dyn FnMut() -> PhaseFuture + Send>;
type Period = Box<dyn FnMut(u64) -> u64 + Send>;

/// When a phase runs.
enum Schedule {
    /// Every `n` ticks, starting with the first.
    Every(u64),
    /// The period in ticks, chosen each tick from state.
    Adaptive(Period),
}

struct Phase {
    name: &'static str,
    schedule: Schedule,
    run: PhaseFn,
    /// The tick this phase last ran on.
    last_tick: Option<u64>,
}

/// Statistics of one phase.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhaseStats {
    /// The phase's name.
    pub name: &'static str,
    /// How many times it ran.
    pub runs: u64,
    /// How long its last run took.
    pub last_duration: Duration,
    /// How long all its runs took together.
    pub total_duration: Duration,
    /// Runs that returned a failure (an `Err`).
    pub errors: u64,
    /// Runs that panicked.
    pub panics: u64,
    /// The text of the last error or panic.
    pub last_error: Option<String>,
}

/// Builds a heartbeat: a period and phases in the order they run.
///
/// **Missed ticks**: when phases take longer than the period, the ticks that
/// passed meanwhile are skipped, not run in a burst (tokio's
/// [`MissedTickBehavior::Skip`]); the tick counter counts ticks that ran, so
/// "every N ticks" means every N heartbeats actually performed. The first
/// run of each phase that lasts longer than the period is logged as a
/// warning, as soon as it crosses it if it awaits (a phase that never ends
/// would otherwise stop every phase after it, the watchdog's too, unseen),
/// or when it returns if it blocks its thread.
///
/// **Stopping**: the heartbeat watches its task's cancellation token, so a
/// cancel of the `Maintenance` type or a shutdown tier stops it cleanly
/// after the phase that is running (phases are never cut in half by a
/// cancel; an abort at the cancel's deadline still drops them). Stopped by
/// a cancel while its tracker is not shutting down (no
/// [`Tracker::request_shutdown`], no [`Tracker::shutdown`]), it logs a
/// warning naming its phases: they, the watchdog among them if it runs
/// [`housekeeping`](Heartbeat::housekeeping), no longer run. A stop asked
/// for with [`HeartbeatHandle::stop`] or by a shutdown is silent.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # if cfg!(miri) { return; } // Timed ticks; Miri runs too slowly for them.
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tracked::{Heartbeat, Tracker};
///
/// let peers = Arc::new(AtomicUsize::new(1));
/// let heartbeat = Heartbeat::new(Duration::from_millis(10))
///     .every("refresh-metrics", 1, || async {})
///     // Reconnect every tick while below 3 peers, every 4th tick when healthy.
///     .adaptive("reconnect", {
///         let peers = peers.clone();
///         move |_tick| if peers.load(Ordering::Relaxed) < 3 { 1 } else { 4 }
///     }, {
///         let peers = peers.clone();
///         move || {
///             let peers = peers.clone();
///             async move { peers.fetch_add(1, Ordering::Relaxed); Ok::<_, String>(()) }
///         }
///     })
///     .spawn(&Tracker::new());
/// tokio::time::sleep(Duration::from_millis(60)).await;
/// assert!(heartbeat.stats()[1].runs >= 2);
/// heartbeat.stop();
/// # }
/// ```
#[must_use = "a heartbeat does nothing until spawned"]
pub struct Heartbeat {
    name: TaskName,
    period: Duration,
    phases: Vec<Phase>,
}

impl Heartbeat {
    /// A heartbeat ticking every `period`.
    pub fn new(period: Duration) -> Self {
        Heartbeat {
            name: "tracked::heartbeat".into(),
            period: period.max(Duration::from_millis(1)),
            phases: Vec::new(),
        }
    }

    /// The heartbeat task's name (default `tracked::heartbeat`).
    pub fn name(mut self, name: impl Into<TaskName>) -> Self {
        self.name = name.into();
        self
    }

    /// Adds a phase that runs every `ticks` ticks (at least 1), starting with
    /// the first tick.
    pub fn every<F, Fut>(self, name: &'static str, ticks: u64, run: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TaskOutput,
    {
        self.phase(name, Schedule::Every(ticks.max(1)), run)
    }

    /// Adds a phase whose period in ticks is chosen each tick by `period`
    /// (given the tick number; 0 is taken as 1).
    pub fn adaptive<P, F, Fut>(self, name: &'static str, period: P, run: F) -> Self
    where
        P: FnMut(u64) -> u64 + Send + 'static,
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TaskOutput,
    {
        self.phase(name, Schedule::Adaptive(Box::new(period)), run)
    }

    fn phase<F, Fut>(mut self, name: &'static str, schedule: Schedule, mut run: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TaskOutput,
    {
        self.phases.push(Phase {
            name,
            schedule,
            run: Box::new(move || {
                let future = run();
                Box::pin(async move { future.await.failure() })
            }),
            last_tick: None,
        });
        self
    }

    /// Adds the tracker's own housekeeping as two phases, each run every
    /// tick: `tracked::history-cleanup` drops finished tasks past the
    /// tracker's history time-to-live (also in shards where nothing finishes
    /// any more), and `tracked::watchdog` runs [`Tracker::watchdog_scan`]
    /// (long-running tasks, long polls, health). The tick period is then the
    /// watchdog's resolution.
    pub fn housekeeping(self, tracker: &Tracker) -> Self {
        let cleanup = tracker.clone();
        let watchdog = tracker.clone();
        self.every("tracked::history-cleanup", 1, move || {
            cleanup.cleanup_expired();
            std::future::ready(())
        })
        .every("tracked::watchdog", 1, move || {
            watchdog.watchdog_scan();
            std::future::ready(())
        })
    }

    /// Spawns the heartbeat as a tracked `Maintenance` task of `tracker`, on
    /// the current runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn` does, and on a runtime
    /// without its timer (`enable_time`), as `tokio::time::interval` does:
    /// here, not in the heartbeat's task.
    #[track_caller]
    pub fn spawn(self, tracker: &Tracker) -> HeartbeatHandle {
        self.spawn_on(tracker, &tokio::runtime::Handle::current())
    }

    /// Spawns the heartbeat as a tracked `Maintenance` task of `tracker` on
    /// the runtime of `handle`.
    ///
    /// # Panics
    ///
    /// On a runtime without its timer, as [`Heartbeat::spawn`].
    #[track_caller]
    pub fn spawn_on(self, tracker: &Tracker, handle: &tokio::runtime::Handle) -> HeartbeatHandle {
        let interval = ticks(self.period, handle);
        let stats = self.stats();
        let task = self.task(tracker).spawn_on(
            run(interval, self.phases, stats.clone(), tracker.clone()),
            handle,
        );
        HeartbeatHandle { stats, task }
    }

    /// Spawns the heartbeat on a thread of its own, in a single-threaded
    /// runtime, so that tasks blocking the application's worker threads
    /// cannot delay it. That is where a watchdog belongs: on a runtime whose
    /// workers are all stuck in long polls, a heartbeat spawned there does not
    /// tick, and polls that end before it ticks again go unreported.
    ///
    /// The thread ends when the heartbeat does (stopped, cancelled, aborted).
    /// Phases run on that thread's runtime: a phase that spawns tasks spawns
    /// them there.
    ///
    /// # Errors
    ///
    /// If the thread or its runtime cannot be created.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # if cfg!(miri) { return; } // Its thread outlives `main`, which Miri reports.
    /// use std::time::Duration;
    /// use tracked::{Heartbeat, Tracker};
    ///
    /// let tracker = Tracker::new();
    /// let heartbeat = Heartbeat::new(Duration::from_millis(100))
    ///     .housekeeping(&tracker)
    ///     .spawn_dedicated(&tracker)
    ///     .expect("a thread and a runtime");
    /// heartbeat.stop();
    /// ```
    #[track_caller]
    pub fn spawn_dedicated(self, tracker: &Tracker) -> std::io::Result<HeartbeatHandle> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let (ended, wait) = tokio::sync::oneshot::channel::<()>();
        let interval = ticks(self.period, runtime.handle());
        let stats = self.stats();
        let builder = self.task(tracker);
        let run = run(interval, self.phases, stats.clone(), tracker.clone());
        let task = builder.spawn_on(
            async move {
                // Dropped when the heartbeat ends in any way, which
                // wakes the thread below.
                let _ended = ended;
                run.await;
            },
            runtime.handle(),
        );
        std::thread::Builder::new()
            .name("tracked-heartbeat".into())
            .spawn(move || {
                let _ = runtime.block_on(wait);
            })?;
        Ok(HeartbeatHandle { stats, task })
    }

    /// The heartbeat's task: `Maintenance`, and one of the library's own
    /// services, which the watchdog does not call idle or long-running.
    fn task<'a>(&self, tracker: &'a Tracker) -> crate::Builder<'a> {
        tracker
            .task_builder(self.name.clone(), TaskType::MAINTENANCE)
            .service()
    }

    fn stats(&self) -> Arc<Mutex<Vec<PhaseStats>>> {
        Arc::new(Mutex::new(
            self.phases
                .iter()
                .map(|p| PhaseStats {
                    name: p.name,
                    ..PhaseStats::default()
                })
                .collect(),
        ))
    }
}

impl fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Heartbeat")
            .field("name", &self.name)
            .field("period", &self.period)
            .field(
                "phases",
                &self.phases.iter().map(|p| p.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The heartbeat's ticks, made on `handle`'s runtime by the caller: a
/// runtime without its timer panics there, at the caller's line, rather
/// than in the task.
#[track_caller]
fn ticks(period: Duration, handle: &tokio::runtime::Handle) -> Interval {
    let _runtime = handle.enter();
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    interval
}

async fn run(
    mut interval: Interval,
    mut phases: Vec<Phase>,
    stats: Arc<Mutex<Vec<PhaseStats>>>,
    tracker: Tracker,
) {
    let period = interval.period();
    let cancelled = crate::current()
        .map(|task| task.cancellation_token())
        .unwrap_or_default();
    // Per phase: warned about a run longer than the period.
    let mut slow = vec![false; phases.len()];
    let mut stop = std::pin::pin!(cancelled.cancelled());
    for tick in 0u64.. {
        let stopped = std::future::poll_fn(|cx| {
            if stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(true);
            }
            interval.poll_tick(cx).map(|_| false)
        })
        .await;
        if stopped {
            return cancelled_outside_shutdown(&tracker, &phases);
        }
        for index in 0..phases.len() {
            if cancelled.is_cancelled() {
                return cancelled_outside_shutdown(&tracker, &phases);
            }
            let phase = &mut phases[index];
            // The schedule and the phase are the user's code: a panic in
            // either is the phase's, and the heartbeat goes on.
            let due = std::panic::catch_unwind(AssertUnwindSafe(|| phase.due(tick)));
            if matches!(due, Ok(false)) {
                continue;
            }
            phase.last_tick = Some(tick);
            let started = Instant::now();
            let result = match due {
                Ok(_) => {
                    let name = phase.name;
                    let run = phase.run();
                    let warned = &mut slow[index];
                    run_watched(run, name, period, warned).await
                }
                Err(payload) => Err(crate::instrument::panic_message(&*payload)),
            };
            let took = started.elapsed();
            if took > period && !slow[index] {
                // A phase that blocks its thread ends in the poll that
                // starts it, before anything can warn while it runs.
                slow[index] = true;
                tracing::warn!(
                    phase = phase.name,
                    ?period,
                    ?took,
                    "heartbeat phase ran longer than the period: the phases after it and the next ticks waited for it"
                );
            }
            let mut stats = stats.lock().unwrap_or_else(|p| p.into_inner());
            let entry = &mut stats[index];
            entry.runs += 1;
            entry.last_duration = took;
            entry.total_duration += took;
            match result {
                Ok(None) => {}
                Ok(Some(error)) => {
                    tracing::warn!(phase = phase.name, "heartbeat phase failed: {error}");
                    entry.errors += 1;
                    entry.last_error = Some(error);
                }
                Err(message) => {
                    tracing::error!(phase = phase.name, "heartbeat phase panicked: {message}");
                    entry.panics += 1;
                    entry.last_error = Some(message);
                }
            }
        }
    }
}

/// Runs a phase; once it has run for longer than the period, the first
/// time for this phase, warns that the phases after it and the next ticks
/// wait (the watchdog's scans among them). While it still runs: a phase that
/// never ends stops the heartbeat, and nothing else would say so.
async fn run_watched(
    run: impl Future<Output = Result<Option<String>, String>>,
    name: &'static str,
    period: Duration,
    warned: &mut bool,
) -> Result<Option<String>, String> {
    if *warned {
        return run.await;
    }
    let mut run = std::pin::pin!(run);
    // The phase is polled first, so one that ends within the period is
    // never warned about.
    if let Ok(result) = tokio::time::timeout(period, run.as_mut()).await {
        return result;
    }
    *warned = true;
    tracing::warn!(
        phase = name,
        ?period,
        "heartbeat phase is running longer than the period: the phases after it and the next ticks wait for it"
    );
    run.await
}

/// The heartbeat's task was cancelled. In a shutdown (asked for or under
/// way) that is expected; otherwise a cancel of its type or of the task
/// itself has silently ended every phase, the watchdog's among them.
fn cancelled_outside_shutdown(tracker: &Tracker, phases: &[Phase]) {
    if tracker.shutdown_requested() {
        return;
    }
    let phases: Vec<&str> = phases.iter().map(|p| p.name).collect();
    let id = crate::task_id();
    let name = id.and_then(|id| tracker.task(id)).map(|t| t.task.name);
    tracing::warn!(
        task.id = id.map(|id| id.as_u64()),
        task.name = name.as_deref(),
        ?phases,
        "heartbeat cancelled outside a shutdown: its phases no longer run"
    );
}

impl Phase {
    /// Runs the phase once: its error, or a panic's message, whether it
    /// panics making its future or while the future runs.
    async fn run(&mut self) -> Result<Option<String>, String> {
        match std::panic::catch_unwind(AssertUnwindSafe(&mut self.run)) {
            Ok(future) => CatchUnwind(future).await,
            Err(payload) => Err(crate::instrument::panic_message(&*payload)),
        }
    }

    fn due(&mut self, tick: u64) -> bool {
        let period = match &mut self.schedule {
            Schedule::Every(n) => *n,
            Schedule::Adaptive(choose) => choose(tick).max(1),
        };
        self.last_tick.is_none_or(|last| tick - last >= period)
    }
}

/// Runs a phase's future, turning a panic into an error so the heartbeat
/// goes on.
struct CatchUnwind(PhaseFuture);

impl Future for CatchUnwind {
    type Output = Result<Option<String>, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
            Err(payload) => Poll::Ready(Err(crate::instrument::panic_message(&*payload))),
        }
    }
}

/// A running heartbeat: its phase statistics, and a way to stop it.
///
/// Dropping the handle leaves the heartbeat running (it is a tracked task
/// like any other; shutting down its tracker or runtime stops it).
#[derive(Debug)]
pub struct HeartbeatHandle {
    stats: Arc<Mutex<Vec<PhaseStats>>>,
    task: JoinHandle<()>,
}

impl HeartbeatHandle {
    /// Per-phase statistics, in phase order.
    pub fn stats(&self) -> Vec<PhaseStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops the heartbeat; a phase that is running is dropped at its next
    /// `.await`.
    pub fn stop(&self) {
        self.task.abort();
    }

    /// The heartbeat's task id.
    pub fn id(&self) -> crate::TaskId {
        self.task.id()
    }
}
