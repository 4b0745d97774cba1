//! The operator's operations (API.md §6), shared by the admin API and the CLI so both parse
//! and store the same way: secrets are generated here and leave only once, in the answer.

use crate::error::{Error, Result};
use crate::ids::{CorpId, UserId};
use crate::model::{App, BasicCredential, Organization, User};
use crate::secrets::{generate_secret, hash_password, sha256_hex};
use crate::store::Store;

/// Longest organization or app name, in characters.
pub const MAX_LABEL_CHARS: usize = 255;
/// Longest Basic user name; a colon is refused because Basic auth splits on the first one.
pub const MAX_USERNAME_CHARS: usize = 128;
/// Longest password accepted, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn display_name(field: &str, raw: &str) -> Result<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_LABEL_CHARS {
        return Err(Error::invalid(field, "must be 1 to 255 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
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
    let org = org_by_corp_id(store, corp_id).await?;
    let app_id = crate::ids::ExternalId::parse("app_id", app_id)?;
    let app = store
        .find_app(&app_id)
        .await?
        .filter(|app| app.org_id == org.id)
        .ok_or(Error::AppNotFound)?;
    store.revoke_tokens(org.id, app.id).await
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
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::invalid("password", "must be 1 to 1024 bytes"));
    }
    let hash = hash_password(password).map_err(Error::internal)?;
    store.create_basic_credential(org.id, username, &hash).await
}

/// Registers a user; idempotent. The flag says whether this call created it.
pub async fn create_user(store: &dyn Store, corp_id: &str, user_id: &str) -> Result<(User, bool)> {
    let org = org_by_corp_id(store, corp_id).await?;
    store.create_user(org.id, &UserId::parse(user_id)?).await
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
