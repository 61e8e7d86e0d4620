//! The store's error type.

use std::path::PathBuf;

use rusqlite::ErrorCode;
use superserver_wire::SandboxState;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused a statement (constraint, I/O, full disk …).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// The data directory or database file could not be prepared.
    #[error("{}: {source}; check that the data directory exists and is writable", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The database was written by a newer SuperServer.
    #[error(
        "database schema version {found} is newer than this binary knows ({known}); \
         run a newer superserver or point it at another data directory"
    )]
    SchemaTooNew { found: i64, known: i64 },

    /// The operating system would not start the writer thread.
    #[error("cannot start the store's writer thread: {0}")]
    Thread(#[source] std::io::Error),

    /// The store was closed, or its writer thread is gone.
    #[error("the store is closed")]
    Closed,

    /// A row or file holds something this binary cannot read.
    #[error("database is corrupt: {0}")]
    Corrupt(String),

    /// SQLite would not put the database in WAL mode.
    #[error(
        "cannot use write-ahead logging (journal_mode is {0}); \
         put the data directory on a local filesystem"
    )]
    NoWal(String),

    /// The operation names a sandbox that does not exist.
    #[error("sandbox {0} not found")]
    SandboxNotFound(String),

    /// A unique name is taken (a tenant's name).
    #[error("{0} already exists")]
    Duplicate(String),

    /// The operation names a tenant or key that does not exist.
    #[error("{0} not found")]
    NotFound(String),

    /// Revoking this key would leave no working admin key.
    #[error("this is the last working admin key")]
    LastAdminKey,

    /// `end_sandbox` was asked to end a sandbox into `running`.
    #[error("{} is not a state a sandbox can end in", .0.as_str())]
    NotAnEndState(SandboxState),
}

/// Result of a store operation.
pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// SQLite answered BUSY or LOCKED: another connection holds the lock and
    /// the operation may succeed if tried again.
    pub(crate) fn is_busy(&self) -> bool {
        matches!(
            self,
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        )
    }

    /// The statement broke a UNIQUE constraint.
    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        )
    }

    /// The statement broke a FOREIGN KEY constraint.
    pub(crate) fn is_foreign_key_violation(&self) -> bool {
        matches!(
            self,
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
        )
    }

    /// Turn SQLite's "not a database" and "malformed" answers into
    /// [`StoreError::Corrupt`] naming the file.
    pub(crate) fn on_file(self, path: &std::path::Path) -> Self {
        match &self {
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) =>
            {
                Self::Corrupt(format!("{}: {self}", path.display()))
            }
            _ => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None))
    }

    #[test]
    fn busy_and_locked_are_retryable() {
        assert!(failure(rusqlite::ffi::SQLITE_BUSY).is_busy());
        assert!(failure(rusqlite::ffi::SQLITE_LOCKED).is_busy());
        assert!(!failure(rusqlite::ffi::SQLITE_CONSTRAINT).is_busy());
        assert!(!StoreError::Closed.is_busy());
    }

    #[test]
    fn foreign_key_violation_is_recognised() {
        assert!(failure(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY).is_foreign_key_violation());
        assert!(!failure(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY).is_foreign_key_violation());
    }

    #[test]
    fn schema_too_new_says_what_to_do() {
        let msg = StoreError::SchemaTooNew { found: 7, known: 1 }.to_string();
        assert!(msg.contains('7') && msg.contains("newer superserver"), "{msg}");
    }
}
