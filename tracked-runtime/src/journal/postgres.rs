//! The fleet backend: one PostgreSQL database shared by many processes.
//!
//! One connection, guarded by a lock: a batch is one transaction whose
//! statements are pipelined (sent without waiting for each answer). A lost
//! connection is dropped and the next call connects again, migrating first.

use std::collections::HashMap;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::Mutex;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls};

use super::query::{JournalPage, JournalQuery, JournalTask, JournalTaskDetail};
use super::schema::{self, Statement, Value};
use super::store::{BoxFuture, Store};
use super::JournalError;
use crate::{TaskType, Tracker};

/// Serialises migrations across processes (`pg_advisory_xact_lock`).
const MIGRATION_LOCK: i64 = 0x0074_7261_636b_6564; // "tracked"

/// A journal in a PostgreSQL database.
pub(crate) struct PostgresStore {
    config: tokio_postgres::Config,
    tracker: Tracker,
    conn: Mutex<Option<Conn>>,
}

struct Conn {
    client: Client,
    prepared: HashMap<String, tokio_postgres::Statement>,
}

impl PostgresStore {
    /// Parses `url` (`postgres://user@host:port/db` or `host=… user=…`).
    /// Connects lazily: see [`Store::connect`].
    pub(crate) fn new(url: &str, tracker: Tracker) -> Result<PostgresStore, JournalError> {
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
            // The connection's I/O runs as a tracked task of its own.
            self.tracker
                .task_builder("tracked::journal::postgres", TaskType::DATABASE)
                .spawn(connection);
            let mut conn = Conn {
                client,
                prepared: HashMap::new(),
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
    for step in schema::migrations(current, schema::now())? {
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
            Value::Null => Ok(IsNull::Yes),
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
    async fn prepare(
        &mut self,
        statements: &[Statement],
    ) -> Result<Vec<tokio_postgres::Statement>, tokio_postgres::Error> {
        let mut out = Vec::with_capacity(statements.len());
        for s in statements {
            if !self.prepared.contains_key(&*s.sql) {
                let prepared = self.client.prepare(&s.sql).await?;
                self.prepared.insert(s.sql.to_string(), prepared);
            }
            out.push(self.prepared[&*s.sql].clone());
        }
        Ok(out)
    }

    async fn select(
        &mut self,
        statement: &Statement,
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let prepared = self.prepare(std::slice::from_ref(statement)).await?;
        self.client
            .query(&prepared[0], &params(&statement.params))
            .await
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

    fn transaction(
        &self,
        statements: Vec<Statement>,
    ) -> BoxFuture<'_, Result<Vec<u64>, JournalError>> {
        Box::pin(self.with(async move |conn: &mut Conn| {
            let prepared = conn.prepare(&statements).await?;
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
}
