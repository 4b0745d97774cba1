//! The storage contract. Each backend crate implements [`Store`]; one conformance suite
//! (`tagd-store-tests`) proves every implementation against the same behaviour.
//!
//! Tenant first: every method that touches an organization's data takes its [`OrgId`] as the
//! first argument, and every query behind it is scoped by that id. The only exceptions are the
//! lookups that *discover* the tenant from a credential (`find_app`, `find_token`,
//! `find_basic_credential`, `find_org_by_corp_id`) and `create_org`, which makes one.

use crate::error::Result;
use crate::idempotency::{Claim, ClaimOutcome, StoredResponse};
use crate::ids::{CorpId, ExternalId, OrgId, UserId};
use crate::labels::{LabelChange, LabelWarning};
use crate::model::*;
use crate::names::Category;
use async_trait::async_trait;

/// Size of one connection pool, for the `/metrics` gauges.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStats {
    /// `reader`, `writer` or `main`.
    pub pool: &'static str,
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

#[async_trait]
pub trait Store: crate::bulk::Bulk + Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Fails when the database cannot answer a trivial query.
    async fn ping(&self) -> Result<()>;
    fn pool_stats(&self) -> Vec<PoolStats>;

    // --- operator -------------------------------------------------------------------------
    /// SHA-256 of the generated admin token, if one was generated.
    async fn admin_token_hash(&self) -> Result<Option<String>>;
    /// Stores the admin token hash unless one exists; true when this call stored it.
    async fn init_admin_token_hash(&self, hash: &str) -> Result<bool>;

    // --- organizations --------------------------------------------------------------------
    async fn create_org(&self, name: &str) -> Result<Organization>;
    async fn find_org_by_corp_id(&self, corp_id: &CorpId) -> Result<Option<Organization>>;
    async fn get_org(&self, org: OrgId) -> Result<Organization>;
    /// Every organization, oldest first.
    async fn list_orgs(&self) -> Result<Vec<Organization>>;
    async fn org_counts(&self, org: OrgId) -> Result<OrgCounts>;
    /// Disables (every credential refused, data kept) or enables an organization.
    async fn set_org_disabled(&self, org: OrgId, disabled: bool) -> Result<Organization>;
    /// Sets the organization's own cap on tag groups; `None` returns it to the default.
    async fn set_org_max_tag_groups(&self, org: OrgId, max: Option<i64>) -> Result<Organization>;
    /// The cap on tag groups of organizations that have none of their own.
    fn default_max_tag_groups(&self) -> i64;
    fn set_default_max_tag_groups(&self, max: i64);
    /// Tag groups (not deleted) of every organization that has any, for `/metrics`.
    async fn tag_groups_per_org(&self) -> Result<Vec<(CorpId, i64)>>;

    // --- users ----------------------------------------------------------------------------
    /// Registers a user; idempotent. The flag is true when this call created it.
    async fn create_user(&self, org: OrgId, user_id: &UserId) -> Result<(User, bool)>;
    async fn find_user(&self, org: OrgId, user_id: &UserId) -> Result<Option<User>>;

    // --- apps, credentials, tokens --------------------------------------------------------
    async fn create_app(&self, org: OrgId, name: &str, secret_hash: &str) -> Result<App>;
    /// The app a token request names, unless its organization is disabled (authentication).
    async fn find_app(&self, app_id: &ExternalId) -> Result<Option<App>>;
    /// One app of the organization, whatever its state (operator).
    async fn find_org_app(&self, org: OrgId, app_id: &ExternalId) -> Result<Option<App>>;
    async fn list_apps(&self, org: OrgId) -> Result<Vec<App>>;
    /// Replaces the app's secret and revokes every token it was issued, in one transaction.
    async fn rotate_app_secret(&self, org: OrgId, app: i64, secret_hash: &str) -> Result<App>;
    /// Deletes the app and its tokens; what it wrote keeps its executor id and name.
    async fn delete_app(&self, org: OrgId, app: i64) -> Result<()>;
    async fn list_basic_credentials(&self, org: OrgId) -> Result<Vec<BasicCredential>>;
    /// Replaces a credential's password hash (`CredentialNotFound` in another organization).
    async fn set_basic_password(
        &self,
        org: OrgId,
        username: &str,
        password_hash: &str,
    ) -> Result<BasicCredential>;
    async fn delete_basic_credential(&self, org: OrgId, username: &str) -> Result<()>;
    /// User names are unique across the server, so a Basic header names one organization.
    async fn create_basic_credential(
        &self,
        org: OrgId,
        username: &str,
        password_hash: &str,
    ) -> Result<BasicCredential>;
    /// The credential a Basic header names, unless its organization is disabled.
    async fn find_basic_credential(&self, username: &str) -> Result<Option<BasicCredential>>;
    async fn create_token(
        &self,
        org: OrgId,
        app: i64,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<()>;
    /// Issues a token to the app only while its secret is still `secret_hash` and its
    /// organization enabled, checked in the insert itself: a rotation, deletion or disable
    /// that commits first wins, and the answer is `false`.
    async fn issue_token(
        &self,
        org: OrgId,
        app: i64,
        secret_hash: &str,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<bool>;
    /// The token of that hash, unless its organization is disabled.
    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>>;
    /// Deletes tokens that expired before `now` (Unix seconds) or were revoked and would have
    /// expired by then; returns how many.
    async fn purge_expired_tokens(&self, now: i64) -> Result<u64>;
    /// Revokes every unrevoked token of the app; answers how many.
    async fn revoke_tokens(&self, org: OrgId, app: i64) -> Result<u64>;

    // --- tag groups -----------------------------------------------------------------------
    /// Creates an active, custom, unlocked group at version 0. Name and variable name must
    /// be free in the organization (`Duplicate`), and the organization below its cap on tag
    /// groups (`TagGroupLimit`), counted in the same transaction.
    async fn create_tag_group(
        &self,
        org: OrgId,
        fields: &TagGroupFields,
        executor: &Executor,
    ) -> Result<TagGroup>;
    /// Creates a batch of groups in one transaction: `Err(Duplicate)` for an item whose name
    /// is already in use (by an earlier item too), `Err(TagGroupLimit)` for one past the cap;
    /// the others are created. Any other refusal refuses all.
    async fn create_tag_groups(
        &self,
        org: OrgId,
        batch: &[TagGroupFields],
        executor: &Executor,
    ) -> Result<Vec<Result<TagGroup>>>;
    /// A group that is not deleted.
    async fn find_tag_group(&self, org: OrgId, entity_id: &ExternalId) -> Result<Option<TagGroup>>;
    /// Groups of one category that are not deleted, by `ctime` then `entity_id`.
    async fn list_tag_groups(
        &self,
        org: OrgId,
        category: &Category,
        offset: i64,
        limit: i64,
    ) -> Result<Page<TagGroup>>;
    /// Replaces the five editable fields and bumps `version`. Refuses a stale
    /// `expected_version` (`StaleVersion`), a locked group (`GroupLocked`), and an attribute
    /// change while live assignments exist (`AttributeInUse`).
    async fn update_tag_group(
        &self,
        org: OrgId,
        entity_id: &ExternalId,
        fields: &TagGroupFields,
        expected_version: Option<i64>,
        executor: &Executor,
    ) -> Result<TagGroup>;
    /// Activates or deactivates a group; idempotent. Refused on a locked group.
    async fn set_tag_group_active(
        &self,
        org: OrgId,
        entity_id: &ExternalId,
        active: bool,
        executor: &Executor,
    ) -> Result<TagGroup>;

    /// Locks or unlocks a group (operator only): a locked group's definition and activation
    /// cannot change; its assignments can.
    async fn set_tag_group_locked(
        &self,
        org: OrgId,
        entity_id: &ExternalId,
        locked: bool,
        executor: &Executor,
    ) -> Result<TagGroup>;

    // --- assignments ----------------------------------------------------------------------
    /// Sets a user's value of a group in one transaction with its history entry. The group
    /// must exist (`GroupNotFound`) and be active (`GroupInactive`), the user must exist
    /// (`UserNotFound`), the value must fit the attribute (`InvalidValue`). Re-assigning
    /// keeps the assignment's ids and bumps its version.
    async fn assign(&self, org: OrgId, command: &AssignCommand) -> Result<Assignment>;
    /// Applies each command as `assign` would, all in one transaction: the valid ones are
    /// written, the others answer their refusal. A database failure refuses the whole batch.
    async fn assign_batch(
        &self,
        org: OrgId,
        commands: &[AssignCommand],
    ) -> Result<Vec<Result<Assignment>>>;
    /// Soft-deletes a user's live assignment of a group, with its history entry. `None` when
    /// there was nothing live to remove.
    async fn remove_assignment(
        &self,
        org: OrgId,
        tags_group_id: &ExternalId,
        user_id: &UserId,
        executor: &Executor,
        source: Source,
    ) -> Result<Option<Assignment>>;
    /// A registered user's live assignments (`UserNotFound` otherwise), oldest first.
    async fn list_user_assignments(&self, org: OrgId, user_id: &UserId) -> Result<Vec<Assignment>>;
    /// Every change of one assignment, oldest first.
    async fn assignment_history(
        &self,
        org: OrgId,
        assignment: &ExternalId,
    ) -> Result<Vec<HistoryEntry>>;

    // --- v2 labels ------------------------------------------------------------------------
    /// changeLabels in one transaction (rules in [`crate::labels::plan_label_change`]):
    /// `UserNotFound` for an unregistered customer, else the warnings in request order.
    async fn change_labels(
        &self,
        org: OrgId,
        user_id: &UserId,
        change: &LabelChange,
        executor: &Executor,
    ) -> Result<Vec<LabelWarning>>;
    /// The labels a registered customer carries (`UserNotFound` otherwise), oldest first.
    async fn list_user_labels(&self, org: OrgId, user_id: &UserId) -> Result<Vec<Assignment>>;
    /// Every `define` group of the organization that is not deleted, active or not, by id.
    async fn list_label_groups(&self, org: OrgId) -> Result<Vec<TagGroup>>;
    /// How many customers carry a label whose name starts with `prefix`, ignoring case
    /// (compared by [`crate::names::search_key`]; `%` and `_` are ordinary characters).
    async fn count_label_holders(&self, org: OrgId, prefix: &str) -> Result<i64>;
    /// One page of the customers who carry a label whose name starts with `prefix` (ignoring
    /// case), in customer order (numeric ids in numeric order): the first page skips `offset`
    /// customers, a later one starts after `after` (`offset` is then ignored); each returned
    /// assignment is one (customer, matching label). Paged by key: no page walks or sorts the
    /// customers before it.
    async fn label_holders(
        &self,
        org: OrgId,
        prefix: &str,
        after: Option<&UserId>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Assignment>>;

    // --- idempotency keys -----------------------------------------------------------------
    /// Claims a key for one request (see [`crate::idempotency`]): new, a replay, a mismatch,
    /// or still in flight. Keys older than 24 hours count as new; claims without a response
    /// whose lease ran out count as abandoned and are taken over.
    async fn claim_idempotency_key(&self, claim: &Claim) -> Result<ClaimOutcome>;
    /// Records the response of a claimed request that wrote nothing (a refusal), unless one
    /// was recorded with its effect.
    async fn save_idempotent_response(
        &self,
        claim: &Claim,
        response: &StoredResponse,
    ) -> Result<()>;
    /// Releases a claim that has no response (the request was cut short), so a retry runs.
    async fn release_idempotency_key(&self, claim: &Claim) -> Result<()>;
    /// Deletes keys created more than `older_than_secs` ago (24 hours in service); returns
    /// how many.
    async fn purge_idempotency_keys(&self, older_than_secs: i64) -> Result<u64>;
}
