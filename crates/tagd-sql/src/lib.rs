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
    // A write the database rolled back for a conflict runs again, a few times: the body
    // must be safe to run more than once (it reads its arguments, it does not consume them).
    ($self:ident, $record:expr, |$tx:ident| $body:expr) => {{
        let mut conflicts = 0;
        loop {
            let attempt: tagd_core::Result<_> = async {
                let mut $tx = $self.write().await?;
                let value = $body;
                $self.finish($tx, value, $record).await
            }
            .await;
            match attempt {
                Err(e) if $crate::conflicts::retry(&e, &mut conflicts).await => continue,
                outcome => break outcome,
            }
        }
    }};
}

mod assignments;
mod bulk;
mod coalesce;
mod conflicts;
mod credentials;
pub mod driver;
mod expiry;
mod groups;
mod history;
mod idempotency;
mod labels;
pub mod log;
mod members;
mod pairs;
pub mod records;
mod saved_segments;
mod segments;
mod set_writes;
mod tenants;
mod webhooks;

pub use driver::{copy_line, DbError, Driver, Locks, Param, Row, SqlConn, SqlTx, VersionScheme};

use async_trait::async_trait;
use log::WriteTx;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock};
use tagd_core::log::{ChangeSink, LogHeads, LogPage, TagChange};
use tagd_core::*;

/// Store on any [`Driver`].
#[derive(Clone)]
pub struct SqlStore<D: Driver> {
    driver: D,
    /// The cap on tag groups of organizations without one of their own.
    default_max_tag_groups: Arc<AtomicI64>,
    /// Told of each write's change-log entries once committed (the server's index).
    sink: Arc<OnceLock<Arc<dyn ChangeSink>>>,
    /// Single writes waiting to share a transaction.
    coalescer: Arc<coalesce::Coalescer>,
}

impl<D: Driver> SqlStore<D> {
    pub fn new(driver: D) -> Self {
        SqlStore {
            driver,
            default_max_tag_groups: Arc::new(AtomicI64::new(DEFAULT_MAX_TAG_GROUPS)),
            sink: Arc::new(OnceLock::new()),
            coalescer: Arc::default(),
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
        DbError::Conflict(cause) => Error::Conflict(cause),
        DbError::OutcomeUnknown(cause) => Error::OutcomeUnknown(cause),
        other => Error::Internal(other.to_string()),
    }
}

/// `$first, $first+1, ...`: `n` placeholders, for an `IN (...)` list.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The row a `RETURNING` statement must produce.
pub(crate) fn one(row: Option<Row>) -> Result<Row> {
    row.ok_or_else(|| Error::internal("the statement returned no row"))
}

impl<D: Driver> SqlStore<D> {
    pub(crate) async fn read(&self) -> Result<Box<dyn SqlConn>> {
        self.driver.read().await.map_err(internal)
    }

    pub(crate) async fn write(&self) -> Result<WriteTx> {
        self.driver
            .write()
            .await
            .map(WriteTx::new)
            .map_err(internal)
    }
}

impl<D: Driver> SqlStore<D> {
    /// Commits a write: its change-log entries get their versions and are written, the reply
    /// `record` renders of its result is recorded when the request claimed an idempotency
    /// key, all in the same transaction; then the sink hears of the entries and the recorder
    /// of the commit's progress and version.
    pub(crate) async fn finish<T>(
        &self,
        mut tx: WriteTx,
        value: T,
        record: &tagd_core::Recorder<T>,
    ) -> Result<T> {
        let written = log::flush(&mut tx, self.driver.version_scheme()).await?;
        let recorded = match record.to_record(&value) {
            Some((claim, reply)) => {
                idempotency::record_with_effect(&mut tx, claim, &reply).await?;
                true
            }
            None => false,
        };
        record.committing(true);
        let committed = Box::new(tx).commit().await;
        record.committing(false);
        committed.map_err(internal)?;
        if recorded {
            record.recorded();
        }
        for (_, entries) in &written {
            if let Some(last) = entries.last() {
                record.committed_version(last.version);
            }
        }
        self.announce(&written);
        Ok(value)
    }

    /// Tells the sink (the server's index) of committed entries.
    pub(crate) fn announce(&self, written: &[(OrgId, Vec<tagd_core::log::LogEntry>)]) {
        if let Some(sink) = self.sink.get() {
            for (org, entries) in written {
                sink.committed(*org, entries);
            }
        }
    }
}

#[async_trait]
impl<D: Driver> tagd_core::segments::Segments for SqlStore<D> {
    async fn segment_page(
        &self,
        org: OrgId,
        node: &tagd_core::segments::Node,
        after_ref: i64,
        limit: usize,
    ) -> Result<tagd_core::segments::SegmentPage> {
        let mut conn = self.driver.read_long().await.map_err(internal)?;
        let binary = self.driver.binary_collation();
        segments::page(conn.as_mut(), binary, org, node, after_ref, limit).await
    }

    async fn segment_holds(
        &self,
        org: OrgId,
        node: &tagd_core::segments::Node,
        user_ref: i64,
    ) -> Result<bool> {
        let binary = self.driver.binary_collation();
        segments::holds(self.read().await?.as_mut(), binary, org, node, user_ref).await
    }

    async fn segment_members(
        &self,
        org: OrgId,
        node: &tagd_core::segments::Node,
        after_ref: i64,
        limit: usize,
    ) -> Result<Vec<tagd_core::segments::Member>> {
        let mut conn = self.driver.read_long().await.map_err(internal)?;
        let binary = self.driver.binary_collation();
        segments::members(conn.as_mut(), binary, org, node, after_ref, limit).await
    }
}

#[async_trait]
impl<D: Driver> ChangeLog for SqlStore<D> {
    async fn read_log(&self, org: OrgId, after: i64, limit: usize) -> Result<LogPage> {
        let scheme = self.driver.version_scheme();
        log::read(self.read().await?.as_mut(), scheme, org, after, limit).await
    }

    async fn log_head(&self, org: OrgId) -> Result<i64> {
        let scheme = self.driver.version_scheme();
        log::head(self.read().await?.as_mut(), scheme, org).await
    }

    async fn log_horizon(&self, org: OrgId) -> Result<i64> {
        let scheme = self.driver.version_scheme();
        log::horizon(self.read().await?.as_mut(), scheme, org).await
    }

    async fn log_heads(&self, after: i64) -> Result<LogHeads> {
        let scheme = self.driver.version_scheme();
        log::heads(self.read().await?.as_mut(), scheme, after).await
    }

    async fn users_page(&self, org: OrgId, after: i64, limit: usize) -> Result<Vec<User>> {
        log::users_page(self.read().await?.as_mut(), org, after, limit).await
    }

    async fn all_groups(&self, org: OrgId) -> Result<Vec<TagGroup>> {
        log::all_groups(self.read().await?.as_mut(), org).await
    }

    async fn live_assignments_page(
        &self,
        org: OrgId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<TagChange>> {
        log::live_assignments_page(self.read().await?.as_mut(), org, after, limit).await
    }

    fn versions_are_dense(&self) -> bool {
        self.driver.version_scheme() == VersionScheme::Counter
    }

    fn subscribe(&self, sink: Arc<dyn ChangeSink>) {
        if self.sink.set(sink).is_err() {
            tracing::warn!("the store already has a change sink; the new one is ignored");
        }
    }
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

    fn with_own_connections(&self, pool: &'static str, max_connections: u32) -> Arc<dyn Store> {
        Arc::new(SqlStore {
            driver: self.driver.with_own_connections(pool, max_connections),
            ..self.clone()
        })
    }
}
