//! The sharded registry: live records, recent history and counters.
//!
//! Each thread spawns into "its" shard (picked once per thread), so spawners
//! on different threads never meet. A spawn does not take the shard's lock:
//! it pushes the new record into the shard's inbox (`live.rs`), behind a lock
//! of its own held only for that push. Whoever takes the shard's lock next
//! books the inbox first (live list, counters), so every holder of the lock
//! sees every task spawned before it took it.
//!
//! Ends do the same: an end pushes the task into its shard's queue of ends,
//! behind a third lock, and the next holder of the shard's lock books the
//! queue (out of the live list, counted, into history), the ends before the
//! spawns' inbox so that every task whose end it books is booked as spawned.
//! An end that finds [`ENDS_AT`] queued books them itself if the lock is free.
//! So a spawner and the workers ending its tasks meet on two short pushes,
//! not on the shard's lock and the cache lines of its live list, counters and
//! history; and a batch of ends is booked in one hold of the lock.
//!
//! A task ends in the shard it was spawned in, which keeps every shard's
//! counters consistent on their own: under a shard's lock, once both queues
//! are booked, `spawned = live + finished` holds exactly for that shard, and
//! so for the sum over shards. A task's state is set when it ends, before
//! it is queued: until it is booked, a reader holding the lock may find it
//! in the live list already finished, as it could always find a task that
//! ended after the reader copied it out.

use crate::clock::Clock;
use crate::handoff::Delivery;
use crate::histogram::{DurationHistogram, PollCounter, PollHistogram};
use crate::history::{Finished, History};
use crate::live::{self, Inbox, Live};
use crate::pool;
use crate::record::{Record, SpawnKind, TaskState};
use crate::snapshot::{Ending, TaskSnapshot};
use crate::stats::Counts;
use crate::{StaticSite, TaskType};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Distinct task types one shard counts separately; the last row collects
/// the overflow under [`OVERFLOW`].
pub(crate) const MAX_TYPES: usize = 128;

/// The type that stands for every type past [`MAX_TYPES`].
pub(crate) const OVERFLOW: TaskType = TaskType::new("(other)");

/// Pooled records kept per shard for reuse; beyond this they are freed.
const POOL_CAP: usize = 4096;

/// Tasks waiting in a shard's inbox at which a spawn books them itself, if
/// the shard's lock is free. Without it a burst of spawns with no end and no
/// reader in between leaves them all to the next holder of the lock, often
/// a runtime worker ending a task: 200,000 took it 4–5 ms. Smaller under
/// Miri, so that its test spawns fewer tasks there.
const BOOK_AT: usize = if cfg!(miri) { 64 } else { 1024 };

/// Live-list slots or history entries a listing visits per hold of a
/// shard's lock: each visit reads a record (a likely cache miss) and may
/// clone it, so 64 hold the lock for a few microseconds at most.
const SCAN_CHUNK: usize = 64;

/// How the registry is sized and how long it remembers.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub(crate) shards: usize,
    pub(crate) history_capacity: usize,
    pub(crate) history_ttl: std::time::Duration,
    /// Whether polls are timed: records carry a `Timing`, shards keep poll
    /// histograms.
    pub(crate) timed_polls: bool,
    /// The tracker's clock, when it follows wakes (which times polls too).
    pub(crate) wakes: Option<crate::clock::Epoch>,
}

pub(crate) struct Registry {
    shards: Box<[Padded<Shard>]>,
    budget: Arc<Budget>,
    limits: Limits,
}

/// What bounds history, shared by every shard.
struct Budget {
    /// Finished tasks held in history across all shards.
    held: AtomicUsize,
    capacity: usize,
    /// The time-to-live, in clock nanoseconds.
    ttl: u64,
}

/// Ends queued in a shard at which the ending thread books them itself, if
/// the shard's lock is free: at most this many ended tasks (and tokio's
/// allocations, which their abort handles keep) wait per shard for a reader
/// or a spawn to book them. Larger batches measured no faster.
const ENDS_AT: usize = if cfg!(miri) { 8 } else { 64 };

/// Keeps each shard on its own cache lines.
#[repr(align(128))]
struct Padded<T>(T);

struct Shard {
    state: Mutex<ShardState>,
    /// Tasks ended and not yet booked, oldest first, behind a lock held only
    /// for a push or a swap: an end does not wait for `state`, which the
    /// spawning thread takes to book its spawns.
    ends: Padded<Mutex<Vec<Finished>>>,
    budget: Arc<Budget>,
    /// Records spawned and not yet booked, oldest first. On a cache line of
    /// its own: spawners write it while others hold `state`.
    inbox: Padded<Mutex<Inbox>>,
    /// The type of each row, set once, under `state`, and read without it:
    /// a spawn finds its row here.
    types: Box<[OnceLock<TaskType>]>,
    /// Tasks first polled, per type row. Bumped without the lock on a task's
    /// first poll; read under the lock together with the other counters.
    started: Box<[AtomicU64]>,
    /// Poll durations, per type row, when polls are timed: allocated on a
    /// type's first timed poll in this shard, then bumped without the lock.
    polls: Option<PerType>,
    /// Scheduling delays (a wake to the poll it led to), per type row, when
    /// wakes are followed; kept as `polls` is.
    scheduled: Option<PerType>,
}

/// Durations counted per type row, each row allocated on first use.
type PerType = Box<[OnceLock<Box<PollCounter>>]>;

fn per_type() -> PerType {
    (0..MAX_TYPES).map(|_| OnceLock::new()).collect()
}

#[derive(Default)]
struct ShardState {
    /// The spare vector swapped with the ends' queue.
    ending: Vec<Finished>,
    live: Live,
    pool: Vec<Arc<Record>>,
    history: History,
    rows: Vec<Row>,
}

/// One type's counters in one shard.
#[derive(Clone, Copy)]
struct Row {
    ty: TaskType,
    spawned: u64,
    completed: u64,
    failed: u64,
    panicked: u64,
    cancelled: u64,
    /// Tasks spawned in this row that a claim moved to another.
    claimed: u64,
    /// Finished tasks that had been polled, to split live into pending/running.
    finished_started: u64,
    /// Durations of the finished tasks, spawn to end.
    durations: DurationHistogram,
}

impl Row {
    fn new(ty: TaskType) -> Self {
        Row {
            ty,
            spawned: 0,
            completed: 0,
            failed: 0,
            panicked: 0,
            cancelled: 0,
            claimed: 0,
            finished_started: 0,
            durations: DurationHistogram::default(),
        }
    }
}

thread_local! {
    /// This thread's shard, as a number to be masked by each registry.
    static SHARD_HINT: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn shard_hint() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    // During thread teardown the hint may be gone; any shard will do then.
    SHARD_HINT
        .try_with(|hint| {
            let mut value = hint.get();
            if value == usize::MAX {
                // Relaxed: this only spreads threads over shards.
                value = NEXT.fetch_add(1, Ordering::Relaxed);
                hint.set(value);
            }
            value
        })
        .unwrap_or(0)
}

impl Registry {
    pub(crate) fn new(limits: Limits) -> Self {
        let count = limits.shards.clamp(1, 1024).next_power_of_two();
        let budget = Arc::new(Budget {
            held: AtomicUsize::new(0),
            capacity: limits.history_capacity,
            ttl: u64::try_from(limits.history_ttl.as_nanos()).unwrap_or(u64::MAX),
        });
        let shards = (0..count)
            .map(|_| {
                Padded(Shard {
                    state: Mutex::new(ShardState::default()),
                    ends: Padded(Mutex::default()),
                    budget: Arc::clone(&budget),
                    inbox: Padded(Mutex::default()),
                    types: (0..MAX_TYPES).map(|_| OnceLock::new()).collect(),
                    started: (0..MAX_TYPES).map(|_| AtomicU64::new(0)).collect(),
                    polls: limits.timed_polls.then(per_type),
                    scheduled: limits.wakes.is_some().then(per_type),
                })
            })
            .collect();
        Registry {
            shards,
            budget,
            limits,
        }
    }

    /// Whether records follow their task's wakes.
    pub(crate) fn follows_wakes(&self) -> bool {
        self.limits.wakes.is_some()
    }

    fn shard(&self, index: usize) -> &Shard {
        &self.shards[index & (self.shards.len() - 1)].0
    }

    /// Registers a new task: `fill` writes the record's identity; the
    /// registry sets its bookkeeping fields and makes it visible to every
    /// later holder of the shard's lock.
    pub(crate) fn insert(&self, fill: impl FnOnce(&mut Record)) -> Arc<Record> {
        let index = shard_hint() & (self.shards.len() - 1);
        let shard = self.shard(index);
        let record = pool::take(
            |stash| shard.lock_unbooked().lend(stash),
            |record| {
                fill(record);
                // A blocking closure is never polled: nothing to wake.
                let wakes = self
                    .limits
                    .wakes
                    .filter(|_| record.kind != SpawnKind::Blocking);
                record.set_timed(self.limits.timed_polls, wakes);
                record.shard = index as u16;
                record.type_row = shard.type_row(record.ty);
            },
        );
        let queued = live::lock(&shard.inbox.0).push(Arc::clone(&record));
        if queued >= BOOK_AT {
            shard.try_book();
        }
        record
    }

    /// Hands a running task over to the `#[tracked]` fn that turned out to
    /// be its root future: a record with the fn's name, type and site takes
    /// the old record's place, and the task's counts move to the new type's
    /// row, so stats stay exact. The record is replaced rather than changed
    /// because snapshots read its plain fields after the lock is released.
    pub(crate) fn claim(
        &self,
        task: &mut Arc<Record>,
        site: &'static StaticSite,
        owner: Option<Arc<str>>,
    ) {
        let old = &**task;
        let shard = self.shard(usize::from(old.shard));
        let type_row = shard.type_row(site.ty());
        // The plain fields never change once the record is shared.
        let mut record = pool::take(
            |stash| shard.lock_unbooked().lend(stash),
            |fresh| {
                fresh.id = old.id;
                fresh.parent = old.parent;
                fresh.name = std::borrow::Cow::Borrowed(site.name());
                fresh.ty = site.ty();
                fresh.set_meta(owner.or_else(|| old.owner().cloned()), old.labels().into());
                fresh.caller = old.caller;
                fresh.kind = old.kind;
                fresh.fn_site = Some(site);
                fresh.spawn_site = old.spawn_site;
                fresh.spawned_at = old.spawned_at;
                fresh.shard = old.shard;
                fresh.type_row = type_row;
                fresh.set_timed(old.timing.is_some(), None);
            },
        );
        let mut state = shard.lock();
        let fresh = Arc::get_mut(&mut record).expect("the record is not shared yet");
        ensure_row(&mut state.rows, shard, type_row);
        // Relaxed throughout: these are copies made under the shard lock by
        // the thread polling the task, the only writer of these fields now.
        let relaxed = Ordering::Relaxed;
        fresh.slot.store(old.slot.load(relaxed), relaxed);
        fresh.state.store(old.state.load(relaxed), relaxed);
        fresh.polls.store(old.polls.load(relaxed), relaxed);
        fresh
            .first_poll_at
            .store(old.first_poll_at.load(relaxed), relaxed);
        if let (Some(from), Some(to)) = (&old.timing, &mut fresh.timing) {
            to.busy.copy_from(&from.busy);
            to.last_poll_end
                .store(from.last_poll_end.load(relaxed), relaxed);
            // The same state: the task's wakers point at it.
            to.wake.clone_from(&from.wake);
        }
        old.supersede(fresh);
        let (from, to) = (usize::from(old.type_row), usize::from(fresh.type_row));
        if from != to {
            state.rows[from].spawned -= 1;
            state.rows[from].claimed += 1;
            state.rows[to].spawned += 1;
            if old.first_poll_at.load(relaxed) != 0 {
                // Both under the lock that `counts` takes, so no reader sees
                // the task counted in neither row or in both.
                shard.started[from].fetch_sub(1, Ordering::Release);
                shard.started[to].fetch_add(1, Ordering::Release);
            }
        }
        // Booked: `lock` books the inbox, where the task's spawn put it.
        let replaced = state.live.replace(task, Arc::clone(&record));
        debug_assert!(replaced, "a claimed task is live");
        let old = std::mem::replace(task, record);
        let unpooled = state.recycle(old);
        drop(state);
        drop(unpooled);
    }

    /// Records the tokio handle that aborts `record`'s task, on the record
    /// that stands for the task now if a claim replaced it.
    pub(crate) fn set_abort(&self, record: &Record, handle: tokio::task::AbortHandle) {
        if let Some(handle) = record.set_abort(handle) {
            let state = self.shard(usize::from(record.shard)).lock();
            if let Some(now) = state.live.find(record) {
                now.set_abort(handle);
            }
        }
    }

    /// Asks `record`'s task to stop, on the record that stands for the task
    /// now if a claim replaced it. Returns `false` if the task had already
    /// ended.
    pub(crate) fn request_cancel(&self, record: &Record) -> bool {
        match record.request_cancel() {
            None => false,
            Some(Delivery::Kept) => true,
            Some(Delivery::HandOn) => {
                // The claim set `superseded` under this lock, so the record
                // it put in the live list is there now, unless the task has
                // ended since. Cancelled after unlocking: a token's waiters
                // are woken there.
                let now = {
                    let state = self.shard(usize::from(record.shard)).lock();
                    state.live.find(record).cloned()
                };
                // A record is claimed at most once: no further hand-on.
                if let Some(now) = now {
                    let _ = now.request_cancel();
                }
                true
            }
        }
    }

    /// Counts a task's first poll; called once per task, without the lock.
    pub(crate) fn started(&self, record: &Record) {
        // Release pairs with the Acquire in `counts`, so a reader that sees a
        // task finished under the lock also sees it counted as started.
        self.shard(usize::from(record.shard)).started[usize::from(record.type_row)]
            .fetch_add(1, Ordering::Release);
    }

    /// Counts one poll of `nanos` in the task's type row, without the lock.
    #[inline]
    pub(crate) fn polled(&self, record: &Record, nanos: u64) {
        self.count_per_type(record, nanos, |shard| shard.polls.as_ref());
    }

    /// Counts one scheduling delay of `nanos` for the task's type.
    pub(crate) fn scheduled(&self, record: &Record, nanos: u64) {
        self.count_per_type(record, nanos, |shard| shard.scheduled.as_ref());
    }

    /// Counts `nanos` in the counters `which` picks, in the task's type row
    /// of the calling thread's shard, not the task's: the tasks of one
    /// spawner share a shard, and their polls on every worker would
    /// otherwise all bump the same cache lines.
    #[inline]
    fn count_per_type(&self, record: &Record, nanos: u64, which: fn(&Shard) -> Option<&PerType>) {
        let index = shard_hint() & (self.shards.len() - 1);
        let shard = self.shard(index);
        if let Some(counters) = which(shard) {
            let row = if index == usize::from(record.shard) {
                record.type_row
            } else {
                shard.type_row(record.ty)
            };
            counters[usize::from(row)]
                .get_or_init(Box::default)
                .add(nanos);
        }
    }

    /// Records a task's end: queues it for the next holder of its shard's
    /// lock, which removes it from the live list, counts it and keeps its
    /// record in history (see [`Shard::book`]).
    pub(crate) fn finish(&self, record: Arc<Record>, ending: Ending, clock: &Clock) {
        let finished_at = clock.now();
        record.set_state(ending.state());
        let failure = ending.into_failure();
        let shard = self.shard(usize::from(record.shard));
        let entry = Finished {
            record,
            finished_at,
            failure,
        };
        let queued = {
            let mut ends = lock_ends(&shard.ends.0);
            ends.push(entry);
            ends.len()
        };
        if queued >= ENDS_AT {
            shard.try_book();
        }
    }

    /// Tasks waiting in the shards' inboxes.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.shards
            .iter()
            .map(|s| live::lock(&s.0.inbox.0).len())
            .sum()
    }

    /// Ends waiting in the shards' queues.
    #[cfg(test)]
    fn ending(&self) -> usize {
        self.shards
            .iter()
            .map(|s| lock_ends(&s.0.ends.0).len())
            .sum()
    }

    /// Slots in the shards' live slabs, used or not.
    #[cfg(test)]
    fn live_slots(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().live.slots()).sum()
    }

    pub(crate) fn ttl(&self) -> std::time::Duration {
        self.limits.history_ttl
    }

    /// Drops history entries that finished before `cutoff` (a clock
    /// reading); returns how many.
    pub(crate) fn cleanup(&self, cutoff: u64) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut state = shard.0.lock();
            removed += state.evict_older(cutoff);
            // Pooled records of tasks evicted by capacity still hold their
            // progress logs until reused: an explicit cleanup frees them.
            let logs: Vec<_> = state
                .pool
                .iter()
                .filter_map(|r| r.take_shared_progress())
                .collect();
            drop(state);
            drop(logs);
        }
        self.budget.held.fetch_sub(removed, Ordering::Relaxed);
        removed
    }

    /// Live records matching `keep`; each shard is locked only while its
    /// matching records are cloned out. A task that ended after its shard's
    /// queue of ends was booked is still in the live list, its state set:
    /// it is left out, as an ended task.
    pub(crate) fn live(&self, mut keep: impl FnMut(&Record) -> bool) -> Vec<Arc<Record>> {
        let mut keep = |record: &Record| !record.state().is_finished() && keep(record);
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            shard.0.live_into(&mut keep, &mut out);
        }
        out
    }

    /// Snapshots of the history entries whose records match `keep`.
    pub(crate) fn history(
        &self,
        keep: impl FnMut(&Record) -> bool,
        clock: &Clock,
    ) -> Vec<TaskSnapshot> {
        let entries = self.history_entries(keep, clock);
        entries.iter().map(|entry| entry.snapshot(clock)).collect()
    }

    /// The history entries whose records match `keep`, to be snapshotted
    /// by the caller (after choosing which: a listing of a page snapshots
    /// the page, not the whole history). Each shard is locked only while
    /// its matching entries are cloned out (a reference count each).
    pub(crate) fn history_entries(
        &self,
        mut keep: impl FnMut(&Record) -> bool,
        clock: &Clock,
    ) -> Vec<Finished> {
        // Entries past the time-to-live are evicted as later tasks end (or
        // by `cleanup`); until then they are kept, but not listed.
        let cutoff = clock.ago(self.limits.history_ttl);
        let mut entries = Vec::new();
        let mut chunk = Vec::new();
        for shard in self.shards.iter() {
            // A few entries per hold of the lock and filtered after it, as
            // for live tasks; history only loses entries at its front, so
            // the walk needs no restart.
            let mut next = Some(0);
            while let Some(from) = next {
                next = shard
                    .0
                    .lock()
                    .history
                    .scan(from, SCAN_CHUNK, |entry| chunk.push(entry.clone()));
                entries.extend(
                    chunk
                        .drain(..)
                        .filter(|entry| entry.finished_at >= cutoff && keep(&entry.record)),
                );
            }
        }
        entries
    }

    /// Duration histograms per type, one entry per shard row.
    pub(crate) fn durations(&self) -> Vec<(TaskType, DurationHistogram)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let state = shard.0.lock();
            out.extend(state.rows.iter().map(|row| (row.ty, row.durations)));
        }
        out
    }

    /// Poll histograms per type, one entry per shard row polled so far.
    pub(crate) fn poll_durations(&self) -> Vec<(TaskType, PollHistogram)> {
        self.per_type_histograms(|shard| shard.polls.as_ref())
    }

    /// Scheduling delay histograms per type, one entry per shard row.
    pub(crate) fn scheduling_delays(&self) -> Vec<(TaskType, PollHistogram)> {
        self.per_type_histograms(|shard| shard.scheduled.as_ref())
    }

    fn per_type_histograms(
        &self,
        which: fn(&Shard) -> Option<&PerType>,
    ) -> Vec<(TaskType, PollHistogram)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let Some(counters) = which(&shard.0) else {
                return out;
            };
            // Lock-free: a type's row is set before anything counts in it.
            for (ty, counter) in shard.0.types.iter().zip(counters.iter()) {
                if let (Some(ty), Some(counter)) = (ty.get(), counter.get()) {
                    out.push((*ty, counter.load()));
                }
            }
        }
        out
    }

    /// Counters per type, summed over shards.
    pub(crate) fn counts(&self) -> Vec<(TaskType, Counts)> {
        let mut by_type: Vec<(TaskType, Counts)> = Vec::new();
        for shard in self.shards.iter() {
            let state = shard.0.lock();
            for (index, row) in state.rows.iter().enumerate() {
                if row.spawned == 0 && row.claimed == 0 {
                    // No task ever counted here (rows are made up to the
                    // one a spawn or claim needs): nothing to report.
                    continue;
                }
                let started = shard.0.started[index].load(Ordering::Acquire);
                let finished = row.completed + row.failed + row.panicked + row.cancelled;
                let live = row.spawned - finished;
                // Tasks counted as started here were all spawned before the
                // lock was taken, so `running` never exceeds `live`.
                let running = started.saturating_sub(row.finished_started).min(live);
                let counts = Counts {
                    spawned: row.spawned,
                    pending: live - running,
                    running,
                    completed: row.completed,
                    failed: row.failed,
                    panicked: row.panicked,
                    cancelled: row.cancelled,
                    claimed: row.claimed,
                };
                match by_type.iter_mut().find(|(ty, _)| *ty == row.ty) {
                    Some((_, total)) => *total += counts,
                    None => by_type.push((row.ty, counts)),
                }
            }
        }
        by_type
    }
}

impl Shard {
    /// Locks the shard with every task spawned so far booked.
    fn lock(&self) -> MutexGuard<'_, ShardState> {
        let mut state = self.lock_unbooked();
        // What booking lets go of is dropped under the lock here: readers
        // and claims take it, not the loops of spawns and ends.
        Bin::with(|bin| {
            self.book(&mut state, bin);
        });
        state
    }

    /// Locks the shard as it is: tasks still in the inbox are not in the
    /// live list or the counts yet.
    fn lock_unbooked(&self) -> MutexGuard<'_, ShardState> {
        // Every critical section leaves the shard consistent before it can
        // panic (it only panics on allocation failure), so poison is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Books the inbox if the shard's lock is free; never waits for it.
    #[cold]
    #[inline(never)]
    fn try_book(&self) {
        let mut state = match self.state.try_lock() {
            Ok(state) => state,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        Bin::with(|bin| {
            let booked = self.book(&mut state, bin);
            // Spawns drive a compaction under way too, a slot per task
            // booked, so that spawning with no task ending cannot stall it.
            if state.live.compacting() {
                let retired = self.compact_step(&mut state, booked.max(live::STEP));
                bin.retired.push(retired);
            }
            drop(state);
        });
    }

    /// Moves the inbox's records into the live list and counts them, then
    /// books the queued ends; returns how many spawns were booked.
    fn book(&self, state: &mut ShardState, bin: &mut Bin) -> usize {
        // The ends are taken first: each task's spawn was queued before its
        // end, so every task ending here is booked by the spawns below if
        // it was not before.
        let mut ends = std::mem::take(&mut state.ending);
        std::mem::swap(&mut *lock_ends(&self.ends.0), &mut ends);
        let ShardState { live, rows, .. } = state;
        let booked = live.book(&self.inbox.0, |record| {
            ensure_row(rows, self, record.type_row).spawned += 1;
        });
        if !ends.is_empty() {
            let walk = live::STEP * ends.len();
            for entry in ends.drain(..) {
                self.end(state, entry, bin);
            }
            let retired = self.compact_step(state, walk);
            if !retired.is_empty() {
                bin.retired.push(retired);
            }
        }
        ends.shrink_to(ENDS_AT.next_power_of_two());
        state.ending = ends;
        booked
    }

    /// Books one end: removes the task from the live list, counts it, and
    /// keeps its record in history.
    fn end(&self, state: &mut ShardState, entry: Finished, bin: &mut Bin) {
        let Finished {
            mut record,
            finished_at,
            failure,
        } = entry;
        let removed = state.live.remove(&record);
        debug_assert!(removed.is_some(), "an ended task was booked");
        drop(removed);
        let lived = finished_at.saturating_sub(record.spawned_at);
        let row = &mut state.rows[usize::from(record.type_row)];
        match record.state() {
            TaskState::Completed => row.completed += 1,
            TaskState::Failed => row.failed += 1,
            TaskState::Panicked => row.panicked += 1,
            _ => row.cancelled += 1,
        }
        if record.first_poll_at.load(Ordering::Relaxed) != 0 {
            row.finished_started += 1;
        }
        row.durations.add(DurationHistogram::bucket(lived), lived);
        // The abort handle keeps tokio's task allocation alive, and an ended
        // task needs it no more.
        bin.aborts
            .extend(Arc::get_mut(&mut record).and_then(Record::take_abort));
        let entry = Finished {
            record,
            finished_at,
            failure,
        };
        let cutoff = finished_at.saturating_sub(self.budget.ttl);
        self.remember(state, entry, cutoff, &mut bin.records);
    }

    /// Pushes into history, evicting by age, then by the global count;
    /// evicted records go back to the pool, or into `unpooled` when it has
    /// no room.
    ///
    /// Only this shard's entries are evicted, and never the one just pushed:
    /// a shard with no older entry (a thread ending its first tasks while
    /// the others' history is full) keeps it, above the count by one until
    /// a shard with older entries evicts two for one. So the newest ending
    /// is always kept, and history holds at most one entry per shard more
    /// than its capacity.
    fn remember(
        &self,
        state: &mut ShardState,
        entry: Finished,
        cutoff: u64,
        unpooled: &mut Vec<Arc<Record>>,
    ) {
        let budget = &*self.budget;
        if budget.capacity == 0 {
            unpooled.extend(state.recycle(entry.record));
            return;
        }
        let mut evicted = state.evict_older(cutoff);
        // Relaxed: the count only bounds memory; it orders nothing else.
        if evicted == 0 && budget.held.load(Ordering::Relaxed) == budget.capacity {
            // Full, the steady state under churn: replace this shard's oldest
            // entry. The total is unchanged, so the counter shared by all
            // shards is only read, not written.
            if let Some(oldest) = state.history.evict_oldest() {
                state.history.push(entry);
                unpooled.extend(state.recycle(oldest.record));
                return;
            }
        }
        state.history.push(entry);
        let mut held = budget.held.fetch_add(1, Ordering::Relaxed) + 1 - evicted;
        while held > budget.capacity && state.history.len() > 1 {
            let Some(oldest) = state.history.evict_oldest() else {
                break;
            };
            evicted += 1;
            held -= 1;
            unpooled.extend(state.recycle(oldest.record));
        }
        if evicted > 0 {
            budget.held.fetch_sub(evicted, Ordering::Relaxed);
        }
    }

    /// Appends the live records `keep` selects to `out`, holding the lock
    /// for [`SCAN_CHUNK`] slots at a time: a snapshot of a large shard holds
    /// up the threads spawning and ending tasks here for microseconds at a
    /// time, not for the whole shard. A record live throughout is taken once.
    fn live_into(&self, keep: &mut impl FnMut(&Record) -> bool, out: &mut Vec<Arc<Record>>) {
        let start = out.len();
        let mut chunk = Vec::new();
        let mut below = None;
        let mut moves = None;
        let mut moved = false;
        loop {
            let next = {
                let state = self.lock();
                let now = state.live.moves();
                moved |= moves.is_some_and(|before| before != now);
                moves = Some(now);
                state
                    .live
                    .scan(below, SCAN_CHUNK, |record| chunk.push(Arc::clone(record)))
            };
            // Filtered with the lock released: `keep` reads the records,
            // likely cache misses, and a gap between two holds lets a thread
            // waiting for the lock in.
            out.extend(chunk.drain(..).filter(|record| keep(record)));
            match next {
                Some(next) => below = Some(next),
                None => break,
            }
        }
        if moved {
            // A compaction moved a record from above the walk to below it:
            // it was taken twice.
            let mut taken = out.split_off(start);
            taken.sort_unstable_by_key(|record| record.id);
            taken.dedup_by_key(|record| record.id);
            out.append(&mut taken);
        }
    }

    /// A step of the live list's compaction, if it is under way or the list
    /// is mostly empty (see [`live`]). What it returns is to be dropped after
    /// unlocking.
    fn compact_step(&self, state: &mut ShardState, walk: usize) -> live::Retired {
        let ShardState { live, rows, .. } = state;
        live.compact_step(
            &self.inbox.0,
            |record| {
                ensure_row(rows, self, record.type_row).spawned += 1;
            },
            walk,
        )
    }

    /// The row of `ty` in this shard, without the shard's lock unless the
    /// type is new here.
    fn type_row(&self, ty: TaskType) -> u16 {
        for (index, slot) in self.types.iter().enumerate() {
            match slot.get() {
                Some(known) if *known == ty => return index as u16,
                Some(_) => {}
                None => return self.add_type(ty),
            }
        }
        (MAX_TYPES - 1) as u16
    }

    #[cold]
    fn add_type(&self, ty: TaskType) -> u16 {
        // Types are added under the shard's lock, so two spawns of a new
        // type agree on its row.
        let _state = self.lock_unbooked();
        let last = MAX_TYPES - 1;
        for (index, slot) in self.types.iter().enumerate() {
            match slot.get() {
                Some(known) if *known == ty => return index as u16,
                Some(_) => {}
                None if index < last => {
                    let _ = slot.set(ty);
                    return index as u16;
                }
                None => {
                    tracing::warn!(
                        "more than {last} task types in one tracker; further types are counted as `{OVERFLOW}`"
                    );
                    let _ = slot.set(OVERFLOW);
                }
            }
        }
        last as u16
    }
}

/// What booking lets go of, to drop once the shard's lock is released, so
/// that spawners on the shard never wait on the allocator: abort handles
/// (dropping one may free tokio's task), records the pool has no room for,
/// and the old slab of a finished compaction.
#[derive(Default)]
struct Bin {
    aborts: Vec<tokio::task::AbortHandle>,
    records: Vec<Arc<Record>>,
    retired: Vec<live::Retired>,
}

impl Bin {
    /// Runs `f` with this thread's bin (which keeps its capacity, so that
    /// booking allocates nothing in steady state), and empties it after `f`,
    /// which releases the lock unless its caller still holds it.
    fn with(f: impl FnOnce(&mut Bin)) {
        thread_local! {
            static BIN: std::cell::RefCell<Bin> = std::cell::RefCell::default();
        }
        let mut f = Some(f);
        let _ = BIN.try_with(|bin| {
            if let Ok(mut bin) = bin.try_borrow_mut() {
                if let Some(f) = f.take() {
                    f(&mut bin);
                }
                bin.aborts.clear();
                bin.records.clear();
                bin.retired.clear();
            }
        });
        // During thread teardown, or re-entered from a drop above.
        if let Some(f) = f {
            f(&mut Bin::default());
        }
    }
}

/// Locks a shard's queue of ends; it is consistent at every point, so
/// poison is ignored.
fn lock_ends(ends: &Mutex<Vec<Finished>>) -> MutexGuard<'_, Vec<Finished>> {
    ends.lock().unwrap_or_else(|p| p.into_inner())
}

/// The counters of row `index` in `rows`, created with the rows before it.
fn ensure_row<'a>(rows: &'a mut Vec<Row>, shard: &Shard, index: u16) -> &'a mut Row {
    let index = usize::from(index);
    while rows.len() <= index {
        let ty = shard.types[rows.len()].get().copied();
        rows.push(Row::new(ty.unwrap_or(OVERFLOW)));
    }
    &mut rows[index]
}

impl ShardState {
    /// Moves up to a batch of pooled records into a spawning thread's stash.
    fn lend(&mut self, stash: &mut Vec<Arc<Record>>) {
        let from = self.pool.len().saturating_sub(pool::BATCH);
        stash.extend(self.pool.drain(from..));
    }

    /// Pools a record no longer in use if the pool has room; otherwise gives
    /// it back to be dropped. The record is not touched here (it is likely
    /// cold): whether it is still shared is checked when it is reused.
    fn recycle(&mut self, record: Arc<Record>) -> Option<Arc<Record>> {
        if self.pool.len() < POOL_CAP {
            self.pool.push(record);
            None
        } else {
            Some(record)
        }
    }

    /// Drops history entries that finished before `cutoff`, oldest first;
    /// returns how many. Their records go back to the pool.
    #[inline]
    fn evict_older(&mut self, cutoff: u64) -> usize {
        if self
            .history
            .oldest()
            .is_none_or(|entry| entry.finished_at >= cutoff)
        {
            // Nothing expired: the common case under churn, kept inline.
            return 0;
        }
        self.evict_expired(cutoff)
    }

    #[cold]
    #[inline(never)]
    fn evict_expired(&mut self, cutoff: u64) -> usize {
        let mut evicted = 0;
        while self
            .history
            .oldest()
            .is_some_and(|entry| entry.finished_at < cutoff)
        {
            if let Some(entry) = self.history.evict_oldest() {
                // Cold here (unlike an eviction by capacity, the hot path):
                // a pooled record lets go of its progress log now, not when
                // it is reused, so that expired tasks free their bytes.
                drop(entry.record.take_shared_progress());
                drop(self.recycle(entry.record));
                evicted += 1;
            }
        }
        evicted
    }
}

/// The registry's tests run under Miri too (small counts there), which
/// checks the current-task pointer across worker threads:
///
/// ```text
/// MIRIFLAGS=-Zmiri-disable-isolation cargo +nightly miri test -p tracked-runtime --lib registry
/// ```
#[cfg(test)]
mod tests {
    use super::{MAX_TYPES, OVERFLOW};
    use crate::{pool, Query, TaskState, TaskType, Tracker};
    use tokio_util::sync::CancellationToken;

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    }

    fn two_workers() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("a runtime")
    }

    /// How many records of the registry's pools still hold a progress log.
    fn pooled_logs(tracker: &Tracker) -> usize {
        let shards = tracker.inner.registry.shards.iter();
        let pooled = shards.map(|shard| {
            let state = shard.0.lock();
            state.pool.iter().filter(|r| r.progress().is_some()).count()
        });
        pooled.sum()
    }

    /// A record evicted from history goes back to the pool, to be reused:
    /// expired or cleaned up, it does not keep its task's progress log
    /// (up to 32 KiB) until then.
    #[test]
    fn pooled_records_let_go_of_progress_logs_when_expired_or_cleaned_up() {
        let report = |tasks: usize, tracker: &Tracker| {
            let runtime = current_thread();
            runtime.block_on(async {
                for _ in 0..tasks {
                    let task = tracker.spawn("report", TaskType::MAINTENANCE, async {
                        crate::progress(50, "x".repeat(1000));
                    });
                    task.await.expect("no task fails");
                }
            });
        };
        // Evicted by capacity (the hot path): kept until reused or cleaned up.
        let tracker = Tracker::builder().shards(1).history_capacity(10).build();
        report(60, &tracker);
        assert!(pooled_logs(&tracker) > 0);
        tracker.cleanup(std::time::Duration::ZERO);
        assert_eq!(pooled_logs(&tracker), 0);
        assert!(tracker.finished(&Query::new()).is_empty());

        // Expired: let go of as they are evicted.
        let tracker = Tracker::builder()
            .shards(1)
            .history_ttl(std::time::Duration::from_millis(1))
            .build();
        report(20, &tracker);
        std::thread::sleep(std::time::Duration::from_millis(20));
        report(1, &tracker);
        assert_eq!(pooled_logs(&tracker), 0);
    }

    /// A burst of parked tasks ends while other threads spawn and end
    /// tasks and a reader checks the counts: the slab, mostly empty after
    /// the burst, is compacted under that traffic and every count stays
    /// exact.
    #[test]
    #[cfg_attr(
        miri,
        ignore = "needs a slab past COMPACT_MIN; the slab's own tests run under Miri"
    )]
    fn a_burst_ends_and_compacts_under_concurrent_spawns() {
        let burst = 3 * crate::live::COMPACT_MIN;
        let tracker = Tracker::builder().shards(1).build();
        let runtime = two_workers();
        // A token, not a `Notify`: a task counted running may not have
        // reached its wait yet, and `notify_waiters` would miss it.
        let gate = CancellationToken::new();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let churn = scope.spawn(|| {
                let mut spawned = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    runtime.block_on(async {
                        let handles: Vec<_> = (0..100)
                            .map(|_| tracker.spawn("churn", TaskType::NETWORK, async {}))
                            .collect();
                        for handle in handles {
                            handle.await.expect("no task fails");
                        }
                    });
                    spawned += 100;
                }
                spawned
            });
            scope.spawn(|| {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let stats = tracker.stats().total;
                    assert_eq!(stats.spawned, stats.live() + stats.finished());
                    let tasks = tracker.tasks(&Query::new().limit(64));
                    assert!(tasks.iter().all(|task| !task.state.is_finished()));
                }
            });
            runtime.block_on(async {
                let handles: Vec<_> = (0..burst)
                    .map(|_| {
                        let gate = gate.clone();
                        tracker.spawn("burst", TaskType::DATABASE, async move {
                            gate.cancelled().await;
                        })
                    })
                    .collect();
                // Every burst task is parked before the gate opens.
                while tracker.stats().by_type[&TaskType::DATABASE].running < burst as u64 {
                    tokio::task::yield_now().await;
                }
                gate.cancel();
                for handle in handles {
                    handle.await.expect("no task fails");
                }
            });
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            let churned = churn.join().expect("the churn thread");
            let stats = tracker.stats().total;
            assert_eq!(stats.spawned, (burst + churned) as u64);
            assert_eq!(stats.completed, stats.spawned);
        });
        assert!(tracker.tasks(&Query::new()).is_empty());
        let slots = tracker.inner.registry.live_slots();
        assert!(
            slots < crate::live::COMPACT_MIN,
            "compacted after the burst: {slots} slots"
        );
    }

    /// Snapshots are taken a few slots per lock hold while bursts of tasks
    /// end and compact the slab, moving long-lived "anchor" tasks to other
    /// slots: every snapshot taken while the anchors were all live lists
    /// each of them exactly once.
    #[test]
    #[cfg_attr(
        miri,
        ignore = "needs a slab past COMPACT_MIN; the slab's own tests run under Miri"
    )]
    fn a_snapshot_across_a_compaction_lists_every_live_task_once() {
        use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
        const ANCHORS: usize = 64;
        let burst = 3 * crate::live::COMPACT_MIN;
        let tracker = Tracker::builder().shards(1).build();
        let runtime = two_workers();
        // Odd while every anchor of the current round is live.
        let phase = AtomicU64::new(0);
        let (checked, done) = (AtomicU64::new(0), std::sync::atomic::AtomicBool::new(false));
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !done.load(SeqCst) {
                    let before = phase.load(SeqCst);
                    let anchors = tracker.tasks(&Query::new().name_prefix("anchor"));
                    if before % 2 == 1 && phase.load(SeqCst) == before {
                        let mut ids: Vec<_> = anchors.iter().map(|t| t.id).collect();
                        ids.sort_unstable();
                        ids.dedup();
                        assert_eq!((anchors.len(), ids.len()), (ANCHORS, ANCHORS));
                        checked.fetch_add(1, SeqCst);
                    }
                }
            });
            for _ in 0..8 {
                runtime.block_on(async {
                    // Tokens, not `Notify`s: see the test above.
                    let (burst_gate, anchor_gate) =
                        (CancellationToken::new(), CancellationToken::new());
                    let park = |name, gate: &CancellationToken| {
                        let gate = gate.clone();
                        tracker.spawn(name, TaskType::DATABASE, async move {
                            gate.cancelled().await;
                        })
                    };
                    let bursts: Vec<_> = (0..burst).map(|_| park("burst", &burst_gate)).collect();
                    // Spawned after the burst: slots past it, moved down when
                    // the burst ends and the slab is compacted.
                    let anchors: Vec<_> =
                        (0..ANCHORS).map(|_| park("anchor", &anchor_gate)).collect();
                    let parked = (burst + ANCHORS) as u64;
                    while tracker.stats().by_type[&TaskType::DATABASE].running < parked {
                        tokio::task::yield_now().await;
                    }
                    phase.fetch_add(1, SeqCst);
                    burst_gate.cancel();
                    for handle in bursts {
                        handle.await.expect("no task fails");
                    }
                    phase.fetch_add(1, SeqCst);
                    anchor_gate.cancel();
                    for handle in anchors {
                        handle.await.expect("no task fails");
                    }
                });
            }
            done.store(true, SeqCst);
        });
        assert!(checked.load(SeqCst) > 0, "no snapshot was checked");
        let stats = tracker.stats().total;
        assert_eq!((stats.live(), stats.completed), (0, stats.spawned));
    }

    /// A burst of spawns with no end and no reader in between is booked as
    /// it goes, by the spawns themselves, not left to the next end.
    #[test]
    fn a_burst_of_spawns_books_itself() {
        let tracker = Tracker::builder().shards(1).build();
        let runtime = current_thread();
        // Spawned from outside the runtime's thread: nothing runs or ends
        // until `block_on` below.
        let _guard = runtime.enter();
        let handles: Vec<_> = (0..3 * super::BOOK_AT)
            .map(|_| tracker.spawn("burst", TaskType::GENERAL, async {}))
            .collect();
        let queued = tracker.inner.registry.queued();
        assert!(
            queued < super::BOOK_AT,
            "{queued} tasks left for the next lock"
        );
        runtime.block_on(async {
            for handle in handles {
                handle.await.expect("no task fails");
            }
        });
        assert_eq!(tracker.stats().total.completed, 3 * super::BOOK_AT as u64);
    }

    /// Ends are queued, and whoever takes the shard's lock next books them:
    /// a reader sees every task that ended before it asked, counted once,
    /// in history and not among the live tasks.
    #[test]
    fn a_reader_books_the_ends_queued_before_it() {
        let tracker = Tracker::builder().shards(1).build();
        let registry = &tracker.inner.registry;
        current_thread().block_on(async {
            let ended = super::ENDS_AT / 2;
            for _ in 0..ended {
                tracker
                    .spawn("short", TaskType::GENERAL, async {})
                    .await
                    .expect("no task fails");
            }
            let _parked = tracker.spawn("parked", TaskType::GENERAL, std::future::pending::<()>());
            assert_eq!(registry.ending(), ended, "too few to book themselves");
            let stats = tracker.stats().total;
            assert_eq!(registry.ending(), 0, "booked by the reader");
            assert_eq!((stats.completed, stats.pending), (ended as u64, 1));
            let live = tracker.tasks(&Query::new());
            assert_eq!(live.len(), 1);
            assert_eq!(&*live[0].name, "parked");
            assert_eq!(tracker.finished(&Query::new()).len(), ended);
        });
    }

    /// A task whose end races a listing (its state set, its end not booked
    /// yet) is not listed as live by any reader: counts by owner and name,
    /// groups, the watchdog and the catalogue go through the same walk.
    #[test]
    fn a_task_ending_during_a_walk_is_not_listed_live() {
        let tracker = Tracker::builder().shards(1).build();
        let registry = &tracker.inner.registry;
        current_thread().block_on(async {
            let parked = tracker
                .task_builder("parked", TaskType::GENERAL)
                .owner("alice")
                .spawn(std::future::pending::<()>());
            tokio::task::yield_now().await;
            let records = registry.live(|_| true);
            assert_eq!(records.len(), 1);
            // What an end does before it is queued, between a reader's
            // booking and its walk.
            records[0].set_state(TaskState::Completed);
            assert!(registry.live(|_| true).is_empty());
            assert!(tracker.live_by_owner().is_empty());
            records[0].set_state(TaskState::Running);
            parked.abort();
            assert!(parked.await.expect_err("aborted").is_cancelled());
        });
        assert_eq!(tracker.stats().total.cancelled, 1);
    }

    /// Ends that no reader books are booked by the thread ending them once
    /// enough are queued, so a service nobody queries keeps no more than a
    /// few ended tasks (and their tokio allocations) per shard.
    #[test]
    fn ends_nobody_reads_are_booked_by_their_thread() {
        let tracker = Tracker::builder().shards(1).history_capacity(0).build();
        let registry = &tracker.inner.registry;
        current_thread().block_on(async {
            for _ in 0..10 * super::ENDS_AT {
                tracker
                    .spawn("short", TaskType::GENERAL, async {})
                    .await
                    .expect("no task fails");
            }
        });
        let queued = registry.ending();
        assert!(queued < super::ENDS_AT, "{queued} ends left queued");
        assert_eq!(tracker.stats().total.completed, 10 * super::ENDS_AT as u64);
    }

    #[test]
    fn tasks_are_counted_whether_a_reader_or_their_end_books_them() {
        let tracker = Tracker::new();
        current_thread().block_on(async {
            // Still in the inbox: a reader books them, as pending.
            let waiting: Vec<_> = (0..3)
                .map(|_| tracker.spawn("read", TaskType::GENERAL, async {}))
                .collect();
            let stats = tracker.stats().total;
            assert_eq!((stats.spawned, stats.pending), (3, 3));
            assert_eq!(tracker.tasks(&Query::new()).len(), 3);
            // Spawned and ended with no reader between: their ends book them.
            let unread: Vec<_> = (0..3)
                .map(|_| tracker.spawn("end", TaskType::GENERAL, async {}))
                .collect();
            for handle in waiting.into_iter().chain(unread) {
                handle.await.expect("no task fails");
            }
        });
        let stats = tracker.stats().total;
        assert_eq!((stats.spawned, stats.completed, stats.live()), (6, 6, 0));
        assert!(tracker.tasks(&Query::new()).is_empty());
    }

    /// A `CurrentTask` kept past its task's end still holds the record: the
    /// pool must not hand it to a new task.
    #[test]
    fn a_record_still_held_is_not_reused() {
        let tracker = Tracker::builder().history_capacity(0).build();
        current_thread().block_on(async {
            let held = tracker
                .spawn("held", TaskType::GENERAL, async { crate::current() })
                .await
                .expect("no task fails")
                .expect("inside a tracked task");
            for _ in 0..3 * pool::BATCH {
                let other = tracker.spawn("other", TaskType::NETWORK, async {});
                other.await.expect("no task fails");
            }
            let snapshot = held.snapshot();
            assert_eq!((snapshot.id, &*snapshot.name), (held.id(), "held"));
            assert_eq!(snapshot.state, TaskState::Completed);
        });
    }

    #[test]
    fn types_past_the_limit_are_counted_as_other() {
        let tracker = Tracker::builder().shards(1).build();
        let types = MAX_TYPES + 10;
        current_thread().block_on(async {
            for i in 0..types {
                let ty = TaskType::from_name(&format!("type-{i}"));
                tracker
                    .spawn("t", ty, async {})
                    .await
                    .expect("no task fails");
            }
        });
        let stats = tracker.stats();
        assert_eq!(stats.total.completed, types as u64);
        // One row per type up to the limit; the last row takes the rest.
        assert_eq!(stats.by_type.len(), MAX_TYPES);
        assert_eq!(stats.by_type[&OVERFLOW].completed, 11);
    }

    /// Tasks spawned and ended on several threads while another thread
    /// reads the counts: the accounting stays exact at every read and at
    /// the end.
    #[test]
    fn ends_from_many_threads_are_each_counted_once() {
        let (threads, per_thread) = if cfg!(miri) { (3, 8) } else { (4, 5000) };
        let tracker = Tracker::new();
        let runtime = two_workers();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    runtime.block_on(async {
                        let handles: Vec<_> = (0..per_thread)
                            .map(|i| {
                                tracker.spawn("end", TaskType::GENERAL, async move {
                                    if i % 3 == 0 {
                                        tokio::task::yield_now().await;
                                    }
                                })
                            })
                            .collect();
                        for handle in handles {
                            handle.await.expect("no task fails");
                        }
                    });
                });
            }
            // A reader while tasks end.
            scope.spawn(|| {
                for _ in 0..per_thread / 4 {
                    let stats = tracker.stats().total;
                    assert_eq!(
                        stats.spawned,
                        stats.pending + stats.running + stats.completed + stats.cancelled
                    );
                    drop(tracker.tasks(&Query::new()));
                    std::thread::yield_now();
                }
            });
        });
        let stats = tracker.stats().total;
        let total = (threads * per_thread) as u64;
        assert_eq!(stats.spawned, total);
        assert_eq!(stats.completed, total, "every end counted, once");
        assert_eq!(stats.pending + stats.running, 0);
        assert!(tracker.tasks(&Query::new()).is_empty());
    }

    /// Runs `names` as tasks of `tracker` one after the other on a new
    /// thread that spawns into shard `shard`.
    fn end_in_shard(tracker: &Tracker, shard: usize, names: &[&'static str]) {
        std::thread::scope(|scope| {
            scope.spawn(|| {
                super::SHARD_HINT.with(|hint| hint.set(shard));
                current_thread().block_on(async {
                    for name in names {
                        tracker
                            .spawn(*name, TaskType::GENERAL, async {})
                            .await
                            .expect("completes");
                    }
                });
            });
        });
    }

    /// History is full of one shard's entries when a task ends in a shard
    /// with none: that ending is kept (it was evicted at once, so the
    /// newest failure could be missing from history), and the next end in
    /// the full shard brings the count back to the capacity.
    #[test]
    fn the_newest_ending_is_kept_when_its_shard_has_no_history() {
        let tracker = Tracker::builder().shards(2).history_capacity(10).build();
        let names = |tracker: &Tracker| -> Vec<String> {
            let finished = tracker.finished(&Query::new());
            finished.into_iter().map(|t| t.name.into_owned()).collect()
        };
        end_in_shard(&tracker, 0, &["old"; 20]);
        assert_eq!(names(&tracker), ["old"; 10]);
        end_in_shard(&tracker, 1, &["newest"]);
        let held = names(&tracker);
        assert_eq!(held.len(), 11, "one above capacity: {held:?}");
        assert!(held.iter().any(|name| name == "newest"), "{held:?}");
        end_in_shard(&tracker, 0, &["later"]);
        let held = names(&tracker);
        assert_eq!(held.len(), 10, "back to capacity: {held:?}");
        assert!(held.iter().any(|name| name == "newest"), "{held:?}");
        assert!(held.iter().any(|name| name == "later"), "{held:?}");
    }
}
