//! Asking the journal: filters, pages, and what comes back.

use std::time::{Duration, SystemTime};

use super::JournalError;
use crate::TaskState;

/// Pages hold at most this many tasks.
pub const MAX_LIMIT: usize = 1000;

/// A filter over journaled tasks, newest first, paged by cursor.
///
/// # Examples
///
/// ```
/// # extern crate tracked_runtime as tracked;
/// use std::time::{Duration, SystemTime};
/// use tracked::journal::JournalQuery;
/// use tracked::TaskState;
///
/// let last_night = SystemTime::now() - Duration::from_secs(12 * 3600);
/// let q = JournalQuery::new()
///     .owner("tenant-7")
///     .state(TaskState::Failed)
///     .since(last_night)
///     .limit(50);
/// # let _ = q;
/// ```
#[derive(Clone, Debug, Default)]
pub struct JournalQuery {
    pub(crate) owner: Option<String>,
    pub(crate) ty: Option<String>,
    pub(crate) state: Option<TaskState>,
    pub(crate) name_prefix: Option<String>,
    pub(crate) instance: Option<String>,
    pub(crate) parent: Option<u64>,
    pub(crate) since: Option<SystemTime>,
    pub(crate) until: Option<SystemTime>,
    pub(crate) finished_only: bool,
    pub(crate) limit: Option<usize>,
    pub(crate) cursor: Option<Cursor>,
    /// Order by id instead of spawn time (one instance's ids grow with
    /// spawn order); the HTTP API pages this way.
    pub(crate) by_id: bool,
}

impl JournalQuery {
    /// Every task, newest first, 100 per page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tasks of this owner only. An owner holding NUL or over 1 KiB is
    /// written changed (see [how it writes](super#how-it-writes)), and
    /// `owner` is changed the same way before it is compared: such a task
    /// is found by the owner it was given, or by the owner as written.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Tasks of this type only (by name, e.g. `"Consensus"`). A type name
    /// over 1 KiB is written cut, and `ty` is cut the same way before it is
    /// compared (see [how it writes](super#how-it-writes)).
    pub fn ty(mut self, ty: impl AsRef<str>) -> Self {
        self.ty = Some(ty.as_ref().to_owned());
        self
    }

    /// Tasks last seen in this state.
    pub fn state(mut self, state: TaskState) -> Self {
        self.state = Some(state);
        self
    }

    /// Finished tasks only, whatever their end.
    pub fn finished(mut self) -> Self {
        self.finished_only = true;
        self
    }

    /// Tasks whose name starts with `prefix`.
    pub fn name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = Some(prefix.into());
        self
    }

    /// Tasks of one process run (see [`Journal::instance`](super::Journal::instance)).
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Children of this task (within one instance, set with [`instance`](Self::instance)).
    pub fn parent(mut self, parent: u64) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Tasks spawned at or after `at`.
    pub fn since(mut self, at: SystemTime) -> Self {
        self.since = Some(at);
        self
    }

    /// Tasks spawned before `at`.
    pub fn until(mut self, at: SystemTime) -> Self {
        self.until = Some(at);
        self
    }

    /// At most this many tasks per page (1 to [`MAX_LIMIT`]; default 100).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Continues after a page: pass the [`JournalPage::next`] it returned.
    pub fn cursor(mut self, cursor: &str) -> Result<Self, JournalError> {
        self.cursor = Some(Cursor::parse(cursor)?);
        Ok(self)
    }

    pub(crate) fn page_size(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, MAX_LIMIT)
    }

    /// Tasks of `instance` with ids below `id`, highest first.
    #[cfg(feature = "http")]
    pub(crate) fn before_id(mut self, instance: &str, id: Option<u64>) -> Self {
        self.instance = Some(instance.to_owned());
        self.by_id = true;
        self.cursor = id.map(Cursor::Id);
        self
    }
}

/// Where a page ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cursor {
    /// Spawn time (µs since the epoch), id, instance of the last task.
    Spawned(i64, u64, String),
    /// Id of the last task (one instance, by id).
    Id(u64),
}

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        match self {
            Cursor::Spawned(at, id, instance) => format!("s{at}.{id}.{instance}"),
            Cursor::Id(id) => format!("i{id}"),
        }
    }

    fn parse(text: &str) -> Result<Cursor, JournalError> {
        let bad = || JournalError::Config(format!("not a journal cursor: {text:?}"));
        if let Some(id) = text.strip_prefix('i') {
            return id.parse().map(Cursor::Id).map_err(|_| bad());
        }
        let rest = text.strip_prefix('s').ok_or_else(bad)?;
        let mut parts = rest.splitn(3, '.');
        let at = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let id = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let instance = parts.next().ok_or_else(bad)?;
        Ok(Cursor::Spawned(at, id, instance.to_owned()))
    }
}

/// One task as the journal last recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalTask {
    /// The process run that spawned it.
    pub instance: String,
    /// Its id within that run.
    pub id: u64,
    /// The task that spawned it, in the same run.
    pub parent: Option<u64>,
    /// Its name.
    pub name: String,
    /// Its type's name.
    pub ty: String,
    /// Its owner.
    pub owner: Option<String>,
    /// Labels attached at spawn.
    pub labels: Vec<(String, String)>,
    /// Where it was spawned, as `file:line:col`.
    pub site: String,
    /// How it was spawned: `async`, `blocking`, `local` or `inline`.
    pub kind: String,
    /// Its last known state. The unfinished tasks of a process known to
    /// have died are `Cancelled` once a journal starts where that can be
    /// told (see the [module docs](super#crashes)).
    pub state: TaskState,
    /// The `Err` text or panic message; for a task of a process that died,
    /// that the process ended without recording how it ended.
    pub error: Option<String>,
    /// The last progress reported, in percent.
    pub progress: Option<u8>,
    /// When it was spawned (or first heard of, if the spawn event was dropped).
    pub spawned_at: SystemTime,
    /// When it was first polled.
    pub started_at: Option<SystemTime>,
    /// When it ended.
    pub finished_at: Option<SystemTime>,
    /// From spawn to end.
    pub duration: Option<Duration>,
}

/// One progress report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalProgress {
    /// When it was reported.
    pub at: SystemTime,
    /// The percentage.
    pub percent: u8,
    /// The message, if any.
    pub message: Option<String>,
}

/// One task with its progress log and children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalTaskDetail {
    /// The task.
    pub task: JournalTask,
    /// Every progress report, oldest first.
    pub progress: Vec<JournalProgress>,
    /// Tasks it spawned (at most [`MAX_LIMIT`]).
    pub children: Vec<JournalTask>,
}

/// One page of a query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalPage {
    /// The tasks, newest first.
    pub tasks: Vec<JournalTask>,
    /// The cursor for the next page, if there may be one.
    pub next: Option<String>,
}

pub(crate) fn micros(at: SystemTime) -> i64 {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

pub(crate) fn from_micros(us: i64) -> SystemTime {
    let magnitude = Duration::from_micros(us.unsigned_abs());
    if us >= 0 {
        SystemTime::UNIX_EPOCH + magnitude
    } else {
        SystemTime::UNIX_EPOCH - magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        for c in [
            Cursor::Spawned(-5, 7, "svc/1.2.3".into()),
            Cursor::Spawned(1_700_000_000_000_000, 1, String::new()),
            Cursor::Id(42),
        ] {
            assert_eq!(Cursor::parse(&c.encode()).unwrap(), c);
        }
        for bad in ["", "x1", "s1", "s1.x.a", "i", "i-1", "sa.1.b"] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn micros_round_trip() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_234_567);
        assert_eq!(from_micros(micros(t)), t);
        let before = SystemTime::UNIX_EPOCH - Duration::from_micros(9);
        assert_eq!(from_micros(micros(before)), before);
    }
}
