//! [`Store`](tagd_core::Store) on embedded SQLite.
//!
//! One writer, many readers: every write goes through a pool of exactly one connection and
//! starts with `BEGIN IMMEDIATE`, so writers queue inside the process instead of failing with
//! `SQLITE_BUSY`; reads go through a separate read-only pool and never wait for writers (WAL).
//! Settings are explicit, see [`connect_options`].
#![forbid(unsafe_code)]

mod rows;

use rows::{classify, Conn};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;
use tagd_core::{Error, PoolStats, Result};
use tagd_sql::{DbError, Driver, Locks, SqlConn, SqlStore, SqlTx};

/// How long a connection waits for another process's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Readers: enough for the two cores of a small machine to never wait on a connection.
const READER_CONNECTIONS: u32 = 8;

/// The SQLite driver: a single-connection writer pool and a read-only reader pool.
#[derive(Clone)]
pub struct SqliteDriver {
    writer: SqlitePool,
    reader: SqlitePool,
}

/// The store on SQLite.
pub type SqliteStore = SqlStore<SqliteDriver>;

/// Opens (creating if missing) the database at `url`, applies migrations, and returns the
/// store.
pub async fn open(url: &str) -> Result<SqliteStore> {
    Ok(SqlStore::new(SqliteDriver::connect(url).await?))
}

/// Connection settings, chosen rather than inherited:
/// - `journal_mode=WAL`: readers never block the writer, and the writer never blocks readers.
/// - `synchronous=FULL`: the WAL is fsynced at every commit, so an acknowledged write survives
///   a process crash *and* a power loss (NORMAL would only survive a process crash).
/// - `busy_timeout=5s`: another process (the CLI) holding the write lock is waited for.
/// - `foreign_keys=ON`: the (org_id, id) references between tables are enforced.
pub fn connect_options(url: &str) -> Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str(url)
        .map_err(|e| Error::invalid("database", e.to_string()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true))
}

impl SqliteDriver {
    /// Opens (creating if missing) the database at `url` and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = connect_options(url)?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .map_err(Error::internal)?;
        sqlx::migrate!("./migrations")
            .run(&writer)
            .await
            .map_err(Error::internal)?;
        // An in-memory database exists once per connection: readers must share the writer.
        let reader = if url.contains(":memory:") {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READER_CONNECTIONS)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options.read_only(true))
                .await
                .map_err(Error::internal)?
        };
        Ok(SqliteDriver { writer, reader })
    }

    /// Runs `PRAGMA integrity_check` and returns its verdict (`ok` when healthy).
    pub async fn integrity_check(&self) -> Result<String> {
        sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&self.reader)
            .await
            .map_err(Error::internal)
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

#[async_trait::async_trait]
impl Driver for SqliteDriver {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    /// SQLite needs no row locks: all writes go through one connection and one
    /// `BEGIN IMMEDIATE` transaction at a time.
    fn locks(&self) -> Locks {
        Locks {
            share: "",
            update: "",
            update_assignment: "",
        }
    }

    async fn read(&self) -> Result<Box<dyn SqlConn>, DbError> {
        let conn = self.reader.acquire().await.map_err(classify)?;
        Ok(Box::new(Conn(conn)))
    }

    async fn write(&self) -> Result<Box<dyn SqlTx>, DbError> {
        let tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(classify)?;
        Ok(Box::new(Conn(tx)))
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        [("writer", &self.writer), ("reader", &self.reader)]
            .into_iter()
            .map(|(pool, p)| PoolStats {
                pool,
                size: p.size(),
                idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
                max: p.options().get_max_connections(),
            })
            .collect()
    }
}
