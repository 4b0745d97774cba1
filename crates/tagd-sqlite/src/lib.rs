//! [`Store`](tagd_core::Store) on embedded SQLite.
//!
//! One writer, many readers: every write runs as a savepoint of a shared `BEGIN IMMEDIATE`
//! transaction on the one writer connection, committed for many writes at once (group commit,
//! see `group_commit.rs`), so writers queue inside the process instead of failing with
//! `SQLITE_BUSY` and share fsyncs; reads go through a separate read-only pool and never wait
//! for writers (WAL). Settings are explicit, see [`connect_options`].
#![forbid(unsafe_code)]

mod group_commit;
mod rows;

use group_commit::GroupWriter;
use rows::{classify, Conn};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::ConnectOptions;
use sqlx::SqlitePool;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tagd_core::{Error, PoolStats, Result};
use tagd_sql::{DbError, Driver, Locks, SqlConn, SqlStore, SqlTx};

/// How long a connection waits for another process's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Readers. Each runs its statements on its own thread, so more readers than cores only add
/// thread switches: on two cores, 8 readers served a 90/10 read/write load slower, with a
/// worse tail, than 4 (bench/run.sh, W4).
const READER_CONNECTIONS: u32 = 4;
/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// The SQLite driver: one writer connection shared by group commit, and a read-only reader
/// pool.
#[derive(Clone)]
pub struct SqliteDriver {
    writer: SqlitePool,
    reader: SqlitePool,
    group: Arc<GroupWriter>,
    checkpointer: Option<Arc<Checkpointer>>,
    /// An in-memory database lives in one connection: reads then go through the writer.
    in_memory: bool,
}

/// Copies the WAL into the database file from its own connection, off the write path.
///
/// SQLite's default (`wal_autocheckpoint=1000`) runs a checkpoint inside the `COMMIT` that
/// grows the WAL past 1,000 pages, and with group commit every waiting write waits for it:
/// it was the 60 ms p99 of a 90/10 read/write load. The writer's automatic checkpoint is off
/// (`wal_autocheckpoint=0`), and this task runs a `PASSIVE` checkpoint every
/// [`CHECKPOINT_EVERY`] instead, which never blocks the writer or readers. A fully copied WAL
/// is reused from its start by the next write, so it does not grow without bound.
struct Checkpointer(tokio::task::JoinHandle<()>);

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Checkpointer {
    async fn start(options: SqliteConnectOptions) -> Result<Self> {
        let mut conn = options.connect().await.map_err(Error::internal)?;
        Ok(Checkpointer(tokio::spawn(async move {
            let mut every = tokio::time::interval(CHECKPOINT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&mut conn)
                    .await
                {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        })))
    }
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
/// - `temp_store=MEMORY`: each write is a savepoint (group commit), and SQLite keeps a
///   savepoint's undo pages in a statement journal, a temporary file by default; in memory
///   it costs no write system calls. It holds only pages a write changed, and dies with the
///   transaction, so durability is unaffected.
/// - `wal_autocheckpoint=0`: checkpoints run on their own connection ([`Checkpointer`]).
///
/// The writer also gets `cache_size=-32768`: 32 MiB of pages instead of SQLite's 2 MiB,
/// taken only as pages are read, so a bulk import does not re-read its index pages from the
/// operating system for every batch. Readers keep the default: they are many, and the
/// operating system caches the file for them anyway.
pub fn connect_options(url: &str) -> Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str(url)
        .map_err(|e| Error::invalid("database", e.to_string()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        .pragma("temp_store", "memory")
        .pragma("wal_autocheckpoint", "0"))
}

impl SqliteDriver {
    /// Opens (creating if missing) the database at `url` and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = connect_options(url)?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone().pragma("cache_size", "-32768"))
            .await
            .map_err(Error::internal)?;
        sqlx::migrate!("./migrations")
            .run(&writer)
            .await
            .map_err(Error::internal)?;
        let group = Arc::new(GroupWriter::new(
            writer.acquire().await.map_err(Error::internal)?,
        ));
        let in_memory = url.contains(":memory:");
        let checkpointer = if in_memory {
            None
        } else {
            Some(Arc::new(Checkpointer::start(options.clone()).await?))
        };
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READER_CONNECTIONS)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options.read_only(true))
                .await
                .map_err(Error::internal)?
        };
        Ok(SqliteDriver {
            writer,
            reader,
            group,
            checkpointer,
            in_memory,
        })
    }

    /// Runs `PRAGMA integrity_check` and returns its verdict (`ok` when healthy).
    pub async fn integrity_check(&self) -> Result<String> {
        sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&self.reader)
            .await
            .map_err(Error::internal)
    }

    pub async fn close(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.0.abort();
        }
        self.group.close().await;
        self.reader.close().await;
        self.writer.close().await;
    }
}

#[async_trait::async_trait]
impl Driver for SqliteDriver {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    /// SQLite needs no row locks: all writes go through one connection, one at a time.
    fn locks(&self) -> Locks {
        Locks {
            share: "",
            update: "",
            update_assignment: "",
        }
    }

    async fn read(&self) -> Result<Box<dyn SqlConn>, DbError> {
        if self.in_memory {
            // A savepoint never committed: rolled back when the read is done.
            return Ok(Box::new(self.group.begin().await?));
        }
        let conn = self.reader.acquire().await.map_err(classify)?;
        Ok(Box::new(Conn(conn)))
    }

    /// A savepoint of the shared transaction, committed with its batch (group commit).
    async fn write(&self) -> Result<Box<dyn SqlTx>, DbError> {
        Ok(Box::new(self.group.begin().await?))
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
