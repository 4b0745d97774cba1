//! Organizations, users, apps, credentials, tokens and operator settings.

use crate::rows::Cols;
use crate::{db_error, internal};
use sqlx::{PgConnection, PgPool};
use tagd_core::records::{self, sql::TOKEN_SELECT};
use tagd_core::timefmt::now_unix;
use tagd_core::*;

const ADMIN_TOKEN_KEY: &str = "admin_token_sha256";

pub(crate) async fn admin_token_hash(reader: &PgPool) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(ADMIN_TOKEN_KEY)
        .fetch_optional(reader)
        .await
        .map_err(internal)
}

pub(crate) async fn init_admin_token_hash(writer: &PgPool, hash: &str) -> Result<bool> {
    let done =
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(ADMIN_TOKEN_KEY)
            .bind(hash)
            .execute(writer)
            .await
            .map_err(internal)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn create_org(writer: &PgPool, name: &str) -> Result<Organization> {
    let row = sqlx::query(
        "INSERT INTO organizations (corp_id, name, ctime) VALUES ($1, $2, $3) \
         RETURNING id, corp_id, name, ctime",
    )
    .bind(ExternalId::generate().as_str())
    .bind(name)
    .bind(now_unix())
    .fetch_one(writer)
    .await
    .map_err(db_error("corp_id"))?;
    records::organization(&Cols(&row))
}

pub(crate) async fn find_org_by_corp_id(
    reader: &PgPool,
    corp_id: &CorpId,
) -> Result<Option<Organization>> {
    let row = sqlx::query("SELECT id, corp_id, name, ctime FROM organizations WHERE corp_id = $1")
        .bind(corp_id.as_str())
        .fetch_optional(reader)
        .await
        .map_err(internal)?;
    row.map(|r| records::organization(&Cols(&r))).transpose()
}

pub(crate) async fn get_org(reader: &PgPool, org: OrgId) -> Result<Organization> {
    let row = sqlx::query("SELECT id, corp_id, name, ctime FROM organizations WHERE id = $1")
        .bind(org.0)
        .fetch_optional(reader)
        .await
        .map_err(internal)?
        .ok_or(Error::OrgNotFound)?;
    records::organization(&Cols(&row))
}

pub(crate) async fn create_user(
    writer: &PgPool,
    org: OrgId,
    user_id: &UserId,
) -> Result<(User, bool)> {
    let inserted = sqlx::query(
        "INSERT INTO users (org_id, user_id, ctime) VALUES ($1, $2, $3) \
         ON CONFLICT (org_id, user_id) DO NOTHING",
    )
    .bind(org.0)
    .bind(user_id.as_str())
    .bind(now_unix())
    .execute(writer)
    .await
    .map_err(|e| match e.as_database_error() {
        Some(db) if db.is_foreign_key_violation() => Error::OrgNotFound,
        _ => internal(e),
    })?;
    let mut conn = writer.acquire().await.map_err(internal)?;
    let user = find_user_in(&mut conn, org, user_id)
        .await?
        .ok_or_else(|| Error::internal("user vanished after insert"))?;
    Ok((user, inserted.rows_affected() == 1))
}

pub(crate) async fn find_user(
    reader: &PgPool,
    org: OrgId,
    user_id: &UserId,
) -> Result<Option<User>> {
    let mut conn = reader.acquire().await.map_err(internal)?;
    find_user_in(&mut conn, org, user_id).await
}

pub(crate) async fn find_user_in(
    conn: &mut PgConnection,
    org: OrgId,
    user_id: &UserId,
) -> Result<Option<User>> {
    let row = sqlx::query(
        "SELECT id, org_id, user_id, ctime FROM users WHERE org_id = $1 AND user_id = $2",
    )
    .bind(org.0)
    .bind(user_id.as_str())
    .fetch_optional(conn)
    .await
    .map_err(internal)?;
    row.map(|r| records::user(&Cols(&r))).transpose()
}

pub(crate) async fn create_app(
    writer: &PgPool,
    org: OrgId,
    name: &str,
    secret_hash: &str,
) -> Result<App> {
    let row = sqlx::query(
        "INSERT INTO apps (org_id, app_id, name, secret_hash, ctime) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id, org_id, app_id, name, secret_hash, ctime",
    )
    .bind(org.0)
    .bind(ExternalId::generate().as_str())
    .bind(name)
    .bind(secret_hash)
    .bind(now_unix())
    .fetch_one(writer)
    .await
    .map_err(db_error("app_id"))?;
    records::app(&Cols(&row))
}

pub(crate) async fn find_app(reader: &PgPool, app_id: &ExternalId) -> Result<Option<App>> {
    let row = sqlx::query(
        "SELECT id, org_id, app_id, name, secret_hash, ctime FROM apps WHERE app_id = $1",
    )
    .bind(app_id.as_str())
    .fetch_optional(reader)
    .await
    .map_err(internal)?;
    row.map(|r| records::app(&Cols(&r))).transpose()
}

pub(crate) async fn create_basic_credential(
    writer: &PgPool,
    org: OrgId,
    username: &str,
    password_hash: &str,
) -> Result<BasicCredential> {
    let row = sqlx::query(
        "INSERT INTO basic_credentials (org_id, username, password_hash, ctime) \
         VALUES ($1, $2, $3, $4) RETURNING id, org_id, username, password_hash, ctime",
    )
    .bind(org.0)
    .bind(username)
    .bind(password_hash)
    .bind(now_unix())
    .fetch_one(writer)
    .await
    .map_err(db_error("username"))?;
    records::basic_credential(&Cols(&row))
}

pub(crate) async fn find_basic_credential(
    reader: &PgPool,
    username: &str,
) -> Result<Option<BasicCredential>> {
    let row = sqlx::query(
        "SELECT id, org_id, username, password_hash, ctime FROM basic_credentials \
         WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(reader)
    .await
    .map_err(internal)?;
    row.map(|r| records::basic_credential(&Cols(&r)))
        .transpose()
}

pub(crate) async fn create_token(
    writer: &PgPool,
    org: OrgId,
    app: i64,
    token_hash: &str,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tokens (org_id, app_ref, token_hash, expires_at, ctime) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(org.0)
    .bind(app)
    .bind(token_hash)
    .bind(expires_at)
    .bind(now_unix())
    .execute(writer)
    .await
    .map_err(db_error("token"))?;
    Ok(())
}

pub(crate) async fn find_token(reader: &PgPool, token_hash: &str) -> Result<Option<TokenRecord>> {
    let row = sqlx::query(TOKEN_SELECT)
        .bind(token_hash)
        .fetch_optional(reader)
        .await
        .map_err(internal)?;
    row.map(|r| records::token(&Cols(&r))).transpose()
}
