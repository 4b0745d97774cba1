//! [`Store`](tagd_core::Store) on PostgreSQL.
//!
//! One pool; every write is one transaction at READ COMMITTED. Concurrent writers of the same
//! row queue on row locks (`FOR UPDATE` on the assignment, `FOR SHARE` on its group), and
//! first inserts race through `ON CONFLICT DO NOTHING`, so no update is lost and no request
//! fails because another touched the same row.
#![forbid(unsafe_code)]

mod layout;
mod rows;
mod versions;

pub use layout::{Layout, UNPARTITIONED_TABLES};
use rows::{classify, Conn};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;
use tagd_core::{Error, PoolStats, Result};
pub use tagd_sql::VersionScheme;
use tagd_sql::{DbError, Driver, Locks, SqlConn, SqlStore, SqlTx};
pub use versions::scheme_name;

/// Default size of the connection pool.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// Transactions of coalesced single writes running at once (`tagd-sql`'s `coalesce.rs`).
const COALESCED_BATCHES: usize = 4;

/// Import batches of disjoint users written at once.
const IMPORT_STREAMS: usize = 2;

/// The PostgreSQL driver: one pool.
#[derive(Clone)]
pub struct PgDriver {
    pool: PgPool,
    /// The pool's name in `/metrics`.
    pool_name: &'static str,
    /// How this database makes change-log versions (`settings`, read at connect).
    scheme: VersionScheme,
}

/// The store on PostgreSQL.
pub type PgStore = SqlStore<PgDriver>;

/// Connects to `url` (`postgres://...`), applies migrations, and returns the store.
pub async fn open(url: &str) -> Result<PgStore> {
    SqlStore::open(PgDriver::connect(url).await?).await
}

impl PgDriver {
    /// Connects to `url` (`postgres://...`) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::invalid("database", e.to_string()))?;
        Self::connect_with(options, DEFAULT_MAX_CONNECTIONS).await
    }

    /// Connects with explicit options (tests use them to pin a `search_path`).
    pub async fn connect_with(options: PgConnectOptions, max_connections: u32) -> Result<Self> {
        Self::connect_with_layout(options, max_connections, Layout::Plain).await
    }

    /// Connects, and applies the migrations not yet applied with their tables laid out as
    /// `layout` says (CI's partitioned-schema run; see [`Layout`]).
    pub async fn connect_with_layout(
        options: PgConnectOptions,
        max_connections: u32,
        layout: Layout,
    ) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(Error::internal)?;
        let mut migrator = sqlx::migrate!("./migrations");
        if layout != Layout::Plain {
            let migrations = migrator.migrations.iter().cloned().map(|mut migration| {
                migration.sql = Cow::Owned(layout.apply(&migration.sql).into_owned());
                migration
            });
            migrator.migrations = Cow::Owned(migrations.collect());
        }
        migrator.run(&pool).await.map_err(Error::internal)?;
        let scheme = versions::load(&pool).await?;
        Ok(PgDriver {
            pool,
            pool_name: "main",
            scheme,
        })
    }

    /// Makes the database make change-log versions by `scheme` from now on (`tagd
    /// log-versions`; see the `versions` module); answers this driver using it. Other servers
    /// over the database read the choice when they start.
    pub async fn use_version_scheme(mut self, scheme: VersionScheme) -> Result<Self> {
        versions::store(&self.pool, scheme).await?;
        self.scheme = scheme;
        Ok(self)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait::async_trait]
impl Driver for PgDriver {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn locks(&self) -> Locks {
        Locks {
            share: "FOR SHARE",
            update: "FOR UPDATE",
            update_assignment: "FOR UPDATE OF a",
        }
    }

    fn version_scheme(&self) -> VersionScheme {
        self.scheme
    }

    async fn read(&self) -> Result<Box<dyn SqlConn>, DbError> {
        let conn = self.pool.acquire().await.map_err(classify)?;
        Ok(Box::new(Conn(conn)))
    }

    async fn write(&self) -> Result<Box<dyn SqlTx>, DbError> {
        let tx = self.pool.begin().await.map_err(classify)?;
        Ok(Box::new(Conn(tx)))
    }

    /// PostgreSQL's advice after a bulk load: without fresh statistics a table grown from
    /// (nearly) empty is planned as if it were still small, and lookups by key scan it.
    fn after_bulk(&self) -> &'static [&'static str] {
        &[
            "ANALYZE tag_groups",
            "ANALYZE users",
            "ANALYZE tag_assignments",
            "ANALYZE change_log",
        ]
    }

    /// A few transactions of coalesced writes at once: each holds one pooled connection for
    /// its statements, and PostgreSQL flushes the WAL of concurrent commits together.
    fn sweep_lock(&self) -> Option<&'static str> {
        Some("SELECT pg_try_advisory_xact_lock(hashtext('tagd expiry sweep')) AS held")
    }

    fn coalesced_batches(&self) -> usize {
        COALESCED_BATCHES
    }

    /// Two: one backend process loads a batch while another loads the next (an import is
    /// bound by PostgreSQL's work per row: foreign-key checks and index entries).
    fn import_streams(&self) -> usize {
        IMPORT_STREAMS
    }

    fn binary_collation(&self) -> &'static str {
        " COLLATE \"C\""
    }

    /// A lazy pool: its first connection opens when first acquired, on the caller's runtime.
    fn with_own_connections(&self, pool: &'static str, max_connections: u32) -> Self {
        let options = self.pool.connect_options().as_ref().clone();
        PgDriver {
            pool: PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(5))
                .connect_lazy_with(options),
            pool_name: pool,
            scheme: self.scheme,
        }
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        vec![PoolStats {
            pool: self.pool_name,
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }]
    }
}
