//! The watchdog: long-running tasks, long polls, idle tasks, lost wakers
//! (trackers that follow wakes), and failure-rate health.
//!
//! It runs as a heartbeat phase ([`Heartbeat::housekeeping`](crate::Heartbeat::housekeeping)),
//! never on the poll path. A long poll is seen without timing every poll:
//! the wrapper flags "inside a poll" with two plain stores, and a scan that
//! finds the same poll (same poll count, still inside) on consecutive scans
//! knows it has lasted at least the time between them. So a long poll is
//! reported within one scan period of crossing its threshold. An idle task
//! is seen the same way: outside a poll, with the same poll count as at an
//! earlier scan, it has not been polled since; unless the tracker times
//! polls, when the record says exactly when its latest poll ended.
//!
//! A `#[tracked]` fn awaited inside a task is polled within the task's
//! polls, so one blocked poll, one endless wait or one long run shows at
//! every level of nested fns. It is reported once, at the innermost fn over
//! its threshold (it says where); an outer level is reported only if no fn
//! it awaits is. The levels above take the warning too, so a task is warned
//! about each kind once, whichever of its fns shows it: a fn it awaits in a
//! loop is not warned about again at every call.
//!
//! A scan walks the tasks live when it started; one that has ended by the
//! time the scan reaches it is not warned about, so a warning never comes
//! long after its task's `Finished` event.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::events::{EventKind, Warning};
use crate::record::Record;
use crate::{SpawnKind, TaskId, TaskType, Tracker};

/// Thresholds for one type (or the default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Thresholds {
    /// Warn about a task alive longer than this.
    pub long_running: Option<Duration>,
    /// Warn about a task inside one poll longer than this. Blocking tasks
    /// (`spawn_blocking`) are never warned about: they run on tokio's
    /// blocking pool, not on a worker.
    pub long_poll: Option<Duration>,
    /// Warn about a task not polled for longer than this: it waits for
    /// something that may never come (a leaked sender, a lost waker), or
    /// was never started. On a tracker that follows wakes, a task woken and
    /// not polled yet is not idle: it waits for a worker, which long polls
    /// elsewhere explain.
    pub idle: Option<Duration>,
}

/// Watchdog configuration: thresholds per type and failure-rate health.
///
/// A type given some thresholds takes the others from the default, in
/// whatever order the calls come: `.idle(Some(ty), …).long_poll(None, …)`
/// gives `ty` the new default long-poll threshold too.
///
/// The library's own long-lived tasks (heartbeats, the HTTP server, the
/// journal's writer and connection) run and wait for the life of the
/// service by design: idle and long-running thresholds skip them, so a
/// threshold on `Network` or `Database` does not fire on them. Their long
/// polls and lost wakers are still reported.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// use std::time::Duration;
/// use tracked::{TaskType, Tracker, Watchdog};
///
/// let tracker = Tracker::builder()
///     .watchdog(
///         Watchdog::new()
///             .long_poll(None, Duration::from_millis(100))
///             .long_running(Some(TaskType::NETWORK), Duration::from_secs(600))
///             .idle(Some(TaskType::DATABASE), Duration::from_secs(30))
///             .health(200, 0.05),
///     )
///     .build();
/// # drop(tracker);
/// ```
#[derive(Clone, Debug)]
pub struct Watchdog {
    default: Thresholds,
    /// Per type, the thresholds set for it; those left `None` are the
    /// default's, whenever that is set.
    per_type: HashMap<TaskType, Thresholds>,
    window: u64,
    max_failure_ratio: f64,
}

impl Default for Watchdog {
    /// Long polls over 100 ms; no long-running or idle threshold; unhealthy
    /// when more than 10 % of a type's last 100 endings failed or panicked.
    fn default() -> Self {
        Watchdog {
            default: Thresholds {
                long_running: None,
                long_poll: Some(Duration::from_millis(100)),
                idle: None,
            },
            per_type: HashMap::new(),
            window: 100,
            max_failure_ratio: 0.10,
        }
    }
}

impl Watchdog {
    /// The default configuration.
    pub fn new() -> Self {
        Watchdog::default()
    }

    /// Sets the long-running threshold for `ty`, or the default with `None`.
    pub fn long_running(mut self, ty: Option<TaskType>, after: Duration) -> Self {
        self.thresholds(ty).long_running = Some(after);
        self
    }

    /// Sets the long-poll threshold for `ty`, or the default with `None`.
    pub fn long_poll(mut self, ty: Option<TaskType>, after: Duration) -> Self {
        self.thresholds(ty).long_poll = Some(after);
        self
    }

    /// Sets the idle threshold for `ty`, or the default with `None`: a live
    /// task not polled for `after` is reported, within one scan period of
    /// crossing it. Meant for types whose tasks should never wait long (a
    /// request handler, a worker fed by a channel); tasks that legitimately
    /// sleep for hours should not have one.
    pub fn idle(mut self, ty: Option<TaskType>, after: Duration) -> Self {
        self.thresholds(ty).idle = Some(after);
        self
    }

    /// Health: a type is unhealthy when more than `max_failure_ratio` of its
    /// last `window` endings were `Failed` or `Panicked`.
    pub fn health(mut self, window: u64, max_failure_ratio: f64) -> Self {
        self.window = window.max(1);
        self.max_failure_ratio = max_failure_ratio;
        self
    }

    fn thresholds(&mut self, ty: Option<TaskType>) -> &mut Thresholds {
        match ty {
            Some(ty) => self.per_type.entry(ty).or_default(),
            None => &mut self.default,
        }
    }

    /// The thresholds for `ty`: those set for it, else the default's, in
    /// whatever order they were set.
    fn for_type(&self, ty: TaskType) -> Thresholds {
        let Some(own) = self.per_type.get(&ty) else {
            return self.default;
        };
        Thresholds {
            long_running: own.long_running.or(self.default.long_running),
            long_poll: own.long_poll.or(self.default.long_poll),
            idle: own.idle.or(self.default.idle),
        }
    }
}

/// One type's health.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeHealth {
    /// Endings in the window (at most the configured size).
    pub endings: u64,
    /// Of those, failed or panicked.
    pub failures: u64,
    /// Whether the failure ratio is within the limit.
    pub healthy: bool,
}

/// Failure-rate health of every type that has ended a task, from its last
/// endings (see [`Watchdog::health`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    /// Per type that ended any task.
    pub by_type: BTreeMap<TaskType, TypeHealth>,
}

impl Health {
    /// Whether every type is healthy.
    pub fn is_healthy(&self) -> bool {
        self.by_type.values().all(|t| t.healthy)
    }
}

/// The thresholds the watchdog found one task crossing, each reported once.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// use tracked::Warned;
///
/// let none = Warned::default();
/// assert!(!none.any());
/// assert_eq!(none.kinds().count(), 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Warned(u8);

impl Warned {
    pub(crate) fn from_bits(bits: u8) -> Warned {
        Warned(bits)
    }

    /// Alive longer than its long-running threshold.
    pub fn long_running(self) -> bool {
        self.0 & WARNED_LONG_RUNNING != 0
    }

    /// Inside one poll longer than its long-poll threshold.
    pub fn long_poll(self) -> bool {
        self.0 & WARNED_LONG_POLL != 0
    }

    /// Not polled for longer than its idle threshold.
    pub fn idle(self) -> bool {
        self.0 & WARNED_IDLE != 0
    }

    /// Lost its waker: nothing can poll it again (see
    /// [`Wakes::lost_waker`](crate::Wakes::lost_waker)).
    pub fn lost_waker(self) -> bool {
        self.0 & WARNED_LOST_WAKER != 0
    }

    /// Any of them.
    pub fn any(self) -> bool {
        self.0 != 0
    }

    /// The kinds crossed, named as in events and metrics (`long_running`,
    /// `long_poll`, `idle`, `lost_waker`).
    pub fn kinds(self) -> impl Iterator<Item = &'static str> {
        KINDS
            .into_iter()
            .filter_map(move |(bit, kind)| (self.0 & bit != 0).then_some(kind))
    }
}

/// How many tasks of one type the watchdog warned about, per threshold.
/// Counts only grow: each task is warned about at most once per threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WarningCounts {
    /// Tasks alive longer than the long-running threshold.
    pub long_running: u64,
    /// Tasks inside one poll longer than the long-poll threshold.
    pub long_poll: u64,
    /// Tasks not polled for longer than the idle threshold.
    pub idle: u64,
    /// Tasks that lost their waker (trackers that follow wakes).
    pub lost_waker: u64,
}

impl WarningCounts {
    /// The counts by kind, as `Warning`s are named in events and metrics.
    pub fn by_kind(&self) -> [(&'static str, u64); 4] {
        let [long_running, long_poll, idle, lost_waker] = KINDS.map(|(_, kind)| kind);
        [
            (long_running, self.long_running),
            (long_poll, self.long_poll),
            (idle, self.idle),
            (lost_waker, self.lost_waker),
        ]
    }
}

/// What the watchdog remembers between scans, in two parts: what the
/// scans saw, held through a scan's walk of every live task, and the counts
/// and health, held only to read or update them. So `health()` and
/// `warnings()` (a readiness probe, a metrics scrape) never wait for a scan.
#[derive(Debug, Default)]
pub(crate) struct ScanState {
    seen: Mutex<Seen>,
    tally: Mutex<Tally>,
    /// When the latest scan ended, on the tracker's clock; 0 before any.
    last: AtomicU64,
}

impl ScanState {
    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tally(&self) -> MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the latest scan saw, for the next one to compare with.
#[derive(Debug, Default)]
struct Seen {
    /// Tasks seen inside a poll: (poll count then, first seen then).
    in_poll: HashMap<TaskId, (u64, Instant)>,
    /// Tasks with an idle threshold seen outside a poll: (poll count then,
    /// first seen with that count).
    idle: HashMap<TaskId, (u64, Instant)>,
    /// Tasks seen without a waker, not warned about yet: poll count then.
    lost: HashMap<TaskId, u64>,
    /// When the latest scan began.
    at: Option<Instant>,
    /// Tasks over a threshold whose warning waits for a scan (see
    /// [`Cover::Nearly`]): (task, bit, seen so for, threshold).
    deferred: Vec<(TaskId, u8, Duration, Duration)>,
}

/// Warnings given and failure-rate health.
#[derive(Debug, Default)]
struct Tally {
    /// Per type, its (endings, failures) at each health update that saw
    /// some, newest first: as many as its window needs, at most
    /// [`MAX_UPDATES`].
    recent: HashMap<TaskType, VecDeque<(u64, u64)>>,
    /// Totals at the previous health update: (endings, failures) per type.
    last_totals: HashMap<TaskType, (u64, u64)>,
    health: Health,
    warnings: BTreeMap<TaskType, WarningCounts>,
}

/// Health updates kept per type, at most: past it, the two oldest are
/// merged, so a type's window keeps its count of endings exactly, and only
/// its oldest are split less finely where the window cuts them.
const MAX_UPDATES: usize = 256;

/// Bits in a record's `warned` field.
pub(crate) const WARNED_LONG_RUNNING: u8 = 1;
pub(crate) const WARNED_LONG_POLL: u8 = 2;
pub(crate) const WARNED_IDLE: u8 = 4;
pub(crate) const WARNED_LOST_WAKER: u8 = 8;

/// Each warning's bit and its name in events, JSON and metrics.
const KINDS: [(u8, &str); 4] = [
    (WARNED_LONG_RUNNING, "long_running"),
    (WARNED_LONG_POLL, "long_poll"),
    (WARNED_IDLE, "idle"),
    (WARNED_LOST_WAKER, "lost_waker"),
];

impl Tracker {
    /// Failure-rate health per type, from the endings counted up to now: it
    /// needs no watchdog scan or heartbeat and does not wait for one under
    /// way, so a readiness check can ask at any time.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// use tracked::{TaskType, Tracker, Watchdog};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let tracker = Tracker::builder()
    ///     .watchdog(Watchdog::new().health(10, 0.2))
    ///     .build();
    /// let refused = tracker.spawn("dial", TaskType::NETWORK, async { Err::<(), _>("refused") });
    /// refused.await.unwrap().unwrap_err();
    /// let health = tracker.health();
    /// assert_eq!(health.by_type[&TaskType::NETWORK].failures, 1);
    /// assert!(!health.is_healthy());
    /// # }
    /// ```
    pub fn health(&self) -> Health {
        let mut tally = self.inner.scan.tally();
        self.update_health(&mut tally);
        tally.health.clone()
    }

    /// How many tasks the watchdog has warned about, per type and threshold,
    /// since the tracker was built. Types without warnings are absent.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// use tracked::Tracker;
    ///
    /// let tracker = Tracker::new();
    /// tracker.watchdog_scan();
    /// assert!(tracker.warnings().is_empty());
    /// ```
    pub fn warnings(&self) -> BTreeMap<TaskType, WarningCounts> {
        self.inner.scan.tally().warnings.clone()
    }

    /// Runs one watchdog scan now; housekeeping heartbeats call this.
    pub fn watchdog_scan(&self) {
        let config = &self.inner.watchdog;
        let now = Instant::now();
        let clock = &self.inner.clock;
        let mut seen = self.inner.scan.seen();
        let mut still_in_poll = HashMap::new();
        let mut still_idle = HashMap::new();
        let mut still_lost = HashMap::new();
        let mut found = Found {
            lag: seen
                .at
                .map_or(Duration::ZERO, |at| now.saturating_duration_since(at)),
            ..Found::default()
        };
        let records = self.inner.registry.live(|_| true);
        let index = std::cell::OnceCell::new();
        let by_id = || -> &HashMap<TaskId, &Record> {
            index.get_or_init(|| records.iter().map(|r| (r.id, &**r)).collect())
        };
        let mut in_place = Vec::new();
        for record in &records {
            let mut limits = config.for_type(record.ty);
            if record.service() {
                // Runs and waits for the life of the service by design.
                (limits.long_running, limits.idle) = (None, None);
            }
            if let Some(limit) = limits.long_running {
                let age = now.saturating_duration_since(clock.instant(record.spawned_at));
                consider(&mut found, record, age, limit, WARNED_LONG_RUNNING);
            }
            let polls = record.polls.load(Ordering::Relaxed);
            if !warned_before(record, WARNED_LOST_WAKER) && record.lost_waker() == Some(true) {
                // Seen so by two scans in a row, without a poll between: not
                // a task caught while its dropped future let go of its
                // wakers, an instant before its end is recorded.
                if seen.lost.get(&record.id) == Some(&polls) {
                    self.warn(record, Warning::LostWaker, Duration::ZERO);
                } else {
                    still_lost.insert(record.id, polls);
                }
            }
            let in_poll = record.in_poll(Ordering::Relaxed);
            // A blocking closure runs on tokio's blocking pool, or in place
            // (`block_in_place`, its worker's other tasks moved to another
            // thread), where taking long is its purpose: it holds up no
            // worker. The levels a fn blocking in place is awaited in are
            // in the same poll, and covered by it.
            if in_poll && (record.kind == SpawnKind::Blocking || record.in_place()) {
                if record.nested() {
                    in_place.push(&**record);
                }
                continue;
            }
            let (observed, limit, bit) = if in_poll {
                let inside = lasted(&seen.in_poll, &mut still_in_poll, record, polls, now);
                (inside, limits.long_poll, WARNED_LONG_POLL)
            } else if let Some(limit) = limits.idle {
                if record.woken() {
                    // Ready to run, waiting for a worker (held up by long
                    // polls, reported as such): not waiting for something
                    // that may never come. Its one idle warning is kept.
                    continue;
                }
                let idle = match record.idle_since() {
                    // Timed polls say when the task went idle: no need to
                    // wait for a second scan to see it.
                    Some(since) => now.saturating_duration_since(clock.instant(since)),
                    None => lasted(&seen.idle, &mut still_idle, record, polls, now),
                };
                (idle, Some(limit), WARNED_IDLE)
            } else {
                continue;
            };
            if let Some(limit) = limit {
                consider(&mut found, record, observed, limit, bit);
            }
        }
        // A task is warned about each kind once, at whichever of its fns
        // shows it first: a fn it calls in a loop is not warned about again
        // at every call. The task and the fns it is in take the fn's
        // warning, as listings show.
        // A fn blocking in place holds up no worker, nor do the levels it is
        // awaited in, in the same poll: the time counts for none of them,
        // which are seen in a poll afresh once it is over.
        for record in in_place {
            for outer in ancestors(record, by_id()) {
                found
                    .covered
                    .insert((outer.id, WARNED_LONG_POLL), Cover::Over);
                still_in_poll.remove(&outer.id);
            }
        }
        let earlier = std::mem::take(&mut seen.deferred);
        let was_deferred = |id, bit| earlier.iter().any(|d| (d.0, d.1) == (id, bit));
        for (record, observed, threshold, bit) in found.over {
            match found.covered.get(&(record.id, bit)) {
                Some(Cover::Over) => continue,
                // Its fn may have entered their poll or wait just after a
                // scan looked at the task: the next scan says where.
                Some(Cover::Nearly) if !was_deferred(record.id, bit) => {
                    seen.deferred.push((record.id, bit, observed, threshold));
                    continue;
                }
                _ => self.warn_level(record, by_id(), bit, observed, threshold),
            }
        }
        // A task deferred by the last scan whose fn has not taken the
        // warning since (its poll or wait ended first) is warned about as
        // that scan saw it.
        for &(id, bit, observed, threshold) in &earlier {
            let Some(&record) = by_id().get(&id) else {
                continue;
            };
            if found.covered.get(&(id, bit)) != Some(&Cover::Over) {
                self.warn_level(record, by_id(), bit, observed, threshold);
            }
        }
        seen.in_poll = still_in_poll;
        seen.idle = still_idle;
        seen.lost = still_lost;
        seen.at = Some(now);
        drop(seen);
        self.update_health(&mut self.inner.scan.tally());
        // Relaxed: a report of when, read alone.
        self.inner.scan.last.store(clock.now(), Ordering::Relaxed);
    }

    /// When the latest watchdog scan ended ([`Tracker::watchdog_scan`], as
    /// a housekeeping heartbeat runs it every tick); `None` if none has.
    /// No warning comes without scans: a scan long ago means no heartbeat
    /// is running.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// use tracked::Tracker;
    ///
    /// let tracker = Tracker::new();
    /// assert!(tracker.last_watchdog_scan().is_none());
    /// tracker.watchdog_scan();
    /// assert!(tracker.last_watchdog_scan().is_some());
    /// ```
    pub fn last_watchdog_scan(&self) -> Option<Instant> {
        match self.inner.scan.last.load(Ordering::Relaxed) {
            0 => None,
            at => Some(self.inner.clock.instant(at)),
        }
    }

    /// Warns about `record`, a task or a nested fn, over the threshold of
    /// `bit`, unless it or a level it is awaited in was warned so before;
    /// those levels take the warning too.
    fn warn_level(
        &self,
        record: &Record,
        by_id: &HashMap<TaskId, &Record>,
        bit: u8,
        observed: Duration,
        threshold: Duration,
    ) {
        if warned_before(record, bit) {
            return;
        }
        let ancestors = ancestors(record, by_id);
        if ancestors.iter().any(|outer| warned_before(outer, bit)) {
            return;
        }
        let warning = match bit {
            WARNED_LONG_RUNNING => Warning::LongRunning { threshold },
            WARNED_LONG_POLL => Warning::LongPoll { threshold },
            _ => Warning::Idle { threshold },
        };
        if self.warn(record, warning, observed) {
            for outer in ancestors {
                outer.warn_once(bit);
            }
        }
    }

    /// Gives `warning` about `record`, unless it was given before or the
    /// task has ended. A scan walks a listing of the live tasks taken at its
    /// start, and warns about idle tasks and long polls once it has seen
    /// them all, so a task may end before its warning, which then is not
    /// sent ([`Record::unless_ended`](Record::unless_ended)).
    fn warn(&self, record: &Record, warning: Warning, observed: Duration) -> bool {
        let bit = match warning {
            Warning::LongRunning { .. } => WARNED_LONG_RUNNING,
            Warning::LongPoll { .. } => WARNED_LONG_POLL,
            Warning::Idle { .. } => WARNED_IDLE,
            Warning::LostWaker => WARNED_LOST_WAKER,
        };
        let given = record.unless_ended(|| {
            let first = record.warn_once(bit);
            if first {
                self.emit(record, EventKind::Warning(warning.clone()));
            }
            first
        });
        if given != Some(true) {
            return false;
        }
        {
            let mut tally = self.inner.scan.tally();
            let counts = tally.warnings.entry(record.ty).or_default();
            match warning {
                Warning::LongRunning { .. } => counts.long_running += 1,
                Warning::LongPoll { .. } => counts.long_poll += 1,
                Warning::Idle { .. } => counts.idle += 1,
                Warning::LostWaker => counts.lost_waker += 1,
            }
        }
        // Logged with the locks let go: a subscriber may look at the task,
        // or at the tracker's health and warnings. A root event, not one in
        // the span of the heartbeat that runs the scan: it is about the
        // task its fields name.
        match warning {
            Warning::LongRunning { threshold } => tracing::warn!(
                parent: None,
                task.id = record.id.as_u64(),
                task.name = %record.name,
                task.r#type = %record.ty,
                task.site = %record.site(),
                age = ?observed,
                ?threshold,
                "tracked task is running longer than its threshold"
            ),
            Warning::LongPoll { threshold } => tracing::warn!(
                parent: None,
                task.id = record.id.as_u64(),
                task.name = %record.name,
                task.r#type = %record.ty,
                task.site = %record.site(),
                in_poll_for = ?observed,
                ?threshold,
                "tracked task is blocking its worker thread in one poll"
            ),
            Warning::Idle { threshold } => tracing::warn!(
                parent: None,
                task.id = record.id.as_u64(),
                task.name = %record.name,
                task.r#type = %record.ty,
                task.site = %record.site(),
                not_polled_for = ?observed,
                polls = record.polls.load(Ordering::Relaxed),
                ?threshold,
                "tracked task has not been polled for longer than its threshold: waiting for something that may never come"
            ),
            Warning::LostWaker => tracing::warn!(
                parent: None,
                task.id = record.id.as_u64(),
                task.name = %record.name,
                task.r#type = %record.ty,
                task.site = %record.site(),
                polls = record.polls.load(Ordering::Relaxed),
                "tracked task has lost its waker: nothing holds a way to wake it, so it will never be polled again (a leak)"
            ),
        }
        true
    }

    fn update_health(&self, scan: &mut Tally) {
        let config = &self.inner.watchdog;
        let stats = self.stats();
        let mut health = Health::default();
        for (ty, counts) in &stats.by_type {
            let totals = (counts.finished(), counts.failed + counts.panicked);
            let last = scan.last_totals.insert(*ty, totals).unwrap_or((0, 0));
            // Each type keeps its own updates, so a busy type's endings do
            // not push a rare type's out of its window.
            let recent = scan.recent.entry(*ty).or_default();
            if totals.0 > last.0 {
                recent.push_front((totals.0 - last.0, totals.1 - last.1));
            }
            if recent.len() > MAX_UPDATES {
                let (e, f) = recent.pop_back().unwrap_or_default();
                if let Some(older) = recent.back_mut() {
                    *older = (older.0 + e, older.1 + f);
                }
            }
            let (mut endings, mut failures, mut needed) = (0u64, 0u64, 0);
            for &(e, f) in recent.iter() {
                if endings >= config.window {
                    break;
                }
                // Take only what fits in the window, scaling failures.
                let take = e.min(config.window - endings);
                failures += f * take / e;
                endings += take;
                needed += 1;
            }
            recent.truncate(needed);
            if endings > 0 {
                let healthy = failures as f64 <= config.max_failure_ratio * endings as f64;
                health.by_type.insert(
                    *ty,
                    TypeHealth {
                        endings,
                        failures,
                        healthy,
                    },
                );
            }
        }
        scan.health = health;
    }
}

/// Tasks over a threshold in one scan, warned about once every record is
/// seen: a task (or fn) awaiting a nested `#[tracked]` fn that is in the
/// same run, poll or wait is covered by the fn's warning, so one stuck await
/// is reported once, at the innermost fn, not once per level.
#[derive(Default)]
struct Found<'a> {
    /// Each: the record, how long it was seen so, the threshold, its bit.
    over: Vec<(&'a Record, Duration, Duration, u8)>,
    /// (task or fn, bit) that a fn awaited in it covers, and how.
    covered: HashMap<(TaskId, u8), Cover>,
    /// The time since the previous scan: how much later than its task a fn
    /// may have been first seen in a poll or wait they began together.
    lag: Duration,
}

/// How a nested fn covers the task or fn it is awaited in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cover {
    /// The fn is over its threshold, or was warned: it takes the warning.
    Over,
    /// The fn would be over had it been seen one scan earlier: a scan that
    /// looked at the task just before the fn entered their poll or wait
    /// first saw the fn a scan later. Its task's warning waits a scan.
    Nearly,
}

/// Notes `record` seen in a state `bit` names (long-running, in a poll, or
/// idle) for `observed`, against its threshold `limit`.
fn consider<'a>(
    found: &mut Found<'a>,
    record: &'a Record,
    observed: Duration,
    limit: Duration,
    bit: u8,
) {
    let over = observed >= limit;
    // A nested fn is in the same run, poll or wait as the task or fn it is
    // awaited in, and says more: where.
    if let Some(parent) = record.parent.filter(|_| record.nested()) {
        if over || warned_before(record, bit) {
            found.covered.insert((parent, bit), Cover::Over);
        } else if observed + found.lag >= limit {
            found.covered.entry((parent, bit)).or_insert(Cover::Nearly);
        }
    }
    if over {
        found.over.push((record, observed, limit, bit));
    }
}

/// Whether the watchdog gave `record` the warning `bit` already: a load, so
/// that a task warned about is not locked again by every scan.
fn warned_before(record: &Record, bit: u8) -> bool {
    record.warned.load(Ordering::Relaxed) & bit != 0
}

/// The records a nested `#[tracked]` fn's `record` is awaited in, innermost
/// first, up to its task, as far as the live listing `by_id` has them.
fn ancestors<'a>(record: &Record, by_id: &HashMap<TaskId, &'a Record>) -> Vec<&'a Record> {
    let mut out = Vec::new();
    let mut next = record.parent.filter(|_| record.nested());
    while let Some(&outer) = next.and_then(|id| by_id.get(&id)) {
        out.push(outer);
        next = outer.parent.filter(|_| outer.nested());
    }
    out
}

/// How long `record` has been as a scan now sees it (inside one poll, or
/// idle between two) at least: since the first scan that saw it so with the
/// same poll count, as `earlier` remembers, or zero. Remembered in `next`.
fn lasted(
    earlier: &HashMap<TaskId, (u64, Instant)>,
    next: &mut HashMap<TaskId, (u64, Instant)>,
    record: &Record,
    polls: u64,
    now: Instant,
) -> Duration {
    let since = match earlier.get(&record.id) {
        Some(&(seen_polls, since)) if seen_polls == polls => since,
        _ => now,
    };
    next.insert(record.id, (polls, since));
    now.saturating_duration_since(since)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A type given one threshold takes the others from the default, also
    /// when the default is set after it.
    #[test]
    fn a_type_inherits_the_default_whenever_it_is_set() {
        let ms = Duration::from_millis;
        let db = TaskType::DATABASE;
        let watchdog = Watchdog::new()
            .idle(Some(db), ms(1000))
            .long_poll(None, ms(50))
            .long_running(None, ms(600));
        let expected = Thresholds {
            long_running: Some(ms(600)),
            long_poll: Some(ms(50)),
            idle: Some(ms(1000)),
        };
        assert_eq!(watchdog.for_type(db), expected);
        let general = watchdog.for_type(TaskType::GENERAL);
        assert_eq!(
            general,
            Thresholds {
                idle: None,
                ..expected
            }
        );

        // Set for the type, its own wins in either order.
        let own = Watchdog::new()
            .long_poll(None, ms(50))
            .long_poll(Some(db), ms(500))
            .long_poll(None, ms(20));
        assert_eq!(own.for_type(db).long_poll, Some(ms(500)));
        assert_eq!(own.for_type(TaskType::GENERAL).long_poll, Some(ms(20)));
    }

    /// A tracing subscriber that calls `on_warning` with the task id of
    /// each watchdog warning, as the warning is logged.
    struct OnWarning<F>(F);

    struct TaskIdField(Option<u64>);

    impl tracing::field::Visit for TaskIdField {
        fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
            if field.name() == "task.id" {
                self.0 = Some(value);
            }
        }

        fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
    }

    impl<F: Fn(u64) + Send + Sync + 'static> tracing::Subscriber for OnWarning<F> {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }

        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }

        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

        fn event(&self, event: &tracing::Event<'_>) {
            if event.metadata().target() == "tracked_runtime::watchdog" {
                let mut id = TaskIdField(None);
                event.record(&mut id);
                if let Some(id) = id.0 {
                    (self.0)(id);
                }
            }
        }

        fn enter(&self, _: &tracing::span::Id) {}

        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// A task that ends while a scan is under way (here: as the scan warns
    /// about another task) is not warned about afterwards: its warning
    /// would follow its `Finished` event and count a task that no longer
    /// runs.
    #[test]
    fn a_task_that_ends_during_a_scan_is_not_warned_about() {
        if cfg!(miri) {
            return; // Threads and a runtime; the logic is plain.
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let _entered = runtime.enter();
        let tracker = Tracker::builder()
            .watchdog(Watchdog::new().long_running(None, Duration::ZERO))
            .build();
        let mut events = tracker.subscribe();
        // Two blocking tasks, each running until told to return.
        let mut releases = HashMap::new();
        let mut handles = Vec::new();
        for name in ["a", "b"] {
            let (release, wait) = std::sync::mpsc::channel::<()>();
            let handle = tracker.spawn_blocking(name, TaskType::GENERAL, move || {
                let _ = wait.recv();
            });
            releases.insert(handle.id().as_u64(), release);
            handles.push(handle);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while tracker
            .tasks(&crate::Query::new().state(crate::TaskState::Running))
            .len()
            < 2
        {
            assert!(Instant::now() < deadline, "the blocking tasks never ran");
            std::thread::yield_now();
        }
        // The first warning ends the other task before the scan goes on.
        let ended = std::sync::Mutex::new(None);
        let subscriber = OnWarning({
            let tracker = tracker.clone();
            let releases = releases.clone();
            move |warned| {
                let mut ended = ended.lock().unwrap();
                if ended.is_some() {
                    return;
                }
                let (&other, release) = releases.iter().find(|(id, _)| **id != warned).unwrap();
                release.send(()).unwrap();
                let other = crate::TaskId::from_u64(other).unwrap();
                while !tracker
                    .task(other)
                    .is_some_and(|t| t.task.state.is_finished())
                {
                    assert!(Instant::now() < deadline, "the other task never ended");
                    std::thread::yield_now();
                }
                *ended = Some(other);
            }
        });
        tracing::subscriber::with_default(subscriber, || tracker.watchdog_scan());
        assert_eq!(tracker.warnings()[&TaskType::GENERAL].long_running, 1);
        let mut finished = HashSet::new();
        while let Some(received) = events.try_recv() {
            let crate::Received::Event(event) = received else {
                panic!("no event missed");
            };
            match event.kind {
                EventKind::Finished { .. } => {
                    finished.insert(event.id);
                }
                kind => assert!(
                    !finished.contains(&event.id),
                    "{kind:?} after the task's end"
                ),
            }
        }
        assert_eq!(finished.len(), 1);
        for release in releases.values() {
            let _ = release.send(());
        }
        for handle in handles {
            runtime.block_on(handle).unwrap();
        }
    }

    /// A task woken but not polled yet waits for a worker, not for
    /// something that may never come: while its runtime's workers are busy
    /// (here: not driven at all), it is not reported idle, and its one idle
    /// warning is kept for a wait that deserves it.
    #[test]
    fn a_woken_task_waiting_for_a_worker_is_not_idle() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let tracker = Tracker::builder()
            .wakes(true)
            .watchdog(Watchdog::new().idle(None, Duration::ZERO))
            .build();
        let _entered = runtime.enter();
        let (wake, woken) = tokio::sync::oneshot::channel::<()>();
        let (_never, waits) = tokio::sync::oneshot::channel::<()>();
        let ready = tracker.spawn("ready", TaskType::GENERAL, async move {
            let _ = woken.await;
        });
        let stuck = tracker.spawn("stuck", TaskType::GENERAL, async move {
            let _ = waits.await;
        });
        // Both polled once, then woken: `ready` only.
        runtime.block_on(tokio::task::yield_now());
        wake.send(()).unwrap();
        tracker.watchdog_scan();
        let idle: Vec<_> = tracker
            .tasks(&crate::Query::new().warned(true))
            .into_iter()
            .map(|t| (t.name, t.warned.idle()))
            .collect();
        assert_eq!(idle, [("stuck".into(), true)]);
        runtime.block_on(ready).unwrap();
        stuck.abort();
    }
}
