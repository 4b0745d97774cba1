//! The v2 label rules (API.md §1, §3.1): a label is an active `define` tag group, a customer
//! carries it when that group's assignment is live and true. `changeLabels` is decided here,
//! once, from the state a backend reads in its transaction ([`plan_label_change`]); the
//! backend then writes the plan's steps.

use crate::error::Result;
use crate::idempotency::Recorder;
use crate::ids::{OrgId, UserId};
use crate::model::{Assignment, Executor, TagGroup};
use crate::names::LabelName;
use std::collections::{HashMap, HashSet};

/// v2 warning: no active label of that name (`"<name> label not found"`).
pub const LABEL_NOT_FOUND: u32 = 33000;
/// v2 warning: a remove was asked of a customer who carries no label at all.
pub const USER_LABELS_NOT_FOUND: u32 = 33001;
/// v2 warning: `organization/labels` was asked to create a name in use.
/// v2 warning: the organization has reached its cap on labels (tag groups).
pub const LABEL_LIMIT_REACHED: u32 = 33003;
pub const LABEL_EXISTS: u32 = 33002;

/// Most `add` plus `remove` entries one changeLabels request may carry.
pub const MAX_LABEL_CHANGES: usize = 1000;

/// One entry of a v2 `warnings` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelWarning {
    pub code: u32,
    pub message: String,
}

impl LabelWarning {
    pub fn not_found(name: &str) -> Self {
        LabelWarning {
            code: LABEL_NOT_FOUND,
            message: format!("{name} label not found"),
        }
    }

    pub fn user_has_none() -> Self {
        LabelWarning {
            code: USER_LABELS_NOT_FOUND,
            message: "User labels not found".to_owned(),
        }
    }

    pub fn exists(name: &str) -> Self {
        LabelWarning {
            code: LABEL_EXISTS,
            message: format!("{name} label already exists"),
        }
    }

    /// The organization is at its cap on tag groups (Capillary's `ORG_MAX_LABEL_COUNT`).
    pub fn limit_reached(name: &str) -> Self {
        LabelWarning {
            code: LABEL_LIMIT_REACHED,
            message: format!("{name} label limit reached"),
        }
    }
}

/// The labels to add to and remove from one customer, blank names already dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelChange {
    pub add: Vec<LabelName>,
    pub remove: Vec<LabelName>,
    /// The expiry (Unix seconds) an `add` entry asked for, by label name: a label added with
    /// one expires then, and one the customer carries already takes the new date.
    pub expiry: HashMap<String, i64>,
}

/// What a changeLabels request does to one customer's labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelPlan {
    /// The label groups (by id) to change, in order: `(group, true)` puts a label on the
    /// customer, `(group, false)` takes it off. Entries that change nothing are left out.
    pub steps: Vec<(i64, bool)>,
    pub warnings: Vec<LabelWarning>,
}

/// Works out a changeLabels request from what it reads: `labels`, the ids of the active
/// `define` groups under the names the request gives, and `carried`, the ids of every label group the
/// customer carries now. Adds come first, then removes, each in request order, and every
/// entry sees the ones before it: a remove after the last carried label is gone warns that
/// the customer has no labels. Warnings come in the same order.
pub fn plan_label_change(
    change: &LabelChange,
    labels: &HashMap<String, i64>,
    carried: &HashSet<i64>,
) -> LabelPlan {
    let mut carried = carried.clone();
    let mut plan = LabelPlan::default();
    for name in &change.add {
        let Some(group) = labels.get(name.as_str()) else {
            plan.warnings.push(LabelWarning::not_found(name.as_str()));
            continue;
        };
        // Idempotent: a label the customer already carries is left as it is (no new version),
        // unless the entry gives it an expiry date (the write decides whether it changed).
        if carried.insert(*group) || change.expiry.contains_key(name.as_str()) {
            plan.steps.push((*group, true));
        }
    }
    let mut said_user_has_none = false;
    for name in &change.remove {
        let Some(group) = labels.get(name.as_str()) else {
            plan.warnings.push(LabelWarning::not_found(name.as_str()));
            continue;
        };
        if carried.is_empty() {
            if !said_user_has_none {
                plan.warnings.push(LabelWarning::user_has_none());
                said_user_has_none = true;
            }
            continue;
        }
        // Removing a label the customer does not carry is a no-op.
        if carried.remove(group) {
            plan.steps.push((*group, false));
        }
    }
    plan
}

/// v2 labels: the store's contract.
#[async_trait::async_trait]
pub trait Labels: Send + Sync {
    /// changeLabels in one transaction (rules in [`crate::labels::plan_label_change`]):
    /// `UserNotFound` for an unregistered customer, else the warnings in request order.
    async fn change_labels(
        &self,
        org: OrgId,
        user_id: &UserId,
        change: &LabelChange,
        executor: &Executor,
        record: &Recorder<Vec<LabelWarning>>,
    ) -> Result<Vec<LabelWarning>>;
    /// The labels a registered customer carries (`UserNotFound` otherwise), oldest first.
    async fn list_user_labels(&self, org: OrgId, user_id: &UserId) -> Result<Vec<Assignment>>;
    /// Every label a registered customer carries or carried once (`UserNotFound`
    /// otherwise), oldest first: those it no longer carries (removed, expired, set false) with
    /// `is_deleted` true.
    async fn list_user_labels_ever(&self, org: OrgId, user_id: &UserId) -> Result<Vec<Assignment>>;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(add: &[&str], remove: &[&str]) -> LabelChange {
        let names = |v: &[&str]| {
            v.iter()
                .map(|n| LabelName::from_trusted(n.to_string()))
                .collect()
        };
        LabelChange {
            expiry: Default::default(),
            add: names(add),
            remove: names(remove),
        }
    }

    fn labels() -> HashMap<String, i64> {
        HashMap::from([("VIP".to_owned(), 1), ("Gold".to_owned(), 2)])
    }

    #[test]
    fn adding_a_carried_label_is_no_step_and_unknown_names_warn_in_order() {
        let plan = plan_label_change(
            &change(&["Nope", "VIP", "Gold", "Gold"], &["Other"]),
            &labels(),
            &HashSet::from([1]),
        );
        assert_eq!(plan.steps, vec![(2, true)]);
        let codes: Vec<_> = plan.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(codes, ["Nope label not found", "Other label not found"]);
    }

    #[test]
    fn a_remove_after_the_last_carried_label_is_gone_warns_once_that_there_are_none() {
        let plan = plan_label_change(
            &change(&[], &["VIP", "Gold", "VIP"]),
            &labels(),
            &HashSet::from([1]),
        );
        assert_eq!(plan.steps, vec![(1, false)]);
        assert_eq!(plan.warnings, vec![LabelWarning::user_has_none()]);
    }

    #[test]
    fn a_label_added_then_removed_in_one_request_is_two_steps() {
        let plan = plan_label_change(&change(&["VIP"], &["VIP"]), &labels(), &HashSet::new());
        assert_eq!(plan.steps, vec![(1, true), (1, false)]);
        assert!(plan.warnings.is_empty());
    }

    #[test]
    fn removing_a_label_not_carried_changes_nothing_while_others_are_carried() {
        let plan = plan_label_change(&change(&[], &["Gold"]), &labels(), &HashSet::from([7]));
        assert!(plan.steps.is_empty());
        assert!(plan.warnings.is_empty());
    }
}
