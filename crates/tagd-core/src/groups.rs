//! Tag groups: the store's contract.

use crate::error::Result;
use crate::idempotency::Recorder;
use crate::ids::{ExternalId, OrgId};
use crate::model::*;
use crate::names::Category;
use async_trait::async_trait;

/// Tag groups.
#[async_trait]
pub trait TagGroups: Send + Sync {
    /// Creates an active, custom, unlocked group at version 0. Name and variable name must
    /// be free in the organization (`Duplicate`), and the organization below its cap on tag
    /// groups (`TagGroupLimit`), counted in the same transaction.
    async fn create_tag_group(
        &self,
        org: OrgId,
        fields: &TagGroupFields,
        executor: &Executor,
        record: &Recorder<TagGroup>,
    ) -> Result<TagGroup>;
    /// Creates a batch of groups in one transaction: `Err(Duplicate)` for an item whose name
    /// is already in use (by an earlier item too), `Err(TagGroupLimit)` for one past the cap;
    /// the others are created. Any other refusal refuses all.
    async fn create_tag_groups(
        &self,
        org: OrgId,
        batch: &[TagGroupFields],
        executor: &Executor,
        record: &Recorder<Vec<Result<TagGroup>>>,
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
        record: &Recorder<TagGroup>,
    ) -> Result<TagGroup>;
    /// Activates or deactivates a group; idempotent. Refused on a locked group.
    async fn set_tag_group_active(
        &self,
        org: OrgId,
        entity_id: &ExternalId,
        active: bool,
        executor: &Executor,
        record: &Recorder<TagGroup>,
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
}
