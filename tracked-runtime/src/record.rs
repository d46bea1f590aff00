//! The live record of one task, and the states it moves through.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use crate::busy::Busy;
use crate::clock::{Clock, Epoch};
use crate::handoff::{Control, Delivery, Flags, Handoff};
use crate::wake::{WakeState, Wakes};
use crate::{StaticSite, TaskId, TaskType};

/// A task's name: usually a literal, sometimes built at run time.
pub type TaskName = Cow<'static, str>;

/// A key-value label attached at spawn.
pub type Label = (Cow<'static, str>, Cow<'static, str>);

/// Where a task moves through its life.
///
/// `Pending → Running → Completed | Failed | Panicked | Cancelled`; a task
/// can also go from `Pending` straight to `Cancelled` when it is aborted or
/// its runtime shuts down before it is first polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskState {
    /// Spawned, not yet polled.
    Pending,
    /// Polled at least once and not finished (it may be idle, waiting).
    Running,
    /// Returned an output that is not a failure.
    Completed,
    /// Returned an `Err`; the record keeps its text (see [`Outcome`](crate::Outcome)).
    Failed,
    /// Panicked; the record keeps the message and location.
    Panicked,
    /// Aborted, or dropped by its runtime before finishing.
    Cancelled,
}

impl TaskState {
    /// All states, in lifecycle order.
    pub const ALL: [TaskState; 6] = [
        TaskState::Pending,
        TaskState::Running,
        TaskState::Completed,
        TaskState::Failed,
        TaskState::Panicked,
        TaskState::Cancelled,
    ];

    /// Whether the task has ended.
    pub fn is_finished(self) -> bool {
        !matches!(self, TaskState::Pending | TaskState::Running)
    }

    /// The state's name, lowercase, as used in queries and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
            TaskState::Panicked => "panicked",
            TaskState::Cancelled => "cancelled",
        }
    }

    fn from_u8(v: u8) -> TaskState {
        TaskState::ALL
            .get(usize::from(v))
            .copied()
            .unwrap_or(TaskState::Cancelled)
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TaskState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown task state `{s}`; expected one of pending, running, completed, failed, panicked, cancelled")
            })
    }
}

/// How a task was spawned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpawnKind {
    /// A future on the runtime's workers.
    Async,
    /// A closure on tokio's blocking pool.
    Blocking,
    /// A `!Send` future on a `LocalSet`.
    Local,
    /// A `#[tracked]` fn awaited directly: a unit of work inside its parent
    /// task, polled by it rather than by tokio.
    Inline,
}

/// A source location: where a task was spawned.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Site {
    /// Source file, as the compiler names it.
    pub file: &'static str,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

impl From<&'static Location<'static>> for Site {
    fn from(loc: &'static Location<'static>) -> Self {
        Site {
            file: loc.file(),
            line: loc.line(),
            column: loc.column(),
        }
    }
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One progress message as stored: the timestamp is tracker-relative.
#[derive(Clone, Debug)]
pub(crate) struct LogEntry {
    pub(crate) at: u64,
    pub(crate) percent: u8,
    pub(crate) message: String,
}

/// Progress reported from inside a task.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub(crate) percent: u8,
    /// Where the rate estimate starts: the first poll, at 0 %.
    pub(crate) since: u64,
    pub(crate) last_at: u64,
    pub(crate) log: VecDeque<LogEntry>,
}

impl Progress {
    pub(crate) fn report(&mut self, at: u64, percent: u8, message: Option<String>, cap: usize) {
        let percent = percent.min(100);
        self.percent = percent;
        self.last_at = at;
        if let Some(message) = message {
            if cap == 0 {
                return;
            }
            while self.log.len() >= cap {
                self.log.pop_front();
            }
            self.log.push_back(LogEntry {
                at,
                percent,
                message,
            });
        }
    }
}

/// A task's owner and labels, boxed apart from its record: set at spawn and
/// never changed after, absent for most tasks. A pooled record keeps its box
/// for the next task that has either, so reusing it allocates nothing.
#[derive(Debug, Default)]
struct Meta {
    owner: Option<Arc<str>>,
    /// A boxed slice: 8 bytes less than a `Vec`, no allocation when empty.
    labels: Box<[Label]>,
}

/// What timed polls record ([`TrackerBuilder::busy_time`](crate::TrackerBuilder::busy_time)),
/// boxed apart from the record: a tracker that does not time polls pays 8
/// bytes per task for it, not 16. A pooled record keeps its box.
#[derive(Debug, Default)]
pub(crate) struct Timing {
    /// Time spent inside `poll`, the poll running now included.
    pub(crate) busy: Busy,
    /// When the latest poll ended; 0 until the first one has.
    pub(crate) last_poll_end: AtomicU64,
    /// The task's wakes, when its tracker follows them; shared with the
    /// clones of its waker, and with the record that a claim puts in this
    /// one's place.
    pub(crate) wake: Option<Arc<WakeState>>,
}

/// A [`Record`]'s `start` bit: the task was spawned after shutdown and
/// must not run its body.
const DOOMED: u8 = 1;
/// A [`Record`]'s `start` bit: no fn may claim the task (see
/// [`Record::fn_made`]).
const NO_CLAIM: u8 = 2;
/// A [`Record`]'s `start` bit: the task's spawned async block is making the
/// call its spawn names as the target (see [`Record::fn_made`]).
const TARGET_CALL: u8 = 4;
/// A [`Record`]'s `start` bit: shutdowns leave the task alone (the
/// journal's writer and connection, which write how the others ended).
pub(crate) const KEPT: u8 = 8;
/// A [`Record`]'s `start` bit: one of the library's own long-lived tasks
/// (the HTTP server, a heartbeat, the journal's), idle and running for the
/// life of the service by design, which the watchdog's idle and
/// long-running thresholds skip.
pub(crate) const SERVICE: u8 = 16;

/// A [`Record`]'s `in_poll` bit: the task is inside a poll.
const POLLING: u8 = 1;
/// A [`Record`]'s `in_poll` bit: the poll runs a closure through
/// [`block_in_place`](crate::block_in_place), a long poll it means.
const IN_PLACE: u8 = 2;

/// The mutable, shared part of a live task. Records are pooled per shard and
/// reused, so steady-state spawning allocates nothing beyond tokio's task.
///
/// Plain fields are written only while the record is unshared (fresh from the
/// pool, through `Arc::get_mut`); everything that changes while the task runs
/// is atomic or behind the record's own mutex.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) id: TaskId,
    pub(crate) parent: Option<TaskId>,
    pub(crate) name: TaskName,
    pub(crate) ty: TaskType,
    /// Owner and labels, which most tasks have neither of: 8 bytes here
    /// instead of 32 (see [`Meta`]).
    meta: Option<Box<Meta>>,
    /// Where the spawn was called; the task's site unless a static site
    /// gives it (see [`Record::site`]).
    pub(crate) caller: &'static Location<'static>,
    pub(crate) kind: SpawnKind,
    /// The `#[tracked]` fn the task runs, when it is one.
    pub(crate) fn_site: Option<&'static StaticSite>,
    /// The rewritten spawn that started the task, when it was one.
    pub(crate) spawn_site: Option<&'static StaticSite>,
    pub(crate) spawned_at: u64,
    /// The registry shard holding this record, and the type's row there.
    pub(crate) shard: u16,
    pub(crate) type_row: u16,
    /// Slot in the shard's live list: given at spawn under the inbox's lock,
    /// renumbered only by a compaction, under the shard's lock (see `live`).
    pub(crate) slot: AtomicU32,
    pub(crate) state: AtomicU8,
    pub(crate) polls: AtomicU64,
    pub(crate) first_poll_at: AtomicU64,
    /// Present exactly when the task's tracker times polls.
    pub(crate) timing: Option<Box<Timing>>,
    progress: Mutex<Option<Box<Progress>>>,
    /// [`POLLING`] while the task is inside a poll, and [`IN_PLACE`] while
    /// that poll blocks in place; for the watchdog. Only the polling thread
    /// writes it.
    in_poll: AtomicU8,
    /// Which watchdog warnings were given (bits from `watchdog`).
    pub(crate) warned: AtomicU8,
    /// How the task may start: [`DOOMED`], [`NO_CLAIM`], [`TARGET_CALL`];
    /// what it is: [`KEPT`], [`SERVICE`].
    start: AtomicU8,
    /// Cancel requested, record superseded: the flags of the hand-offs in
    /// `handoff`, two bytes that sit with the one-byte fields above.
    flags: Flags,
    /// The token the task may watch (created on first use), and the handle
    /// that aborts it.
    control: Control<AbortHandle>,
}

impl Record {
    pub(crate) fn blank() -> Self {
        Record {
            id: TaskId::from_u64(u64::MAX).expect("non-zero"),
            parent: None,
            name: Cow::Borrowed(""),
            ty: TaskType::GENERAL,
            meta: None,
            caller: Location::caller(),
            kind: SpawnKind::Async,
            fn_site: None,
            spawn_site: None,
            spawned_at: 0,
            shard: 0,
            type_row: 0,
            slot: AtomicU32::new(0),
            state: AtomicU8::new(0),
            polls: AtomicU64::new(0),
            first_poll_at: AtomicU64::new(0),
            timing: None,
            progress: Mutex::new(None),
            in_poll: AtomicU8::new(0),
            warned: AtomicU8::new(0),
            start: AtomicU8::new(0),
            flags: Flags::default(),
            control: Control::default(),
        }
    }

    /// Readies a pooled record for its next task: clears what the last task
    /// left in it, in place. The spawn then writes the identity fields.
    pub(crate) fn reset(&mut self) {
        self.parent = None;
        self.fn_site = None;
        self.spawn_site = None;
        *self.state.get_mut() = TaskState::Pending as u8;
        *self.polls.get_mut() = 0;
        *self.first_poll_at.get_mut() = 0;
        if let Some(timing) = &mut self.timing {
            timing.busy = Busy::default();
            *timing.last_poll_end.get_mut() = 0;
        }
        drop(self.take_progress());
        *self.in_poll.get_mut() = 0;
        *self.warned.get_mut() = 0;
        *self.start.get_mut() = 0;
        self.flags = Flags::default();
        self.control = Control::default();
    }

    /// Gives a record not shared yet a [`Timing`] if its tracker times polls,
    /// and takes it away if not (a pooled record may come from either); with
    /// a wake state if the tracker follows wakes (`wakes`, its clock), which
    /// is reused unless a waker of the last task still holds it.
    pub(crate) fn set_timed(&mut self, timed: bool, wakes: Option<Epoch>) {
        if timed != self.timing.is_some() {
            self.timing = timed.then(Box::default);
        }
        let Some(timing) = &mut self.timing else {
            return;
        };
        match (wakes, timing.wake.as_mut().and_then(Arc::get_mut)) {
            (Some(epoch), Some(unshared)) => *unshared = WakeState::new(epoch),
            (wakes, _) => timing.wake = wakes.map(|epoch| Arc::new(WakeState::new(epoch))),
        }
    }

    /// Whether this is a `#[tracked]` fn awaited inside a tracked task, so
    /// polled within that task's polls (a fn that runs as the root of a task
    /// of plain tokio's has no parent).
    pub(crate) fn nested(&self) -> bool {
        self.kind == SpawnKind::Inline && self.parent.is_some()
    }

    /// The task's wake state, if its tracker follows wakes.
    #[inline]
    pub(crate) fn wake_state(&self) -> Option<&Arc<WakeState>> {
        self.timing.as_ref()?.wake.as_ref()
    }

    /// What the task's wakes were, if its tracker follows them.
    pub(crate) fn wakes(&self, clock: &Clock) -> Option<Wakes> {
        let state = self.wake_state()?;
        let (idle_polled, same_poll) = self.idle_polled();
        Some(state.report(clock, idle_polled, same_poll))
    }

    /// Whether the task was woken and waits for a poll; `false` if its
    /// tracker does not follow wakes.
    pub(crate) fn woken(&self) -> bool {
        self.wake_state().is_some_and(|state| state.woken())
    }

    /// Whether the task has lost its waker; `None` if its tracker does not
    /// follow wakes.
    pub(crate) fn lost_waker(&self) -> Option<bool> {
        let state = self.wake_state()?;
        let (idle_polled, same_poll) = self.idle_polled();
        Some(state.lost(idle_polled, same_poll))
    }

    /// Whether the task is live, polled and outside a poll, and a check that
    /// no poll has begun since (see `WakeState::lost`).
    ///
    /// The orders, checked by the loom model in `wake.rs`: a poll stores its
    /// in-poll flag, then its count (Release), so a reader that sees the new
    /// count (Acquire) sees the poll begun; seeing a poll over (its Release
    /// of the flag) shows the wakers it cloned; and a poll stores its count
    /// before taking the wake (`WakeState::poll_starts`, AcqRel), so a reader
    /// that sees the wake taken sees the new count, and `same_poll` fails.
    fn idle_polled(&self) -> (bool, impl FnOnce() -> bool + '_) {
        let polls = self.polls.load(Ordering::Acquire);
        let idle_polled =
            polls > 0 && !self.in_poll(Ordering::Acquire) && !self.state().is_finished();
        let same_poll =
            move || !self.in_poll(Ordering::Acquire) && self.polls.load(Ordering::Relaxed) == polls;
        (idle_polled, same_poll)
    }

    /// Time spent inside `poll` until `now`, if polls are timed: the poll
    /// running now counts, so a task stuck in one shows its busy time grow.
    pub(crate) fn busy_ns(&self, now: u64) -> Option<u64> {
        Some(self.timing.as_ref()?.busy.read(now))
    }

    /// When the poll running now began, if polls are timed.
    pub(crate) fn poll_start(&self) -> Option<u64> {
        self.timing.as_ref()?.busy.since()
    }

    /// When the task went idle: the end of its latest poll, if polls are
    /// timed, one has ended, and the task is neither in a poll nor finished.
    pub(crate) fn idle_since(&self) -> Option<u64> {
        let timing = self.timing.as_ref()?;
        // Relaxed: a report; a poll starting meanwhile only makes it stale.
        if self.in_poll(Ordering::Relaxed) || self.state().is_finished() {
            return None;
        }
        match timing.last_poll_end.load(Ordering::Relaxed) {
            0 => None,
            at => Some(at),
        }
    }

    /// Sets the owner and labels of a record not shared yet, in the box the
    /// record kept from an earlier task if it has one.
    pub(crate) fn set_meta(&mut self, owner: Option<Arc<str>>, labels: Box<[Label]>) {
        if owner.is_none() && labels.is_empty() && self.meta.is_none() {
            return;
        }
        let meta = self.meta.get_or_insert_with(Box::default);
        meta.owner = owner;
        meta.labels = labels;
    }

    /// The group or owner the task belongs to.
    pub(crate) fn owner(&self) -> Option<&Arc<str>> {
        self.meta.as_ref()?.owner.as_ref()
    }

    /// The key-value labels given at spawn.
    pub(crate) fn labels(&self) -> &[Label] {
        self.meta.as_deref().map_or(&[], |meta| &meta.labels)
    }

    /// Takes the handle that aborts the task, once it has ended and no one
    /// needs it: it keeps tokio's task allocation alive.
    pub(crate) fn take_abort(&mut self) -> Option<AbortHandle> {
        self.control.take_abort()
    }

    /// The record's side of the cancel and claim hand-offs.
    fn handoff(&self) -> Handoff<'_, AbortHandle> {
        Handoff::new(&self.flags, &self.control)
    }

    /// Asks the task to stop: its token (now or when created) is cancelled.
    /// `None` if the task had already ended; [`Delivery::HandOn`] if a claim
    /// replaced this record meanwhile (see `Registry::request_cancel`).
    pub(crate) fn request_cancel(&self) -> Option<Delivery> {
        if self.state().is_finished() {
            return None;
        }
        Some(self.handoff().request_cancel())
    }

    pub(crate) fn cancel_requested(&self) -> bool {
        self.handoff().cancel_requested()
    }

    /// The task's cancellation token, created on first use.
    pub(crate) fn cancellation_token(&self) -> CancellationToken {
        self.handoff().token()
    }

    /// Aborts the task through tokio, now or, if the spawner has not stored
    /// its handle yet, as soon as it does. A claim carries a pending abort
    /// over to the record that replaces this one.
    pub(crate) fn abort(&self) {
        self.handoff().abort();
    }

    /// Records the tokio handle that aborts the task. Gives a copy back if a
    /// claim replaced this record meanwhile, for the caller to hand on.
    pub(crate) fn set_abort(&self, handle: AbortHandle) -> Option<AbortHandle> {
        self.handoff().set_abort(handle)
    }

    /// Marks this record replaced by `fresh` and carries the control state
    /// over; called under the shard lock by a claim.
    pub(crate) fn supersede(&self, fresh: &mut Record) {
        self.handoff()
            .supersede(&mut fresh.flags, &mut fresh.control);
        fresh.start = AtomicU8::new(self.start.load(Ordering::Relaxed));
        fresh.in_poll = AtomicU8::new(self.in_poll.load(Ordering::Relaxed));
        fresh.warned = AtomicU8::new(self.warned.load(Ordering::Relaxed));
    }

    /// Marks the task inside a poll: a plain store (see `idle_polled`).
    #[inline]
    pub(crate) fn enter_poll(&self) {
        self.in_poll.store(POLLING, Ordering::Relaxed);
    }

    /// Marks the task out of its poll, with Release (see `idle_polled`).
    #[inline]
    pub(crate) fn leave_poll(&self) {
        self.in_poll.store(0, Ordering::Release);
    }

    /// Whether the task is inside a poll.
    #[inline]
    pub(crate) fn in_poll(&self, order: Ordering) -> bool {
        self.in_poll.load(order) != 0
    }

    /// Whether the task's poll is blocking in place, as it means to.
    pub(crate) fn in_place(&self) -> bool {
        self.in_poll.load(Ordering::Relaxed) & IN_PLACE != 0
    }

    /// Marks the poll under way as blocking in place, or no longer; returns
    /// whether it was (a `block_in_place` inside another).
    pub(crate) fn set_in_place(&self, in_place: bool) -> bool {
        let now = if in_place {
            POLLING | IN_PLACE
        } else {
            POLLING
        };
        self.in_poll.swap(now, Ordering::Relaxed) & IN_PLACE != 0
    }

    /// Sets a watchdog warning bit; `true` the first time only.
    pub(crate) fn warn_once(&self, bit: u8) -> bool {
        self.warned.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// Where the task was spawned: the rewritten spawn's site, else the
    /// `#[tracked]` fn's (a fn awaited as a unit), else the caller's
    /// location. A claim keeps the spawn's site.
    pub(crate) fn site(&self) -> Site {
        match (self.spawn_site, self.fn_site) {
            (Some(site), _) | (None, Some(site)) => site.location(),
            (None, None) => Site::from(self.caller),
        }
    }

    pub(crate) fn has_static_site(&self) -> bool {
        self.fn_site.is_some() || self.spawn_site.is_some()
    }

    pub(crate) fn static_sites(&self) -> impl Iterator<Item = &'static StaticSite> {
        self.fn_site.into_iter().chain(self.spawn_site)
    }

    /// Whether an annotated fn starting to run in this task may claim it:
    /// the task came from a rewritten spawn of a call to a fn of that name,
    /// is in its first poll, was not claimed yet, and is not known to run
    /// another fn of that name (see [`Record::fn_made`]).
    pub(crate) fn claimable_by(&self, site: &StaticSite) -> bool {
        self.fn_site.is_none()
            && self.kind != SpawnKind::Inline
            // Only the polling thread writes `polls`; Relaxed is enough.
            && self.polls.load(Ordering::Relaxed) == 1
            && self.start.load(Ordering::Relaxed) & NO_CLAIM == 0
            && self
                .spawn_site
                .is_some_and(|spawn| !spawn.target().is_empty() && spawn.target() == site.target())
    }

    /// Notes that the annotated fn `site` is being called (its future made)
    /// while this task is current. The fn the spawn names is made either
    /// before the spawn (`spawn(f(x))`) or, in a spawned async block, by the
    /// call the macro marks as the target (`spawn(async move { f(x).await
    /// })`, see [`Record::target_call`]). A fn of that name made otherwise
    /// while the task is still claimable is called by the spawned one, which
    /// is another fn of that name, not annotated (`spawn(worker.run())`
    /// awaiting an annotated `db.run()`): no fn claims the task then (this
    /// one is a unit in it), so the task keeps the spawn's name and type.
    #[inline]
    pub(crate) fn fn_made(&self, site: &StaticSite) {
        // Only the polling thread reads and writes the bits; Relaxed.
        if self.claimable_by(site) && self.start.load(Ordering::Relaxed) & TARGET_CALL == 0 {
            self.start.fetch_or(NO_CLAIM, Ordering::Relaxed);
        }
    }

    /// Marks the start (`open`) or the end of the target call of the
    /// task's spawned async block: an annotated fn made during it may claim
    /// the task.
    pub(crate) fn target_call(&self, open: bool) {
        // The polling thread's own bit, as in `fn_made`; Relaxed.
        if open {
            self.start.fetch_or(TARGET_CALL, Ordering::Relaxed);
        } else {
            self.start.fetch_and(!TARGET_CALL, Ordering::Relaxed);
        }
    }

    /// Marks a record not shared yet with `bits`: [`KEPT`], [`SERVICE`].
    pub(crate) fn mark(&mut self, bits: u8) {
        *self.start.get_mut() |= bits;
    }

    /// Whether shutdowns leave the task alone ([`KEPT`]).
    pub(crate) fn kept(&self) -> bool {
        self.start.load(Ordering::Relaxed) & KEPT != 0
    }

    /// Whether the task is one of the library's own services ([`SERVICE`]).
    pub(crate) fn service(&self) -> bool {
        self.start.load(Ordering::Relaxed) & SERVICE != 0
    }

    /// Whether the task, spawned after shutdown, must not run its body.
    #[inline]
    pub(crate) fn doomed(&self) -> bool {
        self.start.load(Ordering::Relaxed) & DOOMED != 0
    }

    /// Marks the task, about to be handed to tokio, as one that must not
    /// run its body: the abort sent at spawn ends it.
    pub(crate) fn doom(&self) {
        self.start.fetch_or(DOOMED, Ordering::Relaxed);
    }

    pub(crate) fn state(&self) -> TaskState {
        // Relaxed: the state is a report, nothing else is published with it.
        TaskState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub(crate) fn set_state(&self, state: TaskState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    pub(crate) fn progress(&self) -> MutexGuard<'_, Option<Box<Progress>>> {
        // A panic while holding this lock cannot leave the progress torn in a
        // way that matters for a report, so poisoning is ignored.
        self.progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` while holding the record's progress, unless the task has
    /// ended: its end holds the progress while it sets the state and sends
    /// `Finished` (when anyone listens), so an event `f` sends comes before
    /// that one or not at all.
    pub(crate) fn unless_ended<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        let _held = self.progress();
        (!self.state().is_finished()).then(f)
    }

    /// Takes the progress log out of a record that may be shared.
    pub(crate) fn take_shared_progress(&self) -> Option<Box<Progress>> {
        self.progress().take()
    }

    pub(crate) fn take_progress(&mut self) -> Option<Box<Progress>> {
        self.progress
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every live task pays for its record (scenario D of the benchmarks):
    /// a field added here should be a decision, not an accident.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_record_stays_within_184_bytes() {
        assert!(
            std::mem::size_of::<Record>() <= 184,
            "{}",
            std::mem::size_of::<Record>()
        );
    }

    #[test]
    fn a_pooled_record_is_timed_exactly_when_its_next_tracker_is() {
        let mut record = Record::blank();
        assert_eq!(record.busy_ns(0), None);
        record.set_timed(true, None);
        let timing = record.timing.as_deref().expect("timed");
        timing.busy.begin(2);
        timing.busy.end(2, 9);
        timing.last_poll_end.store(9, Ordering::Relaxed);
        record.set_state(TaskState::Running);
        assert_eq!((record.busy_ns(0), record.idle_since()), (Some(7), Some(9)));
        record.enter_poll();
        assert_eq!(record.idle_since(), None, "not idle inside a poll");
        record.timing.as_deref().unwrap().busy.begin(12);
        assert_eq!(
            (record.busy_ns(20), record.poll_start()),
            (Some(15), Some(12))
        );
        // Reused by a timed tracker: the box is kept, its values cleared.
        let kept: *const Timing = record.timing.as_deref().unwrap();
        record.reset();
        record.set_timed(true, None);
        assert!(std::ptr::eq(kept, record.timing.as_deref().unwrap()));
        assert_eq!((record.busy_ns(20), record.idle_since()), (Some(0), None));
        assert_eq!(record.poll_start(), None);
        // Reused by an untimed one: no timing at all.
        record.reset();
        record.set_timed(false, None);
        assert_eq!((record.busy_ns(0), record.idle_since()), (None, None));
    }

    #[test]
    fn a_pooled_record_reuses_its_wake_state_unless_a_waker_still_holds_it() {
        let clock = Clock::new();
        let mut record = Record::blank();
        record.set_timed(true, Some(clock.epoch()));
        let first = Arc::clone(record.wake_state().expect("wakes followed"));
        let first_ptr = Arc::as_ptr(&first);
        // A waker of the last task outlives it: the next one gets its own
        // state, so that stale waker cannot count (or wake) the new task.
        record.reset();
        record.set_timed(true, Some(clock.epoch()));
        let second = Arc::as_ptr(record.wake_state().unwrap());
        assert!(!std::ptr::eq(first_ptr, second));
        drop(first);
        // Nothing else holds it: cleared in place.
        record.reset();
        record.set_timed(true, Some(clock.epoch()));
        assert!(std::ptr::eq(
            second,
            Arc::as_ptr(record.wake_state().unwrap())
        ));
        assert_eq!(record.wakes(&clock).map(|w| w.wakes), Some(0));
        // Timed, wakes not followed; then neither.
        record.reset();
        record.set_timed(true, None);
        assert!(record.wake_state().is_none() && record.busy_ns(0).is_some());
        record.reset();
        record.set_timed(false, Some(clock.epoch()));
        assert!(record.wakes(&clock).is_none() && record.lost_waker().is_none());
    }

    #[test]
    fn a_reused_record_forgets_the_last_owner_and_labels() {
        let mut record = Record::blank();
        record.set_meta(
            Some("tenant-7".into()),
            Box::new([("k".into(), "v".into())]),
        );
        assert_eq!(record.owner().map(|o| &**o), Some("tenant-7"));
        assert_eq!(record.labels(), [("k".into(), "v".into())]);
        record.reset();
        record.set_meta(None, Box::default());
        assert_eq!(record.owner(), None);
        assert!(record.labels().is_empty());
        record.set_meta(None, Box::new([("k2".into(), "v2".into())]));
        assert_eq!((record.owner(), record.labels().len()), (None, 1));
    }
}
