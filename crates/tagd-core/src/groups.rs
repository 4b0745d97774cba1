//! Tag groups: the rules of editing and switching them, and the store's contract.

use crate::error::{Error, Result};
use crate::idempotency::Recorder;
use crate::ids::{ExternalId, OrgId};
use crate::model::*;
use crate::names::Category;
use async_trait::async_trait;

/// Refuses an edit of a locked group (`GroupLocked`), or of another version than the one the
/// client read, when it says which (`StaleVersion`).
pub fn check_edit(current: &TagGroup, expected_version: Option<i64>) -> Result<()> {
    if current.is_locked {
        return Err(Error::GroupLocked);
    }
    if expected_version.is_some_and(|v| v != current.version) {
        return Err(Error::StaleVersion);
    }
    Ok(())
}

/// Refuses a change of attribute while live assignments hold values of the old one
/// (`AttributeInUse`); `live_assignments` counts them, and is asked only when the attribute
/// changes.
pub async fn check_attribute_change<F>(
    current: &TagGroup,
    fields: &TagGroupFields,
    live_assignments: impl FnOnce() -> F,
) -> Result<()>
where
    F: std::future::Future<Output = Result<i64>>,
{
    if fields.attribute != current.attribute && live_assignments().await? > 0 {
        return Err(Error::AttributeInUse);
    }
    Ok(())
}

/// Refuses to activate or deactivate a locked group (`GroupLocked`); locking is the
/// operator's and always allowed.
pub fn check_activation(current: &TagGroup) -> Result<()> {
    if current.is_locked {
        return Err(Error::GroupLocked);
    }
    Ok(())
}

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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::names::{Description, GroupName, VariableName};
    use crate::value::Attribute;

    /// An active, unlocked `number` group at version 3.
    pub(crate) fn group() -> TagGroup {
        TagGroup {
            expiry: Default::default(),
            org_id: OrgId(1),
            id: 7,
            entity_id: ExternalId::generate(),
            name: GroupName::parse("Score").expect("name"),
            variable_name: VariableName::parse("score").expect("variable"),
            description: Description::parse("description", "", 1024).expect("description"),
            attribute: Attribute::Number,
            category: Category::parse("default").expect("category"),
            group_type: "custom".into(),
            is_active: true,
            is_auto: false,
            is_locked: false,
            is_deleted: false,
            calculation_rules: serde_json::Value::Null,
            updated_by: Executor::operator(),
            version: 3,
            ctime: 0,
            mtime: 0,
        }
    }

    fn fields(attribute: Attribute) -> TagGroupFields {
        let g = group();
        TagGroupFields {
            expiry: None,
            name: g.name,
            variable_name: g.variable_name,
            description: g.description,
            attribute,
            category: g.category,
        }
    }

    #[test]
    fn a_locked_group_or_a_stale_version_refuses_an_edit() {
        let mut current = group();
        assert!(check_edit(&current, None).is_ok());
        assert!(check_edit(&current, Some(3)).is_ok());
        assert!(matches!(
            check_edit(&current, Some(2)),
            Err(Error::StaleVersion)
        ));
        current.is_locked = true;
        assert!(matches!(
            check_edit(&current, Some(3)),
            Err(Error::GroupLocked)
        ));
        assert!(matches!(
            check_activation(&current),
            Err(Error::GroupLocked)
        ));
    }

    #[tokio::test]
    async fn live_assignments_are_counted_only_when_the_attribute_changes() {
        let current = group();
        let (same, other) = (fields(Attribute::Number), fields(Attribute::String));
        let unchanged = check_attribute_change(&current, &same, || async {
            panic!("counted although the attribute stays")
        });
        assert!(unchanged.await.is_ok());
        let in_use = check_attribute_change(&current, &other, || async { Ok(1) });
        assert!(matches!(in_use.await, Err(Error::AttributeInUse)));
        let free = check_attribute_change(&current, &other, || async { Ok(0) });
        assert!(free.await.is_ok());
    }
}
