//! The task journal: durable task history in SQLite or PostgreSQL.
//!
//! The in-memory history is bounded and dies with the process; the journal
//! keeps every task's lifecycle — spawn, first poll, progress messages, how
//! it ended, error or panic text, duration — with its id, name, type,
//! owner, labels, site and parent, under an *instance* id naming the
//! process run, so that many processes can share one journal.
//!
//! # How it writes
//!
//! The tracker hands every lifecycle event to a bounded queue (a `try_send`,
//! never blocking); one writer task (a tracked task named
//! `tracked::journal`) drains it into a buffer of its own and writes batches,
//! one transaction each. Nothing else happens on a task's path. A batch
//! writes one row per task whatever number of its events it holds, merged
//! into the row earlier batches wrote; PostgreSQL takes each kind of row
//! in one statement.
//!
//! - **Never silent loss.** If the queue and the buffer are full, in events
//!   or in bytes (the database is down or slower than the tasks; see
//!   [`buffer`](JournalBuilder::buffer) and
//!   [`buffer_bytes`](JournalBuilder::buffer_bytes)), new events are
//!   dropped and counted: in
//!   [`JournalStats::dropped`], in a warning log (at most every 10 s, with
//!   the drops since the last), and in the `dropped` column
//!   of the next batch row written (`tracked_batches`). A task whose end
//!   was among them would keep a `running` row: once the queue is drained,
//!   the writer looks up the tasks it journaled as running and have ended,
//!   and writes their ends from the tracker's history (not counted as
//!   events received). One gone from history too keeps its row, with a
//!   warning.
//! - **Faults.** A database that is down at startup or goes away mid-run is
//!   retried with backoff (100 ms doubling to 10 s) while events buffer. A
//!   SQLite file deleted or replaced mid-run is created anew at its path
//!   (with a warning) rather than written on unlinked; a
//!   foreign schema is a [`JournalError::Schema`], returned by
//!   [`JournalBuilder::start`] or, when found at a reconnection, kept in
//!   [`JournalStats::last_error`] while the writer stops writing; so is a
//!   newer one, unless the newer build that migrated it marked it writable
//!   by this one (a migration adding only what older builds need not fill),
//!   so that a rolling upgrade does not stop the builds not yet upgraded.
//!   The writer is a `Database` task: a cancel of that type (or of its
//!   task) stops it too, after it writes what it holds, with a warning
//!   unless a shutdown was requested. The task running a PostgreSQL
//!   connection (`tracked::journal::postgres`, a `Database` task too) ends
//!   when the writer, stopping for any reason, closes it after its last
//!   batch; cancelled itself, it waits for that. Tiered shutdowns leave
//!   both alone (see [Shutting down](self#shutting-down)).
//! - **Refused rows.** A value the database refuses (SQLite: a constraint,
//!   a text over its length limit; PostgreSQL: SQLSTATE classes 22, 23 and
//!   54, as for an index entry too large) would fail its batch at every
//!   retry. The batch is written by halves instead, down to the events
//!   that fail alone: those are dropped, counted as the drops above, and
//!   each named in a warning with its task's id and name and the
//!   database's reason; the rest is written. A schema refusing every row
//!   costs about a write per event (each is tried alone), one refused
//!   event about a write per halving. Any other error (a lost
//!   connection, a lock timeout, a full disk) is retried with backoff.
//! - **Texts.** A NUL character in a name, owner, error, progress message
//!   or service name is written as U+FFFD (PostgreSQL refuses NUL in text,
//!   which would fail the batch holding it at every retry). A name, type,
//!   owner, label key or value, or service name over 1 KiB is cut to
//!   1 KiB ending with `…`, as the tracker cuts errors (4 KiB) and
//!   progress messages (1 KiB), in either database: PostgreSQL refuses an
//!   index entry over 2704 bytes. A filter by owner or type changes what
//!   it asks for the same way, so such a task is found by the owner or
//!   type it was given (an HTTP token scoped to it included), or by the
//!   one written; a name prefix reaching past the cut finds the names cut
//!   there (and so any name that agrees with it up to the cut).
//!   Labels keep NUL (their JSON escapes it).
//! - **Crash guarantee.** A batch is one transaction: if the process dies,
//!   the journal holds every batch committed before, and nothing of the
//!   batch in flight or of the events still buffered (at most
//!   twice [`buffer`](JournalBuilder::buffer) events, and
//!   [`buffer_bytes`](JournalBuilder::buffer_bytes) in all). SQLite runs in WAL mode
//!   with `synchronous = NORMAL`: a committed batch survives a process
//!   crash; a power loss may take the last batches with it.
//!
//! # Crashes
//!
//! A process that dies cannot write how its running tasks ended. When a
//! journal starts, it looks (in the background) for instances whose
//! process is known to be gone and marks their unfinished tasks
//! `Cancelled`, finished when that instance last wrote, with the error
//! "the process ended without recording how this task ended", and logs a
//! warning per instance. On Linux an instance id carries what tells its
//! process from any other (start ticks, boot id, pid namespace), so this
//! works from the same host name and pid namespace: a process missing from
//! `/proc`, a zombie, or a pid since reused, is gone; so is every process
//! of an earlier boot for a SQLite file. Whatever cannot be told stays as
//! it was: other hosts and namespaces, a shared database's rows from before
//! a reboot, a `/proc` that hides other users' processes, other systems;
//! retention expires those tasks once their instance has not been seen
//! alive for the time-to-live (see [`Journal::enforce_retention`]).
//! A process that exits without [`Journal::shutdown`] leaves at least the
//! writer's own task running, which the next journal marks.
//!
//! # Shutting down
//!
//! A tiered [`Tracker::shutdown`](crate::Tracker::shutdown) leaves the
//! writer (and its PostgreSQL connection) alone: they are not stopped with
//! their tier (Database), not aborted, and not in its report, so the ends
//! of every tier's tasks, the last tier's included, are journaled. The
//! writer writes them once the shutdown has finished, then stops.
//!
//! Await [`Journal::shutdown`] before the runtime ends (at the end of
//! `main`, say). A runtime that ends first drops the writer as it drops
//! every task, with the events it has not written yet: the last batch
//! interval's at least, everything while the database was down. Those
//! events are lost, and a warning says how many (`unwritten`): nothing can
//! be written from a task being dropped without blocking a runtime thread.
//! A batch whose write was under way is counted apart (`in_flight`): it is
//! written only if its transaction commits before the process exits.
//!
//! # Examples
//!
//! ```
//! # extern crate tracked_runtime as tracked;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tracked::journal::{Journal, JournalQuery};
//! use tracked::{TaskState, TaskType, Tracker};
//!
//! # let dir = std::env::temp_dir().join(format!("journal-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let tracker = Tracker::new();
//! let journal = Journal::sqlite(dir.join("tasks.sqlite")).start(&tracker).await?;
//!
//! tracker
//!     .task_builder("import", TaskType::DATABASE)
//!     .owner("tenant-7")
//!     .spawn(async { Err::<(), _>("disk full") })
//!     .await?;
//! journal.flush().await?;
//!
//! let failed = journal
//!     .tasks(&JournalQuery::new().owner("tenant-7").state(TaskState::Failed))
//!     .await?;
//! assert_eq!(failed.tasks[0].name, "import");
//! assert_eq!(failed.tasks[0].error.as_deref(), Some("disk full"));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

mod batch;
mod error;
#[cfg(feature = "journal-postgres")]
mod postgres;
mod query;
mod reap;
mod schema;
mod sqlite;
mod store;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use error::JournalError;
pub use query::{
    JournalPage, JournalProgress, JournalQuery, JournalTask, JournalTaskDetail, MAX_LIMIT,
};

use store::Store;
use writer::{Command, Shared, Writer};

use crate::events::QueueGauge;
use crate::{Heartbeat, JoinHandle, TaskType, Tracker};

/// Entries deleted per statement by retention, so that no cleanup holds
/// the journal's write lock for long.
const CLEANUP_BATCH: i64 = 1000;
/// Retention stops after this many statements per run; the next run goes on.
const CLEANUP_ROUNDS: usize = 100;
/// The longest an idle writer waits to record its instance as seen alive;
/// a quarter of the time-to-live if that is shorter, but not under
/// [`MIN_BEAT`].
const MAX_BEAT: Duration = Duration::from_secs(300);
/// The shortest beat, whatever the time-to-live (zero included).
const MIN_BEAT: Duration = Duration::from_secs(1);

enum Backend {
    Sqlite(PathBuf),
    #[cfg(feature = "journal-postgres")]
    Postgres(String),
}

/// How to start a [`Journal`]: the backend, then limits and retention.
pub struct JournalBuilder {
    backend: Backend,
    service: Option<String>,
    batch_size: usize,
    buffer: usize,
    buffer_bytes: usize,
    interval: Duration,
    ttl: Duration,
    max_tasks: Option<u64>,
}

/// A running journal. Cheap to clone; the writer stops (after writing what
/// it holds) when the last clone is dropped, or at [`shutdown`](Self::shutdown),
/// if its runtime still runs (see [Shutting down](self#shutting-down)).
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    instance: Arc<str>,
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    /// The events still in the tracker's queue, not taken by the writer.
    queued: QueueGauge,
    stop: CancellationToken,
    writer: Mutex<Option<JoinHandle<()>>>,
    ttl: Duration,
    max_tasks: Option<u64>,
    started_at: SystemTime,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The writer's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalStats {
    /// Events written; from a shutdown on, also the writer's own end, which
    /// it writes itself as it stops (no task sends it).
    pub written: u64,
    /// Events dropped because the buffer was full, the writer fell behind
    /// the event stream, or the database refused their rows.
    pub dropped: u64,
    /// Batches committed.
    pub batches: u64,
    /// Events waiting to be written: in the tracker's queue, in the
    /// writer's buffer, and in the batch being written.
    pub pending: usize,
    /// Whether the last write succeeded.
    pub connected: bool,
    /// Whether the writer has stopped.
    pub stopped: bool,
    /// The last error, if any.
    pub last_error: Option<JournalError>,
}

/// One of a journal's health metrics, as the Prometheus and OTLP exports
/// write them.
#[cfg(any(feature = "prometheus", feature = "otel"))]
pub(crate) struct HealthMetric {
    /// The OTLP name; Prometheus's has `_` for `.`, and `_total` for a
    /// counter.
    pub(crate) name: &'static str,
    /// A count since the journal started, else a gauge.
    pub(crate) counter: bool,
    /// The OTLP unit.
    #[cfg_attr(
        not(feature = "otel"),
        allow(dead_code, reason = "only the OTLP export writes units")
    )]
    pub(crate) unit: &'static str,
    pub(crate) help: &'static str,
    pub(crate) value: u64,
}

/// `stats` as metrics: events written, dropped and pending, batches,
/// connected, stopped.
#[cfg(any(feature = "prometheus", feature = "otel"))]
pub(crate) fn health(stats: &JournalStats) -> [HealthMetric; 6] {
    let metric = |name, counter, unit, help, value| HealthMetric {
        name,
        counter,
        unit,
        help,
        value,
    };
    [
        metric(
            "tracked.journal.events.written",
            true,
            "{event}",
            "Lifecycle events the task journal wrote.",
            stats.written,
        ),
        metric(
            "tracked.journal.events.dropped",
            true,
            "{event}",
            "Lifecycle events the task journal dropped: its buffer was full, or the database refused their rows.",
            stats.dropped,
        ),
        metric(
            "tracked.journal.batches",
            true,
            "{batch}",
            "Batches (transactions) the task journal committed.",
            stats.batches,
        ),
        metric(
            "tracked.journal.events.pending",
            false,
            "{event}",
            "Lifecycle events waiting to be written to the task journal.",
            stats.pending as u64,
        ),
        metric(
            "tracked.journal.connected",
            false,
            "1",
            "1 when the task journal's last write succeeded, else 0.",
            u64::from(stats.connected),
        ),
        metric(
            "tracked.journal.stopped",
            false,
            "1",
            "1 once the task journal's writer has stopped (shut down, or given up on a foreign schema), else 0.",
            u64::from(stats.stopped),
        ),
    ]
}

/// What one instance wrote into the journal ([`Journal::summary`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstanceSummary {
    /// Tasks held.
    pub tasks: u64,
    /// Finished tasks held.
    pub finished: u64,
    /// Progress reports held.
    pub progress: u64,
    /// Batches committed (as long as retention kept their rows).
    pub batches: u64,
    /// Events those batches wrote.
    pub events: u64,
    /// Spawn events among them.
    pub spawned: u64,
    /// Finish events among them.
    pub finished_events: u64,
    /// Progress events among them.
    pub progress_events: u64,
    /// Events the writer reported dropped.
    pub dropped: u64,
}

/// What one retention run deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Tasks older than the time-to-live.
    pub expired: u64,
    /// Tasks beyond the size cap (least recently touched first).
    pub trimmed: u64,
}

impl Journal {
    /// A journal in the SQLite file at `path` (created if missing).
    pub fn sqlite(path: impl AsRef<Path>) -> JournalBuilder {
        JournalBuilder::new(Backend::Sqlite(path.as_ref().to_owned()))
    }

    /// A journal in PostgreSQL, e.g. `postgres://tracked@127.0.0.1:5432/tasks`
    /// or `host=127.0.0.1 user=tracked dbname=tasks`.
    #[cfg(feature = "journal-postgres")]
    pub fn postgres(url: impl Into<String>) -> JournalBuilder {
        JournalBuilder::new(Backend::Postgres(url.into()))
    }

    /// This process run's instance id: `service@host#pid.start`, unique per
    /// run because task ids start again at 1 in every process. On Linux it
    /// goes on with what tells the process from any other on the host
    /// (`.ticks.boot.pidns`: see [Crashes](self#crashes)).
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Writes every event sent before this call. Fails if the database is
    /// unreachable (the events stay buffered and are retried).
    pub async fn flush(&self) -> Result<(), JournalError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Flush(reply))
            .await
            .map_err(|_| JournalError::Closed)?;
        answer.await.map_err(|_| JournalError::Closed)?
    }

    /// When this journal started: its [`stats`](Self::stats) count from
    /// then.
    pub fn started_at(&self) -> SystemTime {
        self.inner.started_at
    }

    /// The writer's counters.
    pub fn stats(&self) -> JournalStats {
        let s = &self.inner.shared;
        JournalStats {
            written: s.written.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            pending: s.pending.load(Ordering::Relaxed) + self.inner.queued.len(),
            connected: s.connected.load(Ordering::Relaxed),
            stopped: s.stopped.load(Ordering::Acquire),
            last_error: s
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// One page of tasks, from every instance unless the query names one.
    pub async fn tasks(&self, query: &JournalQuery) -> Result<JournalPage, JournalError> {
        self.inner.store.tasks(query.clone()).await
    }

    /// One task of `instance` with its progress log and children.
    pub async fn task(
        &self,
        instance: &str,
        id: u64,
    ) -> Result<Option<JournalTaskDetail>, JournalError> {
        self.inner.store.task(instance.to_owned(), id).await
    }

    /// How many tasks match `query`'s filters, whatever its limit.
    #[cfg(feature = "http")]
    pub(crate) async fn count(&self, query: &JournalQuery) -> Result<u64, JournalError> {
        let n = self.inner.store.numbers(schema::count_of(query)).await?;
        Ok(n.first().copied().unwrap_or(0).max(0) as u64)
    }

    /// How many tasks the journal holds, from every instance.
    pub async fn len(&self) -> Result<u64, JournalError> {
        let n = self.inner.store.numbers(schema::count()).await?;
        Ok(n.first().copied().unwrap_or(0) as u64)
    }

    /// Whether the journal holds no task at all.
    pub async fn is_empty(&self) -> Result<bool, JournalError> {
        Ok(self.len().await? == 0)
    }

    /// What `instance` wrote: the rows it holds and the sums of its batch
    /// records, which must agree (a batch is all or nothing).
    pub async fn summary(&self, instance: &str) -> Result<InstanceSummary, JournalError> {
        let n = self.inner.store.numbers(schema::summary(instance)).await?;
        let at = |i: usize| n.get(i).copied().unwrap_or(0).max(0) as u64;
        Ok(InstanceSummary {
            tasks: at(0),
            finished: at(1),
            progress: at(2),
            batches: at(3),
            events: at(4),
            spawned: at(5),
            finished_events: at(6),
            progress_events: at(7),
            dropped: at(8),
        })
    }

    /// Deletes entries untouched for longer than the time-to-live, then
    /// the least recently touched beyond the size cap (finished tasks
    /// first), in transactions of at most 1000 entries so that writers
    /// never wait long.
    ///
    /// Tasks of this instance that are still running are kept, even over
    /// the cap: a long-lived task is often quiet for long, and its end,
    /// written after its row was deleted, would bring back a row without
    /// its spawn's columns (parent, labels, spawn time, duration). Another
    /// instance's running tasks outlive the time-to-live too while that
    /// instance was seen alive within it (a fleet sharing a journal: a
    /// live process's listener is not expired by a peer). A writer records
    /// its instance as seen with every batch, and when it has nothing to
    /// write every 5 minutes, or every quarter of its own time-to-live if
    /// that is shorter (at most once a second), whatever its flush
    /// interval: give peers time-to-lives well above that. The cap,
    /// once only running tasks are left, takes other instances' running
    /// tasks, those of the instances unseen longest first (gone processes
    /// before live ones).
    pub async fn enforce_retention(&self) -> Result<Retention, JournalError> {
        let mut done = Retention::default();
        let cutoff = query::micros(
            SystemTime::now()
                .checked_sub(self.inner.ttl)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        );
        for _ in 0..CLEANUP_ROUNDS {
            let changed = self
                .inner
                .store
                .transaction(schema::expire(cutoff, CLEANUP_BATCH, &self.inner.instance))
                .await?;
            let deleted = changed.get(1).copied().unwrap_or(0);
            done.expired += deleted;
            if deleted < CLEANUP_BATCH as u64 {
                break;
            }
            tokio::task::yield_now().await;
        }
        if let Some(cap) = self.inner.max_tasks {
            // Finished tasks first, then unfinished ones of other instances;
            // what is left then runs in this process, kept over the cap.
            let mut rounds = 0;
            for finished in [true, false] {
                while rounds < CLEANUP_ROUNDS {
                    rounds += 1;
                    let over = self.len().await?.saturating_sub(cap);
                    if over == 0 {
                        return Ok(done);
                    }
                    let n = over.min(CLEANUP_BATCH as u64) as i64;
                    let trim = schema::trim(n, finished, &self.inner.instance);
                    let trimmed = self.inner.store.transaction(trim).await?;
                    let trimmed = trimmed.get(1).copied().unwrap_or(0);
                    done.trimmed += trimmed;
                    tokio::task::yield_now().await;
                    if trimmed == 0 {
                        break;
                    }
                }
            }
        }
        Ok(done)
    }

    /// Adds retention to `heartbeat` as a phase named `journal retention`
    /// that runs every `ticks` ticks.
    ///
    /// ```
    /// # extern crate tracked_runtime as tracked;
    /// # use std::time::Duration;
    /// # use tracked::{journal::Journal, Heartbeat, Tracker};
    /// # fn wire(journal: &Journal, tracker: &Tracker) {
    /// let heartbeat = Heartbeat::new(Duration::from_secs(1)).housekeeping(tracker);
    /// journal.retention_phase(heartbeat, 3600).spawn(tracker);
    /// # }
    /// ```
    pub fn retention_phase(&self, heartbeat: Heartbeat, ticks: u64) -> Heartbeat {
        let journal = self.clone();
        heartbeat.every("journal retention", ticks, move || {
            let journal = journal.clone();
            async move { journal.enforce_retention().await }
        })
    }

    /// Writes what is buffered and stops the writer. Other clones can still
    /// query; their [`flush`](Self::flush) fails with [`JournalError::Closed`].
    /// Call it before the runtime ends: one that ends first loses what the
    /// writer holds (see [Shutting down](self#shutting-down)).
    ///
    /// The write is tried once, without waiting for a database that is
    /// down: what it could not write is lost, counted in the returned
    /// [`JournalStats::pending`] and in a warning.
    pub async fn shutdown(&self) -> JournalStats {
        self.inner.stop.cancel();
        let writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
        self.stats()
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("instance", &self.inner.instance)
            .field("stats", &self.stats())
            .finish()
    }
}

impl JournalBuilder {
    fn new(backend: Backend) -> Self {
        JournalBuilder {
            backend,
            service: None,
            batch_size: 512,
            buffer: 65_536,
            buffer_bytes: 64 << 20,
            interval: Duration::from_millis(200),
            ttl: Duration::from_secs(30 * 24 * 3600),
            max_tasks: None,
        }
    }

    /// The service name that starts the instance id (default: the program's
    /// file name).
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }

    /// Events per batch (transaction), at least 1. Default 512.
    pub fn batch_size(mut self, events: usize) -> Self {
        self.batch_size = events.max(1);
        self
    }

    /// Events held while the database is slow or down, at least 1: this many
    /// in the tracker's queue and as many in the writer's buffer; beyond
    /// that, events are dropped and counted. Default 65 536.
    pub fn buffer(mut self, events: usize) -> Self {
        self.buffer = events.max(1);
        self
    }

    /// Bytes of events held while the database is slow or down, in the
    /// tracker's queue and the writer's buffer together: an event counts
    /// its own size and its texts' lengths (name, owner, labels, error or
    /// progress message). Beyond that, events are dropped and counted as
    /// [`buffer`](Self::buffer)'s are. Default 64 MiB.
    pub fn buffer_bytes(mut self, bytes: usize) -> Self {
        self.buffer_bytes = bytes;
        self
    }

    /// How often buffered events are written when fewer than a batch wait.
    /// Default 200 ms.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How long entries are kept after they were last touched, enforced by
    /// [`Journal::enforce_retention`]. Default 30 days. An idle writer
    /// records its instance as seen alive every 5 minutes, or every
    /// quarter of this if that is shorter (at most once a second), so that
    /// peers keep its running tasks.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// At most this many tasks in the journal (all instances), besides
    /// this instance's running ones (see [`Journal::enforce_retention`]);
    /// none by default.
    pub fn max_tasks(mut self, tasks: u64) -> Self {
        self.max_tasks = Some(tasks);
        self
    }

    /// Opens the database, migrates its schema, and starts the writer on
    /// the current runtime, journaling `tracker`'s tasks from now on.
    ///
    /// Fails on a file that is not a SQLite database, a foreign or newer
    /// schema, or a bad connection string. A PostgreSQL server that is
    /// down is not an error: the writer buffers and retries.
    pub async fn start(self, tracker: &Tracker) -> Result<Journal, JournalError> {
        // Subscribe first: nothing spawned after `start` returns is missed.
        let events = tracker.event_queue(self.buffer, self.buffer_bytes);
        let shared = Arc::new(Shared::default());
        let store: Arc<dyn Store> = match &self.backend {
            // Opening and migrating a local file takes milliseconds.
            Backend::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path)?),
            #[cfg(feature = "journal-postgres")]
            Backend::Postgres(url) => Arc::new(postgres::PostgresStore::new(
                url,
                tracker.clone(),
                shared.done.clone(),
            )?),
        };
        let instance: Arc<str> = instance_id(self.service.as_deref()).into();
        match store.connect().await {
            Ok(()) => {
                shared.connected.store(true, Ordering::Relaxed);
                let (store, instance) = (store.clone(), instance.clone());
                let local = matches!(self.backend, Backend::Sqlite(_));
                // tracked: allow(untracked-spawn) -- a one-off query of the journal's own, not a task of the service: kept out of its tracker's counts and cancels
                tokio::spawn(async move { reap::reap(&*store, &instance, local).await });
            }
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "task journal: database down at startup, buffering");
                *shared.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            }
        }
        let queued = events.gauge();
        let (commands, receiver) = mpsc::channel(16);
        let stop = CancellationToken::new();
        let writer = Writer {
            store: store.clone(),
            instance: instance.clone(),
            tracker: tracker.clone(),
            events,
            commands: receiver,
            shared: shared.clone(),
            batch_size: self.batch_size,
            buffer: self.buffer,
            interval: self.interval,
            beat: (self.ttl / 4).clamp(MIN_BEAT, MAX_BEAT),
            stop: stop.clone(),
        };
        let handle = tracker
            .task_builder("tracked::journal", TaskType::DATABASE)
            .service()
            .outliving_shutdown()
            .spawn(writer.run());
        Ok(Journal {
            inner: Arc::new(Inner {
                store,
                instance,
                commands,
                shared,
                queued,
                stop,
                writer: Mutex::new(Some(handle)),
                ttl: self.ttl,
                max_tasks: self.max_tasks,
                started_at: SystemTime::now(),
            }),
        })
    }
}

/// A task's owner or type as the journal writes it (NUL as U+FFFD, cut to
/// 1 KiB ending with `…`): what a filter by either compares with.
pub(crate) fn as_written(owner_or_type: &str) -> String {
    batch::name(owner_or_type)
}

/// `service@host#pid.start-ms-hex`, and on Linux `.ticks.boot.pidns`
/// (see `reap`).
fn instance_id(service: Option<&str>) -> String {
    let service = service.map(batch::name).unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "process".into())
    });
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let pid = std::process::id();
    let id = format!("{service}@{host}#{pid}.{started:x}{}", reap::own_key());
    // As written into the database, so that queries by it find its rows.
    batch::text(&id)
}
