//! Assignments of typed tag values to users: the rules every way of assigning shares (v5
//! assign, batch assign, import), and the store's contract.

use crate::error::{Error, Result};
use crate::idempotency::Recorder;
use crate::ids::{ExternalId, OrgId, UserId};
use crate::model::*;
use crate::value::TagValue;
use async_trait::async_trait;

/// The value an assignment to `group` sets from `raw`, or why it may not be set: an inactive
/// group takes no assignment (`GroupInactive`), and the value must fit the group's attribute
/// (`InvalidValue`).
pub fn value_to_assign(group: &TagGroup, raw: &str) -> Result<TagValue> {
    if !group.is_active {
        return Err(Error::GroupInactive);
    }
    TagValue::parse(group.attribute, raw)
}

/// Assignments.
#[async_trait]
pub trait Assignments: Send + Sync {
    /// Sets a user's value of a group in one transaction with its history entry. The group
    /// must exist (`GroupNotFound`) and be active (`GroupInactive`), the user must exist
    /// (`UserNotFound`), the value must fit the attribute (`InvalidValue`). Re-assigning
    /// keeps the assignment's ids and bumps its version.
    async fn assign(
        &self,
        org: OrgId,
        command: &AssignCommand,
        record: &Recorder<Assignment>,
    ) -> Result<Assignment>;
    /// Applies each command as `assign` would, all in one transaction: the valid ones are
    /// written, the others answer their refusal. A database failure refuses the whole batch.
    async fn assign_batch(
        &self,
        org: OrgId,
        commands: &[AssignCommand],
        record: &Recorder<Vec<Result<Assignment>>>,
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
        record: &Recorder<Option<Assignment>>,
    ) -> Result<Option<Assignment>>;
    /// A registered user's live assignments (`UserNotFound` otherwise), oldest first.
    async fn list_user_assignments(&self, org: OrgId, user_id: &UserId) -> Result<Vec<Assignment>>;
    /// Every change of one assignment, oldest first.
    async fn assignment_history(
        &self,
        org: OrgId,
        assignment: &ExternalId,
    ) -> Result<Vec<HistoryEntry>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::tests::group;

    #[test]
    fn an_inactive_group_refuses_before_the_value_is_parsed() {
        let mut number = group();
        assert_eq!(
            value_to_assign(&number, "1250.5").ok(),
            Some(TagValue::Number(1250.5))
        );
        assert!(matches!(
            value_to_assign(&number, "lots"),
            Err(Error::InvalidValue(_))
        ));
        number.is_active = false;
        assert!(matches!(
            value_to_assign(&number, "lots"),
            Err(Error::GroupInactive)
        ));
    }
}
