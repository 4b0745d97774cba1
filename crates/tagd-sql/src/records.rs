//! Decoding of stored rows into domain types: a driver wraps its row type in something that
//! implements [`Columns`], and the decoders here build the entities from the columns both
//! schemas share.
//! The database only ever holds values that were parsed on the way in, so decoding trusts them;
//! a column of the wrong type is an internal error.

use tagd_core::*;

/// Typed access to the named columns of one row.
pub trait Columns {
    fn int(&self, column: &str) -> Result<i64>;
    fn text(&self, column: &str) -> Result<String>;
    fn flag(&self, column: &str) -> Result<bool>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>>;
    fn opt_text(&self, column: &str) -> Result<Option<String>>;
    fn opt_float(&self, column: &str) -> Result<Option<f64>>;
    fn opt_flag(&self, column: &str) -> Result<Option<bool>>;
}

fn executor(row: &dyn Columns) -> Result<Executor> {
    executor_in(row, "executor")
}

/// An executor kept in the columns `{prefix}_kind`, `{prefix}_ref`, `{prefix}_name`.
fn executor_in(row: &dyn Columns, prefix: &str) -> Result<Executor> {
    Ok(Executor {
        kind: ExecutorKind::from_db(&row.text(&format!("{prefix}_kind"))?),
        id: row.int(&format!("{prefix}_ref"))?,
        name: row.text(&format!("{prefix}_name"))?,
    })
}

pub fn tag_group(row: &dyn Columns) -> Result<TagGroup> {
    Ok(TagGroup {
        org_id: OrgId(row.int("org_id")?),
        id: row.int("id")?,
        entity_id: ExternalId::from_trusted(row.text("entity_id")?),
        name: GroupName::from_trusted(row.text("name")?),
        variable_name: VariableName::from_trusted(row.text("variable_name")?),
        description: Description::from_trusted(row.text("description")?),
        attribute: Attribute::parse(&row.text("attribute")?)?,
        category: Category::from_trusted(row.text("category")?),
        group_type: row.text("type")?,
        is_active: row.flag("is_active")?,
        is_auto: row.flag("is_auto")?,
        is_locked: row.flag("is_locked")?,
        is_deleted: row.flag("is_deleted")?,
        calculation_rules: serde_json::from_str(&row.text("calculation_rules")?)
            .map_err(Error::internal)?,
        updated_by: executor_in(row, "updated_by")?,
        version: row.int("version")?,
        ctime: row.int("ctime")?,
        mtime: row.int("mtime")?,
        expiry: tagd_core::expiry::ExpiryPolicy::from_db(
            &row.text("expiry_policy")?,
            row.opt_int("expiry_date")?,
            row.opt_int("expiry_days")?,
        ),
    })
}

/// An assignment row joined with its user (`user_id`) and group (`group_entity_id`,
/// `group_name`, `variable_name`, `attribute`).
pub fn assignment(row: &dyn Columns) -> Result<Assignment> {
    let value = match Attribute::parse(&row.text("attribute")?)? {
        Attribute::Define => TagValue::Define(row.opt_flag("define_value")?.unwrap_or(false)),
        Attribute::Number => TagValue::Number(row.opt_float("number_value")?.unwrap_or(0.0)),
        Attribute::String => TagValue::String(row.opt_text("string_value")?.unwrap_or_default()),
    };
    Ok(Assignment {
        org_id: OrgId(row.int("org_id")?),
        id: row.int("id")?,
        entity_id: ExternalId::from_trusted(row.text("entity_id")?),
        user_id: UserId::from_trusted(row.text("user_id")?),
        group_id: row.int("group_ref")?,
        tags_group_id: ExternalId::from_trusted(row.text("group_entity_id")?),
        group_name: GroupName::from_trusted(row.text("group_name")?),
        variable_name: VariableName::from_trusted(row.text("variable_name")?),
        value,
        executor: executor(row)?,
        source: Source::from_db(&row.text("source")?),
        version: row.int("version")?,
        ctime: row.int("ctime")?,
        mtime: row.int("mtime")?,
        is_deleted: row.flag("is_deleted")?,
        expires_at: row.opt_int("expires_at")?,
    })
}

pub fn history_entry(row: &dyn Columns) -> Result<HistoryEntry> {
    Ok(HistoryEntry {
        assignment_id: row.int("assignment_ref")?,
        version: row.int("version")?,
        executor: executor(row)?,
        source: Source::from_db(&row.text("source")?),
        old_value: row.opt_text("old_value")?,
        new_value: row.opt_text("new_value")?,
        at: row.int("at")?,
    })
}

pub fn organization(row: &dyn Columns) -> Result<Organization> {
    Ok(Organization {
        id: OrgId(row.int("id")?),
        corp_id: CorpId::from_trusted(row.text("corp_id")?),
        name: row.text("name")?,
        ctime: row.int("ctime")?,
        disabled: row.flag("disabled")?,
        max_tag_groups: row.opt_int("max_tag_groups")?,
    })
}

pub fn app(row: &dyn Columns) -> Result<App> {
    Ok(App {
        org_id: OrgId(row.int("org_id")?),
        id: AppRef(row.int("id")?),
        app_id: ExternalId::from_trusted(row.text("app_id")?),
        name: row.text("name")?,
        secret_hash: row.text("secret_hash")?,
        ctime: row.int("ctime")?,
    })
}

pub fn basic_credential(row: &dyn Columns) -> Result<BasicCredential> {
    Ok(BasicCredential {
        org_id: OrgId(row.int("org_id")?),
        id: row.int("id")?,
        username: row.text("username")?,
        password_hash: row.text("password_hash")?,
        ctime: row.int("ctime")?,
    })
}

pub fn user(row: &dyn Columns) -> Result<User> {
    Ok(User {
        org_id: OrgId(row.int("org_id")?),
        id: row.int("id")?,
        user_id: UserId::from_trusted(row.text("user_id")?),
        ctime: row.int("ctime")?,
    })
}

pub fn token(row: &dyn Columns) -> Result<TokenRecord> {
    Ok(TokenRecord {
        org_id: OrgId(row.int("org_id")?),
        corp_id: CorpId::from_trusted(row.text("corp_id")?),
        app: AppRef(row.int("app_ref")?),
        app_external_id: ExternalId::from_trusted(row.text("app_external_id")?),
        expires_at: row.int("expires_at")?,
        revoked: row.flag("revoked")?,
    })
}

/// Column lists and the assignment join, identical in both schemas.
pub mod sql {
    pub const GROUP_COLUMNS: &str = "id, org_id, entity_id, name, variable_name, description, \
         attribute, category, type, is_active, is_auto, is_locked, is_deleted, \
         calculation_rules, updated_by_kind, updated_by_ref, updated_by_name, version, ctime, \
         mtime, expiry_policy, expiry_date, expiry_days";

    /// An assignment (`a`) that counts now: not removed, not expired. Expiry is decided here,
    /// at read time, by the database's clock (`unixepoch()`, defined for PostgreSQL by its
    /// migrations), so no read waits for the sweep.
    pub const LIVE: &str =
        "NOT a.is_deleted AND (a.expires_at IS NULL OR a.expires_at > unixepoch())";

    /// The columns [`super::assignment`] reads, from `a` (tag_assignments), `u` (users) and
    /// `g` (tag_groups).
    macro_rules! assignment_columns {
        () => {
            "a.id, a.org_id, a.entity_id, u.user_id, a.user_ref, \
             a.group_ref, g.entity_id AS group_entity_id, g.name AS group_name, g.variable_name, \
             g.attribute, a.define_value, a.number_value, a.string_value, a.executor_kind, \
             a.executor_ref, a.executor_name, a.source, a.version, a.ctime, a.mtime, a.is_deleted, \
             a.expires_at"
        };
    }

    pub const ASSIGNMENT_COLUMNS: &str = assignment_columns!();

    pub const ASSIGNMENT_SELECT: &str = concat!(
        "SELECT ",
        assignment_columns!(),
        " FROM tag_assignments a \
         JOIN users u ON u.org_id = a.org_id AND u.id = a.user_ref \
         JOIN tag_groups g ON g.org_id = a.org_id AND g.id = a.group_ref"
    );

    /// A token with its app's and organization's external ids, by token hash.
    pub const TOKEN_SELECT: &str = "SELECT t.org_id, o.corp_id, t.app_ref, \
         p.app_id AS app_external_id, t.expires_at, t.revoked \
         FROM tokens t \
         JOIN apps p ON p.org_id = t.org_id AND p.id = t.app_ref \
         JOIN organizations o ON o.id = t.org_id \
         WHERE t.token_hash = $1 AND NOT o.disabled";

    /// An assignment's entries of the change log, as history entries.
    pub const HISTORY_COLUMNS: &str = "assignment_ref, subject_version AS version, \
         executor_kind, executor_ref, executor_name, source, old_value, new_value, at";
}
