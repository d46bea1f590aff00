//! The journal's tables and statements, shared by both backends.
//!
//! Statements are written once, with PostgreSQL's `$n` placeholders; the
//! SQLite backend turns them into `?n`, which SQLite reads the same way.
//! Values are always bound, never spliced into the text.

use std::borrow::Cow;

use super::batch::{self, Batch, Tally};
use super::query::{
    from_micros, micros, Cursor, JournalPage, JournalProgress, JournalQuery, JournalTask,
};
use super::JournalError;
use crate::TaskState;

/// The newest schema this build writes.
pub(crate) const VERSION: i64 = 3;

/// Marks the journal's own tables; created first, inside the migration lock.
/// Its `writable_from` column (from v3) says, for each version, the oldest
/// version whose builds can still write a database at it: a build finding
/// a newer schema writes it when that is at most its own [`VERSION`], so an
/// additive migration does not stop the builds a rolling upgrade has not
/// reached yet.
pub(crate) const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS tracked_journal_schema (
    version BIGINT PRIMARY KEY,
    applied_at BIGINT NOT NULL
)";

pub(crate) const CURRENT_VERSION: &str = "SELECT max(version) FROM tracked_journal_schema";

/// The oldest version whose builds can write a database at version `$1`;
/// read only for a version newer than this build's, so from v3 on.
pub(crate) const WRITABLE_FROM: &str =
    "SELECT writable_from FROM tracked_journal_schema WHERE version = $1";

const RECORD_VERSION: &str =
    "INSERT INTO tracked_journal_schema (version, applied_at, writable_from) VALUES ($1, $2, $3)";

/// One schema version: the statements taking the one before to it, and the
/// oldest version whose builds can write it. Only an additive change (a
/// table or a nullable column that older builds need not fill) may keep
/// older writers.
pub(crate) struct Migration {
    steps: &'static [&'static str],
    writable_from: i64,
}

/// Migrations by version: `MIGRATIONS[0]` takes an empty database to v1,
/// `MIGRATIONS[1]` v1 to v2, and so on.
const MIGRATIONS: &[Migration] = &[
    Migration {
        steps: &[
            "CREATE TABLE tracked_tasks (
        instance TEXT NOT NULL,
        id BIGINT NOT NULL,
        parent BIGINT,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        owner TEXT,
        labels TEXT NOT NULL,
        site TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        error TEXT,
        progress BIGINT,
        spawned_at BIGINT NOT NULL,
        started_at BIGINT,
        finished_at BIGINT,
        duration_us BIGINT,
        last_at BIGINT NOT NULL,
        PRIMARY KEY (instance, id)
    )",
            "CREATE INDEX tracked_tasks_spawned ON tracked_tasks (spawned_at, id, instance)",
            "CREATE INDEX tracked_tasks_owner ON tracked_tasks (owner, spawned_at)",
            "CREATE INDEX tracked_tasks_type ON tracked_tasks (type, state, spawned_at)",
            "CREATE INDEX tracked_tasks_parent ON tracked_tasks (instance, parent)",
            "CREATE INDEX tracked_tasks_last ON tracked_tasks (last_at)",
            "CREATE TABLE tracked_progress (
        instance TEXT NOT NULL,
        id BIGINT NOT NULL,
        at BIGINT NOT NULL,
        percent BIGINT NOT NULL,
        message TEXT
    )",
            "CREATE INDEX tracked_progress_task ON tracked_progress (instance, id, at)",
            "CREATE TABLE tracked_batches (
        instance TEXT NOT NULL,
        at BIGINT NOT NULL,
        events BIGINT NOT NULL,
        spawned BIGINT NOT NULL,
        finished BIGINT NOT NULL,
        progress BIGINT NOT NULL,
        dropped BIGINT NOT NULL
    )",
            "CREATE INDEX tracked_batches_at ON tracked_batches (at)",
        ],
        writable_from: 1,
    },
    // v2: when each instance was last seen alive (see [`SEEN`]), first from
    // the batches it wrote. v1 builds did not keep it up.
    Migration {
        steps: &[
            "CREATE TABLE tracked_instances (
        instance TEXT PRIMARY KEY,
        seen_at BIGINT NOT NULL
    )",
            "INSERT INTO tracked_instances (instance, seen_at)
        SELECT instance, max(at) FROM tracked_batches GROUP BY instance",
        ],
        writable_from: 2,
    },
    // v3: each version says which builds can still write it (see
    // [`VERSION_TABLE`]). Additive: v2 builds could write it, but refuse
    // any newer version, not reading the column.
    Migration {
        steps: &["ALTER TABLE tracked_journal_schema ADD COLUMN writable_from BIGINT"],
        writable_from: 2,
    },
];

const COLUMNS: &str = "instance, id, parent, name, type, owner, labels, site, kind, state, \
     error, progress, spawned_at, started_at, finished_at, duration_us";

/// Reads every column the journal needs: fails on a table that merely
/// shares a name with the journal's.
pub(crate) const CHECK_COLUMNS: &[&str] = &[
    "SELECT instance, id, parent, name, type, owner, labels, site, kind, state, error, \
     progress, spawned_at, started_at, finished_at, duration_us, last_at FROM tracked_tasks WHERE 1 = 0",
    "SELECT instance, id, at, percent, message FROM tracked_progress WHERE 1 = 0",
    "SELECT instance, at, events, spawned, finished, progress, dropped FROM tracked_batches WHERE 1 = 0",
    "SELECT instance, seen_at FROM tracked_instances WHERE 1 = 0",
];

/// A task row's columns: the instance, then `batch::TaskRow`'s fields in
/// order (without `spawned`).
const TASK_COLUMNS: &str = "instance, id, parent, name, type, owner, labels, site, kind, \
     state, error, progress, spawned_at, started_at, finished_at, duration_us, last_at";

/// Inserts the task rows `source` gives (a `VALUES` list or a `SELECT` of
/// [`TASK_COLUMNS`]), or merges each into the row earlier batches wrote:
/// the state only moves forward (pending, running, then how it ended), a
/// time, progress or error the new row lacks is kept, `last_at` is the
/// later one, and so are the name, type and owner (a claim renames a task,
/// and its spawn event, which names it as before, may come last). Rows from a batch holding their tasks' spawn events
/// (`spawned`) also replace the placeholders that an earlier row without
/// one carried: parent, labels, site, kind and spawn time.
pub(crate) fn upsert_tasks(source: &str, spawned: bool) -> String {
    let spawn = if spawned {
        "parent = excluded.parent, labels = excluded.labels, site = excluded.site,
        kind = excluded.kind, spawned_at = excluded.spawned_at,
        duration_us = COALESCE(excluded.finished_at, tracked_tasks.finished_at) - excluded.spawned_at"
    } else {
        "duration_us = COALESCE(excluded.finished_at, tracked_tasks.finished_at) - tracked_tasks.spawned_at"
    };
    let newer = "excluded.last_at >= tracked_tasks.last_at";
    format!(
        "INSERT INTO tracked_tasks ({TASK_COLUMNS}) {source}
    ON CONFLICT (instance, id) DO UPDATE SET
        name = CASE WHEN {newer} THEN excluded.name ELSE tracked_tasks.name END,
        type = CASE WHEN {newer} THEN excluded.type ELSE tracked_tasks.type END,
        owner = CASE WHEN {newer} THEN excluded.owner ELSE tracked_tasks.owner END,
        state = CASE WHEN tracked_tasks.state IN ('pending', 'running') AND excluded.state <> 'pending'
            THEN excluded.state ELSE tracked_tasks.state END,
        error = COALESCE(excluded.error, tracked_tasks.error),
        progress = COALESCE(excluded.progress, tracked_tasks.progress),
        started_at = COALESCE(excluded.started_at, tracked_tasks.started_at),
        finished_at = COALESCE(excluded.finished_at, tracked_tasks.finished_at),
        last_at = CASE WHEN excluded.last_at > tracked_tasks.last_at
            THEN excluded.last_at ELSE tracked_tasks.last_at END,
        {spawn}"
    )
}

/// Inserts the progress log rows `source` gives (a `VALUES` list or a
/// `SELECT` of the instance and `batch::LogRow`'s fields, in order).
pub(crate) fn insert_log(source: &str) -> String {
    format!("INSERT INTO tracked_progress (instance, id, at, percent, message) {source}")
}

const BATCH: &str = "INSERT INTO tracked_batches
    (instance, at, events, spawned, finished, progress, dropped) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// An instance seen alive at `$2`: its row in `tracked_instances`.
const SEEN: &str = "INSERT INTO tracked_instances (instance, seen_at) VALUES ($1, $2)
    ON CONFLICT (instance) DO UPDATE SET seen_at = excluded.seen_at";

/// Records `instance` as seen alive at `at`: with each batch, and as the
/// writer's beat while it has nothing to write (see `Writer::beat`).
pub(crate) fn seen(instance: &str, at: i64) -> Statement {
    Statement::fixed(SEEN, vec![Value::Text(instance.to_owned()), Value::Int(at)])
}

/// The batch's own rows: in `tracked_batches` what it held and the events
/// dropped before it, then its instance seen at the batch's time.
pub(crate) fn batch_rows(batch: &Batch) -> [Statement; 2] {
    [batch_row(batch), seen(&batch.instance, batch.at)]
}

fn batch_row(batch: &Batch) -> Statement {
    let Tally {
        events,
        spawned,
        finished,
        progress,
    } = batch.tally;
    Statement::fixed(
        BATCH,
        vec![
            Value::Text(batch.instance.clone()),
            Value::Int(batch.at),
            Value::Int(events),
            Value::Int(spawned),
            Value::Int(finished),
            Value::Int(progress),
            Value::Int(batch.dropped),
        ],
    )
}

/// Retention: the oldest entries last touched before `$1`, at most `$2`,
/// but none of a task still running in instance `$3`, the one retaining:
/// that process is alive, so the task is, and its later events would bring
/// back a row without its spawn's columns (parent, labels, spawn time).
/// Nor of a task still running in another instance seen alive since `$1`
/// (see [`SEEN`]): that process is alive too, as far as the journal can
/// tell (a fleet's long-lived listener, quiet for weeks). An instance
/// unseen that long is gone, and its running tasks expire with the rest.
const EXPIRED: &str = "SELECT instance, id FROM tracked_tasks AS entry
    WHERE last_at < $1 AND (finished_at IS NOT NULL OR (instance <> $3 AND NOT EXISTS (
        SELECT 1 FROM tracked_instances AS seen
        WHERE seen.instance = entry.instance AND seen.seen_at >= $1
    )))
    ORDER BY last_at, instance, id LIMIT $2";

/// Size cap, first: the `$1` finished entries touched least recently.
const OLDEST_FINISHED: &str = "SELECT instance, id FROM tracked_tasks
    WHERE finished_at IS NOT NULL ORDER BY last_at, instance, id LIMIT $1";

/// Size cap, then: `$1` unfinished entries other than instance `$2`'s
/// (see [`EXPIRED`]), those of the instances unseen longest first (gone
/// processes before live peers), each instance's least recently touched
/// first.
const OLDEST_UNFINISHED: &str = "SELECT instance, id FROM tracked_tasks AS entry
    WHERE finished_at IS NULL AND instance <> $2
    ORDER BY COALESCE((SELECT seen.seen_at FROM tracked_instances AS seen
        WHERE seen.instance = entry.instance), 0), last_at, instance, id LIMIT $1";

pub(crate) fn count() -> Statement {
    Statement::fixed("SELECT count(*) FROM tracked_tasks", Vec::new())
}

/// What one instance wrote: tasks and finished tasks held, then the sums
/// of its batch rows (batches, events, spawned, finished, progress, dropped).
pub(crate) fn summary(instance: &str) -> Statement {
    Statement::fixed(
        "SELECT
            (SELECT count(*) FROM tracked_tasks WHERE instance = $1),
            (SELECT count(*) FROM tracked_tasks WHERE instance = $1 AND finished_at IS NOT NULL),
            (SELECT count(*) FROM tracked_progress WHERE instance = $1),
            count(*), CAST(sum(events) AS BIGINT), CAST(sum(spawned) AS BIGINT),
            CAST(sum(finished) AS BIGINT), CAST(sum(progress) AS BIGINT), CAST(sum(dropped) AS BIGINT)
         FROM tracked_batches WHERE instance = $1",
        vec![Value::Text(instance.to_owned())],
    )
}

/// The statements that delete up to `limit` entries untouched since
/// `before` (their progress log first), and old batch and instance rows;
/// `retaining` is the instance that asks (see [`EXPIRED`]).
pub(crate) fn expire(before: i64, limit: i64, retaining: &str) -> Vec<Statement> {
    let pick = |what: &str| {
        format!("DELETE FROM {what} WHERE (instance, id) IN (SELECT instance, id FROM ({EXPIRED}) AS picked)")
    };
    let params = || {
        vec![
            Value::Int(before),
            Value::Int(limit),
            Value::Text(retaining.to_owned()),
        ]
    };
    vec![
        Statement::new(pick("tracked_progress"), params()),
        Statement::new(pick("tracked_tasks"), params()),
        Statement::new(
            "DELETE FROM tracked_batches WHERE at < $1".into(),
            vec![Value::Int(before)],
        ),
        Statement::new(
            "DELETE FROM tracked_instances WHERE seen_at < $1".into(),
            vec![Value::Int(before)],
        ),
    ]
}

/// The statements that delete the `count` entries touched least recently:
/// finished ones, or else unfinished ones not of instance `retaining`.
pub(crate) fn trim(count: i64, finished: bool, retaining: &str) -> Vec<Statement> {
    let oldest = if finished {
        OLDEST_FINISHED
    } else {
        OLDEST_UNFINISHED
    };
    let pick = |what: &str| {
        format!("DELETE FROM {what} WHERE (instance, id) IN (SELECT instance, id FROM ({oldest}) AS picked)")
    };
    let params = || {
        let mut params = vec![Value::Int(count)];
        if !finished {
            params.push(Value::Text(retaining.to_owned()));
        }
        params
    };
    vec![
        Statement::new(pick("tracked_progress"), params()),
        Statement::new(pick("tracked_tasks"), params()),
    ]
}

/// The instances with unfinished tasks (see `reap`).
pub(crate) fn unfinished_instances() -> Statement {
    Statement::fixed(
        "SELECT DISTINCT instance FROM tracked_tasks WHERE finished_at IS NULL",
        Vec::new(),
    )
}

/// When `instance` was last known alive: its latest write of a task's row
/// (its `(instance, …)` index finds them) or its last beat, if later.
pub(crate) fn last_seen(instance: &str) -> Statement {
    Statement::fixed(
        "SELECT max(at) FROM (
            SELECT last_at AS at FROM tracked_tasks WHERE instance = $1
            UNION ALL SELECT seen_at FROM tracked_instances WHERE instance = $1
        ) AS times",
        vec![Value::Text(instance.to_owned())],
    )
}

/// Marks `instance`'s unfinished tasks cancelled with `reason` as their
/// error, finished at `last` (or at the row's own last write, if later).
pub(crate) fn cancel_unfinished(instance: &str, last: i64, reason: &str) -> Statement {
    const FINISHED: &str = "CASE WHEN last_at > $3 THEN last_at ELSE $3 END";
    Statement::new(
        format!(
            "UPDATE tracked_tasks SET state = 'cancelled', error = COALESCE(error, $2),
                finished_at = {FINISHED}, duration_us = {FINISHED} - spawned_at, last_at = $4
             WHERE instance = $1 AND finished_at IS NULL"
        ),
        vec![
            Value::Text(instance.to_owned()),
            Value::Text(reason.to_owned()),
            Value::Int(last),
            Value::Int(now()),
        ],
    )
}

/// An event's instant as µs since the epoch, by the tracker's clock.
pub(crate) fn micros_of(tracker: &crate::Tracker, at: std::time::Instant) -> i64 {
    micros(tracker.system_time(at))
}

/// Now, in µs since the epoch.
pub(crate) fn now() -> i64 {
    micros(std::time::SystemTime::now())
}

/// A bound parameter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Int(i64),
    Text(String),
}

/// A statement with its parameters. The text is one of this module's
/// constants, or built from them.
#[derive(Clone, Debug)]
pub(crate) struct Statement {
    pub(crate) sql: Cow<'static, str>,
    pub(crate) params: Vec<Value>,
}

impl Statement {
    fn new(sql: String, params: Vec<Value>) -> Self {
        Statement {
            sql: Cow::Owned(sql),
            params,
        }
    }

    fn fixed(sql: &'static str, params: Vec<Value>) -> Self {
        Statement {
            sql: Cow::Borrowed(sql),
            params,
        }
    }
}

/// The `SELECT` for a query, asking for one row more than a page so that
/// the caller knows whether another page follows.
pub(crate) fn select(q: &JournalQuery) -> Statement {
    let mut w = filters(q);
    let order = if q.by_id {
        "id DESC"
    } else {
        "spawned_at DESC, id DESC, instance DESC"
    };
    let mut sql = format!("SELECT {COLUMNS} FROM tracked_tasks{}", w.clause());
    let limit = w.param(Value::Int(q.page_size() as i64 + 1));
    sql.push_str(&format!(" ORDER BY {order} LIMIT {limit}"));
    Statement::new(sql, w.params)
}

/// How many tasks past `q`'s cursor match its filters, whatever its limit.
#[cfg(feature = "http")]
pub(crate) fn count_of(q: &JournalQuery) -> Statement {
    let w = filters(q);
    Statement::new(
        format!("SELECT count(*) FROM tracked_tasks{}", w.clause()),
        w.params,
    )
}

/// The conditions of a query: its filters and its cursor.
fn filters(q: &JournalQuery) -> Where {
    let mut w = Where::default();
    if let Some(owner) = &q.owner {
        // As written: a long owner is stored cut, and found by its whole.
        w.bind("owner = ?", Value::Text(super::as_written(owner)));
    }
    if let Some(ty) = &q.ty {
        w.bind("type = ?", Value::Text(super::as_written(ty)));
    }
    if let Some(state) = q.state {
        w.bind("state = ?", Value::Text(state.as_str().into()));
    }
    if q.finished_only {
        w.filters.push("finished_at IS NOT NULL".into());
    }
    if let Some(prefix) = &q.name_prefix {
        // As written (NUL as U+FFFD); and a prefix reaching past where a
        // long name is cut also finds the names cut there, which keep its
        // bytes up to the cut.
        let prefix = batch::text(prefix);
        let chars = prefix.chars().count();
        let cut = crate::text::cut_of_longer(&prefix, batch::NAME_BYTES);
        let starts = format!(
            "substr(name, 1, {chars}) = {}",
            w.param(Value::Text(prefix))
        );
        match cut {
            Some(cut) => w.bind(&format!("({starts} OR name = ?)"), Value::Text(cut)),
            None => w.filters.push(starts),
        }
    }
    if let Some(instance) = &q.instance {
        w.bind("instance = ?", Value::Text(instance.clone()));
    }
    if let Some(parent) = q.parent {
        w.bind("parent = ?", Value::Int(parent as i64));
    }
    if let Some(since) = q.since {
        w.bind("spawned_at >= ?", Value::Int(micros(since)));
    }
    if let Some(until) = q.until {
        w.bind("spawned_at < ?", Value::Int(micros(until)));
    }
    match &q.cursor {
        Some(Cursor::Id(id)) => w.bind("id < ?", Value::Int(*id as i64)),
        Some(Cursor::Spawned(at, id, instance)) => {
            // Keyset paging: strictly after the last row in the order below.
            let at = w.param(Value::Int(*at));
            let id = w.param(Value::Int(*id as i64));
            let instance = w.param(Value::Text(instance.clone()));
            w.filters.push(format!(
                "(spawned_at < {at} OR (spawned_at = {at} AND (id < {id} OR (id = {id} AND instance < {instance}))))"
            ));
        }
        None => {}
    }
    w
}

/// A `WHERE` clause being built: conditions and their numbered parameters.
#[derive(Default)]
struct Where {
    filters: Vec<String>,
    params: Vec<Value>,
}

impl Where {
    /// Adds a parameter; returns its placeholder.
    fn param(&mut self, value: Value) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    /// Adds `filter`, its `?` standing for `value`.
    fn bind(&mut self, filter: &str, value: Value) {
        let placeholder = self.param(value);
        self.filters.push(filter.replace('?', &placeholder));
    }

    /// ` WHERE` and the conditions, or nothing when there are none.
    fn clause(&self) -> String {
        if self.filters.is_empty() {
            return String::new();
        }
        format!(" WHERE {}", self.filters.join(" AND "))
    }
}

/// The cursor that continues after `last`.
pub(crate) fn cursor_after(q: &JournalQuery, last: &JournalTask) -> String {
    if q.by_id {
        Cursor::Id(last.id).encode()
    } else {
        Cursor::Spawned(micros(last.spawned_at), last.id, last.instance.clone()).encode()
    }
}

/// A page from the rows [`select`] returned.
pub(crate) fn page(q: &JournalQuery, mut tasks: Vec<JournalTask>) -> JournalPage {
    let more = tasks.len() > q.page_size();
    tasks.truncate(q.page_size());
    let next = if more {
        tasks.last().map(|t| cursor_after(q, t))
    } else {
        None
    };
    JournalPage { tasks, next }
}

/// The query for a task's children.
pub(crate) fn children(instance: &str, id: u64) -> JournalQuery {
    JournalQuery::new()
        .instance(instance)
        .parent(id)
        .limit(super::query::MAX_LIMIT)
}

/// The statements that bring a database at `current` to [`VERSION`]: none
/// for a newer schema that this build can write, `writable_from` being
/// what the database says of it ([`WRITABLE_FROM`], `None` if it says
/// nothing); an error for one it cannot. Each version's row is recorded
/// after every step, once the version table has all its columns.
pub(crate) fn migrations(
    current: Option<i64>,
    writable_from: Option<i64>,
    now: i64,
) -> Result<Vec<Statement>, JournalError> {
    let current = current.unwrap_or(0);
    if current > VERSION {
        return match writable_from {
            Some(from) if from <= VERSION => {
                tracing::info!(
                    "the journal's database holds schema v{current}, newer than this build's \
                     v{VERSION} and writable by it (from v{from}): writing it as it is"
                );
                Ok(Vec::new())
            }
            _ => Err(JournalError::Schema(format!(
                "the database holds journal schema v{current}, written by a newer version{}; \
                 this one knows up to v{VERSION}: upgrade it, or give it another database",
                writable_from.map_or(String::new(), |from| format!(
                    " for builds of v{from} and later"
                ))
            ))),
        };
    }
    let pending = || MIGRATIONS.iter().zip(1..).skip(current.max(0) as usize);
    let steps = pending().flat_map(|(m, _)| m.steps);
    let mut out: Vec<_> = steps.map(|sql| Statement::fixed(sql, Vec::new())).collect();
    out.extend(pending().map(|(m, version)| {
        let row = vec![
            Value::Int(version),
            Value::Int(now),
            Value::Int(m.writable_from),
        ];
        Statement::fixed(RECORD_VERSION, row)
    }));
    Ok(out)
}

/// The error for a failed migration step: most likely a table of the same
/// name that is not the journal's.
pub(crate) fn migration_failed(error: impl std::fmt::Display) -> JournalError {
    JournalError::Schema(format!(
        "cannot create the journal's tables (does the database hold foreign tables named tracked_*?): {error}"
    ))
}

/// The error for a table that lacks the journal's columns.
pub(crate) fn foreign_table(error: impl std::fmt::Display) -> JournalError {
    JournalError::Schema(format!(
        "the tracked_* tables do not have the journal's columns: {error}"
    ))
}

pub(crate) fn select_one(instance: &str, id: u64) -> Statement {
    Statement::new(
        format!("SELECT {COLUMNS} FROM tracked_tasks WHERE instance = $1 AND id = $2"),
        vec![Value::Text(instance.into()), Value::Int(id as i64)],
    )
}

pub(crate) fn select_progress(instance: &str, id: u64) -> Statement {
    Statement::fixed(
        "SELECT at, percent, message FROM tracked_progress
         WHERE instance = $1 AND id = $2 ORDER BY at",
        vec![Value::Text(instance.into()), Value::Int(id as i64)],
    )
}

/// A result row, whichever backend read it.
pub(crate) trait Row {
    fn int(&self, column: usize) -> Result<Option<i64>, JournalError>;
    fn text(&self, column: usize) -> Result<Option<String>, JournalError>;
}

fn missing(column: &str) -> JournalError {
    JournalError::Schema(format!(
        "column {column} holds NULL where the journal needs a value"
    ))
}

/// Decodes a row selected with [`COLUMNS`].
pub(crate) fn task(row: &impl Row) -> Result<JournalTask, JournalError> {
    let text = |i: usize, name: &str| row.text(i)?.ok_or_else(|| missing(name));
    let int = |i: usize, name: &str| row.int(i)?.ok_or_else(|| missing(name));
    let state_text = text(9, "state")?;
    let state = state_text
        .parse::<TaskState>()
        .map_err(|_| JournalError::Schema(format!("unknown task state {state_text:?}")))?;
    let labels: Vec<(String, String)> = serde_json::from_str(&text(6, "labels")?)
        .map_err(|e| JournalError::Schema(format!("labels are not the journal's JSON: {e}")))?;
    Ok(JournalTask {
        instance: text(0, "instance")?,
        id: int(1, "id")? as u64,
        parent: row.int(2)?.map(|p| p as u64),
        name: text(3, "name")?,
        ty: text(4, "type")?,
        owner: row.text(5)?,
        labels,
        site: text(7, "site")?,
        kind: text(8, "kind")?,
        state,
        error: row.text(10)?,
        progress: row.int(11)?.map(|p| p.clamp(0, 100) as u8),
        spawned_at: from_micros(int(12, "spawned_at")?),
        started_at: row.int(13)?.map(from_micros),
        finished_at: row.int(14)?.map(from_micros),
        duration: row
            .int(15)?
            .map(|us| std::time::Duration::from_micros(us.max(0) as u64)),
    })
}

/// Decodes a row selected by [`select_progress`].
pub(crate) fn progress(row: &impl Row) -> Result<JournalProgress, JournalError> {
    Ok(JournalProgress {
        at: from_micros(row.int(0)?.ok_or_else(|| missing("at"))?),
        percent: row.int(1)?.ok_or_else(|| missing("percent"))?.clamp(0, 100) as u8,
        message: row.text(2)?,
    })
}
