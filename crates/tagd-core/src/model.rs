//! The entities of API.md §1, as the store returns them.

use crate::ids::{AppRef, CorpId, ExternalId, OrgId, UserId};
use crate::names::{Category, Description, GroupName, VariableName};
use crate::value::{Attribute, TagValue};

/// A tenant. Every row of data belongs to exactly one.
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    pub id: OrgId,
    pub corp_id: CorpId,
    pub name: String,
    pub ctime: i64,
    /// While disabled, every credential of the organization is refused; its data is kept.
    pub disabled: bool,
    /// Its own cap on tag groups; `None` takes the server's default.
    pub max_tag_groups: Option<i64>,
}

/// How much an organization holds, for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrgCounts {
    pub users: i64,
    /// Tag groups that are not deleted (labels included).
    pub tag_groups: i64,
    pub live_assignments: i64,
    pub apps: i64,
    pub basic_credentials: i64,
}

/// A person known to one organization (v2: a customer).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub org_id: OrgId,
    pub id: i64,
    pub user_id: UserId,
    pub ctime: i64,
}

/// A v5 API client: its secret is kept only as a SHA-256 hash.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub org_id: OrgId,
    pub id: AppRef,
    pub app_id: ExternalId,
    pub name: String,
    pub secret_hash: String,
    pub ctime: i64,
}

/// A v2 Basic credential: its password is kept only as an argon2 hash.
#[derive(Debug, Clone, PartialEq)]
pub struct BasicCredential {
    pub org_id: OrgId,
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub ctime: i64,
}

/// A bearer token issued to an app, found by the SHA-256 hash of the token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub org_id: OrgId,
    /// The organization's external id, joined in so auth needs one query.
    pub corp_id: CorpId,
    /// The app it was issued to.
    pub app: AppRef,
    /// The app's external id, compared with `X-APP-ID`.
    pub app_external_id: ExternalId,
    pub expires_at: i64,
    pub revoked: bool,
}

/// A tag definition in one organization.
#[derive(Debug, Clone, PartialEq)]
pub struct TagGroup {
    pub org_id: OrgId,
    pub id: i64,
    pub entity_id: ExternalId,
    pub name: GroupName,
    pub variable_name: VariableName,
    pub description: Description,
    pub attribute: Attribute,
    pub category: Category,
    /// `custom` for groups made through the API; `system` for built-in ones.
    pub group_type: String,
    pub is_active: bool,
    pub is_auto: bool,
    pub is_locked: bool,
    pub is_deleted: bool,
    pub calculation_rules: serde_json::Value,
    /// Who last created, edited, (de)activated or (un)locked it.
    pub updated_by: Executor,
    pub version: i64,
    pub ctime: i64,
    pub mtime: i64,
    /// The expiry its assignments take when they bring none of their own.
    pub expiry: crate::expiry::ExpiryPolicy,
}

/// The five client-editable fields of a tag group, and its default expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct TagGroupFields {
    pub name: GroupName,
    pub variable_name: VariableName,
    pub description: Description,
    pub attribute: Attribute,
    pub category: Category,
    /// The default expiry of its assignments: `None` leaves it as it is (none for a new group).
    pub expiry: Option<crate::expiry::ExpiryPolicy>,
}

impl TagGroupFields {
    /// Parses the five editable fields as a client sends them; the first bad one is named.
    pub fn parse(
        name: &str,
        variable_name: &str,
        description: &str,
        attribute: &str,
        category: &str,
    ) -> crate::Result<Self> {
        Ok(TagGroupFields {
            name: GroupName::parse(name)?,
            variable_name: VariableName::parse(variable_name)?,
            description: Description::parse(
                "description",
                description,
                crate::names::MAX_DESCRIPTION_CHARS,
            )?,
            attribute: Attribute::parse(attribute)?,
            category: Category::parse(category)?,
            expiry: None,
        })
    }
}

/// Where an assignment change came from (`source` in v5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    OpenApi,
    V2Api,
    Import,
    /// tagd itself: the expiry sweep.
    System,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::OpenApi => "open_api",
            Source::V2Api => "v2_api",
            Source::Import => "import",
            Source::System => "system",
        }
    }

    pub fn from_db(raw: &str) -> Self {
        match raw {
            "v2_api" => Source::V2Api,
            "import" => Source::Import,
            "system" => Source::System,
            _ => Source::OpenApi,
        }
    }
}

/// Who made a change: an app (v5), a basic credential (v2) or the operator (import, CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executor {
    pub kind: ExecutorKind,
    /// Internal id of the app or credential (0 for the operator): v2's `addedBy`.
    pub id: i64,
    /// External name: the app's `app_id`, the credential's user name, or `operator`: v5's
    /// `executor_id`.
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecutorKind {
    App,
    Credential,
    Operator,
}

impl ExecutorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::App => "app",
            ExecutorKind::Credential => "credential",
            ExecutorKind::Operator => "operator",
        }
    }

    pub fn from_db(raw: &str) -> Self {
        match raw {
            "app" => ExecutorKind::App,
            "credential" => ExecutorKind::Credential,
            _ => ExecutorKind::Operator,
        }
    }
}

impl Executor {
    pub fn operator() -> Self {
        Executor {
            kind: ExecutorKind::Operator,
            id: 0,
            name: "operator".into(),
        }
    }

    /// tagd itself (the expiry sweep): `executor_id` `system`.
    pub fn system() -> Self {
        Executor {
            kind: ExecutorKind::Operator,
            id: 0,
            name: "system".into(),
        }
    }
}

/// One assignment write: set `raw_value` (parsed per the group's attribute) for a user.
#[derive(Debug, Clone)]
pub struct AssignCommand {
    pub tags_group_id: ExternalId,
    pub user_id: UserId,
    pub raw_value: String,
    /// The expiry the write asks for; `None` takes the group's default.
    pub expiry: Option<crate::expiry::RequestedExpiry>,
    pub executor: Executor,
    pub source: Source,
}

/// The value of one tag group for one user.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub org_id: OrgId,
    pub id: i64,
    pub entity_id: ExternalId,
    pub user_id: UserId,
    pub group_id: i64,
    pub tags_group_id: ExternalId,
    pub group_name: GroupName,
    pub variable_name: VariableName,
    pub value: TagValue,
    pub executor: Executor,
    pub source: Source,
    pub version: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub is_deleted: bool,
    /// When the value expires (Unix seconds); `None` when it does not.
    pub expires_at: Option<i64>,
}

/// One append-only record of an assignment change, written in the change's transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub assignment_id: i64,
    pub version: i64,
    pub executor: Executor,
    pub source: Source,
    /// Canonical text of the value before the change; `None` when there was no live value.
    pub old_value: Option<String>,
    /// Canonical text of the value after the change; `None` for a removal.
    pub new_value: Option<String>,
    pub at: i64,
}

/// A page of rows plus the count of every matching row.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub total: i64,
    pub rows: Vec<T>,
}

/// The cap on an organization's tag groups (labels included) when neither it nor the server
/// sets one: Capillary's `ORG_MAX_LABEL_COUNT` in spirit.
pub const DEFAULT_MAX_TAG_GROUPS: i64 = 10_000;
/// The largest cap the operator may set.
pub const MAX_TAG_GROUPS_LIMIT: i64 = 1_000_000;
