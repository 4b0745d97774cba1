//! [`Store`](tagd_core::Store) on embedded SQLite.
//!
//! One writer, many readers: every write goes through a pool of exactly one connection and
//! starts with `BEGIN IMMEDIATE`, so writers queue inside the process instead of failing with
//! `SQLITE_BUSY`; reads go through a separate read-only pool and never wait for writers (WAL).
//! Settings are explicit, see [`connect_options`].
#![forbid(unsafe_code)]

mod assignments;
mod groups;
mod labels;
mod rows;
mod tenants;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;
use tagd_core::labels::{LabelChange, LabelWarning};
use tagd_core::*;

/// How long a connection waits for another process's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Readers: enough for the two cores of a small machine to never wait on a connection.
const READER_CONNECTIONS: u32 = 8;

/// The SQLite store: a single-connection writer pool and a read-only reader pool.
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
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

impl SqliteStore {
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
        Ok(SqliteStore { writer, reader })
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

/// Maps a database error: unique violations become `Duplicate(what)`, the rest `Internal`.
pub(crate) fn db_error(what: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| match e.as_database_error() {
        Some(db) if db.is_unique_violation() => Error::Duplicate(what.to_owned()),
        _ => Error::internal(e),
    }
}

pub(crate) fn internal(e: sqlx::Error) -> Error {
    Error::internal(e)
}

#[async_trait::async_trait]
impl tagd_core::Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map(|_| ())
            .map_err(internal)
    }

    fn pool_stats(&self) -> Vec<tagd_core::PoolStats> {
        [("writer", &self.writer), ("reader", &self.reader)]
            .into_iter()
            .map(|(pool, p)| tagd_core::PoolStats {
                pool,
                size: p.size(),
                idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
                max: p.options().get_max_connections(),
            })
            .collect()
    }

    async fn admin_token_hash(&self) -> Result<Option<String>> {
        tenants::admin_token_hash(&self.reader).await
    }
    async fn init_admin_token_hash(&self, hash: &str) -> Result<bool> {
        tenants::init_admin_token_hash(&self.writer, hash).await
    }
    async fn create_org(&self, name: &str) -> Result<Organization> {
        tenants::create_org(&self.writer, name).await
    }
    async fn find_org_by_corp_id(&self, corp_id: &CorpId) -> Result<Option<Organization>> {
        tenants::find_org_by_corp_id(&self.reader, corp_id).await
    }
    async fn get_org(&self, org: OrgId) -> Result<Organization> {
        tenants::get_org(&self.reader, org).await
    }
    async fn create_user(&self, org: OrgId, user_id: &UserId) -> Result<(User, bool)> {
        tenants::create_user(&self.writer, org, user_id).await
    }
    async fn find_user(&self, org: OrgId, user_id: &UserId) -> Result<Option<User>> {
        tenants::find_user(&self.reader, org, user_id).await
    }
    async fn create_app(&self, org: OrgId, name: &str, secret_hash: &str) -> Result<App> {
        tenants::create_app(&self.writer, org, name, secret_hash).await
    }
    async fn find_app(&self, app_id: &ExternalId) -> Result<Option<App>> {
        tenants::find_app(&self.reader, app_id).await
    }
    async fn create_basic_credential(
        &self,
        org: OrgId,
        username: &str,
        password_hash: &str,
    ) -> Result<BasicCredential> {
        tenants::create_basic_credential(&self.writer, org, username, password_hash).await
    }
    async fn find_basic_credential(&self, username: &str) -> Result<Option<BasicCredential>> {
        tenants::find_basic_credential(&self.reader, username).await
    }
    async fn create_token(&self, org: OrgId, app: i64, hash: &str, expires_at: i64) -> Result<()> {
        tenants::create_token(&self.writer, org, app, hash, expires_at).await
    }
    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        tenants::find_token(&self.reader, token_hash).await
    }
    async fn create_tag_group(
        &self,
        org: OrgId,
        fields: &TagGroupFields,
        executor: &Executor,
    ) -> Result<TagGroup> {
        groups::create(&self.writer, org, fields, executor).await
    }
    async fn create_tag_groups(
        &self,
        org: OrgId,
        batch: &[TagGroupFields],
        executor: &Executor,
    ) -> Result<Vec<Option<TagGroup>>> {
        groups::create_many(&self.writer, org, batch, executor).await
    }
    async fn find_tag_group(&self, org: OrgId, id: &ExternalId) -> Result<Option<TagGroup>> {
        let mut conn = self.reader.acquire().await.map_err(internal)?;
        groups::find(&mut conn, org, id).await
    }
    async fn list_tag_groups(
        &self,
        org: OrgId,
        category: &Category,
        offset: i64,
        limit: i64,
    ) -> Result<Page<TagGroup>> {
        groups::list(&self.reader, org, category, offset, limit).await
    }
    async fn update_tag_group(
        &self,
        org: OrgId,
        id: &ExternalId,
        fields: &TagGroupFields,
        expected_version: Option<i64>,
        executor: &Executor,
    ) -> Result<TagGroup> {
        groups::update(&self.writer, org, id, fields, expected_version, executor).await
    }
    async fn set_tag_group_active(
        &self,
        org: OrgId,
        id: &ExternalId,
        active: bool,
        executor: &Executor,
    ) -> Result<TagGroup> {
        groups::set_flag(
            &self.writer,
            org,
            id,
            (groups::Flag::Active, active),
            executor,
        )
        .await
    }
    async fn set_tag_group_locked(
        &self,
        org: OrgId,
        id: &ExternalId,
        locked: bool,
        executor: &Executor,
    ) -> Result<TagGroup> {
        groups::set_flag(
            &self.writer,
            org,
            id,
            (groups::Flag::Locked, locked),
            executor,
        )
        .await
    }
    async fn assign(&self, org: OrgId, command: &AssignCommand) -> Result<Assignment> {
        assignments::assign(&self.writer, org, command).await
    }
    async fn remove_assignment(
        &self,
        org: OrgId,
        tags_group_id: &ExternalId,
        user_id: &UserId,
        executor: &Executor,
        source: Source,
    ) -> Result<Option<Assignment>> {
        assignments::remove(&self.writer, org, tags_group_id, user_id, executor, source).await
    }
    async fn list_user_assignments(&self, org: OrgId, user: &UserId) -> Result<Vec<Assignment>> {
        assignments::list_for_user(&self.reader, org, user).await
    }
    async fn assignment_history(
        &self,
        org: OrgId,
        assignment: &ExternalId,
    ) -> Result<Vec<HistoryEntry>> {
        assignments::history(&self.reader, org, assignment).await
    }
    async fn change_labels(
        &self,
        org: OrgId,
        user_id: &UserId,
        change: &LabelChange,
        executor: &Executor,
    ) -> Result<Vec<LabelWarning>> {
        labels::change_labels(&self.writer, org, user_id, change, executor).await
    }
    async fn list_user_labels(&self, org: OrgId, user_id: &UserId) -> Result<Vec<Assignment>> {
        labels::list_user_labels(&self.reader, org, user_id).await
    }
    async fn list_label_groups(&self, org: OrgId) -> Result<Vec<TagGroup>> {
        labels::list_label_groups(&self.reader, org).await
    }
    async fn count_label_holders(&self, org: OrgId, name: &str) -> Result<i64> {
        labels::count_label_holders(&self.reader, org, name).await
    }
    async fn label_holders(
        &self,
        org: OrgId,
        name: &str,
        after: Option<&UserId>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Assignment>> {
        labels::label_holders(&self.reader, org, name, after, offset, limit).await
    }
}
