//! [`Store`](tagd_core::Store) on embedded SQLite.
//!
//! One writer, a few readers: every write runs as a savepoint of a shared `BEGIN IMMEDIATE`
//! transaction on the one writer connection, committed for many writes at once (group commit,
//! see `group_commit.rs`), so writers queue inside the process instead of failing with
//! `SQLITE_BUSY` and share fsyncs; reads go through separate read-only connections and never
//! wait for writers (WAL). Statements run inline on the calling task (`rows.rs`); settings are
//! explicit, see [`SETTINGS`].
#![forbid(unsafe_code)]

mod checkpoint;
mod group_commit;
mod readers;
mod rows;

use checkpoint::Checkpointer;
use group_commit::GroupWriter;
use readers::Readers;
use rows::Conn;
use rusqlite::{Connection, OpenFlags};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection as _};
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tagd_core::{Error, PoolStats, Result};
use tagd_sql::{DbError, Driver, Locks, SqlConn, SqlStore, SqlTx, VersionScheme};

/// How long a connection waits for another process's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Readers. Statements run inline, so two cores are busy with two; a few more cover reads
/// that wait on something else (a streamed search waits for its client).
const READER_CONNECTIONS: u32 = 4;

/// Connection settings, chosen rather than inherited, for every connection:
/// - `journal_mode=WAL`: readers never block the writer, and the writer never blocks readers.
/// - `synchronous=FULL`: the WAL is fsynced at every commit, so an acknowledged write survives
///   a process crash *and* a power loss (NORMAL would only survive a process crash).
/// - `busy_timeout=5000`: another process (the CLI) holding the write lock is waited for.
/// - `foreign_keys=ON`: the (org_id, id) references between tables are enforced.
/// - `temp_store=MEMORY`: each write is a savepoint (group commit), and SQLite keeps a
///   savepoint's undo pages in a statement journal, a temporary file by default; in memory
///   it costs no write system calls. It holds only pages a write changed, and dies with the
///   transaction, so durability is unaffected.
/// - `wal_autocheckpoint=0`: checkpoints run on their own connection ([`Checkpointer`]).
/// - `journal_size_limit`: when the WAL starts over, its file is trimmed to the size past
///   which the writer copies it whole (`checkpoint.rs`), so a burst does not leave it large.
///
/// The writer also gets `cache_size=-32768`: 32 MiB of pages instead of SQLite's 2 MiB,
/// taken only as pages are read, so a bulk import does not re-read its index pages from the
/// operating system for every batch. Readers keep the default: the operating system caches
/// the file for them anyway.
pub const SETTINGS: [(&str, &str); 7] = [
    ("journal_mode", "WAL"),
    ("synchronous", "FULL"),
    ("busy_timeout", "5000"),
    ("foreign_keys", "ON"),
    ("temp_store", "MEMORY"),
    ("wal_autocheckpoint", "0"),
    ("journal_size_limit", "134217728"),
];
const WRITER_SETTINGS: &str = "PRAGMA cache_size = -32768;";

pub(crate) fn settings_sql() -> String {
    SETTINGS
        .iter()
        .map(|(name, value)| format!("PRAGMA {name} = {value};"))
        .collect()
}

/// The SQLite driver: one writer connection shared by group commit, and read-only readers.
#[derive(Clone)]
pub struct SqliteDriver {
    group: Arc<GroupWriter>,
    /// `None` for an in-memory database, which lives in one connection: reads then go
    /// through the writer.
    readers: Option<Arc<Readers>>,
    checkpointer: Option<Arc<Checkpointer>>,
}

/// The store on SQLite.
pub type SqliteStore = SqlStore<SqliteDriver>;

/// Opens (creating if missing) the database at `url`, applies migrations, and returns the
/// store.
pub async fn open(url: &str) -> Result<SqliteStore> {
    SqlStore::open(SqliteDriver::connect(url).await?).await
}

/// The [`SETTINGS`] as sqlx connection options for `url`, for the migrations.
fn connect_options(url: &str) -> Result<SqliteConnectOptions> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| Error::invalid("database", e.to_string()))?
        .create_if_missing(true);
    Ok(SETTINGS.iter().fold(options, |options, (name, value)| {
        options.pragma(*name, *value)
    }))
}

impl SqliteDriver {
    /// Opens (creating if missing) the database at `url` and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        if url.contains(":memory:") {
            return Self::in_memory();
        }
        let options = connect_options(url)?;
        let path = options.get_filename().to_path_buf();
        // Migrations through sqlx, which keeps their record (`_sqlx_migrations`).
        let mut migrating = options.connect().await.map_err(Error::internal)?;
        sqlx::migrate!("./migrations")
            .run(&mut migrating)
            .await
            .map_err(Error::internal)?;
        migrating.close().await.map_err(Error::internal)?;

        let mut writer = Conn::new(Connection::open(&path).map_err(Error::internal)?);
        writer
            .batch(&format!("{}{WRITER_SETTINGS}", settings_sql()))
            .map_err(Error::internal)?;
        let wal_too_long = Arc::new(AtomicBool::new(false));
        Ok(SqliteDriver {
            group: Arc::new(GroupWriter::new(writer, wal_too_long.clone())),
            readers: Some(Readers::new(
                path.clone(),
                settings_sql(),
                READER_CONNECTIONS,
            )),
            checkpointer: Some(Arc::new(Checkpointer::start(&path, wal_too_long)?)),
        })
    }

    fn in_memory() -> Result<Self> {
        let flags = OpenFlags::default();
        let mut writer =
            Conn::new(Connection::open_with_flags(":memory:", flags).map_err(Error::internal)?);
        writer.batch(&settings_sql()).map_err(Error::internal)?;
        for migration in sqlx::migrate!("./migrations").iter() {
            writer.batch(&migration.sql).map_err(Error::internal)?;
        }
        Ok(SqliteDriver {
            group: Arc::new(GroupWriter::new(writer, Arc::default())),
            readers: None,
            checkpointer: None,
        })
    }

    /// Runs `PRAGMA integrity_check` and returns its verdict (`ok` when healthy).
    pub async fn integrity_check(&self) -> Result<String> {
        let mut conn = self.read().await.map_err(Error::internal)?;
        let row = conn
            .fetch_optional("PRAGMA integrity_check", &[])
            .await
            .map_err(Error::internal)?
            .ok_or_else(|| Error::internal("integrity_check answered nothing"))?;
        row.text("integrity_check")
    }

    /// `synchronous` (2 is FULL) and `journal_mode` as the writer connection, the one every
    /// write commits through, has them.
    pub async fn writer_durability(&self) -> Result<(i64, String)> {
        // A savepoint that is never committed: rolled back when dropped.
        let mut tx = self.group.begin().await.map_err(Error::internal)?;
        let mut read = async |pragma: &str| -> Result<tagd_sql::Row> {
            tx.fetch_optional(&format!("PRAGMA {pragma}"), &[])
                .await
                .map_err(Error::internal)?
                .ok_or_else(|| Error::internal(format!("PRAGMA {pragma} answered nothing")))
        };
        let synchronous = read("synchronous").await?.int("synchronous")?;
        let journal = read("journal_mode").await?.text("journal_mode")?;
        Ok((synchronous, journal))
    }

    pub async fn close(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.stop();
        }
        if let Some(readers) = &self.readers {
            readers.close();
        }
        self.group.close().await;
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

    fn version_scheme(&self) -> VersionScheme {
        VersionScheme::Counter
    }

    async fn read(&self) -> Result<Box<dyn SqlConn>, DbError> {
        match &self.readers {
            Some(readers) => Ok(Box::new(readers.acquire().await?)),
            // In memory: a savepoint never committed, rolled back when the read is done.
            None => Ok(Box::new(self.group.begin().await?)),
        }
    }

    async fn read_long(&self) -> Result<Box<dyn SqlConn>, DbError> {
        match &self.readers {
            Some(readers) => Ok(Box::new(readers::LongReader(readers.acquire().await?))),
            None => self.read().await,
        }
    }

    /// A savepoint of the shared transaction, committed with its batch (group commit).
    async fn write(&self) -> Result<Box<dyn SqlTx>, DbError> {
        Ok(Box::new(self.group.begin().await?))
    }

    /// Two: while one batch waits for its commit's fsync, the next gathers the writes that
    /// arrive meanwhile and waits for the writer.
    fn coalesced_batches(&self) -> usize {
        2
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        let mut stats = vec![PoolStats {
            pool: "writer",
            size: 1,
            idle: u32::from(!self.group.busy()),
            max: 1,
        }];
        if let Some(readers) = &self.readers {
            let (size, idle, max) = readers.stats();
            stats.push(PoolStats {
                pool: "reader",
                size,
                idle,
                max,
            });
        }
        stats
    }
}
