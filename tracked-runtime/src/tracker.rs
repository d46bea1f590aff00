//! The tracker: a cheap, cloneable handle over one registry.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crate::clock::Clock;
use crate::events::{Event, EventKind, EventStream, Events};
use crate::panic::{OnPanic, PanicPolicy};
use crate::record::Record;
use crate::registry::{Limits, Registry};
use crate::shutdown::ShutdownState;
use crate::stats::Stats;
use crate::watchdog::{ScanState, Watchdog};

/// Tracks tasks: spawns them, and answers what is running and how the rest
/// ended.
///
/// Cloning is cheap (one `Arc`). Most programs use the process-wide
/// [`Tracker::global`], which the free functions such as [`crate::spawn`]
/// use; construct your own for isolation, as tests do, and [`leak`](Tracker::leak)
/// one that a service keeps for good. A task spawned with the free functions
/// from inside a tracked task joins its parent's tracker.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tracked::{Query, TaskType, Tracker};
///
/// let tracker = Tracker::new();
/// let handle = tracker.spawn("resolver", TaskType::NETWORK, std::future::pending::<()>());
///
/// let live = tracker.tasks(&Query::new().ty(TaskType::NETWORK));
/// assert_eq!(live[0].name, "resolver");
///
/// handle.abort();
/// # }
/// ```
#[derive(Clone)]
pub struct Tracker {
    pub(crate) inner: Arc<Inner>,
}

// A tracker is made to be used across panics (its tasks panic, and it
// records them; its locks ignore poisoning), as tokio's `Handle` is.
// Without these, tokio's `broadcast` channel inside (under tokio's
// `parking_lot` feature) would make `catch_unwind(|| tracker.spawn(..))`
// need an `AssertUnwindSafe`.
impl std::panic::UnwindSafe for Tracker {}
impl std::panic::RefUnwindSafe for Tracker {}

pub(crate) struct Inner {
    pub(crate) registry: Registry,
    pub(crate) clock: Clock,
    pub(crate) busy_time: bool,
    pub(crate) spans: bool,
    pub(crate) progress_log: usize,
    pub(crate) events: Events,
    pub(crate) shutdown: ShutdownState,
    pub(crate) watchdog: Watchdog,
    pub(crate) on_panic: PanicPolicy,
    pub(crate) scan: ScanState,
    /// This tracker as a `&'static`, once it lives for the rest of the
    /// process (the global one, or one given to [`Tracker::leak`]): its tasks
    /// then hold that, not a counted `Arc`.
    pub(crate) forever: OnceLock<&'static Tracker>,
}

/// Configures a [`Tracker`].
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// use std::time::Duration;
/// use tracked::Tracker;
///
/// let tracker = Tracker::builder()
///     .history_capacity(50_000)
///     .history_ttl(Duration::from_secs(3600))
///     .busy_time(true)
///     .build();
/// # drop(tracker);
/// ```
#[derive(Clone, Debug)]
pub struct TrackerBuilder {
    limits: Limits,
    busy_time: bool,
    wakes: bool,
    spans: bool,
    progress_log: usize,
    watchdog: Watchdog,
    on_panic: PanicPolicy,
}

impl Default for TrackerBuilder {
    fn default() -> Self {
        TrackerBuilder {
            limits: Limits {
                shards: 32,
                history_capacity: 10_000,
                history_ttl: Duration::from_secs(3600),
                timed_polls: false,
                wakes: None,
            },
            busy_time: false,
            wakes: false,
            spans: true,
            progress_log: 32,
            watchdog: Watchdog::default(),
            on_panic: PanicPolicy::default(),
        }
    }
}

impl TrackerBuilder {
    /// Finished tasks kept in history, about; 0 keeps none. Default 10,000.
    ///
    /// The bound is enforced across shards with one shared counter, and a
    /// task's end evicts the oldest entries of its own shard rather than the
    /// oldest overall; a shard with none keeps the ending anyway, so the
    /// newest ending is always kept and history may hold up to one entry per
    /// shard more than this.
    pub fn history_capacity(mut self, capacity: usize) -> Self {
        self.limits.history_capacity = capacity;
        self
    }

    /// How long a finished task stays in history. Default one hour. Past
    /// it, a task is no longer listed; its entry is freed when a later task
    /// ends, or by [`Tracker::cleanup`] or a heartbeat's housekeeping.
    pub fn history_ttl(mut self, ttl: Duration) -> Self {
        self.limits.history_ttl = ttl;
        self
    }

    /// Registry shards, rounded up to a power of two. Default 32.
    pub fn shards(mut self, shards: usize) -> Self {
        self.limits.shards = shards;
        self
    }

    /// Measure time spent inside `poll` (two clock reads per poll), per task
    /// and, as a histogram of single polls per type, per type
    /// ([`Tracker::poll_durations`]; two more relaxed additions per poll).
    /// Off by default.
    pub fn busy_time(mut self, enabled: bool) -> Self {
        self.busy_time = enabled;
        self.limits.timed_polls = enabled;
        self
    }

    /// Follow each task's wakes, and time its polls as
    /// [`busy_time`](Self::busy_time) does: snapshots then say how often a
    /// task was woken and by whom, how long it waited for a worker once
    /// woken, and whether it has lost its waker ([`Wakes`](crate::Wakes)),
    /// which the watchdog reports ([`Warning::LostWaker`](crate::Warning::LostWaker)).
    /// Off by default.
    ///
    /// Each task is polled with a waker of the tracker's that forwards to
    /// tokio's: a task costs one allocation more, a poll a few atomic
    /// operations more on that task's own cache line, and a wake a clock
    /// read.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tracked::{Query, TaskType, Tracker};
    ///
    /// let tracker = Tracker::builder().wakes(true).build();
    /// // Polled once, then never again: nothing kept its waker.
    /// tracker.spawn("forgotten", TaskType::GENERAL, std::future::pending::<()>());
    /// tokio::task::yield_now().await;
    /// let lost = tracker.tasks(&Query::new().lost_waker(true));
    /// assert_eq!(lost[0].name, "forgotten");
    /// assert_eq!(lost[0].wakes.as_ref().map(|w| w.wakers), Some(0));
    /// # }
    /// ```
    pub fn wakes(mut self, enabled: bool) -> Self {
        self.wakes = enabled;
        self
    }

    /// Run each task inside a `tracing` span named `task`, with the fields
    /// `task.id`, `task.name`, `task.type` and `task.parent` (absent for a
    /// root task), so every event the task logs carries its identity. On by
    /// default.
    ///
    /// The span is created where the task is spawned, as a child of the span
    /// current there (a request's span, or the parent task's). It is only
    /// kept when a subscriber is interested in it, at `INFO` level for the
    /// target `tracked_runtime::instrument`: with no subscriber, or a filter
    /// that excludes it, a spawn pays a level check and a poll one branch.
    /// With an interested subscriber each task costs a span (the registry's
    /// slot and the fields a `fmt` layer formats) and each poll an enter and
    /// an exit; turn spans off for trackers whose tasks are too many or too
    /// small for that, or filter the target out.
    pub fn spans(mut self, enabled: bool) -> Self {
        self.spans = enabled;
        self
    }

    /// Progress messages kept per task (oldest dropped first). Default 32.
    /// Each keeps at most its first 1 KiB.
    pub fn progress_log(mut self, messages: usize) -> Self {
        self.progress_log = messages;
        self
    }

    /// Watchdog thresholds and health limits; see [`Watchdog`]. The watchdog
    /// scans when a housekeeping heartbeat runs ([`crate::Heartbeat::housekeeping`]).
    pub fn watchdog(mut self, watchdog: Watchdog) -> Self {
        self.watchdog = watchdog;
        self
    }

    /// What to do when a task of type `ty` panics, or with `None` a task of
    /// any type not given its own action; see [`OnPanic`]. Default:
    /// [`OnPanic::Continue`] for every type.
    pub fn on_panic(mut self, ty: Option<crate::TaskType>, action: OnPanic) -> Self {
        self.on_panic.set(ty, action);
        self
    }

    /// Builds the tracker.
    pub fn build(mut self) -> Tracker {
        crate::panic::install_hook();
        let clock = Clock::new();
        if self.wakes {
            self.limits.wakes = Some(clock.epoch());
            self.limits.timed_polls = true;
        }
        Tracker {
            inner: Arc::new(Inner {
                registry: Registry::new(self.limits),
                clock,
                busy_time: self.busy_time || self.wakes,
                spans: self.spans,
                progress_log: self.progress_log,
                events: Events::new(),
                shutdown: ShutdownState::default(),
                watchdog: self.watchdog,
                on_panic: self.on_panic,
                scan: ScanState::default(),
                forever: OnceLock::new(),
            }),
        }
    }

    /// Builds the tracker and makes it the process-wide one.
    ///
    /// Fails, returning the tracker unused, if [`Tracker::global`] was already
    /// initialised (by this call or by a first spawn through it).
    pub fn install_global(self) -> Result<&'static Tracker, Tracker> {
        let tracker = self.build();
        let mut unused = Some(tracker);
        let installed = GLOBAL.get_or_init(|| unused.take().expect("taken once"));
        match unused {
            None => Ok(installed.forever()),
            Some(tracker) => Err(tracker),
        }
    }
}

static GLOBAL: OnceLock<Tracker> = OnceLock::new();

impl Tracker {
    /// A tracker with the default configuration.
    pub fn new() -> Self {
        TrackerBuilder::default().build()
    }

    /// Configure a tracker.
    pub fn builder() -> TrackerBuilder {
        TrackerBuilder::default()
    }

    /// The process-wide tracker, created with defaults on first use unless
    /// [`TrackerBuilder::install_global`] came first.
    pub fn global() -> &'static Tracker {
        GLOBAL.get_or_init(Tracker::new).forever()
    }

    /// Marks a tracker that lives for the rest of the process as such.
    fn forever(&'static self) -> &'static Tracker {
        self.inner.forever.get_or_init(|| self)
    }

    /// Keeps this tracker for the rest of the process, as the global one
    /// is: its tasks then hold a plain reference to it rather than a
    /// counted one. A counted reference is an atomic add at every spawn and
    /// a subtract at every end, on one cache line that every thread
    /// spawning or ending a task writes; for a service's long-lived tracker
    /// that is pure cost (measured in `docs/benchmarks.md`). Leaking a clone
    /// of a tracker already leaked returns the first without a new leak.
    ///
    /// # Examples
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # if cfg!(miri) { return; } // Miri reports the leak, which is the point.
    /// use tracked::{TaskType, Tracker};
    ///
    /// let tracker: &'static Tracker = Tracker::builder().busy_time(true).build().leak();
    /// tracker.spawn("sync", TaskType::DATABASE, async {}).await.unwrap();
    /// assert_eq!(tracker.stats().total.completed, 1);
    /// # }
    /// ```
    pub fn leak(self) -> &'static Tracker {
        match self.inner.forever.get() {
            Some(leaked) => leaked,
            None => Box::leak(Box::new(self)).forever(),
        }
    }

    /// Lifecycle counters, in total and per type.
    pub fn stats(&self) -> Stats {
        Stats::from_rows(self.inner.registry.counts())
    }

    /// Subscribes to lifecycle events; see [`EventStream`].
    pub fn subscribe(&self) -> EventStream {
        self.inner.events.subscribe()
    }

    /// A bounded queue of every event (see [`EventQueue`](crate::events::EventQueue)).
    #[cfg(feature = "journal")]
    pub(crate) fn event_queue(
        &self,
        capacity: usize,
        max_bytes: usize,
    ) -> crate::events::EventQueue {
        self.inner.events.queue(capacity, max_bytes)
    }

    /// Sends an event about `record`'s task, if anyone listens. The check
    /// is inlined into the spawn and poll paths; the sending is not.
    #[inline]
    pub(crate) fn emit(&self, record: &Record, kind: EventKind) {
        if self.inner.events.wanted() {
            self.send_event(record, kind);
        }
    }

    #[cold]
    #[inline(never)]
    fn send_event(&self, record: &Record, kind: EventKind) {
        self.inner.events.send(Event {
            at: Instant::now(),
            id: record.id,
            name: record.name.clone(),
            ty: record.ty,
            site: record.site(),
            owner: record.owner().cloned(),
            kind,
        });
    }

    /// Wall-clock time for an instant from a snapshot, for display and export.
    pub fn system_time(&self, at: Instant) -> SystemTime {
        self.inner.clock.system_time(at)
    }

    /// Whether two handles are the same tracker.
    pub fn ptr_eq(&self, other: &Tracker) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker::new()
    }
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.stats().total;
        f.debug_struct("Tracker")
            .field("live", &total.live())
            .field("spawned", &total.spawned)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::Tracker;
    use crate::TaskType;
    use std::sync::Arc;

    /// Usable in `catch_unwind` as tokio's `Handle` is, whatever tokio's
    /// features (its `parking_lot` one makes a channel inside not so).
    #[test]
    fn a_tracker_is_unwind_safe() {
        fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
        unwind_safe::<Tracker>();
        unwind_safe::<&Tracker>();
    }

    /// A tracker nobody subscribes to holds no event ring, most of its
    /// memory; the first subscriber makes it, and gets events from then on.
    #[test]
    fn the_event_ring_is_made_by_the_first_subscriber() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let tracker = Tracker::new();
        runtime.block_on(async {
            let queue = tracker.inner.events.queue(8, 1 << 20);
            tracker
                .spawn("early", TaskType::GENERAL, async {})
                .await
                .unwrap();
            assert!(!tracker.inner.events.has_ring(), "a queue needs no ring");
            drop(queue);
            let mut events = tracker.subscribe();
            assert!(tracker.inner.events.has_ring());
            tracker
                .spawn("late", TaskType::GENERAL, async {})
                .await
                .unwrap();
            let Some(crate::Received::Event(event)) = events.try_recv() else {
                panic!("the spawn's event");
            };
            assert_eq!(event.name, "late");
        });
    }

    /// The tasks of a leaked tracker, or of the global one, hold no count
    /// of it; those of any other hold one each.
    #[test]
    #[cfg_attr(miri, ignore = "leaks a tracker, which Miri reports")]
    fn only_trackers_that_live_forever_are_held_uncounted() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let counted = Tracker::new();
        let kept = Tracker::new();
        let leaked = kept.clone().leak();
        assert!(std::ptr::eq(leaked, kept.clone().leak()), "leaked once");
        runtime.block_on(async {
            for tracker in [&counted, leaked, Tracker::global()] {
                let before = Arc::strong_count(&tracker.inner);
                let task = tracker.spawn("parked", TaskType::GENERAL, std::future::pending::<()>());
                let held = Arc::strong_count(&tracker.inner) - before;
                let expected = usize::from(std::ptr::eq(tracker, &counted));
                assert_eq!(held, expected, "counts held by a task");
                task.abort();
            }
        });
    }
}
