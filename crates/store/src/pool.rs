//! A small pool of read-only connections, used from blocking tasks.
//!
//! In WAL mode readers never wait for the writer, and each query sees every
//! transaction committed before it began.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::error::{Result, StoreError};

pub(crate) struct ReadPool {
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection: a reader waits here, not on a thread.
    permits: Arc<Semaphore>,
}

impl ReadPool {
    pub fn open(path: &Path, size: usize, busy_timeout: Duration) -> Result<Arc<Self>> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let idle = (0..size)
            .map(|_| {
                let conn = Connection::open_with_flags(path, flags)?;
                conn.busy_timeout(busy_timeout)?;
                conn.set_prepared_statement_cache_capacity(crate::store::STATEMENT_CACHE);
                conn.pragma_update(None, "query_only", true)?;
                Ok(conn)
            })
            .collect::<Result<Vec<_>>>()
            .map_err(|e| e.on_file(path))?;
        Ok(Arc::new(Self { idle: Mutex::new(idle), permits: Arc::new(Semaphore::new(size)) }))
    }

    /// Run `f` on a pooled connection in a blocking task.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits).acquire_owned().await.map_err(|_| StoreError::Closed)?;
        let pool = Arc::clone(self);
        // The permit moves into the task: if the caller stops waiting, the
        // connection stays counted as busy until the task is done with it.
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let lease = Lease { conn: pool.take(), pool: &pool };
            f(lease.conn.as_ref().ok_or(StoreError::Closed)?)
        });
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::Closed),
        }
    }

    /// Refuse further reads and close the idle connections.
    pub fn close(&self) {
        self.permits.close();
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    fn take(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop()
    }

    fn give_back(&self, conn: Connection) {
        if !self.permits.is_closed() {
            self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
        }
    }
}

/// A connection out of the pool; goes back even if the reader panics.
struct Lease<'a> {
    pool: &'a ReadPool,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}
