//! The one [`Store`] over SQL. The queries, their order and their transactions are written
//! here once; a [`Driver`] (`tagd-sqlite`, `tagd-postgres`) supplies connections, transactions,
//! row locks and error classification. Both schemas share table and column names, and every
//! statement here runs unchanged on both (`$n` parameters, `ON CONFLICT`, `RETURNING`).
#![forbid(unsafe_code)]

/// Runs `$body` on a write transaction bound to `$tx` and commits it: with `record`, the
/// request's reply is recorded in the same transaction (see [`finish`]).
macro_rules! in_write {
    ($self:ident, |$tx:ident| $body:expr) => {{
        in_write!($self, &tagd_core::Recorder::none(), |$tx| $body)
    }};
    ($self:ident, $record:expr, |$tx:ident| $body:expr) => {{
        let mut $tx = $self.write().await?;
        let value = $body;
        $crate::finish($tx, value, $record).await
    }};
}

mod assignments;
mod bulk;
mod credentials;
pub mod driver;
mod groups;
mod idempotency;
mod labels;
mod pairs;
pub mod records;
mod tenants;

pub use driver::{DbError, Driver, Locks, Param, Row, SqlConn, SqlTx};

use async_trait::async_trait;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use tagd_core::*;

/// Store on any [`Driver`].
#[derive(Clone)]
pub struct SqlStore<D: Driver> {
    driver: D,
    /// The cap on tag groups of organizations without one of their own.
    default_max_tag_groups: Arc<AtomicI64>,
}

impl<D: Driver> SqlStore<D> {
    pub fn new(driver: D) -> Self {
        SqlStore {
            driver,
            default_max_tag_groups: Arc::new(AtomicI64::new(DEFAULT_MAX_TAG_GROUPS)),
        }
    }

    /// The store over a migrated database, with what the migrations could not compute in
    /// SQL filled in (the search keys of tag groups written before they existed).
    pub async fn open(driver: D) -> Result<Self> {
        let store = SqlStore::new(driver);
        let filled = in_write!(store, |tx| groups::fill_missing_search_keys(tx.as_mut())
            .await?)?;
        if filled > 0 {
            tracing::info!(filled, "search keys of existing tag groups filled in");
        }
        Ok(store)
    }

    pub fn driver(&self) -> &D {
        &self.driver
    }
}

/// A database error the rules do not expect: busy (retry) or internal.
pub(crate) fn internal(e: DbError) -> Error {
    match e {
        DbError::Busy(cause) => Error::Busy(cause),
        other => Error::Internal(other.to_string()),
    }
}

/// The row a `RETURNING` statement must produce.
pub(crate) fn one(row: Option<Row>) -> Result<Row> {
    row.ok_or_else(|| Error::internal("the statement returned no row"))
}

impl<D: Driver> SqlStore<D> {
    pub(crate) async fn read(&self) -> Result<Box<dyn SqlConn>> {
        self.driver.read().await.map_err(internal)
    }

    pub(crate) async fn write(&self) -> Result<Box<dyn SqlTx>> {
        self.driver.write().await.map_err(internal)
    }
}

/// Commits a write, with the reply `record` renders of its result recorded in the same
/// transaction when the request claimed an idempotency key; reports the commit's progress.
pub(crate) async fn finish<T>(
    mut tx: Box<dyn SqlTx>,
    value: T,
    record: &tagd_core::Recorder<T>,
) -> Result<T> {
    let recorded = match record.to_record(&value) {
        Some((claim, reply)) => {
            idempotency::record_with_effect(tx.as_mut(), claim, &reply).await?;
            true
        }
        None => false,
    };
    record.committing(true);
    let committed = tx.commit().await;
    record.committing(false);
    committed.map_err(internal)?;
    if recorded {
        record.recorded();
    }
    Ok(value)
}

#[async_trait]
impl<D: Driver> Store for SqlStore<D> {
    fn backend(&self) -> &'static str {
        self.driver.name()
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.read().await?;
        conn.fetch_optional("SELECT 1 AS one", &[])
            .await
            .map(|_| ())
            .map_err(internal)
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.driver.pool_stats()
    }
}
