//! Organizations, users, apps, credentials, tokens and operator settings.

use crate::driver::{DbError, SqlConn};
use crate::records::{self, sql::TOKEN_SELECT};
use crate::{internal, one};
use tagd_core::timefmt::now_unix;
use tagd_core::*;

const ADMIN_TOKEN_KEY: &str = "admin_token_sha256";

/// A unique violation means `what` is taken; a foreign key one that the organization is gone.
fn refused(what: &'static str) -> impl Fn(DbError) -> Error {
    move |e| match e {
        DbError::Unique => Error::Duplicate(what.to_owned()),
        DbError::ForeignKey => Error::OrgNotFound,
        other => internal(other),
    }
}

pub(crate) async fn admin_token_hash(conn: &mut dyn SqlConn) -> Result<Option<String>> {
    let row = conn
        .fetch_optional(
            "SELECT value FROM settings WHERE key = $1",
            &[ADMIN_TOKEN_KEY.into()],
        )
        .await
        .map_err(internal)?;
    row.map(|r| r.text("value")).transpose()
}

pub(crate) async fn init_admin_token_hash(conn: &mut dyn SqlConn, hash: &str) -> Result<bool> {
    let inserted = conn
        .execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[ADMIN_TOKEN_KEY.into(), hash.into()],
        )
        .await
        .map_err(internal)?;
    Ok(inserted == 1)
}

const ORG_COLUMNS: &str = "id, corp_id, name, ctime";

pub(crate) async fn create_org(conn: &mut dyn SqlConn, name: &str) -> Result<Organization> {
    let corp_id = ExternalId::generate();
    let row = conn
        .fetch_optional(
            &format!(
                "INSERT INTO organizations (corp_id, name, ctime) VALUES ($1, $2, $3) \
                 RETURNING {ORG_COLUMNS}"
            ),
            &[corp_id.as_str().into(), name.into(), now_unix().into()],
        )
        .await
        .map_err(refused("corp_id"))?;
    records::organization(one(row)?.as_ref())
}

pub(crate) async fn find_org_by_corp_id(
    conn: &mut dyn SqlConn,
    corp_id: &CorpId,
) -> Result<Option<Organization>> {
    let sql = format!("SELECT {ORG_COLUMNS} FROM organizations WHERE corp_id = $1");
    let row = conn
        .fetch_optional(&sql, &[corp_id.as_str().into()])
        .await
        .map_err(internal)?;
    row.map(|r| records::organization(r.as_ref())).transpose()
}

pub(crate) async fn get_org(conn: &mut dyn SqlConn, org: OrgId) -> Result<Organization> {
    let sql = format!("SELECT {ORG_COLUMNS} FROM organizations WHERE id = $1");
    let row = conn
        .fetch_optional(&sql, &[org.0.into()])
        .await
        .map_err(internal)?
        .ok_or(Error::OrgNotFound)?;
    records::organization(row.as_ref())
}

pub(crate) async fn create_user(
    conn: &mut dyn SqlConn,
    org: OrgId,
    user_id: &UserId,
) -> Result<(User, bool)> {
    let inserted = conn
        .execute(
            "INSERT INTO users (org_id, user_id, ctime) VALUES ($1, $2, $3) \
             ON CONFLICT (org_id, user_id) DO NOTHING",
            &[org.0.into(), user_id.as_str().into(), now_unix().into()],
        )
        .await
        .map_err(refused("user_id"))?;
    let user = find_user(conn, org, user_id)
        .await?
        .ok_or_else(|| Error::internal("user vanished after insert"))?;
    Ok((user, inserted == 1))
}

pub(crate) async fn find_user(
    conn: &mut dyn SqlConn,
    org: OrgId,
    user_id: &UserId,
) -> Result<Option<User>> {
    let row = conn
        .fetch_optional(
            "SELECT id, org_id, user_id, ctime FROM users WHERE org_id = $1 AND user_id = $2",
            &[org.0.into(), user_id.as_str().into()],
        )
        .await
        .map_err(internal)?;
    row.map(|r| records::user(r.as_ref())).transpose()
}

const APP_COLUMNS: &str = "id, org_id, app_id, name, secret_hash, ctime";

pub(crate) async fn create_app(
    conn: &mut dyn SqlConn,
    org: OrgId,
    name: &str,
    secret_hash: &str,
) -> Result<App> {
    let app_id = ExternalId::generate();
    let row = conn
        .fetch_optional(
            &format!(
                "INSERT INTO apps (org_id, app_id, name, secret_hash, ctime) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING {APP_COLUMNS}"
            ),
            &[
                org.0.into(),
                app_id.as_str().into(),
                name.into(),
                secret_hash.into(),
                now_unix().into(),
            ],
        )
        .await
        .map_err(refused("app_id"))?;
    records::app(one(row)?.as_ref())
}

pub(crate) async fn find_app(conn: &mut dyn SqlConn, app_id: &ExternalId) -> Result<Option<App>> {
    let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE app_id = $1");
    let row = conn
        .fetch_optional(&sql, &[app_id.as_str().into()])
        .await
        .map_err(internal)?;
    row.map(|r| records::app(r.as_ref())).transpose()
}

const CREDENTIAL_COLUMNS: &str = "id, org_id, username, password_hash, ctime";

pub(crate) async fn create_basic_credential(
    conn: &mut dyn SqlConn,
    org: OrgId,
    username: &str,
    password_hash: &str,
) -> Result<BasicCredential> {
    let row = conn
        .fetch_optional(
            &format!(
                "INSERT INTO basic_credentials (org_id, username, password_hash, ctime) \
                 VALUES ($1, $2, $3, $4) RETURNING {CREDENTIAL_COLUMNS}"
            ),
            &[
                org.0.into(),
                username.into(),
                password_hash.into(),
                now_unix().into(),
            ],
        )
        .await
        .map_err(refused("username"))?;
    records::basic_credential(one(row)?.as_ref())
}

pub(crate) async fn find_basic_credential(
    conn: &mut dyn SqlConn,
    username: &str,
) -> Result<Option<BasicCredential>> {
    let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM basic_credentials WHERE username = $1");
    let row = conn
        .fetch_optional(&sql, &[username.into()])
        .await
        .map_err(internal)?;
    row.map(|r| records::basic_credential(r.as_ref()))
        .transpose()
}

pub(crate) async fn create_token(
    conn: &mut dyn SqlConn,
    org: OrgId,
    app: i64,
    token_hash: &str,
    expires_at: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO tokens (org_id, app_ref, token_hash, expires_at, ctime) \
         VALUES ($1, $2, $3, $4, $5)",
        &[
            org.0.into(),
            app.into(),
            token_hash.into(),
            expires_at.into(),
            now_unix().into(),
        ],
    )
    .await
    .map_err(refused("token"))?;
    Ok(())
}

pub(crate) async fn revoke_tokens(conn: &mut dyn SqlConn, org: OrgId, app: i64) -> Result<u64> {
    conn.execute(
        "UPDATE tokens SET revoked = TRUE WHERE org_id = $1 AND app_ref = $2 AND NOT revoked",
        &[org.0.into(), app.into()],
    )
    .await
    .map_err(internal)
}

pub(crate) async fn find_token(
    conn: &mut dyn SqlConn,
    token_hash: &str,
) -> Result<Option<TokenRecord>> {
    let row = conn
        .fetch_optional(TOKEN_SELECT, &[token_hash.into()])
        .await
        .map_err(internal)?;
    row.map(|r| records::token(r.as_ref())).transpose()
}
