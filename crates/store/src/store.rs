//! The [`Store`] handle: opening, closing, and the read and write paths.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::error::{Result, StoreError};
use crate::migrate::migrate;
use crate::pool::ReadPool;
use crate::writer::Writer;

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "superserver.db";
/// Read-only connections in the pool.
const READERS: usize = 4;
/// How long SQLite itself waits for a lock before answering BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Prepared statements each connection keeps. The store runs a few dozen
/// distinct statements; with rusqlite's default of 16 the writer, which runs
/// all the writes of every subsystem, evicted and re-parsed hot ones.
pub(crate) const STATEMENT_CACHE: usize = 128;

/// Handle on the store. Cheap to clone; every clone shares one writer thread
/// and one read pool. Dropping the last handle (or [`Store::close`]) commits
/// what is queued and stops the writer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    readers: Arc<ReadPool>,
    writer: Writer,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl Store {
    /// Open (creating if needed) `data_dir/superserver.db` and bring its
    /// schema up to date.
    ///
    /// Blocking: call it at start-up, before serving (or from
    /// `spawn_blocking`). Needs no runtime itself; the other methods do.
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io { path: data_dir.to_path_buf(), source })?;
        let path = data_dir.join(DB_FILE);
        let mut conn = open_writer(&path).map_err(|e| e.on_file(&path))?;
        migrate(&mut conn, now_ms()).map_err(|e| e.on_file(&path))?;
        let readers = ReadPool::open(&path, READERS, BUSY_TIMEOUT)?;
        let writer = Writer::spawn(conn)?;
        tracing::debug!(path = %path.display(), "store open");
        Ok(Self { inner: Arc::new(Inner { path, readers, writer }) })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Commit every write queued so far, stop the writer thread and close
    /// the read pool. Later operations fail with [`StoreError::Closed`].
    /// Idempotent.
    pub async fn close(&self) {
        self.inner.writer.close().await;
        self.inner.readers.close();
    }

    /// Run `f` on the writer thread, in a transaction shared with other
    /// queued writes, and return once that transaction is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.writer.submit(f).await
    }

    /// Run `f` on a read-only connection from the pool.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.readers.read(f).await
    }
}

/// The write connection: WAL, `synchronous=FULL`, foreign keys enforced.
fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NoWal(mode));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(conn)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn store_is_send_sync_clone() {
        assert_send_sync::<Store>();
    }

    #[test]
    fn writer_connection_settings() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("x.db")).unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        let busy: i64 = conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous must be FULL");
        assert_eq!(fk, 1);
        assert_eq!(busy, 5000);
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), vec![0x42; 8192]).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(ref m) if m.contains(DB_FILE)), "{err}");
    }

    #[test]
    fn data_dir_that_is_a_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = Store::open(&file).unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }), "{err}");
    }

    #[tokio::test]
    async fn closed_store_refuses_work() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.close().await;
        store.close().await;
        assert!(matches!(store.count_executions().await, Err(StoreError::Closed)));
        assert!(matches!(store.write(|_| Ok(())).await, Err(StoreError::Closed)));
    }
}
