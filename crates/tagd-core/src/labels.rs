//! The v2 label rules (API.md §1, §3.1): a label is an active `define` tag group, a customer
//! carries it when that group's assignment is live and true. `changeLabels` is decided here,
//! once, over a [`LabelTx`] that each backend implements on its open transaction.

use crate::error::Result;
use crate::model::{TagGroup, User};
use crate::names::LabelName;
use crate::value::TagValue;
use async_trait::async_trait;

/// v2 warning: no active label of that name (`"<name> label not found"`).
pub const LABEL_NOT_FOUND: u32 = 33000;
/// v2 warning: a remove was asked of a customer who carries no label at all.
pub const USER_LABELS_NOT_FOUND: u32 = 33001;
/// v2 warning: `organization/labels` was asked to create a name in use.
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
}

/// The labels to add to and remove from one customer, blank names already dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelChange {
    pub add: Vec<LabelName>,
    pub remove: Vec<LabelName>,
}

/// What `changeLabels` needs from a backend, inside one open transaction. The implementation
/// knows the organization, the executor and the source.
#[async_trait]
pub trait LabelTx: Send {
    /// The active, live `define` group of exactly this name.
    async fn label_group(&mut self, name: &LabelName) -> Result<Option<TagGroup>>;
    /// The live value of the user's assignment of `group`, if any.
    async fn live_value(&mut self, user: &User, group: &TagGroup) -> Result<Option<TagValue>>;
    /// Does the user carry any label (a live, true assignment of an active define group)?
    async fn has_labels(&mut self, user: &User) -> Result<bool>;
    /// Sets the user's value of `group`, with its history entry.
    async fn set(&mut self, user: &User, group: &TagGroup, value: TagValue) -> Result<()>;
    /// Soft-deletes the user's live assignment of `group`, with its history entry.
    async fn remove(&mut self, user: &User, group: &TagGroup) -> Result<()>;
}

/// Applies a change in request order: adds, then removes. Warnings come in the same order.
pub async fn apply_label_change(
    tx: &mut dyn LabelTx,
    user: &User,
    change: &LabelChange,
) -> Result<Vec<LabelWarning>> {
    let mut warnings = Vec::new();
    for name in &change.add {
        let Some(group) = tx.label_group(name).await? else {
            warnings.push(LabelWarning::not_found(name.as_str()));
            continue;
        };
        // Idempotent: a label the customer already carries is left as it is (no new version).
        if tx.live_value(user, &group).await? != Some(TagValue::Define(true)) {
            tx.set(user, &group, TagValue::Define(true)).await?;
        }
    }
    let mut said_user_has_none = false;
    for name in &change.remove {
        let Some(group) = tx.label_group(name).await? else {
            warnings.push(LabelWarning::not_found(name.as_str()));
            continue;
        };
        if !tx.has_labels(user).await? {
            if !said_user_has_none {
                warnings.push(LabelWarning::user_has_none());
                said_user_has_none = true;
            }
            continue;
        }
        // Removing a label the customer does not carry is a no-op.
        if tx.live_value(user, &group).await? == Some(TagValue::Define(true)) {
            tx.remove(user, &group).await?;
        }
    }
    Ok(warnings)
}
