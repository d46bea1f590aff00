//! The embedded backend: one SQLite file in WAL mode, no server to run.
//!
//! SQLite's API blocks, so the connection lives on a thread of its own and
//! every call is a job sent to it; the async side awaits the answer. Writes
//! and reads are serialised on that thread, which is what SQLite does with
//! one writer anyway.
//!
//! A file deleted or replaced while the journal runs (an operator's `rm`,
//! a log rotation) would otherwise take every later batch with it: the open
//! connection writes on into the unlinked file, which vanishes at exit.
//! Before each job the thread checks that the path still names the file it
//! opened, and reopens (creating and migrating) it if not; if that fails
//! (the directory is gone too), the job fails as `Unavailable` and the
//! writer keeps its events and retries with backoff.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::oneshot;

use super::batch::Batch;
use super::query::{JournalPage, JournalQuery, JournalTaskDetail};
use super::schema::{self, Statement, Value};
use super::store::{BoxFuture, Store, WriteError};
use super::JournalError;

type Job = Box<dyn FnOnce(Result<&mut Connection, JournalError>) + Send>;

/// A journal in one SQLite file.
pub(crate) struct SqliteStore {
    jobs: mpsc::Sender<Job>,
}

impl SqliteStore {
    /// Opens (creating if needed) the file and migrates it. Fails on a file
    /// that is not a SQLite database or holds foreign tables.
    pub(crate) fn open(path: &Path) -> Result<SqliteStore, JournalError> {
        let mut file = File::open(path)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tracked-journal-sqlite".into())
            .spawn(move || {
                // Ends when the store, and so every sender, is gone.
                for job in queue {
                    job(file.current());
                }
            })
            .map_err(|e| {
                JournalError::Unavailable(format!("cannot start the SQLite thread: {e}"))
            })?;
        Ok(SqliteStore { jobs })
    }

    /// Runs `job` on the connection's thread.
    fn run<T, F>(&self, job: F) -> BoxFuture<'_, Result<T, JournalError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, JournalError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let sent = self.jobs.send(Box::new(move |conn| {
            let _ = reply.send(conn.and_then(job));
        }));
        Box::pin(async move {
            sent.map_err(|_| JournalError::Closed)?;
            answer.await.map_err(|_| JournalError::Closed)?
        })
    }
}

/// The connection, and which file it has open.
struct File {
    path: PathBuf,
    /// `None` after a failed reopen: the next job tries again.
    conn: Option<Connection>,
    opened: Option<Identity>,
}

/// What tells one file from another at the same path.
type Identity = (u64, u64);

#[cfg(unix)]
fn identity(path: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Elsewhere only a missing file is noticed.
#[cfg(not(unix))]
fn identity(path: &Path) -> Option<Identity> {
    std::fs::metadata(path).ok().map(|_| (0, 0))
}

impl File {
    /// Opens (creating if needed) and migrates the file at `path`.
    fn open(path: &Path) -> Result<File, JournalError> {
        let mut file = File {
            path: path.to_owned(),
            conn: None,
            opened: None,
        };
        file.reopen()?;
        Ok(file)
    }

    fn reopen(&mut self) -> Result<(), JournalError> {
        // Closed first: it lets go of the old file's `-wal` and `-shm`.
        self.conn = None;
        let mut conn = open(&self.path)?;
        migrate(&mut conn)?;
        self.opened = identity(&self.path);
        self.conn = Some(conn);
        Ok(())
    }

    /// The connection to the file the path names now, reopened if the one
    /// open was deleted or replaced.
    fn current(&mut self) -> Result<&mut Connection, JournalError> {
        let now = identity(&self.path);
        if self.conn.is_none() || now.is_none() || now != self.opened {
            if self.conn.is_some() {
                tracing::warn!(
                    path = %self.path.display(),
                    "task journal: the file was deleted or replaced; reopening it"
                );
            }
            self.reopen()?;
            tracing::info!(path = %self.path.display(), "task journal: file reopened");
        }
        self.conn
            .as_mut()
            .ok_or_else(|| JournalError::Unavailable("no connection".into()))
    }
}

fn open(path: &Path) -> Result<Connection, JournalError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| JournalError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    let not_a_database = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => {
            JournalError::Schema(format!("{} is not a SQLite database: {e}", path.display()))
        }
        _ => database(e),
    };
    // WAL: readers never block the writer. NORMAL: a committed batch
    // survives a crash of the process (not necessarily of the machine).
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(not_a_database)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(database)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(database)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), JournalError> {
    // IMMEDIATE takes the write lock first: two processes opening one file
    // migrate one after the other.
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(database)?;
    tx.execute(schema::VERSION_TABLE, [])
        .map_err(schema::migration_failed)?;
    let current: Option<i64> = tx
        .query_row(schema::CURRENT_VERSION, [], |row| row.get(0))
        .map_err(schema::foreign_table)?;
    let writable_from = match current {
        Some(v) if v > schema::VERSION => tx
            .query_row(&sqlite_text(schema::WRITABLE_FROM), [v], |row| row.get(0))
            .ok(),
        _ => None,
    };
    for step in schema::migrations(current, writable_from, schema::now())? {
        execute(&tx, &step).map_err(schema::migration_failed)?;
    }
    for check in schema::CHECK_COLUMNS {
        tx.prepare(check).map_err(schema::foreign_table)?;
    }
    tx.commit().map_err(database)
}

fn database(e: rusqlite::Error) -> JournalError {
    JournalError::Database(e.to_string())
}

fn sqlite_text(sql: &str) -> String {
    sql.replace('$', "?")
}

fn execute(conn: &Connection, statement: &Statement) -> rusqlite::Result<usize> {
    let mut prepared = conn.prepare_cached(&sqlite_text(&statement.sql))?;
    prepared.execute(rusqlite::params_from_iter(statement.params.iter()))
}

/// Writes `batch`'s rows, then its own (see `schema::batch_rows`).
fn write(conn: &Connection, batch: &Batch) -> Result<(), WriteError> {
    rows(conn, batch).map_err(|e| WriteError {
        refused: refused(&e),
        error: database(e),
    })?;
    for row in schema::batch_rows(batch) {
        execute(conn, &row).map_err(database)?;
    }
    Ok(())
}

/// Whether SQLite refused a row's value: a text over its length limit, or
/// a constraint (a trigger's `RAISE(ABORT, …)` included).
fn refused(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::TooBig | ErrorCode::ConstraintViolation | ErrorCode::TypeMismatch)
    )
}

/// One cached statement per kind of row, run once per row: SQLite is in
/// the process, so a statement costs no round trip.
fn rows(conn: &Connection, batch: &Batch) -> rusqlite::Result<()> {
    let values = format!("VALUES ({})", placeholders(17));
    for spawned in [true, false] {
        let mut upsert = conn.prepare_cached(&schema::upsert_tasks(&values, spawned))?;
        for t in batch.tasks.iter().filter(|t| t.spawned == spawned) {
            upsert.execute(rusqlite::params![
                batch.instance,
                t.id,
                t.parent,
                t.name,
                t.ty,
                t.owner,
                t.labels,
                t.site,
                t.kind,
                t.state,
                t.error,
                t.progress,
                t.spawned_at,
                t.started_at,
                t.finished_at,
                t.duration_us(),
                t.last_at,
            ])?;
        }
    }
    let values = format!("VALUES ({})", placeholders(5));
    let mut log = conn.prepare_cached(&schema::insert_log(&values))?;
    for l in &batch.log {
        log.execute(rusqlite::params![
            batch.instance,
            l.id,
            l.at,
            l.percent,
            l.message
        ])?;
    }
    Ok(())
}

/// `?1, …, ?n`.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
        }))
    }
}

impl schema::Row for rusqlite::Row<'_> {
    fn int(&self, column: usize) -> Result<Option<i64>, JournalError> {
        self.get(column).map_err(schema::foreign_table)
    }

    fn text(&self, column: usize) -> Result<Option<String>, JournalError> {
        self.get(column).map_err(schema::foreign_table)
    }
}

/// Every row `statement` selects, decoded by `decode`.
fn select<T>(
    conn: &Connection,
    statement: &Statement,
    decode: impl Fn(&rusqlite::Row<'_>) -> Result<T, JournalError>,
) -> Result<Vec<T>, JournalError> {
    let mut prepared = conn
        .prepare_cached(&sqlite_text(&statement.sql))
        .map_err(database)?;
    let mut rows = prepared
        .query(rusqlite::params_from_iter(statement.params.iter()))
        .map_err(database)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(database)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

fn select_tasks(
    conn: &Connection,
    statement: &Statement,
) -> Result<Vec<super::JournalTask>, JournalError> {
    select(conn, statement, |row| schema::task(row))
}

impl Store for SqliteStore {
    fn connect(&self) -> BoxFuture<'_, Result<(), JournalError>> {
        // Opened and migrated in `open`, reopened by any job that finds
        // the file gone.
        self.run(|_| Ok(()))
    }

    fn write(&self, batch: Batch) -> BoxFuture<'_, Result<(), WriteError>> {
        let written = self.run(move |conn| {
            let tx = conn.transaction().map_err(database)?;
            if let Err(e) = write(&tx, &batch) {
                return Ok(Err(e));
            }
            tx.commit().map_err(database).map(Ok)
        });
        Box::pin(async move { written.await? })
    }

    fn transaction(
        &self,
        statements: Vec<Statement>,
    ) -> BoxFuture<'_, Result<Vec<u64>, JournalError>> {
        self.run(move |conn| {
            let tx = conn.transaction().map_err(database)?;
            let mut changed = Vec::with_capacity(statements.len());
            for statement in &statements {
                changed.push(execute(&tx, statement).map_err(database)? as u64);
            }
            tx.commit().map_err(database)?;
            Ok(changed)
        })
    }

    fn tasks(&self, query: JournalQuery) -> BoxFuture<'_, Result<JournalPage, JournalError>> {
        self.run(move |conn| {
            let tasks = select_tasks(conn, &schema::select(&query))?;
            Ok(schema::page(&query, tasks))
        })
    }

    fn task(
        &self,
        instance: String,
        id: u64,
    ) -> BoxFuture<'_, Result<Option<JournalTaskDetail>, JournalError>> {
        self.run(move |conn| {
            let Some(task) = select_tasks(conn, &schema::select_one(&instance, id))?.pop() else {
                return Ok(None);
            };
            let log = schema::select_progress(&instance, id);
            let progress = select(conn, &log, |row| schema::progress(row))?;
            let children = schema::select(&schema::children(&instance, id));
            let children = select_tasks(conn, &children)?;
            let children = schema::page(&schema::children(&instance, id), children).tasks;
            Ok(Some(JournalTaskDetail {
                task,
                progress,
                children,
            }))
        })
    }

    fn numbers(&self, statement: Statement) -> BoxFuture<'_, Result<Vec<i64>, JournalError>> {
        self.run(move |conn| {
            let mut prepared = conn
                .prepare_cached(&sqlite_text(&statement.sql))
                .map_err(database)?;
            let columns = prepared.column_count();
            prepared
                .query_row(rusqlite::params_from_iter(statement.params.iter()), |row| {
                    (0..columns)
                        .map(|i| row.get::<_, Option<i64>>(i).map(Option::unwrap_or_default))
                        .collect()
                })
                .map_err(database)
        })
    }

    fn texts(&self, statement: Statement) -> BoxFuture<'_, Result<Vec<String>, JournalError>> {
        self.run(move |conn| select(conn, &statement, |row| row.get(0).map_err(database)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::batch::{fold, tests as events};

    #[tokio::test]
    async fn batches_merge_into_the_rows_one_batch_writes() {
        let dir = std::env::temp_dir().join(format!("tracked-sqlite-merge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.sqlite");
        let _ = std::fs::remove_file(&path);
        let store = SqliteStore::open(&path).unwrap();
        let mut written = Vec::new();
        for (instance, batches) in events::splits() {
            for batch in batches {
                store.write(fold(instance, &batch, 0, 1)).await.unwrap();
            }
            let rows = store
                .run(move |conn| {
                    let mut rows = Vec::new();
                    for (statement, kinds) in events::dumps(instance) {
                        rows.extend(select(conn, &statement, |row| events::dump(row, kinds))?);
                    }
                    Ok(rows)
                })
                .await
                .unwrap();
            written.push((instance, rows));
        }
        events::assert_splits_agree(&written);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
