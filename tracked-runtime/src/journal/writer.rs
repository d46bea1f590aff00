//! The one task that writes the journal: drains the tracker's bounded event
//! queue into a bounded buffer and writes it in batches, one transaction each.
//!
//! While the buffer is full the writer stops draining the queue, so the
//! queue fills too and the tracker counts what it cannot enqueue; those
//! counts go into the next batch's row.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::batch::{self, Entry};
use super::schema;
use super::store::{Store, WriteError};
use super::JournalError;
use crate::events::{EventQueue, Queued};
use crate::{Event, EventKind, TaskId, TaskState, Tracker};

/// Drops are logged at most this often, each warning with the count since
/// the last (a journal that falls behind drops on every batch).
const DROP_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Refused events named in a warning each per [`DROP_WARNING_EVERY`], at
/// most: a schema that refuses every row would otherwise log a line per
/// event. The others are counted with the dropped events.
const REFUSALS_NAMED: u32 = 10;

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// What the writer and the handles share: counters and the last error.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) written: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) pending: AtomicUsize,
    /// Of `pending`, the events of the batch being written.
    pub(crate) in_flight: AtomicUsize,
    pub(crate) connected: AtomicBool,
    pub(crate) stopped: AtomicBool,
    pub(crate) last_error: Mutex<Option<JournalError>>,
    /// Cancelled once the writer has stopped, after its last write: a
    /// PostgreSQL connection's task that was cancelled waits for it.
    pub(crate) done: tokio_util::sync::CancellationToken,
}

/// A request from a handle.
pub(crate) enum Command {
    /// Write everything sent before this, then answer.
    Flush(oneshot::Sender<Result<(), JournalError>>),
}

pub(crate) struct Writer {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) instance: Arc<str>,
    pub(crate) tracker: Tracker,
    pub(crate) events: EventQueue,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) batch_size: usize,
    pub(crate) buffer: usize,
    pub(crate) interval: Duration,
    /// Written nothing for this long, the writer records its instance as
    /// seen alive (see [`beat`](Self::beat)).
    pub(crate) beat: Duration,
    /// Cancelled by `Journal::shutdown` and when the last handle is dropped.
    pub(crate) stop: tokio_util::sync::CancellationToken,
}

struct State {
    pending: VecDeque<Entry>,
    /// Tasks whose spawn or start was taken and whose end was not: the rows
    /// that say `running` (or `pending`) until an end is taken.
    open: HashSet<TaskId>,
    /// Events were dropped since open tasks were last checked: an end among
    /// them would leave a row `running` for good (see `reconcile`).
    reconcile: bool,
    /// Ends read from history by `reconcile`, for the next batch.
    reconciled: Vec<Entry>,
    /// Events of the batch being written, out of `pending` meanwhile.
    in_flight: usize,
    /// Dropped since the last batch written; goes into that batch's row.
    unreported: u64,
    /// When the next write may be tried after a failure.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Set by a permanent error (a foreign schema): nothing more is written.
    broken: bool,
    /// When the database last recorded this instance as seen alive.
    seen_at: Option<Instant>,
    /// Drops written in batch rows but not logged yet, and when drops were
    /// last logged.
    unlogged: u64,
    logged_at: Option<Instant>,
    /// Refused events named since `refusals_since` (see [`REFUSALS_NAMED`]).
    refusals_named: u32,
    refusals_since: Option<Instant>,
}

impl State {
    fn new() -> State {
        State {
            pending: VecDeque::new(),
            open: HashSet::new(),
            reconcile: false,
            reconciled: Vec::new(),
            in_flight: 0,
            unreported: 0,
            retry_at: None,
            backoff: MIN_BACKOFF,
            broken: false,
            seen_at: None,
            unlogged: 0,
            logged_at: None,
            refusals_named: 0,
            refusals_since: None,
        }
    }
}

impl Writer {
    /// Runs until every handle is dropped, the task is cancelled or the
    /// tracker's shutdown has finished, then writes what it holds (if the
    /// database lets it) and returns.
    pub(crate) async fn run(mut self) {
        let mut state = State::new();
        // Shutdowns leave the writer alone, so that it journals how every
        // tier's tasks ended; it stops once the last tier is done.
        let shut_down = self.tracker.shutdown_finished();
        tokio::pin!(shut_down);
        let cancelled = crate::current().map(|t| t.cancellation_token());
        let cancelled = async {
            match cancelled {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(cancelled);
        // The first write one interval in, not at once: a write at start
        // would hold just the writer's own events. Ticks come at least
        // every beat, writing only when an interval has passed.
        let period = self.interval.min(self.beat);
        let mut write_at = Instant::now() + self.interval;
        let mut tick = tokio::time::interval_at(Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = &mut cancelled => {
                    // A cancel (of the Database type, of this task) ends the
                    // journal for the rest of the run: say so, unless the
                    // service is stopping anyway.
                    if !self.tracker.shutdown_requested() {
                        tracing::warn!(
                            "task journal: its writer was cancelled outside a shutdown; \
                             nothing more will be journaled"
                        );
                    }
                    break;
                }
                () = self.stop.cancelled() => break,
                () = &mut shut_down => break,
                command = self.commands.recv() => match command {
                    Some(Command::Flush(reply)) => {
                        let result = self.write_queued(&mut state).await;
                        let _ = reply.send(result);
                    }
                    None => break,
                },
                received = self.events.recv(), if state.pending.len() < self.buffer => match received {
                    Some(queued) => {
                        self.take(&mut state, queued);
                        if state.pending.len() >= self.batch_size {
                            let _ = self.write_all(&mut state, false).await;
                        }
                    }
                    None => break,
                },
                at = tick.tick() => {
                    let ready = if at >= write_at {
                        write_at = at + self.interval;
                        self.write_all(&mut state, false).await.is_ok()
                    } else {
                        !state.broken && state.retry_at.is_none_or(|retry| at >= retry)
                    };
                    if ready {
                        self.beat(&mut state).await;
                    }
                }
            }
        }
        // The writer's end, and its connection's, which ends when the store
        // is closed below: not through the queue, which holds none of their
        // bytes.
        let connection = self.store.connection_task().await;
        for id in [crate::task_id(), connection].into_iter().flatten() {
            if let Some(event) = end_of(&self.tracker, id) {
                self.take(&mut state, Queued { event, weight: 0 });
            }
        }
        if let Err(error) = self.write_queued(&mut state).await {
            // No retry follows: unlike the warning when the database went
            // away, this one says the events are lost.
            tracing::warn!(
                unwritten = state.pending.len() + self.events.len(),
                %error,
                "task journal: stopped without writing the events it held; they are lost"
            );
        }
        self.log_drops(&mut state, true);
        self.store.close().await;
        self.shared.stopped.store(true, Ordering::Release);
        self.shared.done.cancel();
    }

    /// Takes an event into the buffer, holding the bytes it was weighed at
    /// when queued until it is written or dropped.
    fn take(&self, state: &mut State, queued: Queued) {
        let Queued { event, weight } = queued;
        // One thread's events reach the queue in order, and a task's spawn
        // is sent before it can run: no end is taken before its spawn.
        match event.kind {
            EventKind::Spawned { .. } | EventKind::Started | EventKind::Progress { .. } => {
                state.open.insert(event.id);
            }
            EventKind::Finished { .. } => {
                state.open.remove(&event.id);
            }
            EventKind::CancelRequested | EventKind::Warning(_) => {}
        }
        let at = schema::micros_of(&self.tracker, event.at);
        state.pending.push_back(Entry {
            at,
            event,
            reconciled: false,
            held: weight,
        });
        self.count_pending(state);
    }

    /// After drops, finds the open tasks that have ended (their end was
    /// among the dropped events) and takes their ends from the tracker's
    /// history, so their rows do not stay `running`. Run once the queue is
    /// empty, so that no end still queued is read twice; a task gone from
    /// history too keeps its row as it is, and is counted in a warning.
    fn reconcile(&self, state: &mut State) {
        state.reconcile = false;
        if state.open.is_empty() {
            return;
        }
        let inner = &self.tracker.inner;
        let open = &state.open;
        let live: HashSet<TaskId> = inner
            .registry
            .live(|record| open.contains(&record.id))
            .iter()
            .map(|record| record.id)
            .collect();
        let ended: HashSet<TaskId> = open.difference(&live).copied().collect();
        if ended.is_empty() {
            return;
        }
        let found = inner
            .registry
            .history(|record| ended.contains(&record.id), &inner.clock);
        for task in found {
            state.open.remove(&task.id);
            let event = Event {
                at: task.finished_at.unwrap_or_else(std::time::Instant::now),
                id: task.id,
                name: task.name,
                ty: task.ty,
                site: task.site,
                owner: task.owner,
                kind: EventKind::Finished {
                    state: task.state,
                    error: task.error,
                },
            };
            let at = schema::micros_of(&self.tracker, event.at);
            state.reconciled.push(Entry {
                at,
                event,
                reconciled: true,
                held: 0,
            });
        }
        let lost = ended.iter().filter(|id| state.open.remove(id)).count();
        if lost > 0 {
            tracing::warn!(
                lost,
                "task journal: tasks ended while their events were dropped and are gone from \
                 the tracker's history; their rows keep the last state written"
            );
        }
    }

    /// Publishes how many events are not written yet: queued, and in the
    /// batch being written (which a failure puts back).
    fn count_pending(&self, state: &State) {
        self.shared
            .pending
            .store(state.pending.len() + state.in_flight, Ordering::Relaxed);
        self.shared
            .in_flight
            .store(state.in_flight, Ordering::Relaxed);
    }

    /// The events not written, held or queued, and those of the batch
    /// being written.
    fn unwritten(&self) -> (usize, usize) {
        let in_flight = self.shared.in_flight.load(Ordering::Relaxed);
        let held = self
            .shared
            .pending
            .load(Ordering::Relaxed)
            .saturating_sub(in_flight);
        (held + self.events.len(), in_flight)
    }

    /// Moves the queue's drop count into the next batch's.
    fn collect_dropped(&self, state: &mut State) {
        let dropped = self.events.take_dropped();
        if dropped > 0 {
            state.reconcile = true;
            state.unreported += dropped;
            self.shared.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// Takes up to `max` events already sent, as the buffer has room for,
    /// without waiting; returns how many.
    fn drain_ready(&mut self, state: &mut State, max: usize) -> usize {
        let mut taken = 0;
        while taken < max && state.pending.len() < self.buffer {
            let Some(queued) = self.events.try_recv() else {
                break;
            };
            self.take(state, queued);
            taken += 1;
        }
        self.collect_dropped(state);
        taken
    }

    /// Writes every event sent so far: those in the buffer, and those still
    /// in the tracker's queue, which a full buffer leaves there (a buffer's
    /// worth at a time). Events sent meanwhile may be written too, but are
    /// not waited for, so a steady stream cannot keep a flush going.
    async fn write_queued(&mut self, state: &mut State) -> Result<(), JournalError> {
        let mut owed = self.events.len();
        loop {
            owed -= self.drain_ready(state, owed);
            self.write_all(state, true).await?;
            // The queue may hold fewer than `owed` now: the write took some.
            if owed == 0 || self.events.is_empty() {
                return Ok(());
            }
        }
    }

    /// Writes batches until nothing is pending. `now` ignores the backoff
    /// (a flush asked for it); a failure stops at once either way.
    ///
    /// A batch holding a value the database refuses (a text too long for
    /// an index, say) would fail the same way at every retry, with every
    /// later event waiting behind it: it is written by halves instead,
    /// down to the events that fail alone, which are dropped (see
    /// [`refuse`](Self::refuse)). Two writes are skipped, as their
    /// outcome is known (see [`Half`]): the second half of a refused part
    /// whose first half was written holds a refused value, so it is split
    /// unwritten; and when the first half was refused event by event (a
    /// schema refusing every row), the second half is written an event at
    /// a time. Either way an event is dropped only once it failed alone,
    /// and a batch of `n` events costs at most `2n - 1` writes as before;
    /// for `n` a power of two, `n + log2 n` when every event is refused
    /// (was `2n - 1`), and `log2 n + 2` for one refused event at its end
    /// (was `2 log2 n + 1`).
    async fn write_all(&mut self, state: &mut State, now: bool) -> Result<(), JournalError> {
        // Counted even when nothing can be written: a writer that gave up,
        // or waits out its backoff, still says what it drops.
        self.collect_dropped(state);
        if state.broken {
            return Err(self.last_error().unwrap_or(JournalError::Closed));
        }
        if !now && state.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(self.last_error().unwrap_or(JournalError::Closed));
        }
        loop {
            self.collect_dropped(state);
            if state.reconcile && self.events.is_empty() {
                self.reconcile(state);
            }
            if state.pending.is_empty() && state.unreported == 0 && state.reconciled.is_empty() {
                break;
            }
            let n = state.pending.len().min(self.batch_size);
            let mut batch: Vec<Entry> = state.pending.drain(..n).collect();
            // Events received, then the ends read from history, which are
            // not events sent: not in the buffer, the pending count or the
            // written one.
            batch.append(&mut state.reconciled);
            state.in_flight = n;
            self.count_pending(state);
            // The parts left to write, the next one last.
            let mut parts = vec![(batch, Half::Whole)];
            // Events dropped as refused so far, for `Half::Second`.
            let mut refused = 0;
            while let Some((mut part, half)) = parts.pop() {
                match half {
                    Half::Second {
                        first,
                        refused_before,
                    } if part.len() > 1 && refused - refused_before == first => {
                        // Its first half was refused event by event.
                        let ones = part.into_iter().rev().map(|e| (vec![e], Half::Whole));
                        parts.extend(ones);
                        continue;
                    }
                    // Known to be refused: split without writing it.
                    Half::Refused if part.len() > 1 => {}
                    _ => match self.write_part(state, &part).await {
                        Ok(()) => {
                            if let (Half::First, Some((_, next))) = (half, parts.last_mut()) {
                                // Next on the stack is the rest of the
                                // refused part: the refused value is there.
                                *next = Half::Refused;
                            }
                            continue;
                        }
                        Err(error) if error.refused && part.len() > 1 => {}
                        Err(error) if error.refused && part.len() == 1 => {
                            self.refuse(state, &part[0], &error.error);
                            refused += 1;
                            continue;
                        }
                        Err(error) => {
                            // Put what is left back in front, in order, to
                            // retry.
                            let left = parts.into_iter().rev().flat_map(|(p, _)| p);
                            let (received, reconciled): (Vec<Entry>, Vec<Entry>) =
                                part.into_iter().chain(left).partition(|e| !e.reconciled);
                            state.reconciled = reconciled;
                            for entry in received.into_iter().rev() {
                                state.pending.push_front(entry);
                            }
                            state.in_flight = 0;
                            // Events taken during the write were counted
                            // without the batch; it is back in the queue now.
                            self.count_pending(state);
                            self.fail(state, &error.error);
                            return Err(error.error);
                        }
                    },
                }
                // Refused, or known to be, and more than one event: by halves.
                let second = part.split_off(part.len() / 2);
                let first = part.len();
                let refused_before = refused;
                parts.push((
                    second,
                    Half::Second {
                        first,
                        refused_before,
                    },
                ));
                parts.push((part, Half::First));
            }
        }
        Ok(())
    }

    /// Writes `part` of the batch in flight in one transaction, with the
    /// drops not on record yet.
    async fn write_part(&mut self, state: &mut State, part: &[Entry]) -> Result<(), WriteError> {
        let received = part.iter().filter(|e| !e.reconciled).count();
        let reported = state.unreported;
        let rows = batch::fold(&self.instance, part, reported, schema::now());
        let store = self.store.clone();
        self.draining(state, store.write(rows)).await?;
        self.events.release(part.iter().map(|e| e.held).sum());
        state.in_flight -= received;
        state.unlogged += reported;
        self.log_drops(state, false);
        // Drops counted during the write go into the next batch.
        state.unreported -= reported;
        state.retry_at = None;
        state.backoff = MIN_BACKOFF;
        state.seen_at = Some(Instant::now());
        let shared = &self.shared;
        shared.written.fetch_add(received as u64, Ordering::Relaxed);
        shared.batches.fetch_add(1, Ordering::Relaxed);
        self.count_pending(state);
        if !shared.connected.swap(true, Ordering::Relaxed) {
            tracing::info!("task journal: connected");
        }
        Ok(())
    }

    /// Awaits `work` of the database, taking events from the queue
    /// meanwhile, so that a slow database does not make the queue overflow.
    async fn draining<T>(&mut self, state: &mut State, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            let room = state.pending.len() + state.in_flight < self.buffer;
            tokio::select! {
                biased;
                done = &mut work => return done,
                Some(queued) = self.events.recv(), if room => self.take(state, queued),
            }
        }
    }

    /// Records this instance as seen alive when nothing was written for
    /// [`beat`](Self::beat): a peer's retention keeps the running tasks
    /// of an instance seen within its time-to-live, however long they
    /// have been quiet (see `schema::EXPIRED`). Called on a tick unless
    /// the writer gave up or waits out a backoff; a failure backs off as
    /// a write's does.
    async fn beat(&mut self, state: &mut State) {
        if state.seen_at.is_some_and(|at| at.elapsed() < self.beat) {
            return;
        }
        let store = self.store.clone();
        let seen = schema::seen(&self.instance, schema::now());
        match self.draining(state, store.transaction(vec![seen])).await {
            Ok(_) => state.seen_at = Some(Instant::now()),
            Err(error) => self.fail(state, &error),
        }
    }

    /// Drops `entry`, whose rows the database refused on their own: counted
    /// with the events a full buffer drops (an end read from history is
    /// not an event received: only logged), and named in a warning.
    fn refuse(&self, state: &mut State, entry: &Entry, error: &JournalError) {
        let event = &entry.event;
        let now = Instant::now();
        if state
            .refusals_since
            .is_none_or(|at| now.duration_since(at) >= DROP_WARNING_EVERY)
        {
            state.refusals_since = Some(now);
            state.refusals_named = 0;
        }
        if state.refusals_named < REFUSALS_NAMED {
            state.refusals_named += 1;
            let more = if state.refusals_named == REFUSALS_NAMED {
                "; more refusals in the next 10 s are only counted as dropped"
            } else {
                ""
            };
            tracing::warn!(
                task = event.id.as_u64(),
                name = %batch::name(&event.name),
                event = kind_name(&event.kind),
                %error,
                "task journal: the database refused an event; it is dropped{more}"
            );
        }
        self.events.release(entry.held);
        if !entry.reconciled {
            state.in_flight -= 1;
            state.unreported += 1;
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            self.count_pending(state);
        }
        *self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(error.clone());
    }

    /// Logs the drops written since the last warning: at once the first
    /// time, then at most every [`DROP_WARNING_EVERY`], and what is left
    /// when the writer stops (`last`).
    fn log_drops(&self, state: &mut State, last: bool) {
        if state.unlogged == 0 {
            return;
        }
        let due = state
            .logged_at
            .is_none_or(|at| at.elapsed() >= DROP_WARNING_EVERY);
        if !due && !last {
            return;
        }
        tracing::warn!(
            dropped = state.unlogged,
            total = self.shared.dropped.load(Ordering::Relaxed),
            "task journal: events were dropped (buffer full, writer behind, or refused by the database)"
        );
        state.unlogged = 0;
        state.logged_at = Some(Instant::now());
    }

    fn fail(&self, state: &mut State, error: &JournalError) {
        if error.is_permanent() {
            state.broken = true;
            self.shared.connected.store(false, Ordering::Relaxed);
            tracing::error!(%error, "task journal: giving up writing");
        } else {
            state.retry_at = Some(Instant::now() + state.backoff);
            if self.shared.connected.swap(false, Ordering::Relaxed) {
                tracing::warn!(%error, "task journal: write failed, retrying with backoff");
            }
            state.backoff = (state.backoff * 2).min(MAX_BACKOFF);
        }
        *self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(error.clone());
    }

    fn last_error(&self) -> Option<JournalError> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Writer {
    /// Dropped before it stopped: its runtime ended (or dropped its task)
    /// without [`Journal::shutdown`](super::Journal::shutdown). What it
    /// held and what is still queued is lost, as nothing can be written
    /// from here without blocking a runtime thread: say how much.
    ///
    /// A batch being written may still commit (SQLite's thread finishes the
    /// job it was given; a PostgreSQL server may have had the `COMMIT`), or
    /// not (the process exits first): its events are counted apart.
    fn drop(&mut self) {
        if self.shared.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let (unwritten, in_flight) = self.unwritten();
        tracing::warn!(
            unwritten,
            in_flight,
            "task journal: the writer was dropped without Journal::shutdown (the runtime \
             ended?); the events it had not written are lost, those of a batch being \
             written (in_flight) are written only if its transaction commits"
        );
        self.shared.done.cancel();
    }
}

/// Where a part of a batch being written by halves came from, which may
/// tell how its write would end (see [`Writer::write_all`]).
#[derive(Clone, Copy, Debug)]
enum Half {
    /// A whole batch, or one event of a part written an event at a time.
    Whole,
    /// The first half of a refused part.
    First,
    /// The second half of a refused part whose first half holds `first`
    /// events; `refused_before` events of the batch had been refused when
    /// it was split. If all of the first half is refused too, so likely is
    /// this half: it is written an event at a time.
    Second { first: usize, refused_before: usize },
    /// The second half of a refused part whose first half was written:
    /// the refused value is in it.
    Refused,
}

/// What kind of event `kind` is, for a log line.
fn kind_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Spawned { .. } => "spawned",
        EventKind::Started => "started",
        EventKind::Progress { .. } => "progress",
        EventKind::CancelRequested => "cancel requested",
        EventKind::Finished { .. } => "finished",
        EventKind::Warning(_) => "warning",
    }
}

/// The end of the writer's own task, or of its connection's, as its
/// `Finished` event would say: both end after the writer's last write, so
/// that event never reaches it, and without this their rows would stay
/// running for good. The events it writes that no task sent.
fn end_of(tracker: &Tracker, id: crate::TaskId) -> Option<Event> {
    let me = tracker.task(id)?.task;
    Some(Event {
        at: std::time::Instant::now(),
        id,
        name: me.name,
        ty: me.ty,
        site: me.site,
        owner: me.owner,
        kind: EventKind::Finished {
            state: TaskState::Completed,
            error: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::events::weight;
    use std::borrow::Cow;

    use crate::journal::batch::tests::entry;
    use crate::journal::batch::Batch;
    use crate::journal::query::{JournalPage, JournalQuery, JournalTaskDetail};
    use crate::journal::schema::Statement;
    use crate::journal::store::BoxFuture;
    use crate::TaskType;

    /// A database in memory that counts the batches it is asked to write:
    /// down (every write fails as a lost connection does) while `down`,
    /// never answering while `stalled`,
    /// and refusing, as a constraint would, every batch holding a task
    /// whose name starts with `poison`, or both tasks `pair-a` and `pair-b`
    /// (a refusal no one event causes).
    #[derive(Default)]
    struct Counting {
        writes: AtomicUsize,
        down: AtomicBool,
        stalled: AtomicBool,
    }

    impl Store for Counting {
        fn connect(&self) -> BoxFuture<'_, Result<(), JournalError>> {
            Box::pin(async { Ok(()) })
        }

        fn write(&self, batch: Batch) -> BoxFuture<'_, Result<(), WriteError>> {
            self.writes.fetch_add(1, Ordering::Relaxed);
            if self.stalled.load(Ordering::Relaxed) {
                return Box::pin(std::future::pending());
            }
            let result = if self.down.load(Ordering::Relaxed) {
                Err(JournalError::Unavailable("down".into()).into())
            } else if batch.tasks.iter().any(|t| t.name.starts_with("poison"))
                || ["pair-a", "pair-b"]
                    .iter()
                    .all(|name| batch.tasks.iter().any(|t| t.name == *name))
            {
                Err(WriteError {
                    error: JournalError::Database("refused".into()),
                    refused: true,
                })
            } else {
                Ok(())
            };
            Box::pin(async move { result })
        }

        fn transaction(&self, _: Vec<Statement>) -> BoxFuture<'_, Result<Vec<u64>, JournalError>> {
            Box::pin(async { Err(JournalError::Closed) })
        }

        fn tasks(&self, _: JournalQuery) -> BoxFuture<'_, Result<JournalPage, JournalError>> {
            Box::pin(async { Err(JournalError::Closed) })
        }

        fn task(
            &self,
            _: String,
            _: u64,
        ) -> BoxFuture<'_, Result<Option<JournalTaskDetail>, JournalError>> {
            Box::pin(async { Err(JournalError::Closed) })
        }

        fn numbers(&self, _: Statement) -> BoxFuture<'_, Result<Vec<i64>, JournalError>> {
            Box::pin(async { Err(JournalError::Closed) })
        }

        fn texts(&self, _: Statement) -> BoxFuture<'_, Result<Vec<String>, JournalError>> {
            Box::pin(async { Err(JournalError::Closed) })
        }
    }

    /// A writer of `tracker`'s events into `store`, not running: the tests
    /// drive it a step at a time.
    fn writer(tracker: &Tracker, store: Arc<Counting>, batch_size: usize) -> Writer {
        let (_, commands) = mpsc::channel(1);
        Writer {
            store,
            instance: "test".into(),
            tracker: tracker.clone(),
            events: tracker.event_queue(1000, 64 << 20),
            commands,
            shared: Arc::default(),
            batch_size,
            buffer: 1000,
            interval: Duration::from_secs(3600),
            beat: Duration::from_secs(3600),
            stop: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Each event holds, until written or refused, the bytes it was weighed
    /// at when queued, and gives back just those: the queue's byte count
    /// is what the writer holds, through a failed write, and nothing once
    /// all is written.
    #[tokio::test]
    async fn the_queue_bytes_are_what_the_writer_holds() {
        let tracker = Tracker::new();
        let store = Arc::new(Counting::default());
        let mut writer = writer(&tracker, store.clone(), 1000);
        for name in ["plain", "poison"] {
            tracker
                .task_builder(name, TaskType::GENERAL)
                .owner("tenant")
                .label("key", "x".repeat(300))
                .spawn(async {
                    crate::progress(50, "y".repeat(200));
                    Err::<(), _>("z".repeat(500))
                })
                .await
                .unwrap()
                .unwrap_err();
        }
        let mut state = State::new();
        assert_eq!(writer.drain_ready(&mut state, usize::MAX), 8);
        let mut held = 0;
        for entry in &state.pending {
            assert_eq!(entry.held, weight(&entry.event), "{entry:?}");
            held += entry.held;
        }
        assert!(held > 2 * 1000, "the texts are weighed: {held}");
        assert_eq!(writer.events.bytes(), held);
        store.down.store(true, Ordering::Relaxed);
        writer.write_all(&mut state, true).await.unwrap_err();
        assert_eq!(writer.events.bytes(), held, "a failed write keeps them");
        store.down.store(false, Ordering::Relaxed);
        writer.write_all(&mut state, true).await.unwrap();
        let shared = &writer.shared;
        assert_eq!(shared.written.load(Ordering::Relaxed), 4);
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 4, "poison's");
        assert_eq!(
            writer.events.bytes(),
            0,
            "written or refused, all given back"
        );
    }

    /// A writer dropped with a batch being written (its runtime ended) tells
    /// the events it holds or left queued, which are lost, from those of
    /// the batch, which may still commit.
    #[tokio::test]
    async fn a_batch_being_written_is_counted_apart() {
        let tracker = Tracker::new();
        let store = Arc::new(Counting::default());
        let mut writer = writer(&tracker, store.clone(), 2);
        for _ in 0..2 {
            tracker
                .spawn("t", TaskType::GENERAL, async {})
                .await
                .unwrap();
        }
        let mut state = State::new();
        assert_eq!(writer.drain_ready(&mut state, usize::MAX), 6);
        assert_eq!(writer.unwritten(), (6, 0));
        store.stalled.store(true, Ordering::Relaxed);
        {
            let write = writer.write_all(&mut state, true);
            tokio::pin!(write);
            std::future::poll_fn(|cx| {
                assert!(std::future::Future::poll(write.as_mut(), cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
        }
        tracker
            .spawn("t", TaskType::GENERAL, async {})
            .await
            .unwrap();
        assert_eq!(writer.unwritten(), (4 + 3, 2));
    }

    /// Writes one batch of `names.len()` events, each of a task of its own
    /// named so; returns how many writes it took, and the events written
    /// and dropped.
    async fn write_batch(names: &[String]) -> (usize, u64, u64) {
        let tracker = Tracker::new();
        let store = Arc::new(Counting::default());
        let mut writer = writer(&tracker, store.clone(), names.len());
        let mut state = State::new();
        for (i, name) in names.iter().enumerate() {
            let mut entry = entry(i as u64 + 1, i as i64, EventKind::Started);
            entry.event.name = Cow::Owned(name.clone());
            state.pending.push_back(entry);
        }
        writer.write_all(&mut state, true).await.unwrap();
        assert!(state.pending.is_empty() && state.in_flight == 0);
        let shared = &writer.shared;
        (
            store.writes.load(Ordering::Relaxed),
            shared.written.load(Ordering::Relaxed),
            shared.dropped.load(Ordering::Relaxed),
        )
    }

    /// 64 names, those at `refused` positions starting with `poison`.
    fn names(refused: impl Fn(usize) -> bool) -> Vec<String> {
        (0..64)
            .map(|i| match refused(i) {
                true => format!("poison-{i}"),
                false => format!("fine-{i}"),
            })
            .collect()
    }

    /// A schema refusing every row costs a write per event and one per
    /// halving (each event must be seen to fail alone), not the `2n - 1`
    /// of halving down to every event: once a first half was refused
    /// event by event, its second half is written an event at a time.
    #[tokio::test]
    async fn refusing_every_row_costs_a_write_per_event_and_per_halving() {
        let (writes, written, dropped) = write_batch(&names(|_| true)).await;
        assert_eq!((written, dropped), (0, 64));
        // And one more for the batch row putting the drops on record.
        assert_eq!(writes, 64 + 6 + 1, "was 127 + 1");
    }

    /// One refused event costs a write per halving, not two: the second
    /// half of a refused part whose first half was written must hold the
    /// refused value, so it is split without being written.
    #[tokio::test]
    async fn one_refused_row_costs_a_write_per_halving() {
        let (writes, written, dropped) = write_batch(&names(|i| i == 63)).await;
        assert_eq!((written, dropped), (63, 1));
        // The last write refused it: one more puts the drop on record.
        assert_eq!(writes, 1 + 6 + 1 + 1, "was 13 + 1");
        // First, it is found as before, every first half refused (the
        // writes after it put its drop on record).
        let (writes, written, dropped) = write_batch(&names(|i| i == 0)).await;
        assert_eq!((written, dropped), (63, 1));
        assert_eq!(writes, 1 + 2 * 6);
    }

    /// However refusals fall, exactly the events refused alone are dropped,
    /// in at most `2n - 1` writes as before; a refusal of two events
    /// together (whose halves are split unwritten, as known refused, and
    /// then written) drops neither.
    #[tokio::test]
    async fn only_events_refused_alone_are_dropped() {
        type Refused = fn(usize) -> bool;
        let patterns: [(&str, Refused); 5] = [
            ("first half", |i| i < 32),
            ("second half", |i| i >= 32),
            ("every third", |i| i % 3 == 0),
            ("all but one", |i| i != 40),
            ("a run", |i| (20..29).contains(&i)),
        ];
        for (pattern, refused) in patterns {
            let count = (0..64).filter(|&i| refused(i)).count() as u64;
            let (writes, written, dropped) = write_batch(&names(refused)).await;
            assert_eq!((written, dropped), (64 - count, count), "{pattern}");
            // And perhaps one to put the drops on record.
            assert!(writes <= 2 * 64 - 1 + 1, "{pattern}: {writes}");
        }
        let mut names = names(|_| false);
        names[3] = "pair-a".into();
        names[60] = "pair-b".into();
        let (writes, written, dropped) = write_batch(&names).await;
        assert_eq!((written, dropped), (64, 0), "in {writes} writes");
    }
}
