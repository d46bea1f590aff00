//! Cancellation with a deadline: ask first, abort what is left, report.
//!
//! Every cancel — of a group, of a type, of a shutdown tier — runs the same
//! procedure on a dedicated OS thread, so that its deadline holds whatever
//! the tasks do (ignore the request, block a worker thread, panic while
//! stopping, keep spawning): it does not depend on the runtime's workers or
//! timers being free.
//!
//! 1. Every live task that matches is asked to stop: its cancellation token
//!    (see [`CurrentTask::cancellation_token`](crate::CurrentTask::cancellation_token))
//!    is cancelled. Tasks that start matching later (spawned meanwhile) are
//!    asked too.
//! 2. At the deadline, whatever still runs is aborted, if tokio can abort
//!    it: not a `#[tracked]` fn awaited inside another task (it ends with
//!    that task), nor a blocking closure already running. Those are left
//!    running, and reported as such, unless they ended once the aborts
//!    landed (a `#[tracked]` fn awaited in a task that was aborted).
//! 3. The report says what stopped by itself, what was aborted and what was
//!    left running (with each stubborn task's name, type, age, parent, site
//!    and last progress message), and what had already finished.
//!
//! A cancel called from inside a tracked task leaves that task alone (and
//! the `#[tracked]` fns it is awaiting the cancel in): they wait for the
//! cancel, so it can neither wait for them nor abort them, which would lose
//! its report. So are the `#[tracked]` fns awaited at the root of the tree
//! above it (a `#[tracked]` `main`): nothing can abort them, and they are
//! most likely awaiting the caller.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::instrument::with_current;
use crate::record::{Record, Site, TaskName};
use crate::{SpawnKind, TaskId, TaskState, TaskType, Tracker};

/// How often the cancel thread looks at the registry while it waits.
const POLL: Duration = Duration::from_millis(2);

/// How long a cancel waits, after aborting, for the aborted tasks to end.
const ABORT_GRACE: Duration = Duration::from_millis(100);

/// The outcome of a cancel. Each task the cancel reached is counted once:
/// as stopped, already finished, cancelled elsewhere, aborted or left
/// running.
#[derive(Clone, Debug, Default)]
pub struct CancelReport {
    /// Tasks that ended by themselves after being asked: before the
    /// deadline, or after it but before their abort landed (with an output
    /// or a panic, not cancelled).
    pub stopped: usize,
    /// Tasks that had already ended when the request reached them.
    pub already_finished: usize,
    /// Tasks that ended `Cancelled` before the deadline, so not by
    /// themselves and not by this cancel's abort: aborted by someone else
    /// (an [`AbortHandle`](crate::AbortHandle), another cancel, a shutdown)
    /// or dropped with their runtime.
    pub cancelled_elsewhere: usize,
    /// Tasks still running at the deadline, which were aborted: those that
    /// ended `Cancelled`, and those whose abort had not landed yet when the
    /// cancel returned (a task blocking its worker thread, a blocking
    /// closure still waiting for a thread, which its abort ends before it
    /// starts). A `#[tracked]` fn awaited inside a task that was aborted
    /// ended with it, and is listed here too. Tasks that joined the
    /// selection while the aborts landed (spawned by a task being aborted)
    /// are aborted too, and listed here.
    pub aborted: Vec<StubbornTask>,
    /// Tasks still running at the deadline that an abort cannot stop, left
    /// running: a `#[tracked]` fn awaited inside another task that is still
    /// running (it ends with that task), or a blocking closure that had
    /// started.
    pub left_running: Vec<StubbornTask>,
    /// How long the cancel took.
    pub elapsed: Duration,
}

impl CancelReport {
    /// Whether every task stopped without being aborted or left running.
    pub fn is_clean(&self) -> bool {
        self.aborted.is_empty() && self.left_running.is_empty()
    }
}

/// One line of counts, then one indented line per aborted task and per task
/// left running: the first 20 of each, then how many more there are (the
/// report's lists hold them all).
///
/// ```text
/// 3 stopped, 1 already finished, 1 aborted in 2.00s
///   aborted #42 db::flush (Database) age 9.1s parent #7 at src/db.rs:80:5, last progress "page 3/9"
/// ```
impl fmt::Display for CancelReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} stopped, {} already finished, {} aborted",
            self.stopped,
            self.already_finished,
            self.aborted.len(),
        )?;
        if !self.left_running.is_empty() {
            write!(f, ", {} left running", self.left_running.len())?;
        }
        if self.cancelled_elsewhere > 0 {
            write!(f, ", {} cancelled elsewhere", self.cancelled_elsewhere)?;
        }
        writeln!(f, " in {:.2?}", self.elapsed)?;
        list(f, "aborted", &self.aborted)?;
        list(f, "left running (cannot be aborted)", &self.left_running)
    }
}

/// How many tasks of each list a report's `Display` names.
const LISTED: usize = 20;

/// One line per task of `tasks`, the first [`LISTED`], then one for the rest.
fn list(f: &mut fmt::Formatter<'_>, fate: &str, tasks: &[StubbornTask]) -> fmt::Result {
    for task in tasks.iter().take(LISTED) {
        writeln!(f, "  {fate} {task}")?;
    }
    match tasks.len().checked_sub(LISTED) {
        Some(more) if more > 0 => writeln!(f, "  … and {more} more {fate}"),
        _ => Ok(()),
    }
}

/// A task that did not stop when asked and was aborted.
#[derive(Clone, Debug)]
pub struct StubbornTask {
    /// Its id.
    pub id: TaskId,
    /// Its name.
    pub name: TaskName,
    /// Its type.
    pub ty: TaskType,
    /// How long it had lived, since its spawn, when the cancel aborted it
    /// (or, unable to, left it running).
    pub age: Duration,
    /// The task that spawned it.
    pub parent: Option<TaskId>,
    /// Where it was spawned.
    pub site: Site,
    /// Its last progress message, if it reported any.
    pub last_progress: Option<String>,
}

/// `#42 db::flush (Database) age 9.1s parent #7 at src/db.rs:80:5, last progress "page 3/9"`
impl fmt::Display for StubbornTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} ({}) age {:.1?}",
            self.id, self.name, self.ty, self.age
        )?;
        if let Some(parent) = self.parent {
            write!(f, " parent #{parent}")?;
        }
        write!(f, " at {}", self.site)?;
        if let Some(progress) = &self.last_progress {
            write!(f, ", last progress {progress:?}")?;
        }
        Ok(())
    }
}

impl StubbornTask {
    /// The task of `record`, given up on at `at` (the tracker's clock).
    fn of(record: &Record, at: u64) -> Self {
        StubbornTask {
            id: record.id,
            name: record.name.clone(),
            ty: record.ty,
            age: Duration::from_nanos(at.saturating_sub(record.spawned_at)),
            parent: record.parent,
            site: record.site(),
            last_progress: record
                .progress()
                .as_ref()
                .and_then(|p| p.log.back().map(|entry| entry.message.clone())),
        }
    }
}

/// What a cancel selects.
pub(crate) type Selector = Arc<dyn Fn(&Record) -> bool + Send + Sync>;

/// The tasks a cancel leaves alone: those awaiting it (see [`callers`]).
/// A shutdown's set grows while it runs, as later calls join it: a task in
/// the set is never aborted, and not in the report, unless it was aborted
/// before it joined.
#[derive(Debug, Default)]
pub(crate) struct Exempt(Mutex<HashSet<TaskId>>);

impl Exempt {
    /// Adds tasks to leave alone.
    pub(crate) fn add(&self, ids: HashSet<TaskId>) {
        self.lock().extend(ids);
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<TaskId>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs a cancel to completion on the calling thread; blocks until every
/// selected task ended or `timeout` passed (plus the time to abort). Tasks
/// in `exempt` are never selected, nor aborted if they join it meanwhile; a
/// timeout too large for a deadline waits for as long as the tasks run.
pub(crate) fn cancel_blocking(
    tracker: &Tracker,
    select: Selector,
    exempt: &Exempt,
    timeout: Duration,
) -> CancelReport {
    let started = Instant::now();
    let deadline = started.checked_add(timeout);
    let mut report = CancelReport::default();
    // Tasks are followed by id: a `#[tracked]` claim may replace a task's
    // record while it is being cancelled.
    let mut asked = Asked::new();
    let mut asked_units = HashSet::new();
    let mut remaining: Vec<Arc<Record>>;
    loop {
        let skip = exempt.lock().clone();
        // With them, the `#[tracked]` fns awaited in the tasks selected or
        // asked so far (deeper ones a scan later): each runs within its
        // task, so what asks the task asks it, and one watching its own
        // token stops with its task. A fn that starts later is asked as it
        // registers (`inline::start`). They are not counted, also when the
        // cancel selects them too (a group's owner is inherited): they end
        // with their task, which is.
        let was_asked = |id: &TaskId| asked.contains_key(id) || asked_units.contains(id);
        remaining = tracker.inner.registry.live(|r| {
            let unit = || unit_in(r, was_asked);
            !skip.contains(&r.id) && (asked.contains_key(&r.id) || select(r) || unit())
        });
        let selected: HashSet<TaskId> = remaining.iter().map(|r| r.id).collect();
        let mut units = Vec::new();
        remaining.retain(|r| {
            let inside = !asked.contains_key(&r.id)
                && unit_in(r, |p: &TaskId| selected.contains(p) || was_asked(p));
            if inside && !r.cancel_requested() {
                units.push(Arc::clone(r));
            }
            !inside
        });
        // The tasks first: a task whose fns stop at once must be asked
        // before it ends, or it would count as having ended before.
        for record in &remaining {
            ask(tracker, record, &mut asked);
        }
        for unit in &units {
            ask_unit(tracker, unit);
            asked_units.insert(unit.id);
        }
        remaining.retain(|r| !r.state().is_finished());
        let now = Instant::now();
        let left = deadline.map_or(POLL, |deadline| deadline.saturating_duration_since(now));
        if remaining.is_empty() || left.is_zero() {
            break;
        }
        std::thread::sleep(POLL.min(left));
    }
    let now = Instant::now();
    let clock = &tracker.inner.clock;
    // At the deadline, abort what is left. Until the aborts land, tasks that
    // start matching meanwhile (spawned by a task whose abort has not landed
    // yet) are asked and aborted too, so that none outlives the cancel
    // unreported: a task seen ended has spawned all it ever will.
    let (mut abortable, mut stuck) = (Vec::new(), Vec::new());
    abort_all(&mut remaining, exempt, clock, &mut abortable, &mut stuck);
    let grace = now + ABORT_GRACE;
    while !(abortable.is_empty() && stuck.is_empty()) {
        // Read before the scan, so that the scan sees all they spawned.
        let settled = abortable.iter().all(|(r, _)| r.state().is_finished());
        let skip = exempt.lock().clone();
        let was_asked = |id: &TaskId| asked.contains_key(id) || asked_units.contains(id);
        remaining = tracker.inner.registry.live(|r| {
            !skip.contains(&r.id)
                && !asked.contains_key(&r.id)
                && select(r)
                && !unit_in(r, was_asked)
        });
        for record in &remaining {
            ask(tracker, record, &mut asked);
        }
        remaining.retain(|r| !r.state().is_finished());
        let late = !remaining.is_empty();
        abort_all(&mut remaining, exempt, clock, &mut abortable, &mut stuck);
        if (settled && !late) || Instant::now() >= grace {
            break;
        }
        if !late {
            std::thread::sleep(POLL);
        }
    }
    for (record, at) in &abortable {
        let list = match record.state() {
            // tokio cannot stop a blocking closure once it runs; one still
            // queued for a thread is ended by its abort before it starts.
            state
                if !state.is_finished()
                    && record.kind == SpawnKind::Blocking
                    && has_started(record) =>
            {
                &mut report.left_running
            }
            // The abort lands when the runtime next drops the task (not yet
            // if the task blocks its worker thread).
            state if !state.is_finished() || state == TaskState::Cancelled => &mut report.aborted,
            // It ended by itself, with an output or a panic, before the
            // abort landed: it stopped.
            _ => {
                report.stopped += 1;
                continue;
            }
        };
        list.push(StubbornTask::of(record, *at));
    }
    // Read once the aborts landed: a `#[tracked]` fn awaited in a task that
    // was aborted has ended with it (dropped before the task's own end).
    for (record, at) in &stuck {
        let list = match record.state() {
            TaskState::Cancelled => &mut report.aborted,
            state if !state.is_finished() => &mut report.left_running,
            _ => {
                report.stopped += 1;
                continue;
            }
        };
        list.push(StubbornTask::of(record, *at));
    }
    // The others ended before the deadline, or joined the exempt.
    let forced: HashSet<TaskId> = abortable.iter().chain(&stuck).map(|(r, _)| r.id).collect();
    let exempt = exempt.lock();
    for (id, record) in &asked {
        match record {
            _ if forced.contains(id) => {}
            None => report.already_finished += 1,
            Some(_) if exempt.contains(id) => {}
            Some(record) if record.state() == TaskState::Cancelled => {
                report.cancelled_elsewhere += 1;
            }
            Some(_) => report.stopped += 1,
        }
    }
    report.elapsed = started.elapsed();
    report
}

/// How often [`Group::wait`] looks again at the tasks its scan found.
const RECHECK: Duration = Duration::from_millis(50);

/// The tasks a cancel asked to stop, by id: each one's latest record, or
/// `None` if it had ended before it was asked.
type Asked = HashMap<TaskId, Option<Arc<Record>>>;

/// Asks `record`'s task to stop, unless someone already did, and keeps it in
/// `asked`.
fn ask(tracker: &Tracker, record: &Arc<Record>, asked: &mut Asked) {
    let mut ended = false;
    if !record.cancel_requested() {
        // Sent before the token is cancelled: a task that stops as soon as
        // it is asked would end first, and no `CancelRequested` follows a
        // `Finished` event. Racing an end, it comes before it or not at all.
        record.unless_ended(|| tracker.emit(record, crate::EventKind::CancelRequested));
        ended = !tracker.inner.registry.request_cancel(record);
    }
    match asked.entry(record.id) {
        Entry::Vacant(slot) => {
            slot.insert((!ended).then(|| Arc::clone(record)));
        }
        Entry::Occupied(mut slot) => {
            slot.insert(Some(Arc::clone(record)));
        }
    }
}

/// Whether `r` is a `#[tracked]` fn awaited inside a task (or fn) that
/// `parent` holds.
fn unit_in(r: &Record, parent: impl Fn(&TaskId) -> bool) -> bool {
    r.nested() && r.parent.as_ref().is_some_and(parent)
}

/// Asks a `#[tracked]` fn awaited inside a task asked to stop, uncounted:
/// its token is cancelled with the task's.
pub(crate) fn ask_unit(tracker: &Tracker, unit: &Record) {
    unit.unless_ended(|| tracker.emit(unit, crate::EventKind::CancelRequested));
    tracker.inner.registry.request_cancel(unit);
}

/// Whether a task was polled, or its blocking closure started, at least once.
fn has_started(record: &Record) -> bool {
    record.polls.load(std::sync::atomic::Ordering::Relaxed) > 0
}

/// Aborts each of `records` that tokio can abort, moving it to `abortable`,
/// and moves the others (`#[tracked]` fns awaited inside a task) to `stuck`,
/// each with the time (on `clock`) it was given up on; drops those in
/// `exempt`, which it holds meanwhile, so that a task joining it is either
/// aborted before or left alone.
fn abort_all(
    records: &mut Vec<Arc<Record>>,
    exempt: &Exempt,
    clock: &Clock,
    abortable: &mut Vec<(Arc<Record>, u64)>,
    stuck: &mut Vec<(Arc<Record>, u64)>,
) {
    let exempt = exempt.lock();
    let at = clock.now();
    for record in records.drain(..) {
        if exempt.contains(&record.id) {
            continue;
        }
        if record.kind == SpawnKind::Inline {
            stuck.push((record, at));
        } else {
            record.abort();
            abortable.push((record, at));
        }
    }
}

/// The tasks a cancel called on this thread must leave alone, as they wait
/// for it: the tracked task polling the call and the `#[tracked]` fns in it
/// that await the call, up to the task tokio runs; and the ancestors that
/// nothing can abort, most likely awaiting the caller: `#[tracked]` fns
/// awaited at the root of the tree (a `#[tracked]` `main`), and those
/// awaited inside them. Waiting for any of them could only time out.
/// Ancestors are followed as far as they are live or in history (a task
/// that spawned the caller and ended still leads to the root).
pub(crate) fn callers(tracker: &Tracker) -> HashSet<TaskId> {
    // The caller, then its ancestors: each one's id and whether it is inline.
    let mut chain = Vec::new();
    let mut rooted = false;
    let mut next =
        with_current(|current| current.map(|c| (c.record.id, c.record.kind, c.record.parent)));
    while let Some((id, kind, parent)) = next {
        chain.push((id, kind == SpawnKind::Inline));
        rooted = parent.is_none();
        next = parent.and_then(|parent| {
            let inner = &tracker.inner;
            let live = inner.registry.live(|r| r.id == parent);
            let found = live.first().map(|r| (r.id, r.kind, r.parent));
            found.or_else(|| {
                let ended = inner.registry.history(|r| r.id == parent, &inner.clock);
                ended.first().map(|t| (t.id, t.kind, t.parent))
            })
        });
    }
    let own = chain
        .iter()
        .position(|&(_, inline)| !inline)
        .map_or(chain.len(), |task| task + 1);
    let root = if rooted {
        let units = chain.iter().rev().take_while(|&&(_, inline)| inline);
        units.count()
    } else {
        0
    };
    chain[..own]
        .iter()
        .chain(&chain[chain.len() - root..])
        .map(|&(id, _)| id)
        .collect()
}

/// Runs `work` on a thread of its own, named `name`, and awaits what it
/// returns; a panic in it is resumed here, and `fallback` is returned only
/// if no thread can be started.
pub(crate) async fn on_thread<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
    fallback: impl FnOnce() -> T,
) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = tx.send(work());
        });
    let thread = match spawned {
        Ok(thread) => thread,
        Err(error) => {
            tracing::error!("could not start the {name} thread: {error}");
            return fallback();
        }
    };
    match rx.await {
        Ok(value) => value,
        // The sender is gone: `work` panicked.
        Err(_) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the {name} thread sends before it ends"),
        },
    }
}

/// Runs `cancel_blocking` on its own thread and awaits the report.
pub(crate) async fn cancel(tracker: &Tracker, select: Selector, timeout: Duration) -> CancelReport {
    let exempt = Exempt(Mutex::new(callers(tracker)));
    let tracker = tracker.clone();
    on_thread(
        "tracked-cancel",
        move || cancel_blocking(&tracker, select, &exempt, timeout),
        CancelReport::default,
    )
    .await
}

impl Tracker {
    /// Cancels every live task of type `ty`: asks them to stop, aborts what
    /// still runs after `timeout`, and reports.
    ///
    /// Returns within `timeout` plus up to 100 ms when it had to abort: the
    /// time it gives the aborts to land, so that the report can say which
    /// tasks ended and which are left running (a blocking closure that had
    /// started, a `#[tracked]` fn awaited in a task it cannot abort).
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # if cfg!(miri) { return; } // A 100 ms deadline; Miri runs too slowly for it.
    /// use std::time::Duration;
    /// use tracked::{TaskType, Tracker};
    ///
    /// let tracker = Tracker::new();
    /// // Stops when asked.
    /// tracker.spawn("polite", TaskType::NETWORK, async {
    ///     tracked::current().unwrap().cancellation_token().cancelled().await;
    /// });
    /// // Never looks at its token.
    /// tracker.spawn("stubborn", TaskType::NETWORK, std::future::pending::<()>());
    /// tokio::task::yield_now().await;
    ///
    /// let report = tracker.cancel_type(TaskType::NETWORK, Duration::from_millis(100)).await;
    /// assert_eq!(report.stopped, 1);
    /// assert_eq!(report.aborted[0].name, "stubborn");
    /// # }
    /// ```
    pub async fn cancel_type(&self, ty: TaskType, timeout: Duration) -> CancelReport {
        cancel(self, Arc::new(move |r: &Record| r.ty == ty), timeout).await
    }

    /// Cancels every live task whose owner is `owner`; see [`Tracker::cancel_type`].
    pub async fn cancel_owner(&self, owner: &str, timeout: Duration) -> CancelReport {
        let owner: Arc<str> = owner.into();
        cancel(
            self,
            Arc::new(move |r: &Record| r.owner() == Some(&owner)),
            timeout,
        )
        .await
    }

    /// Cancels one task; see [`Tracker::cancel_type`]. A task that has
    /// ended already, and is still in history, counts as
    /// [`CancelReport::already_finished`]; for an id the tracker does not
    /// know (never spawned here, or gone from history) the report is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use tracked::{TaskType, Tracker};
    ///
    /// let tracker = Tracker::new();
    /// let done = tracker.spawn("ping", TaskType::NETWORK, async {});
    /// let id = done.id();
    /// done.await.unwrap();
    /// let report = tracker.cancel_task(id, Duration::from_secs(1)).await;
    /// assert_eq!(report.already_finished, 1);
    /// # }
    /// ```
    pub async fn cancel_task(&self, id: TaskId, timeout: Duration) -> CancelReport {
        let mut report = cancel(self, Arc::new(move |r: &Record| r.id == id), timeout).await;
        let reached = report.stopped
            + report.already_finished
            + report.cancelled_elsewhere
            + report.aborted.len()
            + report.left_running.len();
        if reached == 0 && self.task(id).is_some_and(|t| t.task.state.is_finished()) {
            report.already_finished = 1;
        }
        report
    }
}

/// A group of tasks sharing an owner (a session, a tenant, a connection):
/// spawn into it, count it, cancel it.
///
/// Tasks spawned through the group get its name as their owner, and tasks
/// they spawn inherit it, so a group covers whole subtrees of work. A group
/// is only a name: cloning or dropping the handle does nothing to its tasks,
/// which keep running until they end or the group is cancelled; two handles
/// with the same name are the same group.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # // One thread: a runtime's workers can outlive `main` by an instant,
/// # // which Miri reports.
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use tracked::{TaskType, Tracker};
///
/// let tracker = Tracker::new();
/// let session = tracker.group("session-42");
/// session.spawn("reader", TaskType::NETWORK, async {
///     tracked::current().unwrap().cancellation_token().cancelled().await;
/// });
/// tokio::task::yield_now().await;
/// assert_eq!(session.live().total, 1);
///
/// // Returns once the reader has stopped; 30 s is how long it may take.
/// let report = session.cancel(Duration::from_secs(30)).await;
/// assert!(report.is_clean());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Group {
    tracker: Tracker,
    name: Arc<str>,
}

/// Live tasks of a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupCount {
    /// All of them.
    pub total: u64,
    /// Per type.
    pub by_type: std::collections::BTreeMap<TaskType, u64>,
}

impl Tracker {
    /// The group of tasks owned by `name`.
    pub fn group(&self, name: impl Into<Arc<str>>) -> Group {
        Group {
            tracker: self.clone(),
            name: name.into(),
        }
    }
}

impl Group {
    /// The group's name: its tasks' owner.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A builder for a task in this group.
    pub fn builder(&self, name: impl Into<TaskName>, ty: TaskType) -> crate::Builder<'_> {
        self.tracker
            .task_builder(name, ty)
            .owner(Arc::clone(&self.name))
    }

    /// Spawns a tracked task into the group.
    #[track_caller]
    pub fn spawn<F>(
        &self,
        name: impl Into<TaskName>,
        ty: TaskType,
        future: F,
    ) -> crate::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: crate::TaskOutput + Send + 'static,
    {
        self.builder(name, ty).spawn(future)
    }

    /// The group's live tasks, in total and per type.
    pub fn live(&self) -> GroupCount {
        let mut count = GroupCount::default();
        for record in self
            .tracker
            .inner
            .registry
            .live(|r| r.owner() == Some(&self.name))
        {
            count.total += 1;
            *count.by_type.entry(record.ty).or_default() += 1;
        }
        count
    }

    /// Waits until the group has no live task, without asking any to stop:
    /// tokio-util's `TaskTracker::wait`. Tasks that join the group
    /// meanwhile are waited for too; it returns at the first moment none is
    /// live, so stop spawning into the group first (`TaskTracker::close`).
    /// Wrap it in `tokio::time::timeout` to bound it, or use
    /// [`cancel`](Group::cancel) to ask the tasks to stop.
    ///
    /// Called from one of the group's tasks, it waits for that task too,
    /// so for ever (as `TaskTracker::wait` would).
    ///
    /// # Panics
    ///
    /// Without the runtime's timer (`enable_time`, on with `#[tokio::main]`)
    /// once the group has a task: it follows the group through the
    /// tracker's events and looks at its tasks again every 50 ms.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use tracked::{TaskType, Tracker};
    ///
    /// let tracker = Tracker::new();
    /// let uploads = tracker.group("uploads");
    /// uploads.spawn("upload", TaskType::NETWORK, async {
    ///     tokio::time::sleep(Duration::from_millis(20)).await;
    /// });
    /// uploads.wait().await; // in-flight uploads finish; none is cancelled
    /// assert_eq!(uploads.live().total, 0);
    /// # }
    /// ```
    pub async fn wait(&self) {
        use crate::events::{EventKind, Received};
        // Subscribed first: a task that joins after the scan sends its spawn.
        let mut events = self.tracker.subscribe();
        let members = || {
            let registry = &self.tracker.inner.registry;
            let live = registry.live(|r| r.owner() == Some(&self.name));
            live.into_iter()
                .map(|r| (r.id, r))
                .collect::<HashMap<_, _>>()
        };
        let mut scanned = members();
        let mut joined = HashSet::new();
        // A task the scan found may have ended just before the events were
        // wanted, sending none: those are looked at again now and then.
        let mut recheck = tokio::time::Instant::now() + RECHECK;
        loop {
            if !scanned.is_empty() && tokio::time::Instant::now() >= recheck {
                scanned.retain(|_, r| !r.state().is_finished());
                recheck = tokio::time::Instant::now() + RECHECK;
            }
            if scanned.is_empty() && joined.is_empty() {
                // A task may have joined without a spawn event of the group:
                // a `#[tracked(owner = …)]` fn claiming it gave it the owner.
                scanned = members();
                if scanned.is_empty() {
                    return;
                }
            }
            let received = if scanned.is_empty() {
                events.recv().await
            } else {
                match tokio::time::timeout_at(recheck, events.recv()).await {
                    Ok(received) => received,
                    Err(_) => continue,
                }
            };
            match received {
                Some(Received::Event(event)) => match event.kind {
                    EventKind::Spawned { .. } if event.owner.as_deref() == Some(&*self.name) => {
                        joined.insert(event.id);
                    }
                    // Whatever its owner now (a claim may have changed it).
                    EventKind::Finished { .. } => {
                        joined.remove(&event.id);
                        scanned.remove(&event.id);
                    }
                    _ => {}
                },
                // Fell behind: counted again.
                Some(Received::Missed(_)) => {
                    scanned = members();
                    joined.clear();
                }
                None => return,
            }
        }
    }

    /// Cancels the group: asks every task to stop (including tasks that join
    /// it while this runs), aborts what still runs after `timeout`, reports.
    /// Returns within `timeout` plus up to 100 ms for the aborts to land
    /// (see [`Tracker::cancel_type`]). The group can be used again
    /// afterwards.
    pub async fn cancel(&self, timeout: Duration) -> CancelReport {
        self.tracker.cancel_owner(&self.name, timeout).await
    }
}
