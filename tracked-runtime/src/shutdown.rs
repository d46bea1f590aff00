//! Tiered graceful shutdown: stop task types in order, each tier with its
//! own timeout, then abort whatever is left. The bound holds for the call,
//! not the process: see [`ShutdownPlan`] on blocking threads.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::control::{callers, cancel_blocking, on_thread, CancelReport, Exempt};
use crate::record::Record;
use crate::{TaskId, TaskType, Tracker};

/// One tier: the types it stops and how long it waits for them.
#[derive(Clone, Debug)]
pub struct Tier {
    /// A name for reports.
    pub name: String,
    /// The types it stops; `None` stands for every type no other tier names.
    pub types: Option<Vec<TaskType>>,
    /// How long its tasks get to stop after being asked, before they are aborted.
    pub timeout: Duration,
}

/// The order in which a shutdown stops task types.
///
/// Tiers run one after another; while a tier stops, the tasks of later tiers
/// keep running. After the last tier, anything still live is aborted.
///
/// The default plan, with 5 s per tier:
/// `UI`, then `Maintenance`, then `Network`, then `GameLogic` with `General`
/// and every type no tier names, then `Consensus` and `Database` last.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// use std::time::Duration;
/// use tracked::{ShutdownPlan, TaskType};
///
/// let plan = ShutdownPlan::new()
///     .tier("edges", [TaskType::UI, TaskType::NETWORK], Duration::from_secs(2))
///     .rest("workers", Duration::from_secs(5))
///     .tier("storage", [TaskType::DATABASE], Duration::from_secs(10));
/// assert_eq!(plan.total_timeout(), Duration::from_secs(17));
/// ```
///
/// # The process can outlive the bound
///
/// [`Tracker::shutdown`] returns within [`total_timeout`](Self::total_timeout)
/// plus a small margin, but a blocking closure (`spawn_blocking`) that has
/// started and ignores its token cannot be aborted: the report lists it as
/// left running, and it keeps its thread of tokio's blocking pool. Dropping
/// the runtime, as `#[tokio::main]` does when `main` returns, waits for every
/// such thread, so the process lives on until the closure returns. Bound the
/// process too: shut the runtime down with
/// [`Runtime::shutdown_timeout`](tokio::runtime::Runtime::shutdown_timeout),
/// or, under `#[tokio::main]`, end the process with `std::process::exit`
/// after a report that is not clean (once what must be written is written).
///
/// ```no_run
/// # extern crate tracked_runtime as tracked;
/// use std::time::Duration;
/// use tracked::{ShutdownPlan, Tracker};
///
/// let runtime = tokio::runtime::Runtime::new().unwrap();
/// let report = runtime.block_on(async {
///     // … serve until asked to stop …
///     Tracker::global().shutdown(ShutdownPlan::default()).await
/// });
/// eprint!("{report}");
/// // Blocking threads still running get 1 s more, then are left behind.
/// runtime.shutdown_timeout(Duration::from_secs(1));
/// // Under `#[tokio::main]`: if !report.is_clean() { std::process::exit(1) }
/// ```
#[derive(Clone, Debug)]
pub struct ShutdownPlan {
    tiers: Vec<Tier>,
}

impl Default for ShutdownPlan {
    fn default() -> Self {
        ShutdownPlan::default_with(Duration::from_secs(5))
    }
}

impl ShutdownPlan {
    /// A plan with no tiers: shutdown aborts everything at once.
    pub fn new() -> Self {
        ShutdownPlan { tiers: Vec::new() }
    }

    /// The default order, with `timeout` for each tier.
    pub fn default_with(timeout: Duration) -> Self {
        ShutdownPlan::new()
            .tier("ui", [TaskType::UI], timeout)
            .tier("maintenance", [TaskType::MAINTENANCE], timeout)
            .tier("network", [TaskType::NETWORK], timeout)
            .rest("logic", timeout)
            .tier("state", [TaskType::CONSENSUS, TaskType::DATABASE], timeout)
    }

    /// Adds a tier stopping `types`.
    pub fn tier(
        mut self,
        name: impl Into<String>,
        types: impl IntoIterator<Item = TaskType>,
        timeout: Duration,
    ) -> Self {
        self.tiers.push(Tier {
            name: name.into(),
            types: Some(types.into_iter().collect()),
            timeout,
        });
        self
    }

    /// Adds a tier stopping every type that no tier names.
    pub fn rest(mut self, name: impl Into<String>, timeout: Duration) -> Self {
        self.tiers.push(Tier {
            name: name.into(),
            types: None,
            timeout,
        });
        self
    }

    /// The tiers, in order.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// The sum of the tier timeouts (at most `Duration::MAX`): a shutdown
    /// returns within this plus a small margin for aborting.
    pub fn total_timeout(&self) -> Duration {
        self.tiers
            .iter()
            .fold(Duration::ZERO, |sum, tier| sum.saturating_add(tier.timeout))
    }

    fn named(&self) -> Vec<TaskType> {
        self.tiers
            .iter()
            .filter_map(|t| t.types.as_ref())
            .flatten()
            .copied()
            .collect()
    }
}

/// What one tier did.
#[derive(Clone, Debug)]
pub struct TierReport {
    /// The tier's name.
    pub name: String,
    /// Its timeout.
    pub timeout: Duration,
    /// What stopped, what was aborted, what had finished.
    pub report: CancelReport,
}

/// What a shutdown did, tier by tier.
#[derive(Clone, Debug)]
pub struct ShutdownReport {
    /// One entry per tier, in order.
    pub tiers: Vec<TierReport>,
    /// Tasks still live after the last tier (spawned late, or of a type the
    /// plan never reached), all aborted; not those a tier already reported
    /// as aborted or left running, which may still be live.
    pub leftover: CancelReport,
    /// How long the whole shutdown took.
    pub elapsed: Duration,
}

impl ShutdownReport {
    /// Whether every task stopped when asked.
    pub fn is_clean(&self) -> bool {
        self.tiers.iter().all(|t| t.report.is_clean()) && self.leftover.is_clean()
    }
}

/// One block per tier, then the leftovers and the total time. A block
/// names at most 20 aborted tasks and 20 left running, then how many more
/// (the report's lists hold them all). Durations take the unit that suits
/// them (`2.0s`, `30.0ms`), as `Duration`'s `Debug` does.
///
/// ```text
/// tier maintenance (timeout 500.0ms): 3 stopped, 0 already finished, 0 aborted in 12.31ms
/// tier state (timeout 2.0s): 1 stopped, 0 already finished, 1 aborted in 2.00s
///   aborted #42 db::flush (Database) age 9.1s at src/db.rs:80:5
/// leftover: 0 stopped, 0 already finished, 0 aborted in 45.20µs
/// shutdown took 2.03s, not clean
/// ```
impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for tier in &self.tiers {
            write!(
                f,
                "tier {} (timeout {:.1?}): {}",
                tier.name, tier.timeout, tier.report
            )?;
        }
        write!(f, "leftover: {}", self.leftover)?;
        writeln!(
            f,
            "shutdown took {:.2?}, {}",
            self.elapsed,
            if self.is_clean() {
                "clean"
            } else {
                "not clean"
            }
        )
    }
}

/// Where a tracker is in its shutdown; read on every spawn with one relaxed
/// load while running.
#[derive(Debug, Default)]
pub(crate) struct ShutdownState {
    /// Cancelled when the service is asked to stop; see
    /// [`Tracker::shutdown_token`].
    requested: CancellationToken,
    /// The first reason given for stopping.
    cause: OnceLock<String>,
    /// The tasks awaiting a call of the shutdown, left alone by its tiers;
    /// each call adds its own before the shutdown begins or waits.
    callers: Exempt,
    phase: AtomicU8,
    /// Types whose tier has begun stopping; `None` inside means "the rest".
    stopping: Mutex<Vec<Option<Vec<TaskType>>>>,
    named: Mutex<Vec<TaskType>>,
    /// The report of the shutdown, once it has finished; later and racing
    /// calls wait for it on `finished`.
    report: Mutex<Option<ShutdownReport>>,
    finished: Condvar,
    /// Cancelled with `finished`, for the tasks shutdowns leave alone
    /// ([`Record::kept`]) to stop then.
    finished_token: CancellationToken,
}

const RUNNING: u8 = 0;
const STOPPING: u8 = 1;
const DONE: u8 = 2;

/// What happens to a task spawned now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AtSpawn {
    /// Runs normally.
    Run,
    /// Its tier is stopping: it starts with its cancellation requested.
    Cancel,
    /// Shutdown finished: it is aborted before it runs.
    Abort,
}

impl ShutdownState {
    pub(crate) fn at_spawn(&self, record: &Record) -> AtSpawn {
        // Relaxed: a spawn racing the start of a tier may run normally; the
        // tier's own scans of the registry ask it to stop moments later.
        match self.phase.load(Ordering::Relaxed) {
            RUNNING => AtSpawn::Run,
            _ if record.kept() => AtSpawn::Run,
            DONE => AtSpawn::Abort,
            _ => {
                let ty = record.ty;
                let named = self.named.lock().unwrap_or_else(|p| p.into_inner());
                let stopping = self.stopping.lock().unwrap_or_else(|p| p.into_inner());
                let hit = stopping.iter().any(|tier| match tier {
                    Some(types) => types.contains(&ty),
                    None => !named.contains(&ty),
                });
                if hit {
                    AtSpawn::Cancel
                } else {
                    AtSpawn::Run
                }
            }
        }
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.lock_report().is_some()
    }

    fn lock_report(&self) -> std::sync::MutexGuard<'_, Option<ShutdownReport>> {
        self.report.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the shutdown that is running has finished; its report.
    fn wait(&self) -> ShutdownReport {
        let mut report = self.lock_report();
        loop {
            if let Some(report) = &*report {
                return report.clone();
            }
            report = self
                .finished
                .wait(report)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Keeps the report of the shutdown and wakes the calls waiting for it.
    fn finish(&self, report: ShutdownReport) {
        *self.lock_report() = Some(report);
        self.finished.notify_all();
        self.finished_token.cancel();
    }
}

/// Whether a shutdown still has `r` to stop: not reported by an earlier
/// tier (`reported`), and not a task shutdowns leave alone ([`Record::kept`]).
fn to_stop(reported: &HashSet<TaskId>, r: &Record) -> bool {
    !reported.contains(&r.id) && !r.kept()
}

/// Ends a shutdown even if it unwinds: the calls waiting for it get an
/// empty report rather than waiting forever.
struct Finishing<'a>(&'a ShutdownState);

impl Drop for Finishing<'_> {
    fn drop(&mut self) {
        if self.0.lock_report().is_none() {
            self.0.phase.store(DONE, Ordering::Release);
            self.0.finish(empty_report());
        }
    }
}

impl Tracker {
    /// Shuts the tracker's tasks down tier by tier and reports.
    ///
    /// Returns within [`ShutdownPlan::total_timeout`] plus a small margin
    /// (up to 100 ms per tier that had to abort, for the aborts to land),
    /// whatever the tasks do: the tiers run on a dedicated thread that
    /// depends on neither the runtime's workers nor its timers. The margin
    /// also holds the time to abort, one by one, what is left (a few µs a
    /// task): tasks spawned faster than that during the shutdown (hundreds
    /// of thousands a second on two cores) stretch it. It bounds the call,
    /// not the process: a blocking closure left running holds up the
    /// runtime's drop (see [`ShutdownPlan`]).
    ///
    /// **Spawning during and after shutdown**: a task spawned while its
    /// type's tier (or a later-started one) is stopping starts with its
    /// cancellation already requested, and is aborted with its tier if it does
    /// not stop. Once shutdown has finished, every spawn on this tracker is
    /// aborted before it runs: its handle resolves to a cancelled `JoinError`
    /// and it is recorded as `Cancelled`.
    ///
    /// **Called twice**, or from two threads at once: the plan runs once, and
    /// every call returns when it has finished, with its report.
    ///
    /// **The task journal** (feature `journal`): its writer and connection,
    /// `Database` tasks, are left alone (not stopped, not aborted, not in
    /// the report), so that they journal how every tier's tasks ended; the
    /// writer stops once the shutdown has finished.
    ///
    /// **Called from a tracked task**, as a `#[tracked]` `main` or a signal
    /// handler task does: that task, and the `#[tracked]` fns in it awaiting
    /// the shutdown, are left alone (not asked to stop, not aborted, not in
    /// the report). They wait for the shutdown, so it cannot wait for them.
    /// So are the task's ancestors that nothing can abort, as they are most
    /// likely waiting for it: `#[tracked]` fns awaited at the root of the
    /// tree (a `#[tracked]` `main` awaiting its signal handler task) and
    /// within them. Ancestors that are tasks of tokio's, and what runs in
    /// them, are stopped as usual. A call made while the shutdown runs gets
    /// the same from the moment it is made: a tier may have asked its task
    /// to stop already, but aborts it only if the tier's deadline had passed
    /// before the call.
    pub async fn shutdown(&self, plan: ShutdownPlan) -> ShutdownReport {
        // Before anything is awaited: a tier may be about to abort the task.
        self.inner.shutdown.callers.add(callers(self));
        let tracker = self.clone();
        on_thread(
            "tracked-shutdown",
            move || tracker.shut_down(plan),
            empty_report,
        )
        .await
    }

    /// [`Tracker::shutdown`] for synchronous code: blocks the calling thread.
    ///
    /// Not from async code on a runtime's thread: on a current-thread runtime
    /// that is the only thread, so no task can run to see its cancellation,
    /// and every tier waits out its timeout and aborts. Await
    /// [`Tracker::shutdown`] there.
    pub fn shutdown_blocking(&self, plan: ShutdownPlan) -> ShutdownReport {
        self.inner.shutdown.callers.add(callers(self));
        self.shut_down(plan)
    }

    /// Runs `plan`, leaving the callers of the shutdown alone, or waits for
    /// the shutdown that runs already.
    fn shut_down(&self, plan: ShutdownPlan) -> ShutdownReport {
        self.request_shutdown("shutdown started");
        let state = &self.inner.shutdown;
        if state
            .phase
            .compare_exchange(RUNNING, STOPPING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return state.wait();
        }
        let finishing = Finishing(state);
        let started = Instant::now();
        let named = plan.named();
        *state.named.lock().unwrap_or_else(|p| p.into_inner()) = named.clone();
        // A task a tier aborted or left running may still be live when the
        // next tier, or the leftover pass, looks: it is reported once.
        let mut reported = HashSet::new();
        let mut tiers = Vec::new();
        for tier in plan.tiers {
            state
                .stopping
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(tier.types.clone());
            tracing::info!(tier = %tier.name, "shutdown: stopping tier");
            let done = reported.clone();
            let select: Arc<dyn Fn(&Record) -> bool + Send + Sync> = match tier.types {
                Some(types) => {
                    Arc::new(move |r: &Record| to_stop(&done, r) && types.contains(&r.ty))
                }
                None => {
                    let named = named.clone();
                    Arc::new(move |r: &Record| to_stop(&done, r) && !named.contains(&r.ty))
                }
            };
            let report = cancel_blocking(self, select, &state.callers, tier.timeout);
            let unstopped = [
                (&report.aborted, "was aborted"),
                (&report.left_running, "cannot be aborted: left running"),
            ];
            for (tasks, fate) in unstopped {
                for task in tasks {
                    reported.insert(task.id);
                    tracing::warn!(
                        tier = %tier.name,
                        task.id = task.id.as_u64(),
                        task.name = %task.name,
                        task.r#type = %task.ty,
                        task.site = %task.site,
                        "shutdown: task did not stop in time and {fate}"
                    );
                }
            }
            tiers.push(TierReport {
                name: tier.name,
                timeout: tier.timeout,
                report,
            });
        }
        state.phase.store(DONE, Ordering::Release);
        let select = Arc::new(move |r: &Record| to_stop(&reported, r));
        let leftover = cancel_blocking(self, select, &state.callers, Duration::ZERO);
        let report = ShutdownReport {
            tiers,
            leftover,
            elapsed: started.elapsed(),
        };
        state.finish(report.clone());
        drop(finishing);
        report
    }

    /// A token cancelled when the service should stop: a task panicked
    /// under [`OnPanic::Shutdown`](crate::OnPanic::Shutdown),
    /// [`Tracker::request_shutdown`] was called, or [`Tracker::shutdown`]
    /// began. A service waits on it beside its signals, then shuts down:
    ///
    /// ```no_run
    /// # extern crate tracked_runtime as tracked;
    /// # async fn run(tracker: tracked::Tracker) {
    /// use tracked::ShutdownPlan;
    ///
    /// let stop = tracker.shutdown_token();
    /// tokio::select! {
    ///     _ = tokio::signal::ctrl_c() => tracker.request_shutdown("Ctrl-C"),
    ///     _ = stop.cancelled() => {}
    /// }
    /// eprintln!("stopping: {}", tracker.shutdown_cause().unwrap_or("?"));
    /// let report = tracker.shutdown(ShutdownPlan::default()).await;
    /// # drop(report);
    /// # }
    /// ```
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.requested.clone()
    }

    /// Asks the service to stop, for `cause`: cancels
    /// [`Tracker::shutdown_token`]. The first cause given is kept. Stops no
    /// task by itself.
    pub fn request_shutdown(&self, cause: impl Into<String>) {
        let state = &self.inner.shutdown;
        if state.cause.set(cause.into()).is_ok() {
            let cause = state.cause.get().map_or("", String::as_str);
            tracing::info!(cause, "shutdown requested");
        }
        state.requested.cancel();
    }

    /// Why the service was asked to stop, if it was: the first cause given.
    pub fn shutdown_cause(&self) -> Option<&str> {
        self.inner.shutdown.cause.get().map(String::as_str)
    }

    /// Whether [`Tracker::shutdown`] has finished (its report is ready).
    pub fn is_shut_down(&self) -> bool {
        self.inner.shutdown.is_shut_down()
    }

    /// Completes once [`Tracker::shutdown`] has finished: for the tasks
    /// shutdowns leave alone, which stop then.
    #[cfg(feature = "journal")]
    pub(crate) fn shutdown_finished(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.inner.shutdown.finished_token.clone().cancelled_owned()
    }

    /// Whether a shutdown was asked for or has started (it asks first): a
    /// cancel of a long-lived task is then expected, not worth a warning.
    pub(crate) fn shutdown_requested(&self) -> bool {
        self.inner.shutdown.requested.is_cancelled()
    }
}

fn empty_report() -> ShutdownReport {
    ShutdownReport {
        tiers: Vec::new(),
        leftover: CancelReport::default(),
        elapsed: Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::{ShutdownReport, TierReport};
    use crate::{CancelReport, Site, StubbornTask, TaskId, TaskType};
    use std::time::Duration;

    /// A timeout under a second used to print as `0.0s`.
    #[test]
    fn a_report_prints_short_durations_in_milliseconds() {
        let report = ShutdownReport {
            tiers: vec![TierReport {
                name: "edges".into(),
                timeout: Duration::from_millis(30),
                report: CancelReport {
                    elapsed: Duration::from_millis(4),
                    ..CancelReport::default()
                },
            }],
            leftover: CancelReport::default(),
            elapsed: Duration::from_secs(2),
        };
        let text = report.to_string();
        assert!(text.starts_with("tier edges (timeout 30.0ms): "), "{text}");
        assert!(text.contains(" aborted in 4.00ms\n"), "{text}");
        assert!(text.ends_with("shutdown took 2.00s, clean\n"), "{text}");
    }

    /// A storm's thousands of aborted tasks used to be printed one a line.
    #[test]
    fn a_report_lists_twenty_tasks_a_section_and_counts_the_rest() {
        let task = |id| StubbornTask {
            id: TaskId::from_u64(id).unwrap(),
            name: "gust".into(),
            ty: TaskType::UI,
            age: Duration::from_millis(3),
            parent: None,
            site: Site {
                file: "src/storm.rs",
                line: 1,
                column: 1,
            },
            last_progress: None,
        };
        let report = ShutdownReport {
            tiers: Vec::new(),
            leftover: CancelReport {
                aborted: (1..=25).map(task).collect(),
                left_running: (26..=45).map(task).collect(),
                ..CancelReport::default()
            },
            elapsed: Duration::from_secs(1),
        };
        let text = report.to_string();
        let aborted = text.lines().filter(|l| l.starts_with("  aborted #"));
        assert_eq!(aborted.count(), 20, "{text}");
        assert!(text.contains("\n  … and 5 more aborted\n"), "{text}");
        let left = text.lines().filter(|l| l.starts_with("  left running"));
        assert_eq!(left.count(), 20, "{text}");
        assert!(!text.contains("more left running"), "{text}");
        assert!(text
            .starts_with("leftover: 0 stopped, 0 already finished, 25 aborted, 20 left running"));
    }
}
