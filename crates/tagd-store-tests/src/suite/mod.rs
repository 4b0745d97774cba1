//! The behaviours every store must show. Each takes a fresh store.

mod assignments;
mod bulk;
mod groups;
mod identity;
mod labels;
mod security;
mod tenancy;

pub use assignments::*;
pub use bulk::*;
pub use groups::*;
pub use identity::*;
pub use labels::*;
pub use security::*;
pub use tenancy::*;

use std::sync::Arc;
use tagd_core::*;

pub type DynStore = Arc<dyn Store>;

pub(crate) fn fields(
    name: &str,
    variable: &str,
    attribute: Attribute,
    category: &str,
) -> TagGroupFields {
    TagGroupFields {
        name: GroupName::parse(name).expect("valid name"),
        variable_name: VariableName::parse(variable).expect("valid variable name"),
        description: Description::parse("description", "made by a test", 1024).expect("valid"),
        attribute,
        category: Category::parse(category).expect("valid category"),
    }
}

pub(crate) fn user(raw: &str) -> UserId {
    UserId::parse(raw).expect("valid user id")
}

pub(crate) fn app_executor() -> Executor {
    Executor {
        kind: ExecutorKind::App,
        id: 1,
        name: "0123456789abcdef0123456789abcdef".into(),
    }
}

pub(crate) fn assign_command(group: &TagGroup, user_id: &str, value: &str) -> AssignCommand {
    AssignCommand {
        tags_group_id: group.entity_id.clone(),
        user_id: user(user_id),
        raw_value: value.into(),
        executor: app_executor(),
        source: Source::OpenApi,
    }
}

/// An organization with one registered user `u1` and one group of each attribute.
pub(crate) struct World {
    pub org: Organization,
    pub flag: TagGroup,
    pub number: TagGroup,
    pub text: TagGroup,
}

pub(crate) async fn world(store: &DynStore, name: &str) -> World {
    let org = store.create_org(name).await.expect("org created");
    store
        .create_user(org.id, &user("u1"), &Recorder::none())
        .await
        .expect("user created");
    let make = |n: &'static str, v: &'static str, a| {
        let store = store.clone();
        let org = org.id;
        async move {
            store
                .create_tag_group(
                    org,
                    &fields(n, v, a, "follow_up"),
                    &app_executor(),
                    &Recorder::none(),
                )
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
