//! The single writer.
//!
//! One thread owns the write connection. Callers queue operations on a channel;
//! the thread takes the first, drains whatever else is queued (up to
//! [`MAX_BATCH`]), runs them all in one `BEGIN IMMEDIATE … COMMIT` — each in
//! its own SAVEPOINT, so one failing operation is rolled back alone — and only
//! after the commit (an fsync, with `synchronous=FULL`) answers every caller.
//! Under load many writes share one fsync: group commit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Result, StoreError};

/// Most operations committed in one transaction.
pub(crate) const MAX_BATCH: usize = 256;
/// Operations that may wait in the queue before callers wait to enqueue.
const QUEUE_DEPTH: usize = 4096;
/// Attempts at a transaction that SQLite answers BUSY (another process holds
/// the lock past `busy_timeout`).
const BUSY_ATTEMPTS: u32 = 8;
const BUSY_BACKOFF_FIRST: Duration = Duration::from_millis(5);
const BUSY_BACKOFF_MAX: Duration = Duration::from_millis(500);

/// A queued operation, type-erased so one channel carries them all.
trait Pending: Send {
    /// Run the operation and keep its outcome; return whether it succeeded.
    /// May be called again if the transaction holding it is retried.
    fn run(&mut self, conn: &Connection) -> bool;
    /// The transaction holding the operation failed: that is its outcome.
    fn fail(&mut self, err: StoreError);
    /// Hand the outcome to the caller.
    fn answer(self: Box<Self>);
}

struct Op<T, F> {
    f: F,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Pending for Op<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> Result<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let outcome = (self.f)(conn);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn fail(&mut self, err: StoreError) {
        self.outcome = Some(Err(err));
    }

    fn answer(self: Box<Self>) {
        // Every operation is run or failed before it is answered; `Closed` is
        // only a fallback. The caller may have gone away: nothing to do then.
        let _ = self.reply.send(self.outcome.unwrap_or(Err(StoreError::Closed)));
    }
}

enum Msg {
    Op(Box<dyn Pending>),
    /// Commit what is queued before this, then stop.
    Close(oneshot::Sender<()>),
}

/// Counters of the writer, for tests and diagnostics.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Operations in them.
    pub ops: AtomicU64,
}

/// Handle on the writer thread. Dropping it lets the thread commit what is
/// queued, then waits for it to stop.
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Msg>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<Stats>,
}

impl Writer {
    /// Start the writer thread on `conn`, an open, migrated connection.
    pub fn spawn(conn: Connection) -> Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let stats = Arc::new(Stats::default());
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(conn, rx, &thread_stats))
            .map_err(StoreError::Thread)?;
        Ok(Self { tx: Some(tx), thread: Mutex::new(Some(thread)), stats })
    }

    /// Queue `f` and wait until the transaction that ran it is committed.
    ///
    /// `f` runs on the writer thread inside a transaction; it may run more than
    /// once if SQLite reports BUSY and the transaction is retried.
    pub async fn submit<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T> + Send + 'static,
    {
        let tx = self.tx.as_ref().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        tx.send(Msg::Op(Box::new(Op { f, outcome: None, reply }))).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Commit everything queued so far, then stop the thread. Idempotent.
    pub async fn close(&self) {
        if let Some(tx) = &self.tx {
            let (ack, done) = oneshot::channel();
            if tx.send(Msg::Close(ack)).await.is_ok() {
                // An error means the thread already stopped: nothing to wait for.
                let _ = done.await;
            }
        }
        let thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = thread {
            match tokio::task::spawn_blocking(move || thread.join()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => tracing::error!("store writer thread panicked"),
                Err(e) => tracing::error!(error = %e, "could not wait for the store writer"),
            }
            self.log_stopped();
        }
    }

    fn log_stopped(&self) {
        tracing::debug!(
            commits = self.stats.commits.load(Ordering::Relaxed),
            ops = self.stats.ops.load(Ordering::Relaxed),
            "store writer stopped"
        );
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel lets the thread commit what is queued and stop;
        // waiting for it makes "last handle dropped" mean "flushed".
        drop(self.tx.take());
        let thread = self.thread.get_mut().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("store writer thread panicked");
            }
            self.log_stopped();
        }
    }
}

/// The writer thread's loop.
fn run(conn: Connection, mut rx: mpsc::Receiver<Msg>, stats: &Stats) {
    let mut batch: Vec<Box<dyn Pending>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        let mut close = None;
        match first {
            Msg::Op(op) => batch.push(op),
            Msg::Close(ack) => close = Some(ack),
        }
        while close.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Op(op)) => batch.push(op),
                Ok(Msg::Close(ack)) => close = Some(ack),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_group(&conn, &mut batch, stats);
            for op in batch.drain(..) {
                op.answer();
            }
        }
        if let Some(ack) = close {
            let _ = ack.send(());
            break;
        }
    }
    // Operations queued after a close are dropped with the receiver: their
    // callers get `Closed`.
    rx.close();
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the store's write connection");
    }
}

/// Commit `ops` in one transaction. If the transaction itself fails (not one
/// operation: those are rolled back to their savepoint), commit each operation
/// alone so that each gets its own outcome.
fn commit_group(conn: &Connection, ops: &mut [Box<dyn Pending>], stats: &Stats) {
    match with_busy_retry(|| commit_once(conn, ops)) {
        Ok(()) => {
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats.ops.fetch_add(ops.len() as u64, Ordering::Relaxed);
            tracing::trace!(ops = ops.len(), "store group committed");
        }
        Err(err) => match ops {
            [op] => op.fail(err),
            ops => {
                tracing::warn!(error = %err, ops = ops.len(), "group commit failed; committing one by one");
                for op in ops.iter_mut() {
                    commit_group(conn, std::slice::from_mut(op), stats);
                }
            }
        },
    }
}

fn commit_once(conn: &Connection, ops: &mut [Box<dyn Pending>]) -> Result<()> {
    control(conn, "BEGIN IMMEDIATE")?;
    let result = match ops {
        // Alone, an operation needs no savepoint: if it fails, the whole
        // transaction is rolled back and the failure is its outcome.
        [op] => {
            if op.run(conn) {
                control(conn, "COMMIT").map_err(Into::into)
            } else {
                // Keeps the operation's own error as its outcome (SQLite may
                // have ended the transaction already).
                if !conn.is_autocommit() {
                    if let Err(e) = control(conn, "ROLLBACK") {
                        tracing::error!(error = %e, "rolling back a failed operation");
                    }
                }
                Ok(())
            }
        }
        ops => ops
            .iter_mut()
            .try_for_each(|op| run_in_savepoint(conn, op.as_mut()))
            .and_then(|()| Ok(control(conn, "COMMIT")?)),
    };
    if result.is_err() && !conn.is_autocommit() {
        if let Err(e) = control(conn, "ROLLBACK") {
            tracing::error!(error = %e, "rolling back a failed group commit");
        }
    }
    result
}

/// Runs a transaction-control statement (`BEGIN IMMEDIATE`, `COMMIT`, …)
/// from the connection's statement cache: every commit runs a few of them,
/// and parsing each anew costs more than running it.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn run_in_savepoint(conn: &Connection, op: &mut dyn Pending) -> Result<()> {
    control(conn, "SAVEPOINT op")?;
    if !op.run(conn) {
        control(conn, "ROLLBACK TO op")?;
    }
    control(conn, "RELEASE op")?;
    Ok(())
}

/// Run `f` again, with growing pauses, while SQLite answers BUSY.
fn with_busy_retry(mut f: impl FnMut() -> Result<()>) -> Result<()> {
    let mut delay = BUSY_BACKOFF_FIRST;
    let mut attempt = 1;
    loop {
        match f() {
            Err(e) if e.is_busy() && attempt < BUSY_ATTEMPTS => {
                tracing::warn!(attempt, ?delay, "store database busy; retrying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(BUSY_BACKOFF_MAX);
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)").unwrap();
        (dir, conn)
    }

    fn insert(v: i64) -> impl FnMut(&Connection) -> Result<usize> + Send {
        move |c: &Connection| Ok(c.execute("INSERT INTO t (v) VALUES (?1)", [v])?)
    }

    /// Queue `values` as inserts before the writer starts, so they all land in
    /// its first batch; then close and run the writer to completion.
    fn run_batch(conn: Connection, values: &[i64]) -> (Vec<Result<usize>>, Stats) {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let mut answers = Vec::new();
        for &v in values {
            let (reply, answer) = oneshot::channel();
            let op = Op { f: insert(v), outcome: None, reply };
            tx.try_send(Msg::Op(Box::new(op))).unwrap_or_else(|_| panic!("queue full"));
            answers.push(answer);
        }
        let (ack, _done) = oneshot::channel();
        tx.try_send(Msg::Close(ack)).unwrap_or_else(|_| panic!("queue full"));
        let stats = Stats::default();
        run(conn, rx, &stats);
        let results = answers.into_iter().map(|mut a| a.try_recv().unwrap()).collect();
        (results, stats)
    }

    #[test]
    fn queued_ops_share_one_commit() {
        let (dir, conn) = db();
        let values: Vec<i64> = (0..100).collect();
        let (results, stats) = run_batch(conn, &values);
        assert!(results.iter().all(|r| matches!(r, Ok(1))));
        assert_eq!(stats.commits.load(Ordering::Relaxed), 1);
        assert_eq!(stats.ops.load(Ordering::Relaxed), 100);
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        let n: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 100);
    }

    #[test]
    fn batches_are_capped() {
        let (_dir, conn) = db();
        let values: Vec<i64> = (0..(MAX_BATCH as i64 * 2 + 1)).collect();
        let (results, stats) = run_batch(conn, &values);
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(stats.commits.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn failing_op_is_rolled_back_alone() {
        let (dir, conn) = db();
        // The second 2 breaks the UNIQUE constraint; the ops around it commit.
        let (results, stats) = run_batch(conn, &[1, 2, 2, 3]);
        assert!(matches!(results[0], Ok(1)));
        assert!(matches!(results[1], Ok(1)));
        assert!(matches!(results[2], Err(StoreError::Sqlite(_))), "{:?}", results[2]);
        assert!(matches!(results[3], Ok(1)));
        assert_eq!(stats.commits.load(Ordering::Relaxed), 1);
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        let vs: Vec<i64> = conn
            .prepare("SELECT v FROM t ORDER BY v")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(vs, vec![1, 2, 3]);
    }

    #[test]
    fn busy_database_is_retried_then_committed() {
        let (dir, conn) = db();
        conn.busy_timeout(Duration::from_millis(1)).unwrap();
        // Another connection holds the write lock for a while.
        let other = Connection::open(dir.path().join("w.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(60));
            other.execute_batch("COMMIT").unwrap();
        });
        let (results, stats) = run_batch(conn, &[7]);
        holder.join().unwrap();
        assert!(matches!(results[0], Ok(1)), "{:?}", results[0]);
        assert_eq!(stats.commits.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn busy_forever_fails_each_op() {
        let (dir, conn) = db();
        conn.busy_timeout(Duration::from_millis(1)).unwrap();
        let other = Connection::open(dir.path().join("w.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (results, stats) = run_batch(conn, &[1, 2]);
        assert!(results.iter().all(|r| matches!(r, Err(e) if e.is_busy())), "{results:?}");
        assert_eq!(stats.commits.load(Ordering::Relaxed), 0);
        other.execute_batch("ROLLBACK").unwrap();
    }
}
