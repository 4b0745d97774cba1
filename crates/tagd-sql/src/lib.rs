//! The one [`Store`] over SQL. The queries, their order and their transactions are written
//! here once; a [`Driver`] (`tagd-sqlite`, `tagd-postgres`) supplies connections, transactions,
//! row locks and error classification. Both schemas share table and column names, and every
//! statement here runs unchanged on both (`$n` parameters, `ON CONFLICT`, `RETURNING`).
#![forbid(unsafe_code)]

mod assignments;
mod bulk;
pub mod driver;
mod groups;
mod idempotency;
mod labels;
mod pairs;
pub mod records;
mod tenants;

pub use driver::{DbError, Driver, Locks, Param, Row, SqlConn, SqlTx};

use assignments::Write;
use async_trait::async_trait;
use groups::Flag;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tagd_core::idempotency::{Claim, ClaimOutcome, StoredResponse};
use tagd_core::labels::{LabelChange, LabelWarning};
use tagd_core::*;

/// Runs `$body` on a write transaction bound to `$tx`, records the request's idempotent
/// response in it when one is pending, and commits.
macro_rules! in_write {
    ($self:ident, |$tx:ident| $body:expr) => {{
        let mut $tx = $self.write().await?;
        let value = $body;
        finish($tx, value).await
    }};
}

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
    async fn read(&self) -> Result<Box<dyn SqlConn>> {
        self.driver.read().await.map_err(internal)
    }

    async fn write(&self) -> Result<Box<dyn SqlTx>> {
        self.driver.write().await.map_err(internal)
    }

    /// Switches a flag of a group under an update lock, in one transaction.
    async fn set_group_flag(
        &self,
        org: OrgId,
        entity_id: &ExternalId,
        flag: (Flag, bool),
        executor: &Executor,
    ) -> Result<TagGroup> {
        let mut tx = self.write().await?;
        let lock = self.driver.locks().update;
        let current = groups::find_for_update(tx.as_mut(), lock, org, entity_id).await?;
        let group = groups::set_flag(tx.as_mut(), current, flag, executor).await?;
        finish(tx, group).await
    }
}

/// Commits a write, with the idempotency record of its request when one is pending.
async fn finish<T: std::any::Any + Send>(mut tx: Box<dyn SqlTx>, value: T) -> Result<T> {
    let rendered = tagd_core::idempotency::render_for_commit(&value);
    let recorded = idempotency::record_with_effect(tx.as_mut(), rendered).await?;
    tagd_core::idempotency::mark_committing();
    let committed = tx.commit().await;
    tagd_core::idempotency::mark_commit_done();
    committed.map_err(internal)?;
    if recorded {
        tagd_core::idempotency::mark_recorded();
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

    async fn admin_token_hash(&self) -> Result<Option<String>> {
        tenants::admin_token_hash(self.read().await?.as_mut()).await
    }
    async fn init_admin_token_hash(&self, hash: &str) -> Result<bool> {
        in_write!(self, |tx| tenants::init_admin_token_hash(tx.as_mut(), hash)
            .await?)
    }
    async fn create_org(&self, name: &str) -> Result<Organization> {
        in_write!(self, |tx| tenants::create_org(tx.as_mut(), name).await?)
    }
    async fn find_org_by_corp_id(&self, corp_id: &CorpId) -> Result<Option<Organization>> {
        tenants::find_org_by_corp_id(self.read().await?.as_mut(), corp_id).await
    }
    async fn get_org(&self, org: OrgId) -> Result<Organization> {
        tenants::get_org(self.read().await?.as_mut(), org).await
    }
    async fn list_orgs(&self) -> Result<Vec<Organization>> {
        tenants::list_orgs(self.read().await?.as_mut()).await
    }
    async fn org_counts(&self, org: OrgId) -> Result<OrgCounts> {
        tenants::org_counts(self.read().await?.as_mut(), org).await
    }
    async fn set_org_disabled(&self, org: OrgId, disabled: bool) -> Result<Organization> {
        in_write!(self, |tx| tenants::set_org_disabled(
            tx.as_mut(),
            org,
            disabled
        )
        .await?)
    }
    async fn set_org_max_tag_groups(&self, org: OrgId, max: Option<i64>) -> Result<Organization> {
        in_write!(self, |tx| tenants::set_org_max_tag_groups(
            tx.as_mut(),
            org,
            max
        )
        .await?)
    }
    fn default_max_tag_groups(&self) -> i64 {
        self.default_max_tag_groups.load(Ordering::Relaxed)
    }
    fn set_default_max_tag_groups(&self, max: i64) {
        self.default_max_tag_groups.store(max, Ordering::Relaxed);
    }
    async fn tag_groups_per_org(&self) -> Result<Vec<(CorpId, i64)>> {
        tenants::tag_groups_per_org(self.read().await?.as_mut()).await
    }
    async fn create_user(&self, org: OrgId, user_id: &UserId) -> Result<(User, bool)> {
        in_write!(self, |tx| tenants::create_user(tx.as_mut(), org, user_id)
            .await?)
    }
    async fn find_user(&self, org: OrgId, user_id: &UserId) -> Result<Option<User>> {
        tenants::find_user(self.read().await?.as_mut(), org, user_id).await
    }
    async fn create_app(&self, org: OrgId, name: &str, secret_hash: &str) -> Result<App> {
        in_write!(self, |tx| tenants::create_app(
            tx.as_mut(),
            org,
            name,
            secret_hash
        )
        .await?)
    }
    async fn find_app(&self, app_id: &ExternalId) -> Result<Option<App>> {
        tenants::find_app(self.read().await?.as_mut(), app_id).await
    }
    async fn find_org_app(&self, org: OrgId, app_id: &ExternalId) -> Result<Option<App>> {
        tenants::find_org_app(self.read().await?.as_mut(), org, app_id).await
    }
    async fn list_apps(&self, org: OrgId) -> Result<Vec<App>> {
        tenants::list_apps(self.read().await?.as_mut(), org).await
    }
    async fn rotate_app_secret(&self, org: OrgId, app: i64, secret_hash: &str) -> Result<App> {
        in_write!(self, |tx| {
            tenants::rotate_app_secret(tx.as_mut(), org, app, secret_hash).await?
        })
    }
    async fn delete_app(&self, org: OrgId, app: i64) -> Result<()> {
        in_write!(self, |tx| tenants::delete_app(tx.as_mut(), org, app)
            .await?)
    }
    async fn list_basic_credentials(&self, org: OrgId) -> Result<Vec<BasicCredential>> {
        tenants::list_basic_credentials(self.read().await?.as_mut(), org).await
    }
    async fn set_basic_password(
        &self,
        org: OrgId,
        username: &str,
        password_hash: &str,
    ) -> Result<BasicCredential> {
        in_write!(self, |tx| {
            tenants::set_basic_password(tx.as_mut(), org, username, password_hash).await?
        })
    }
    async fn delete_basic_credential(&self, org: OrgId, username: &str) -> Result<()> {
        in_write!(self, |tx| {
            tenants::delete_basic_credential(tx.as_mut(), org, username).await?
        })
    }
    async fn purge_expired_tokens(&self, now: i64) -> Result<u64> {
        in_write!(self, |tx| tenants::purge_expired_tokens(tx.as_mut(), now)
            .await?)
    }
    async fn create_basic_credential(
        &self,
        org: OrgId,
        username: &str,
        password_hash: &str,
    ) -> Result<BasicCredential> {
        in_write!(self, |tx| {
            tenants::create_basic_credential(tx.as_mut(), org, username, password_hash).await?
        })
    }
    async fn find_basic_credential(&self, username: &str) -> Result<Option<BasicCredential>> {
        tenants::find_basic_credential(self.read().await?.as_mut(), username).await
    }
    async fn create_token(&self, org: OrgId, app: i64, hash: &str, expires_at: i64) -> Result<()> {
        in_write!(self, |tx| {
            tenants::create_token(tx.as_mut(), org, app, hash, expires_at).await?
        })
    }
    async fn issue_token(
        &self,
        org: OrgId,
        app: i64,
        secret_hash: &str,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<bool> {
        in_write!(self, |tx| {
            tenants::issue_token(tx.as_mut(), (org, app), secret_hash, token_hash, expires_at)
                .await?
        })
    }
    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        tenants::find_token(self.read().await?.as_mut(), token_hash).await
    }
    async fn revoke_tokens(&self, org: OrgId, app: i64) -> Result<u64> {
        in_write!(self, |tx| tenants::revoke_tokens(tx.as_mut(), org, app)
            .await?)
    }

    async fn create_tag_group(
        &self,
        org: OrgId,
        fields: &TagGroupFields,
        executor: &Executor,
    ) -> Result<TagGroup> {
        let (lock, cap) = (self.driver.locks().update, self.default_max_tag_groups());
        in_write!(self, |tx| {
            let room = groups::room(tx.as_mut(), lock, org, cap).await?;
            groups::create_within(tx.as_mut(), room, org, fields, executor).await?
        })
    }
    async fn create_tag_groups(
        &self,
        org: OrgId,
        batch: &[TagGroupFields],
        executor: &Executor,
    ) -> Result<Vec<Result<TagGroup>>> {
        let (lock, cap) = (self.driver.locks().update, self.default_max_tag_groups());
        in_write!(self, |tx| {
            let room = groups::room(tx.as_mut(), lock, org, cap).await?;
            groups::create_many(tx.as_mut(), room, org, batch, executor).await?
        })
    }
    async fn find_tag_group(&self, org: OrgId, id: &ExternalId) -> Result<Option<TagGroup>> {
        groups::find(self.read().await?.as_mut(), org, id, "").await
    }
    async fn list_tag_groups(
        &self,
        org: OrgId,
        category: &Category,
        offset: i64,
        limit: i64,
    ) -> Result<Page<TagGroup>> {
        groups::list(self.read().await?.as_mut(), org, category, offset, limit).await
    }
    async fn update_tag_group(
        &self,
        org: OrgId,
        id: &ExternalId,
        fields: &TagGroupFields,
        expected_version: Option<i64>,
        executor: &Executor,
    ) -> Result<TagGroup> {
        let lock = self.driver.locks().update;
        in_write!(self, |tx| {
            let current = groups::find_for_update(tx.as_mut(), lock, org, id).await?;
            groups::update(tx.as_mut(), &current, fields, expected_version, executor).await?
        })
    }
    async fn set_tag_group_active(
        &self,
        org: OrgId,
        id: &ExternalId,
        active: bool,
        executor: &Executor,
    ) -> Result<TagGroup> {
        self.set_group_flag(org, id, (Flag::Active, active), executor)
            .await
    }
    async fn set_tag_group_locked(
        &self,
        org: OrgId,
        id: &ExternalId,
        locked: bool,
        executor: &Executor,
    ) -> Result<TagGroup> {
        self.set_group_flag(org, id, (Flag::Locked, locked), executor)
            .await
    }

    async fn assign(&self, org: OrgId, command: &AssignCommand) -> Result<Assignment> {
        let locks = self.driver.locks();
        let locks = (locks.share, locks.update_assignment);
        in_write!(self, |tx| assignments::assign(
            tx.as_mut(),
            locks,
            org,
            command
        )
        .await?)
    }
    async fn assign_batch(
        &self,
        org: OrgId,
        commands: &[AssignCommand],
    ) -> Result<Vec<Result<Assignment>>> {
        let locks = self.driver.locks();
        let locks = (locks.share, locks.update_assignment);
        in_write!(self, |tx| {
            let mut results = Vec::with_capacity(commands.len());
            for command in commands {
                match assignments::assign(tx.as_mut(), locks, org, command).await {
                    Err(e @ (Error::Internal(_) | Error::Busy(_))) => return Err(e),
                    outcome => results.push(outcome),
                }
            }
            results
        })
    }
    async fn remove_assignment(
        &self,
        org: OrgId,
        tags_group_id: &ExternalId,
        user_id: &UserId,
        executor: &Executor,
        source: Source,
    ) -> Result<Option<Assignment>> {
        let locks = self.driver.locks();
        in_write!(self, |tx| {
            let group = groups::find(tx.as_mut(), org, tags_group_id, locks.share)
                .await?
                .ok_or(Error::GroupNotFound)?;
            let user = tenants::find_user(tx.as_mut(), org, user_id)
                .await?
                .ok_or(Error::UserNotFound)?;
            let write = Write {
                org,
                refs: (user.id, group.id),
                executor,
                source,
            };
            assignments::remove_value(tx.as_mut(), locks.update_assignment, &write).await?
        })
    }
    async fn list_user_assignments(&self, org: OrgId, user: &UserId) -> Result<Vec<Assignment>> {
        assignments::list_for_user(self.read().await?.as_mut(), org, user).await
    }
    async fn assignment_history(
        &self,
        org: OrgId,
        assignment: &ExternalId,
    ) -> Result<Vec<HistoryEntry>> {
        assignments::history(self.read().await?.as_mut(), org, assignment).await
    }

    async fn change_labels(
        &self,
        org: OrgId,
        user_id: &UserId,
        change: &LabelChange,
        executor: &Executor,
    ) -> Result<Vec<LabelWarning>> {
        let locks = self.driver.locks();
        in_write!(self, |tx| {
            labels::change_labels(tx.as_mut(), locks, (org, user_id), change, executor).await?
        })
    }
    async fn list_user_labels(&self, org: OrgId, user_id: &UserId) -> Result<Vec<Assignment>> {
        labels::list_user_labels(self.read().await?.as_mut(), org, user_id).await
    }
    async fn list_label_groups(&self, org: OrgId) -> Result<Vec<TagGroup>> {
        labels::list_label_groups(self.read().await?.as_mut(), org).await
    }
    async fn count_label_holders(&self, org: OrgId, prefix: &str) -> Result<i64> {
        let mut conn = self.driver.read_long().await.map_err(internal)?;
        labels::count_label_holders(conn.as_mut(), org, prefix).await
    }
    async fn label_holders(
        &self,
        org: OrgId,
        prefix: &str,
        after: Option<&UserId>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Assignment>> {
        let mut conn = self.driver.read_long().await.map_err(internal)?;
        labels::label_holders(conn.as_mut(), (org, prefix), after, offset, limit).await
    }

    async fn claim_idempotency_key(&self, claim: &Claim) -> Result<ClaimOutcome> {
        in_write!(self, |tx| idempotency::claim(tx.as_mut(), claim).await?)
    }
    async fn save_idempotent_response(
        &self,
        claim: &Claim,
        response: &StoredResponse,
    ) -> Result<()> {
        in_write!(self, |tx| idempotency::save(tx.as_mut(), claim, response)
            .await?)
    }
    async fn release_idempotency_key(&self, claim: &Claim) -> Result<()> {
        in_write!(self, |tx| idempotency::release(tx.as_mut(), claim).await?)
    }
    async fn purge_idempotency_keys(&self, older_than_secs: i64) -> Result<u64> {
        in_write!(self, |tx| idempotency::purge(tx.as_mut(), older_than_secs)
            .await?)
    }
}
