//! Group commit for SQLite's single writer.
//!
//! Every write runs inside a savepoint of one shared transaction on the one writer connection;
//! a committer task commits that transaction whenever it gets the connection, and every write
//! whose savepoint was in it is answered only then. Writers that queue while a commit (an
//! fsync) is under way all land in the next transaction, so under load many requests share
//! one fsync, and an acknowledged write is still a committed, fsynced one.
//!
//! A write that fails, or whose request is dropped mid-way, leaves its savepoint marked
//! `dirty`; whoever takes the connection next rolls back to it first, so the other writes of
//! the batch are unaffected.

use crate::checkpoint::WalCopy;
use crate::rows::{sql_conn_via_lent, Conn, Lends};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagd_sql::{DbError, SqlTx};
use tokio::sync::{oneshot, Mutex, Notify, OwnedMutexGuard};
use tokio::task::JoinHandle;

type Waiter = oneshot::Sender<Result<(), DbError>>;

/// After a whole-WAL copy that a reader of an older snapshot (a long export) kept from
/// finishing, how long writes go on before the next try.
const COPY_BACKOFF: Duration = Duration::from_secs(10);

struct WriterState {
    conn: Option<Conn>,
    /// A shared transaction is open.
    open: bool,
    /// The last savepoint was left neither released nor rolled back.
    dirty: bool,
    /// A `BEGIN` was sent but its answer never read (its request was dropped): whether a
    /// transaction is open is unknown until the next holder rolls back.
    unsure: bool,
    /// Writes whose savepoints were released into the open transaction.
    waiting: Vec<Waiter>,
    /// Set by the checkpointer when the writer should copy the whole WAL (`checkpoint.rs`).
    wal_too_long: Arc<AtomicBool>,
    /// After a copy that a reader kept from finishing, none is tried before this.
    copy_not_before: Option<Instant>,
}

/// The writer connection, shared by all writes, and its committer.
pub(crate) struct GroupWriter {
    state: Arc<Mutex<WriterState>>,
    wake: Arc<Notify>,
    committer: JoinHandle<()>,
}

async fn run(conn: &mut Conn, sql: &str) -> Result<(), DbError> {
    conn.batch(sql)
}

impl WriterState {
    fn conn(&mut self) -> Result<&mut Conn, DbError> {
        self.conn
            .as_mut()
            .ok_or_else(|| DbError::Other("the writer is closed".into()))
    }

    /// Undoes what a failed or abandoned write left in the transaction.
    async fn settle(&mut self) -> Result<(), DbError> {
        if self.unsure {
            // No write of a batch can be pending here: `BEGIN` is only sent with none open.
            let _ = run(self.conn()?, "ROLLBACK").await;
            self.unsure = false;
            self.open = false;
            self.dirty = false;
        }
        if self.dirty {
            let conn = self.conn()?;
            match run(conn, "ROLLBACK TO w").await {
                Ok(_) => {
                    run(conn, "RELEASE w").await?;
                }
                // The write was dropped between its `RELEASE` and our answer: nothing to undo.
                Err(DbError::Other(m)) if m.contains("no such savepoint") => {}
                Err(e) => return Err(e),
            }
            self.dirty = false;
        }
        Ok(())
    }

    /// Commits the open transaction and answers every write in it.
    async fn commit(&mut self) {
        if !self.open {
            return;
        }
        // The fsync: on a thread of its own, not an async worker's.
        let outcome = match self.conn.take() {
            Some(mut conn) => {
                match tokio::task::spawn_blocking(move || (conn.batch("COMMIT"), conn)).await {
                    Ok((outcome, conn)) => {
                        self.conn = Some(conn);
                        outcome
                    }
                    Err(e) => Err(DbError::Other(format!("the commit did not finish: {e}"))),
                }
            }
            None => Err(DbError::Other("the writer is closed".into())),
        };
        if outcome.is_err() {
            if let Ok(conn) = self.conn() {
                let _ = run(conn, "ROLLBACK").await;
            }
        }
        self.open = false;
        for waiter in self.waiting.drain(..) {
            let _ = waiter.send(outcome.clone());
        }
        let due = self.copy_not_before.is_none_or(|at| Instant::now() >= at);
        if due && self.wal_too_long.swap(false, Ordering::Relaxed) {
            match self.copy_whole_wal().await {
                WalCopy::Whole => {}
                WalCopy::Again => self.wal_too_long.store(true, Ordering::Relaxed),
                WalCopy::ReaderHeld => {
                    self.copy_not_before = Some(Instant::now() + COPY_BACKOFF);
                }
            }
        }
    }

    /// Copies the rest of the WAL into the database between two transactions of the writer:
    /// only with no write in between can a checkpoint reach the WAL's end, so that the next
    /// write starts it over. Writes queue meanwhile.
    async fn copy_whole_wal(&mut self) -> WalCopy {
        let Some(conn) = self.conn.take() else {
            return WalCopy::Again;
        };
        match tokio::task::spawn_blocking(move || {
            (crate::checkpoint::copy_whole_wal(&conn.0), conn)
        })
        .await
        {
            Ok((copied, conn)) => {
                self.conn = Some(conn);
                copied
            }
            Err(e) => {
                tracing::warn!(error = %e, "the WAL copy did not finish");
                WalCopy::ReaderHeld
            }
        }
    }
}

impl GroupWriter {
    pub(crate) fn new(conn: Conn, wal_too_long: Arc<AtomicBool>) -> Self {
        let state = Arc::new(Mutex::new(WriterState {
            conn: Some(conn),
            open: false,
            dirty: false,
            unsure: false,
            waiting: Vec::new(),
            wal_too_long,
            copy_not_before: None,
        }));
        let wake = Arc::new(Notify::new());
        let committer = tokio::spawn(commit_loop(state.clone(), wake.clone()));
        GroupWriter {
            state,
            wake,
            committer,
        }
    }

    /// A savepoint in the shared transaction, holding the writer until committed or dropped.
    pub(crate) async fn begin(&self) -> Result<GroupTx, DbError> {
        let mut guard = self.state.clone().lock_owned().await;
        let outcome = async {
            guard.settle().await?;
            if !guard.open {
                guard.unsure = true;
                let begun = run(guard.conn()?, "BEGIN IMMEDIATE").await;
                guard.unsure = false;
                begun?;
                guard.open = true;
            }
            // Marked first: a write dropped while its savepoint is being made is undone too.
            guard.dirty = true;
            run(guard.conn()?, "SAVEPOINT w").await?;
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            drop(guard);
            self.wake.notify_one();
            return Err(e);
        }
        Ok(GroupTx {
            guard: Some(guard),
            wake: self.wake.clone(),
        })
    }

    /// Whether a write holds the writer now.
    pub(crate) fn busy(&self) -> bool {
        self.state.try_lock().is_err()
    }

    /// Commits what is pending and closes the connection.
    pub(crate) async fn close(&self) {
        self.committer.abort();
        let mut state = self.state.lock().await;
        let _ = state.settle().await;
        state.commit().await;
        state.conn = None;
    }
}

async fn commit_loop(state: Arc<Mutex<WriterState>>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let mut state = state.lock().await;
        if state.settle().await.is_err() {
            state.dirty = false;
            if let Ok(conn) = state.conn() {
                let _ = run(conn, "ROLLBACK").await;
            }
            state.open = false;
            let failed = DbError::Other("a write left the shared transaction unusable".into());
            for waiter in state.waiting.drain(..) {
                let _ = waiter.send(Err(failed.clone()));
            }
            continue;
        }
        state.commit().await;
    }
}

/// One write's savepoint.
pub(crate) struct GroupTx {
    guard: Option<OwnedMutexGuard<WriterState>>,
    wake: Arc<Notify>,
}

impl Lends for GroupTx {
    fn lent(&mut self) -> Result<&mut Conn, DbError> {
        self.guard
            .as_mut()
            .ok_or_else(|| DbError::Other("the write is over".into()))?
            .conn()
    }
}

impl Drop for GroupTx {
    fn drop(&mut self) {
        // Not committed: the savepoint stays marked dirty for the next holder to undo.
        if self.guard.take().is_some() {
            self.wake.notify_one();
        }
    }
}

#[async_trait::async_trait]
impl SqlTx for GroupTx {
    async fn commit(mut self: Box<Self>) -> Result<(), DbError> {
        let mut guard = self
            .guard
            .take()
            .ok_or_else(|| DbError::Other("the write is over".into()))?;
        let released = match guard.conn() {
            Ok(conn) => run(conn, "RELEASE w").await,
            Err(e) => Err(e),
        };
        if let Err(e) = released {
            // Left dirty: undone by the next holder.
            drop(guard);
            self.wake.notify_one();
            return Err(e);
        }
        guard.dirty = false;
        let (answer, answered) = oneshot::channel();
        guard.waiting.push(answer);
        drop(guard);
        self.wake.notify_one();
        answered
            .await
            .unwrap_or_else(|_| Err(DbError::Other("the committer stopped".into())))
    }
}

sql_conn_via_lent!(GroupTx);
