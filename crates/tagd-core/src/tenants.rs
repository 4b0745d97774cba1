//! Organizations, their users and the operator's settings: the store's contract.

use crate::error::Result;
use crate::idempotency::Recorder;
use crate::ids::{CorpId, OrgId, UserId};
use crate::model::*;
use async_trait::async_trait;

/// Organizations, users and operator settings.
#[async_trait]
pub trait Tenants: Send + Sync {
    /// SHA-256 of the generated admin token, if one was generated.
    async fn admin_token_hash(&self) -> Result<Option<String>>;
    /// Stores the admin token hash unless one exists; true when this call stored it.
    async fn init_admin_token_hash(&self, hash: &str) -> Result<bool>;
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
    /// Registers a user; idempotent. The flag is true when this call created it.
    async fn create_user(
        &self,
        org: OrgId,
        user_id: &UserId,
        record: &Recorder<(User, bool)>,
    ) -> Result<(User, bool)>;
    async fn find_user(&self, org: OrgId, user_id: &UserId) -> Result<Option<User>>;
}
