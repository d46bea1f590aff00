//! The one trait both backends implement.

use std::future::Future;
use std::pin::Pin;

use super::batch::Batch;
use super::query::{JournalPage, JournalQuery, JournalTaskDetail};
use super::schema::Statement;
use super::JournalError;
use crate::TaskId;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a batch was not written.
#[derive(Debug)]
pub(crate) struct WriteError {
    pub(crate) error: JournalError,
    /// The database refused a value of a task or progress row (a text too
    /// long for an index, a constraint): the same rows fail the same way at
    /// every retry, unlike after a lost connection, a lock timeout or a
    /// full disk.
    pub(crate) refused: bool,
}

impl From<JournalError> for WriteError {
    fn from(error: JournalError) -> Self {
        WriteError {
            error,
            refused: false,
        }
    }
}

/// A database holding the journal's schema.
///
/// Every method connects first if the store is not connected (migrating the
/// schema on each new connection), so a database that was down at startup
/// or restarted mid-run is picked up again by the next call.
pub(crate) trait Store: Send + Sync + 'static {
    /// Connects (if needed) and brings the schema to the current version.
    fn connect(&self) -> BoxFuture<'_, Result<(), JournalError>>;

    /// Writes `batch` in one transaction: all of it or nothing.
    fn write(&self, batch: Batch) -> BoxFuture<'_, Result<(), WriteError>>;

    /// Runs `statements` in one transaction: all of them or none. Returns
    /// the rows each one changed.
    fn transaction(
        &self,
        statements: Vec<Statement>,
    ) -> BoxFuture<'_, Result<Vec<u64>, JournalError>>;

    /// One page of tasks.
    fn tasks(&self, query: JournalQuery) -> BoxFuture<'_, Result<JournalPage, JournalError>>;

    /// One task with its progress log and children.
    fn task(
        &self,
        instance: String,
        id: u64,
    ) -> BoxFuture<'_, Result<Option<JournalTaskDetail>, JournalError>>;

    /// The one row `statement` selects, every column an integer (NULL as 0).
    fn numbers(&self, statement: Statement) -> BoxFuture<'_, Result<Vec<i64>, JournalError>>;

    /// The first column of every row `statement` selects, a text.
    fn texts(&self, statement: Statement) -> BoxFuture<'_, Result<Vec<String>, JournalError>>;

    /// The tracked task running the store's connection, if it runs one
    /// (PostgreSQL's), which ends when the store is closed.
    fn connection_task(&self) -> BoxFuture<'_, Option<TaskId>> {
        Box::pin(async { None })
    }

    /// Lets go of the connection, ending its task, once the writer has
    /// stopped; a later call connects again.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
