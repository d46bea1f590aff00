//! The fleet backend: one PostgreSQL database shared by many processes.
//!
//! One connection, guarded by a lock: a batch is one transaction of at most
//! four statements, each taking all its rows as arrays (`unnest`), sent
//! without waiting for each answer. A lost connection is dropped and the
//! next call connects again, migrating first.

use std::collections::HashMap;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::TryFutureExt;
use tokio::sync::Mutex;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

use super::batch::{Batch, TaskRow};
use super::query::{JournalPage, JournalQuery, JournalTask, JournalTaskDetail};
use super::schema::{self, Statement, Value};
use super::store::{BoxFuture, Store, WriteError};
use super::JournalError;
use crate::{TaskId, TaskType, Tracker};

/// Serialises migrations across processes (`pg_advisory_xact_lock`).
const MIGRATION_LOCK: i64 = 0x0074_7261_636b_6564; // "tracked"

/// A journal in a PostgreSQL database.
pub(crate) struct PostgresStore {
    config: tokio_postgres::Config,
    tracker: Tracker,
    /// Cancelled when the journal's writer has stopped (see `ensure`).
    writer_done: CancellationToken,
    conn: Mutex<Option<Conn>>,
}

struct Conn {
    client: Client,
    prepared: HashMap<String, tokio_postgres::Statement>,
    /// The task running the connection's I/O.
    task: TaskId,
}

impl PostgresStore {
    /// Parses `url` (`postgres://user@host:port/db` or `host=… user=…`).
    /// Connects lazily: see [`Store::connect`].
    pub(crate) fn new(
        url: &str,
        tracker: Tracker,
        writer_done: CancellationToken,
    ) -> Result<PostgresStore, JournalError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| JournalError::Config(format!("bad PostgreSQL connection string: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(3));
        }
        config.application_name("tracked-journal");
        Ok(PostgresStore {
            config,
            tracker,
            writer_done,
            conn: Mutex::new(None),
        })
    }

    /// The live connection, connecting and migrating if there is none.
    async fn ensure<'a>(&self, slot: &'a mut Option<Conn>) -> Result<&'a mut Conn, JournalError> {
        if slot.as_ref().is_some_and(|c| c.client.is_closed()) {
            *slot = None;
        }
        if slot.is_none() {
            let (client, connection) = self.config.connect(NoTls).await.map_err(unavailable)?;
            // The connection's I/O runs as a tracked task of its own, which
            // shutdowns leave alone as they do the writer; it ends when the
            // writer closes the store after its last write. A cancel of it
            // (or of the Database type, which cancels the writer too) ends
            // it once the writer has stopped: not at once, which would fail
            // that write, nor never, which would make the cancel wait out
            // its deadline and abort it. A later query connects again.
            let writer_done = self.writer_done.clone();
            let task = self
                .tracker
                .task_builder("tracked::journal::postgres", TaskType::DATABASE)
                .service()
                .outliving_shutdown()
                .spawn(async move {
                    let cancelled = crate::current().map(|t| t.cancellation_token());
                    let stop = async {
                        match cancelled {
                            Some(token) => token.cancelled().await,
                            None => std::future::pending().await,
                        }
                        writer_done.cancelled().await;
                    };
                    tokio::select! {
                        result = connection => result,
                        () = stop => Ok(()),
                    }
                })
                .id();
            let mut conn = Conn {
                client,
                prepared: HashMap::new(),
                task,
            };
            migrate(&mut conn.client).await?;
            *slot = Some(conn);
        }
        Ok(slot.as_mut().expect("connected above"))
    }

    /// Runs `op` on the connection; forgets the connection if it broke.
    async fn with<T>(
        &self,
        op: impl AsyncFnOnce(&mut Conn) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, JournalError> {
        let mut slot = self.conn.lock().await;
        let conn = self.ensure(&mut slot).await?;
        match op(conn).await {
            Ok(value) => Ok(value),
            Err(e) if e.as_db_error().is_some() && !conn.client.is_closed() => {
                Err(JournalError::Database(describe(&e)))
            }
            Err(e) => {
                *slot = None;
                Err(unavailable(e))
            }
        }
    }
}

async fn migrate(client: &mut Client) -> Result<(), JournalError> {
    let schema_error = |e: tokio_postgres::Error| {
        if e.as_db_error().is_some() {
            schema::migration_failed(describe(&e))
        } else {
            unavailable(e)
        }
    };
    let tx = client.transaction().await.map_err(unavailable)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(unavailable)?;
    tx.batch_execute(schema::VERSION_TABLE)
        .await
        .map_err(schema_error)?;
    let current: Option<i64> = tx
        .query_one(schema::CURRENT_VERSION, &[])
        .await
        .map_err(|e| schema::foreign_table(describe(&e)))?
        .try_get(0)
        .map_err(|e| schema::foreign_table(describe(&e)))?;
    let writable_from = match current {
        // A failed read leaves the transaction failed: the refusal follows.
        Some(v) if v > schema::VERSION => tx
            .query_one(schema::WRITABLE_FROM, &[&v])
            .await
            .ok()
            .and_then(|row| row.try_get(0).ok()),
        _ => None,
    };
    for step in schema::migrations(current, writable_from, schema::now())? {
        tx.execute(&*step.sql, &params(&step.params))
            .await
            .map_err(schema_error)?;
    }
    for check in schema::CHECK_COLUMNS {
        tx.prepare(check)
            .await
            .map_err(|e| schema::foreign_table(describe(&e)))?;
    }
    tx.commit().await.map_err(unavailable)
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Whether PostgreSQL refused a row's value: SQLSTATE class 22 (data
/// exception), 23 (integrity constraint) or 54 (program limit exceeded, as
/// by an index row too large).
fn refused(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| matches!(c.code().get(..2), Some("22" | "23" | "54")))
}

fn unavailable(e: tokio_postgres::Error) -> JournalError {
    JournalError::Unavailable(describe(&e))
}

fn params(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Int(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
            Value::Int(i) if *ty == Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
            Value::Int(i) => i.to_sql(ty, out),
            Value::Text(t) => t.as_str().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Which Rust value goes with which SQL type is decided per value above.
        true
    }

    to_sql_checked!();
}

impl schema::Row for tokio_postgres::Row {
    fn int(&self, column: usize) -> Result<Option<i64>, JournalError> {
        self.try_get(column)
            .map_err(|e| schema::foreign_table(describe(&e)))
    }

    fn text(&self, column: usize) -> Result<Option<String>, JournalError> {
        self.try_get(column)
            .map_err(|e| schema::foreign_table(describe(&e)))
    }
}

impl Conn {
    /// Prepares each distinct statement text once per connection.
    async fn prepared(
        &mut self,
        sql: &str,
    ) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        if let Some(prepared) = self.prepared.get(sql) {
            return Ok(prepared.clone());
        }
        let prepared = self.client.prepare(sql).await?;
        self.prepared.insert(sql.to_owned(), prepared.clone());
        Ok(prepared)
    }

    async fn select(
        &mut self,
        statement: &Statement,
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let prepared = self.prepared(&statement.sql).await?;
        self.client
            .query(&prepared, &params(&statement.params))
            .await
    }

    /// Writes `batch` in one transaction: the task rows with and without
    /// their spawn events, the progress log and the batch's own rows. A
    /// task or progress row's value the database refused is the inner
    /// error: its reason.
    async fn write(&mut self, batch: &Batch) -> Result<Result<(), String>, tokio_postgres::Error> {
        let (spawned, late): (Vec<&TaskRow>, Vec<&TaskRow>) =
            batch.tasks.iter().partition(|t| t.spawned);
        let spawned = TaskColumns::new(&spawned);
        let late = TaskColumns::new(&late);
        let log = LogColumns::new(batch);
        let own = schema::batch_rows(batch);
        let mut writes: Vec<(tokio_postgres::Statement, Vec<&(dyn ToSql + Sync)>)> = Vec::new();
        for (columns, is_spawned) in [(&spawned, true), (&late, false)] {
            if !columns.id.is_empty() {
                let sql = schema::upsert_tasks(&unnest(TASK_TYPES), is_spawned);
                writes.push((self.prepared(&sql).await?, columns.params(&batch.instance)));
            }
        }
        if !log.id.is_empty() {
            let sql = schema::insert_log(&unnest(LOG_TYPES));
            writes.push((self.prepared(&sql).await?, log.params(&batch.instance)));
        }
        // Task and progress rows, which the database may refuse a value of.
        let rows = writes.len();
        for row in &own {
            writes.push((self.prepared(&row.sql).await?, params(&row.params)));
        }
        let tx = self.client.transaction().await?;
        let all = writes.iter().enumerate().map(|(i, (statement, params))| {
            // The answers come in order: the first error is the statement
            // that failed, not one of those the aborted transaction ignored.
            tx.execute(statement, params)
                .map_err(move |e| (i < rows, e))
        });
        match futures_util::future::try_join_all(all).await {
            Ok(_) => tx.commit().await.map(Ok),
            Err((true, e)) if refused(&e) => Ok(Err(describe(&e))),
            Err((_, e)) => Err(e),
        }
    }
}

/// The SQL types of a task row's columns after the instance (see
/// [`schema::upsert_tasks`]).
const TASK_TYPES: &[&str] = &[
    "bigint", "bigint", "text", "text", "text", "text", "text", "text", "text", "text", "bigint",
    "bigint", "bigint", "bigint", "bigint", "bigint",
];

/// The same for a progress log row (see [`schema::insert_log`]).
const LOG_TYPES: &[&str] = &["bigint", "bigint", "bigint", "text"];

/// `SELECT $1::text, * FROM unnest($2::t2[], …)`: rows of the instance and
/// one array per column.
fn unnest(types: &[&str]) -> String {
    let arrays: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, ty)| format!("${}::{ty}[]", i + 2))
        .collect();
    format!("SELECT $1::text, * FROM unnest({})", arrays.join(", "))
}

/// Task rows as one array per column.
struct TaskColumns<'a> {
    id: Vec<i64>,
    parent: Vec<Option<i64>>,
    name: Vec<&'a str>,
    ty: Vec<&'a str>,
    owner: Vec<Option<&'a str>>,
    labels: Vec<&'a str>,
    site: Vec<&'a str>,
    kind: Vec<&'a str>,
    state: Vec<&'a str>,
    error: Vec<Option<&'a str>>,
    progress: Vec<Option<i64>>,
    spawned_at: Vec<i64>,
    started_at: Vec<Option<i64>>,
    finished_at: Vec<Option<i64>>,
    duration_us: Vec<Option<i64>>,
    last_at: Vec<i64>,
}

impl<'a> TaskColumns<'a> {
    fn new(rows: &[&'a TaskRow]) -> Self {
        TaskColumns {
            id: rows.iter().map(|t| t.id).collect(),
            parent: rows.iter().map(|t| t.parent).collect(),
            name: rows.iter().map(|t| t.name.as_str()).collect(),
            ty: rows.iter().map(|t| t.ty.as_str()).collect(),
            owner: rows.iter().map(|t| t.owner.as_deref()).collect(),
            labels: rows.iter().map(|t| t.labels.as_str()).collect(),
            site: rows.iter().map(|t| t.site.as_str()).collect(),
            kind: rows.iter().map(|t| t.kind).collect(),
            state: rows.iter().map(|t| t.state).collect(),
            error: rows.iter().map(|t| t.error.as_deref()).collect(),
            progress: rows.iter().map(|t| t.progress).collect(),
            spawned_at: rows.iter().map(|t| t.spawned_at).collect(),
            started_at: rows.iter().map(|t| t.started_at).collect(),
            finished_at: rows.iter().map(|t| t.finished_at).collect(),
            duration_us: rows.iter().map(|t| t.duration_us()).collect(),
            last_at: rows.iter().map(|t| t.last_at).collect(),
        }
    }

    fn params<'p>(&'p self, instance: &'p String) -> Vec<&'p (dyn ToSql + Sync)> {
        vec![
            instance,
            &self.id,
            &self.parent,
            &self.name,
            &self.ty,
            &self.owner,
            &self.labels,
            &self.site,
            &self.kind,
            &self.state,
            &self.error,
            &self.progress,
            &self.spawned_at,
            &self.started_at,
            &self.finished_at,
            &self.duration_us,
            &self.last_at,
        ]
    }
}

/// Progress log rows as one array per column.
struct LogColumns<'a> {
    id: Vec<i64>,
    at: Vec<i64>,
    percent: Vec<i64>,
    message: Vec<Option<&'a str>>,
}

impl<'a> LogColumns<'a> {
    fn new(batch: &'a Batch) -> Self {
        LogColumns {
            id: batch.log.iter().map(|l| l.id).collect(),
            at: batch.log.iter().map(|l| l.at).collect(),
            percent: batch.log.iter().map(|l| l.percent).collect(),
            message: batch.log.iter().map(|l| l.message.as_deref()).collect(),
        }
    }

    fn params<'p>(&'p self, instance: &'p String) -> Vec<&'p (dyn ToSql + Sync)> {
        vec![instance, &self.id, &self.at, &self.percent, &self.message]
    }
}

fn decode(rows: &[tokio_postgres::Row]) -> Result<Vec<JournalTask>, JournalError> {
    rows.iter().map(schema::task).collect()
}

impl Store for PostgresStore {
    fn connect(&self) -> BoxFuture<'_, Result<(), JournalError>> {
        Box::pin(async move {
            let mut slot = self.conn.lock().await;
            self.ensure(&mut slot).await.map(|_| ())
        })
    }

    fn write(&self, batch: Batch) -> BoxFuture<'_, Result<(), WriteError>> {
        Box::pin(async move {
            let written = self
                .with(async move |conn: &mut Conn| conn.write(&batch).await)
                .await?;
            written.map_err(|reason| WriteError {
                error: JournalError::Database(reason),
                refused: true,
            })
        })
    }

    fn transaction(
        &self,
        statements: Vec<Statement>,
    ) -> BoxFuture<'_, Result<Vec<u64>, JournalError>> {
        Box::pin(self.with(async move |conn: &mut Conn| {
            let mut prepared = Vec::with_capacity(statements.len());
            for s in &statements {
                prepared.push(conn.prepared(&s.sql).await?);
            }
            let tx = conn.client.transaction().await?;
            let all = statements.iter().zip(&prepared).map(|(s, p)| {
                let tx = &tx;
                async move { tx.execute(p, &params(&s.params)).await }
            });
            let changed = futures_util::future::try_join_all(all).await?;
            tx.commit().await?;
            Ok(changed)
        }))
    }

    fn tasks(&self, query: JournalQuery) -> BoxFuture<'_, Result<JournalPage, JournalError>> {
        Box::pin(async move {
            let statement = schema::select(&query);
            let rows = self
                .with(async |conn: &mut Conn| conn.select(&statement).await)
                .await?;
            Ok(schema::page(&query, decode(&rows)?))
        })
    }

    fn task(
        &self,
        instance: String,
        id: u64,
    ) -> BoxFuture<'_, Result<Option<JournalTaskDetail>, JournalError>> {
        Box::pin(async move {
            let one = schema::select_one(&instance, id);
            let log = schema::select_progress(&instance, id);
            let children_query = schema::children(&instance, id);
            let children = schema::select(&children_query);
            let (task, log, children) = self
                .with(async |conn: &mut Conn| {
                    let task = conn.select(&one).await?;
                    let log = conn.select(&log).await?;
                    let children = conn.select(&children).await?;
                    Ok((task, log, children))
                })
                .await?;
            let Some(task) = decode(&task)?.pop() else {
                return Ok(None);
            };
            let progress = log.iter().map(schema::progress).collect::<Result<_, _>>()?;
            let children = schema::page(&children_query, decode(&children)?).tasks;
            Ok(Some(JournalTaskDetail {
                task,
                progress,
                children,
            }))
        })
    }

    fn numbers(&self, statement: Statement) -> BoxFuture<'_, Result<Vec<i64>, JournalError>> {
        Box::pin(async move {
            let rows = self
                .with(async |conn: &mut Conn| conn.select(&statement).await)
                .await?;
            let row = rows
                .first()
                .ok_or_else(|| JournalError::Database("no row".into()))?;
            (0..row.len())
                .map(|i| {
                    row.try_get::<_, Option<i64>>(i)
                        .map(Option::unwrap_or_default)
                        .map_err(|e| JournalError::Database(describe(&e)))
                })
                .collect()
        })
    }

    fn connection_task(&self) -> BoxFuture<'_, Option<TaskId>> {
        Box::pin(async move { self.conn.lock().await.as_ref().map(|c| c.task) })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move { drop(self.conn.lock().await.take()) })
    }

    fn texts(&self, statement: Statement) -> BoxFuture<'_, Result<Vec<String>, JournalError>> {
        Box::pin(async move {
            let rows = self
                .with(async |conn: &mut Conn| conn.select(&statement).await)
                .await?;
            rows.iter()
                .map(|row| {
                    row.try_get::<_, String>(0)
                        .map_err(|e| JournalError::Database(describe(&e)))
                })
                .collect()
        })
    }
}

/// The tests' private server (the path is relative to this file's directory).
#[cfg(test)]
#[path = "../../../tests/journal/pg_server.rs"]
#[allow(dead_code, unreachable_pub)]
mod pg_server;

#[cfg(test)]
mod tests {
    use super::pg_server;
    use super::*;
    use crate::journal::batch::{fold, tests as events};

    #[tokio::test]
    async fn batches_merge_into_the_rows_one_batch_writes() {
        let Some(server) = pg_server::PgServer::start("merge") else {
            return;
        };
        let store =
            PostgresStore::new(&server.url(), Tracker::new(), CancellationToken::new()).unwrap();
        let mut written = Vec::new();
        for (instance, batches) in events::splits() {
            for batch in batches {
                store.write(fold(instance, &batch, 0, 1)).await.unwrap();
            }
            let mut rows = Vec::new();
            for (statement, kinds) in events::dumps(instance) {
                let read = store
                    .with(async |conn: &mut Conn| conn.select(&statement).await)
                    .await
                    .unwrap();
                for row in &read {
                    rows.push(events::dump(row, kinds).unwrap());
                }
            }
            written.push((instance, rows));
        }
        events::assert_splits_agree(&written);
    }
}
