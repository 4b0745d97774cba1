//! The read-only connections: a few, opened as needed, each lent to one task at a time.

use crate::rows::{classify, sql_conn_via_lent, Conn, Lends};
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tagd_sql::DbError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a read waits for a free connection before the request is answered busy.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Readers {
    path: PathBuf,
    settings: String,
    max: u32,
    idle: Mutex<Vec<Conn>>,
    opened: AtomicU32,
    permits: Arc<Semaphore>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, settings: String, max: u32) -> Arc<Self> {
        Arc::new(Readers {
            path,
            settings,
            max,
            idle: Mutex::new(Vec::new()),
            opened: AtomicU32::new(0),
            permits: Arc::new(Semaphore::new(max as usize)),
        })
    }

    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<Reader, DbError> {
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| DbError::Busy("no reader connection free".into()))?
            .map_err(|_| DbError::Other("the readers are closed".into()))?;
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        Ok(Reader {
            conn: Some(conn),
            readers: self.clone(),
            _permit: permit,
        })
    }

    fn open(&self) -> Result<Conn, DbError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let connection = Connection::open_with_flags(&self.path, flags).map_err(classify)?;
        let mut conn = Conn::new(connection);
        conn.batch(&self.settings)?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }

    pub(crate) fn close(&self) {
        self.permits.close();
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// (open, idle, most).
    pub(crate) fn stats(&self) -> (u32, u32, u32) {
        let opened = self.opened.load(Ordering::Relaxed);
        let idle = self
            .idle
            .lock()
            .map_or(0, |idle| u32::try_from(idle.len()).unwrap_or(u32::MAX));
        (opened, idle, self.max)
    }
}

/// A lent connection; given back when dropped.
pub(crate) struct Reader {
    conn: Option<Conn>,
    readers: Arc<Readers>,
    _permit: OwnedSemaphorePermit,
}

impl Lends for Reader {
    fn lent(&mut self) -> Result<&mut Conn, DbError> {
        self.conn
            .as_mut()
            .ok_or_else(|| DbError::Other("the reader is gone".into()))
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let (Some(conn), Ok(mut idle)) = (self.conn.take(), self.readers.idle.lock()) {
            idle.push(conn);
        }
    }
}

sql_conn_via_lent!(Reader);

/// A reader for statements that may run long (label search): each runs under tokio's
/// `block_in_place`, so the async worker it started on hands its other tasks to another
/// worker meanwhile, and `/healthz` and short requests keep being answered.
pub(crate) struct LongReader(pub(crate) Reader);

/// Runs `f` off the async workers when the runtime can do that (multi-threaded), else inline.
fn off_workers<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[async_trait::async_trait]
impl tagd_sql::SqlConn for LongReader {
    async fn fetch_optional(
        &mut self,
        sql: &str,
        params: &[tagd_sql::Param<'_>],
    ) -> Result<Option<tagd_sql::Row>, DbError> {
        let rows = off_workers(|| self.0.lent()?.query(sql, params, true))?;
        Ok(rows.into_iter().next())
    }

    async fn fetch_all(
        &mut self,
        sql: &str,
        params: &[tagd_sql::Param<'_>],
    ) -> Result<Vec<tagd_sql::Row>, DbError> {
        off_workers(|| self.0.lent()?.query(sql, params, false))
    }

    async fn execute(&mut self, sql: &str, params: &[tagd_sql::Param<'_>]) -> Result<u64, DbError> {
        off_workers(|| self.0.lent()?.execute(sql, params))
    }
}
