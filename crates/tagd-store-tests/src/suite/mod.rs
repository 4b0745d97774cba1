//! The behaviours every store must show. Each takes a fresh store.

mod assignments;
mod bulk;
mod coalesced;
mod events;
mod expiry;
mod groups;
mod identity;
mod labels;
mod log;
mod security;
mod tenancy;

pub use assignments::*;
pub use bulk::*;
pub use coalesced::*;
pub use events::*;
pub use expiry::*;
pub use groups::*;
pub use identity::*;
pub use labels::*;
pub use log::*;
pub use security::*;
pub use tenancy::*;

use std::sync::Arc;
use tagd_core::bulk::ExportRow;
use tagd_core::labels::{LabelChange, LabelWarning};
use tagd_core::*;

pub type DynStore = Arc<dyn Store>;

pub fn fields(name: &str, variable: &str, attribute: Attribute, category: &str) -> TagGroupFields {
    TagGroupFields {
        expiry: None,
        name: GroupName::parse(name).expect("valid name"),
        variable_name: VariableName::parse(variable).expect("valid variable name"),
        description: Description::parse("description", "made by a test", 1024).expect("valid"),
        attribute,
        category: Category::parse(category).expect("valid category"),
    }
}

pub fn user(raw: &str) -> UserId {
    UserId::parse(raw).expect("valid user id")
}

pub fn app_executor() -> Executor {
    Executor {
        kind: ExecutorKind::App,
        id: 1,
        name: "0123456789abcdef0123456789abcdef".into(),
    }
}

pub fn assign_command(group: &TagGroup, user_id: &str, value: &str) -> AssignCommand {
    AssignCommand {
        expiry: None,
        tags_group_id: group.entity_id.clone(),
        user_id: user(user_id),
        raw_value: value.into(),
        executor: app_executor(),
        source: Source::OpenApi,
    }
}

pub fn label(name: &str) -> LabelName {
    LabelName::parse_optional(name)
        .expect("valid")
        .expect("not blank")
}

pub fn change(add: &[&str], remove: &[&str]) -> LabelChange {
    LabelChange {
        expiry: Default::default(),
        add: add.iter().map(|n| label(n)).collect(),
        remove: remove.iter().map(|n| label(n)).collect(),
    }
}

pub fn v2_executor() -> Executor {
    Executor {
        kind: ExecutorKind::Credential,
        id: 7,
        name: "loyalty".into(),
    }
}

/// The user `user_id` of `org` as the store finds it, or `None` where it is not registered.
pub(crate) async fn registered(store: &DynStore, org: OrgId, user_id: &str) -> Option<User> {
    store.find_user(org, &user(user_id)).await.expect("query")
}

/// Assigns `value` to `user_id` in `group`, as the test app, outside any request.
pub(crate) async fn assign(
    store: &DynStore,
    org: OrgId,
    group: &TagGroup,
    user_id: &str,
    value: &str,
) -> Result<Assignment> {
    let command = assign_command(group, user_id, value);
    store.assign(org, &command, &Recorder::none()).await
}

/// Removes `user_id`'s value of `group`, as the test app, outside any request.
pub(crate) async fn remove(
    store: &DynStore,
    org: OrgId,
    group: &TagGroup,
    user_id: &str,
) -> Result<Option<Assignment>> {
    let (executor, none) = (app_executor(), Recorder::none());
    let user_id = user(user_id);
    store
        .remove_assignment(
            org,
            &group.entity_id,
            &user_id,
            &executor,
            Source::OpenApi,
            &none,
        )
        .await
}

/// Creates a tag group, as the test app, outside any request.
pub async fn create_group(
    store: &DynStore,
    org: OrgId,
    fields: &TagGroupFields,
) -> Result<TagGroup> {
    let (executor, none) = (app_executor(), Recorder::none());
    store.create_tag_group(org, fields, &executor, &none).await
}

/// A `define` group in category `label`: a v2 label.
pub async fn label_group(store: &DynStore, org: OrgId, name: &str, variable: &str) -> TagGroup {
    create_group(
        store,
        org,
        &fields(name, variable, Attribute::Define, "label"),
    )
    .await
    .expect("label created")
}

/// Edits a tag group, as the test app, outside any request.
pub(crate) async fn update(
    store: &DynStore,
    org: OrgId,
    group: &TagGroup,
    fields: &TagGroupFields,
    expected_version: Option<i64>,
) -> Result<TagGroup> {
    let (executor, none) = (app_executor(), Recorder::none());
    let id = &group.entity_id;
    store
        .update_tag_group(org, id, fields, expected_version, &executor, &none)
        .await
}

/// Activates or deactivates a tag group, as the test app, outside any request.
pub(crate) async fn set_active(
    store: &DynStore,
    org: OrgId,
    group: &TagGroup,
    on: bool,
) -> Result<TagGroup> {
    let (executor, none) = (app_executor(), Recorder::none());
    store
        .set_tag_group_active(org, &group.entity_id, on, &executor, &none)
        .await
}

/// changeLabels for `user_id`, as a v2 credential, outside any request.
pub async fn relabel(
    store: &DynStore,
    org: OrgId,
    user_id: &str,
    add: &[&str],
    remove: &[&str],
) -> Result<Vec<LabelWarning>> {
    let (executor, none) = (v2_executor(), Recorder::none());
    let change = change(add, remove);
    store
        .change_labels(org, &user(user_id), &change, &executor, &none)
        .await
}

/// An organization with one registered user `u1` and one group of each attribute.
pub struct World {
    pub org: Organization,
    pub flag: TagGroup,
    pub number: TagGroup,
    pub text: TagGroup,
}

pub async fn world(store: &DynStore, name: &str) -> World {
    let org = store.create_org(name).await.expect("org created");
    store
        .create_user(org.id, &user("u1"), &Recorder::none())
        .await
        .expect("user created");
    let make = |n: &'static str, v: &'static str, a| {
        let store = store.clone();
        let org = org.id;
        async move {
            create_group(&store, org, &fields(n, v, a, "follow_up"))
                .await
                .expect("group created")
        }
    };
    let flag = make("VIP", "vip", Attribute::Define).await;
    let number = make("Lifetime spend", "lifetime_spend", Attribute::Number).await;
    let text = make("City", "city", Attribute::String).await;
    World {
        org,
        flag,
        number,
        text,
    }
}

/// The history of the live assignment `row` exports, for the suite and the `tagd import` tests
/// (`build.rs` registers the `pub async fn`s of the suite's other files, not of this one).
pub async fn exported_history(store: &DynStore, org: OrgId, row: &ExportRow) -> Vec<HistoryEntry> {
    let live = store
        .list_user_assignments(org, &row.user_id)
        .await
        .expect("listed");
    let a = live
        .iter()
        .find(|a| a.tags_group_id == row.tags_group_id)
        .expect("exported assignment is live");
    store
        .assignment_history(org, &a.entity_id)
        .await
        .expect("history")
}
