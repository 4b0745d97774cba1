//! [`Store`](tagd_core::Store) on PostgreSQL.
//!
//! One pool; every write is one transaction at READ COMMITTED. Concurrent writers of the same
//! row queue on row locks (`FOR UPDATE` on the assignment, `FOR SHARE` on its group), and
//! first inserts race through `ON CONFLICT DO NOTHING`, so no update is lost and no request
//! fails because another touched the same row.
#![forbid(unsafe_code)]

mod assignments;
mod groups;
mod labels;
mod rows;
mod tenants;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;
use tagd_core::labels::{LabelChange, LabelWarning};
use tagd_core::*;

/// Default size of the connection pool.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://...`) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::invalid("database", e.to_string()))?;
        Self::connect_with(options, DEFAULT_MAX_CONNECTIONS).await
    }

    /// Connects with explicit options (tests use them to pin a `search_path`).
    pub async fn connect_with(options: PgConnectOptions, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(Error::internal)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(Error::internal)?;
        Ok(PgStore { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
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
impl tagd_core::Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(internal)
    }

    fn pool_stats(&self) -> Vec<tagd_core::PoolStats> {
        vec![tagd_core::PoolStats {
            pool: "main",
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }]
    }

    async fn admin_token_hash(&self) -> Result<Option<String>> {
        tenants::admin_token_hash(&self.pool).await
    }
    async fn init_admin_token_hash(&self, hash: &str) -> Result<bool> {
        tenants::init_admin_token_hash(&self.pool, hash).await
    }
    async fn create_org(&self, name: &str) -> Result<Organization> {
        tenants::create_org(&self.pool, name).await
    }
    async fn find_org_by_corp_id(&self, corp_id: &CorpId) -> Result<Option<Organization>> {
        tenants::find_org_by_corp_id(&self.pool, corp_id).await
    }
    async fn get_org(&self, org: OrgId) -> Result<Organization> {
        tenants::get_org(&self.pool, org).await
    }
    async fn create_user(&self, org: OrgId, user_id: &UserId) -> Result<(User, bool)> {
        tenants::create_user(&self.pool, org, user_id).await
    }
    async fn find_user(&self, org: OrgId, user_id: &UserId) -> Result<Option<User>> {
        tenants::find_user(&self.pool, org, user_id).await
    }
    async fn create_app(&self, org: OrgId, name: &str, secret_hash: &str) -> Result<App> {
        tenants::create_app(&self.pool, org, name, secret_hash).await
    }
    async fn find_app(&self, app_id: &ExternalId) -> Result<Option<App>> {
        tenants::find_app(&self.pool, app_id).await
    }
    async fn create_basic_credential(
        &self,
        org: OrgId,
        username: &str,
        password_hash: &str,
    ) -> Result<BasicCredential> {
        tenants::create_basic_credential(&self.pool, org, username, password_hash).await
    }
    async fn find_basic_credential(&self, username: &str) -> Result<Option<BasicCredential>> {
        tenants::find_basic_credential(&self.pool, username).await
    }
    async fn create_token(&self, org: OrgId, app: i64, hash: &str, expires_at: i64) -> Result<()> {
        tenants::create_token(&self.pool, org, app, hash, expires_at).await
    }
    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        tenants::find_token(&self.pool, token_hash).await
    }
    async fn create_tag_group(
        &self,
        org: OrgId,
        fields: &TagGroupFields,
        executor: &Executor,
    ) -> Result<TagGroup> {
        groups::create(&self.pool, org, fields, executor).await
    }
    async fn create_tag_groups(
        &self,
        org: OrgId,
        batch: &[TagGroupFields],
        executor: &Executor,
    ) -> Result<Vec<Option<TagGroup>>> {
        groups::create_many(&self.pool, org, batch, executor).await
    }
    async fn find_tag_group(&self, org: OrgId, id: &ExternalId) -> Result<Option<TagGroup>> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        groups::find(&mut conn, org, id, groups::Lock::None).await
    }
    async fn list_tag_groups(
        &self,
        org: OrgId,
        category: &Category,
        offset: i64,
        limit: i64,
    ) -> Result<Page<TagGroup>> {
        groups::list(&self.pool, org, category, offset, limit).await
    }
    async fn update_tag_group(
        &self,
        org: OrgId,
        id: &ExternalId,
        fields: &TagGroupFields,
        expected_version: Option<i64>,
        executor: &Executor,
    ) -> Result<TagGroup> {
        groups::update(&self.pool, org, id, fields, expected_version, executor).await
    }
    async fn set_tag_group_active(
        &self,
        org: OrgId,
        id: &ExternalId,
        active: bool,
        executor: &Executor,
    ) -> Result<TagGroup> {
        groups::set_flag(
            &self.pool,
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
            &self.pool,
            org,
            id,
            (groups::Flag::Locked, locked),
            executor,
        )
        .await
    }
    async fn assign(&self, org: OrgId, command: &AssignCommand) -> Result<Assignment> {
        assignments::assign(&self.pool, org, command).await
    }
    async fn remove_assignment(
        &self,
        org: OrgId,
        tags_group_id: &ExternalId,
        user_id: &UserId,
        executor: &Executor,
        source: Source,
    ) -> Result<Option<Assignment>> {
        assignments::remove(&self.pool, org, tags_group_id, user_id, executor, source).await
    }
    async fn list_user_assignments(&self, org: OrgId, user: &UserId) -> Result<Vec<Assignment>> {
        assignments::list_for_user(&self.pool, org, user).await
    }
    async fn assignment_history(
        &self,
        org: OrgId,
        assignment: &ExternalId,
    ) -> Result<Vec<HistoryEntry>> {
        assignments::history(&self.pool, org, assignment).await
    }
    async fn change_labels(
        &self,
        org: OrgId,
        user_id: &UserId,
        change: &LabelChange,
        executor: &Executor,
    ) -> Result<Vec<LabelWarning>> {
        labels::change_labels(&self.pool, org, user_id, change, executor).await
    }
    async fn list_user_labels(&self, org: OrgId, user_id: &UserId) -> Result<Vec<Assignment>> {
        labels::list_user_labels(&self.pool, org, user_id).await
    }
    async fn list_label_groups(&self, org: OrgId) -> Result<Vec<TagGroup>> {
        labels::list_label_groups(&self.pool, org).await
    }
    async fn count_label_holders(&self, org: OrgId, name: &str) -> Result<i64> {
        labels::count_label_holders(&self.pool, org, name).await
    }
    async fn label_holders(
        &self,
        org: OrgId,
        name: &str,
        after: Option<&UserId>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Assignment>> {
        labels::label_holders(&self.pool, org, name, after, offset, limit).await
    }
}
