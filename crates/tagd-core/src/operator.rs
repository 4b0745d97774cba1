//! The operator's operations (API.md §6), shared by the admin API and the CLI so both parse
//! and store the same way: secrets are generated here and leave only once, in the answer.

use crate::error::{Error, Result};
use crate::ids::{CorpId, UserId};
use crate::model::{App, BasicCredential, OrgCounts, Organization, User, MAX_TAG_GROUPS_LIMIT};
use crate::secrets::{generate_secret, hash_password, sha256_hex};
use crate::store::Store;

/// Longest organization or app name, in characters.
pub const MAX_LABEL_CHARS: usize = 255;
/// Longest Basic user name; a colon is refused because Basic auth splits on the first one.
pub const MAX_USERNAME_CHARS: usize = 128;
/// Longest password accepted, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn display_name(field: &str, raw: &str) -> Result<String> {
    crate::names::bounded_name(field, raw, MAX_LABEL_CHARS)
}

/// Finds an organization by its `corp_id`, parsed from a path or argument.
pub async fn org_by_corp_id(store: &dyn Store, corp_id: &str) -> Result<Organization> {
    let corp_id = CorpId::parse("corp_id", corp_id)?;
    store
        .find_org_by_corp_id(&corp_id)
        .await?
        .ok_or(Error::OrgNotFound)
}

pub async fn create_org(store: &dyn Store, name: &str) -> Result<Organization> {
    store.create_org(&display_name("name", name)?).await
}

/// A new app and its secret, which is stored only as a hash and never shown again.
pub async fn create_app(store: &dyn Store, corp_id: &str, name: &str) -> Result<(App, String)> {
    let org = org_by_corp_id(store, corp_id).await?;
    let name = display_name("name", name)?;
    let secret = generate_secret();
    let app = store
        .create_app(org.id, &name, &sha256_hex(&secret))
        .await?;
    Ok((app, secret))
}

/// Revokes every token issued to the app (an app of another organization is not found);
/// answers how many. A server caches a valid token for `--token-cache-secs` (10 s by
/// default), so a token revoked by another process stops working within that time; the
/// admin API also empties its own server's cache, so there it stops at once.
pub async fn revoke_app_tokens(store: &dyn Store, corp_id: &str, app_id: &str) -> Result<u64> {
    let (org, app) = org_app(store, corp_id, app_id).await?;
    store.revoke_tokens(org.id, app.id).await
}

/// The organization `corp_id` names and its app `app_id` (`AppNotFound` for another's).
async fn org_app(store: &dyn Store, corp_id: &str, app_id: &str) -> Result<(Organization, App)> {
    let org = org_by_corp_id(store, corp_id).await?;
    let app_id = crate::ids::ExternalId::parse("app_id", app_id)?;
    let app = store
        .find_org_app(org.id, &app_id)
        .await?
        .ok_or(Error::AppNotFound)?;
    Ok((org, app))
}

/// An organization with what it holds.
pub async fn describe_org(store: &dyn Store, corp_id: &str) -> Result<(Organization, OrgCounts)> {
    let org = org_by_corp_id(store, corp_id).await?;
    let counts = store.org_counts(org.id).await?;
    Ok((org, counts))
}

/// Disables (every credential refused at once on the server that did it, within
/// `--token-cache-secs` and `--basic-auth-cache-secs` on others; data kept) or enables.
pub async fn set_org_disabled(
    store: &dyn Store,
    corp_id: &str,
    disabled: bool,
) -> Result<Organization> {
    let org = org_by_corp_id(store, corp_id).await?;
    store.set_org_disabled(org.id, disabled).await
}

/// An organization's cap on tag groups: its own, or the server's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagGroupLimits {
    /// The cap in force.
    pub max_tag_groups: i64,
    /// True when the organization has no cap of its own.
    pub is_default: bool,
    /// Tag groups it has (not deleted).
    pub tag_groups: i64,
}

pub async fn limits(store: &dyn Store, corp_id: &str) -> Result<TagGroupLimits> {
    let org = org_by_corp_id(store, corp_id).await?;
    limits_of(store, &org).await
}

async fn limits_of(store: &dyn Store, org: &Organization) -> Result<TagGroupLimits> {
    let counts = store.org_counts(org.id).await?;
    Ok(TagGroupLimits {
        max_tag_groups: org
            .max_tag_groups
            .unwrap_or_else(|| store.default_max_tag_groups()),
        is_default: org.max_tag_groups.is_none(),
        tag_groups: counts.tag_groups,
    })
}

/// Sets (or with `None` clears) the organization's own cap. Lowering it below what the
/// organization has deletes nothing: it only stops new tag groups.
pub async fn set_limits(
    store: &dyn Store,
    corp_id: &str,
    max_tag_groups: Option<i64>,
) -> Result<TagGroupLimits> {
    if let Some(max) = max_tag_groups {
        if !(0..=MAX_TAG_GROUPS_LIMIT).contains(&max) {
            return Err(Error::invalid(
                "max_tag_groups",
                format!("must be 0 to {MAX_TAG_GROUPS_LIMIT}, or null for the default"),
            ));
        }
    }
    let org = org_by_corp_id(store, corp_id).await?;
    let org = store.set_org_max_tag_groups(org.id, max_tag_groups).await?;
    limits_of(store, &org).await
}

pub async fn list_apps(store: &dyn Store, corp_id: &str) -> Result<Vec<App>> {
    let org = org_by_corp_id(store, corp_id).await?;
    store.list_apps(org.id).await
}

/// A new secret for the app, shown once; the old one stops issuing tokens at once and every
/// token issued with it is revoked.
pub async fn rotate_app_secret(
    store: &dyn Store,
    corp_id: &str,
    app_id: &str,
) -> Result<(App, String)> {
    let (org, app) = org_app(store, corp_id, app_id).await?;
    let secret = generate_secret();
    let app = store
        .rotate_app_secret(org.id, app.id, &sha256_hex(&secret))
        .await?;
    Ok((app, secret))
}

/// Deletes the app and its tokens.
pub async fn delete_app(store: &dyn Store, corp_id: &str, app_id: &str) -> Result<App> {
    let (org, app) = org_app(store, corp_id, app_id).await?;
    store.delete_app(org.id, app.id).await?;
    Ok(app)
}

pub async fn list_basic_credentials(
    store: &dyn Store,
    corp_id: &str,
) -> Result<Vec<BasicCredential>> {
    let org = org_by_corp_id(store, corp_id).await?;
    store.list_basic_credentials(org.id).await
}

/// A new password for a credential of the organization; the old one is refused from then on.
pub async fn set_basic_password(
    store: &dyn Store,
    corp_id: &str,
    username: &str,
    password: &[u8],
) -> Result<BasicCredential> {
    let org = org_by_corp_id(store, corp_id).await?;
    check_password(password)?;
    let hash = hash_password(password).map_err(Error::internal)?;
    store.set_basic_password(org.id, username, &hash).await
}

pub async fn delete_basic_credential(
    store: &dyn Store,
    corp_id: &str,
    username: &str,
) -> Result<()> {
    let org = org_by_corp_id(store, corp_id).await?;
    store.delete_basic_credential(org.id, username).await
}

fn check_password(password: &[u8]) -> Result<()> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::invalid("password", "must be 1 to 1024 bytes"));
    }
    Ok(())
}

/// A credential from the `Authorization: Basic ...` header a client already sends, so that
/// exact header authenticates (its password may be any bytes).
pub async fn create_basic_credential_from_header(
    store: &dyn Store,
    corp_id: &str,
    header: &str,
) -> Result<BasicCredential> {
    let (username, password) = crate::secrets::decode_basic_header(header).ok_or_else(|| {
        Error::invalid(
            "authorization",
            "must be `Basic <base64 of user:password>` with a UTF-8 user name",
        )
    })?;
    create_basic_credential(store, corp_id, &username, &password).await
}

pub async fn create_basic_credential(
    store: &dyn Store,
    corp_id: &str,
    username: &str,
    password: &[u8],
) -> Result<BasicCredential> {
    let org = org_by_corp_id(store, corp_id).await?;
    let name_ok = !username.is_empty()
        && username.chars().count() <= MAX_USERNAME_CHARS
        && !username
            .chars()
            .any(|c| c == ':' || c.is_control() || c.is_whitespace());
    if !name_ok {
        return Err(Error::invalid(
            "username",
            "must be 1 to 128 characters without colon, spaces or control characters",
        ));
    }
    check_password(password)?;
    let hash = hash_password(password).map_err(Error::internal)?;
    store.create_basic_credential(org.id, username, &hash).await
}

/// Registers a user; idempotent. The flag says whether this call created it.
pub async fn create_user(store: &dyn Store, corp_id: &str, user_id: &str) -> Result<(User, bool)> {
    let org = org_by_corp_id(store, corp_id).await?;
    store
        .create_user(org.id, &UserId::parse(user_id)?, &crate::Recorder::none())
        .await
}

/// Locks or unlocks a tag group: a locked group's definition and activation cannot change.
pub async fn set_group_locked(
    store: &dyn Store,
    corp_id: &str,
    entity_id: &str,
    locked: bool,
) -> Result<crate::model::TagGroup> {
    let org = org_by_corp_id(store, corp_id).await?;
    let entity_id = crate::ids::ExternalId::parse("entity_id", entity_id)?;
    store
        .set_tag_group_locked(
            org.id,
            &entity_id,
            locked,
            &crate::model::Executor::operator(),
        )
        .await
}
