//! What can go wrong with a journal.

use std::fmt;

/// Why a journal operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalError {
    /// The database could not be reached or opened. The writer retries with
    /// backoff, buffering events meanwhile (a PostgreSQL server down when
    /// the journal starts included). Returned by `start`, it means the
    /// journal never started: its SQLite file could not be opened (its
    /// directory does not exist, say).
    Unavailable(String),
    /// The database holds tables the journal did not create, or a schema
    /// from a newer version that does not say this one can write it. The
    /// journal will not write into it.
    Schema(String),
    /// A statement failed.
    Database(String),
    /// The configuration is unusable (an unparsable connection string, say).
    Config(String),
    /// The journal's writer has stopped.
    Closed,
}

impl JournalError {
    /// Whether retrying cannot help: the writer stops writing on these.
    pub fn is_permanent(&self) -> bool {
        matches!(self, JournalError::Schema(_) | JournalError::Config(_))
    }
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Unavailable(why) => write!(f, "journal database unavailable: {why}"),
            JournalError::Schema(why) => write!(f, "journal schema error: {why}"),
            JournalError::Database(why) => write!(f, "journal database error: {why}"),
            JournalError::Config(why) => write!(f, "journal configuration error: {why}"),
            JournalError::Closed => f.write_str("the journal's writer has stopped"),
        }
    }
}

impl std::error::Error for JournalError {}
