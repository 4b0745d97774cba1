//! Organizations, users, apps, credentials, tokens and operator settings.

use crate::driver::{DbError, Param, SqlConn};
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

const ORG_COLUMNS: &str = "id, corp_id, name, ctime, disabled, max_tag_groups";

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

pub(crate) async fn list_orgs(conn: &mut dyn SqlConn) -> Result<Vec<Organization>> {
    let sql = format!("SELECT {ORG_COLUMNS} FROM organizations ORDER BY id");
    let rows = conn.fetch_all(&sql, &[]).await.map_err(internal)?;
    rows.iter()
        .map(|r| records::organization(r.as_ref()))
        .collect()
}

pub(crate) async fn org_counts(conn: &mut dyn SqlConn, org: OrgId) -> Result<OrgCounts> {
    get_org(conn, org).await?;
    let row = conn
        .fetch_optional(
            "SELECT \
               (SELECT COUNT(*) FROM users WHERE org_id = $1) AS users, \
               (SELECT COUNT(*) FROM tag_groups WHERE org_id = $1 AND NOT is_deleted) AS groups, \
               (SELECT COUNT(*) FROM tag_assignments WHERE org_id = $1 AND NOT is_deleted) \
                 AS assignments, \
               (SELECT COUNT(*) FROM apps WHERE org_id = $1) AS apps, \
               (SELECT COUNT(*) FROM basic_credentials WHERE org_id = $1) AS credentials",
            &[org.0.into()],
        )
        .await
        .map_err(internal)?;
    let row = one(row)?;
    Ok(OrgCounts {
        users: row.int("users")?,
        tag_groups: row.int("groups")?,
        live_assignments: row.int("assignments")?,
        apps: row.int("apps")?,
        basic_credentials: row.int("credentials")?,
    })
}

/// Sets one operator setting of an organization (`column` is this module's own literal).
async fn set_org_column(
    conn: &mut dyn SqlConn,
    org: OrgId,
    column: &str,
    value: Param<'_>,
) -> Result<Organization> {
    let sql =
        format!("UPDATE organizations SET {column} = $2 WHERE id = $1 RETURNING {ORG_COLUMNS}");
    let row = conn
        .fetch_optional(&sql, &[org.0.into(), value])
        .await
        .map_err(internal)?
        .ok_or(Error::OrgNotFound)?;
    records::organization(row.as_ref())
}

pub(crate) async fn set_org_disabled(
    conn: &mut dyn SqlConn,
    org: OrgId,
    disabled: bool,
) -> Result<Organization> {
    set_org_column(conn, org, "disabled", disabled.into()).await
}

pub(crate) async fn set_org_max_tag_groups(
    conn: &mut dyn SqlConn,
    org: OrgId,
    max: Option<i64>,
) -> Result<Organization> {
    set_org_column(conn, org, "max_tag_groups", max.into()).await
}

pub(crate) async fn tag_groups_per_org(conn: &mut dyn SqlConn) -> Result<Vec<(CorpId, i64)>> {
    let rows = conn
        .fetch_all(
            "SELECT o.corp_id, COUNT(*) AS n FROM tag_groups g \
             JOIN organizations o ON o.id = g.org_id \
             WHERE NOT g.is_deleted GROUP BY o.corp_id ORDER BY o.corp_id",
            &[],
        )
        .await
        .map_err(internal)?;
    rows.iter()
        .map(|r| Ok((ExternalId::from_trusted(r.text("corp_id")?), r.int("n")?)))
        .collect()
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

/// Only apps of enabled organizations: this is the lookup authentication makes.
pub(crate) async fn find_app(conn: &mut dyn SqlConn, app_id: &ExternalId) -> Result<Option<App>> {
    let sql = format!(
        "SELECT {APP_COLUMNS} FROM apps WHERE app_id = $1 \
         AND org_id IN (SELECT id FROM organizations WHERE NOT disabled)"
    );
    let row = conn
        .fetch_optional(&sql, &[app_id.as_str().into()])
        .await
        .map_err(internal)?;
    row.map(|r| records::app(r.as_ref())).transpose()
}

pub(crate) async fn find_org_app(
    conn: &mut dyn SqlConn,
    org: OrgId,
    app_id: &ExternalId,
) -> Result<Option<App>> {
    let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE org_id = $1 AND app_id = $2");
    let row = conn
        .fetch_optional(&sql, &[org.0.into(), app_id.as_str().into()])
        .await
        .map_err(internal)?;
    row.map(|r| records::app(r.as_ref())).transpose()
}

pub(crate) async fn list_apps(conn: &mut dyn SqlConn, org: OrgId) -> Result<Vec<App>> {
    let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE org_id = $1 ORDER BY id");
    let rows = conn
        .fetch_all(&sql, &[org.0.into()])
        .await
        .map_err(internal)?;
    rows.iter().map(|r| records::app(r.as_ref())).collect()
}

pub(crate) async fn rotate_app_secret(
    conn: &mut dyn SqlConn,
    org: OrgId,
    app: i64,
    secret_hash: &str,
) -> Result<App> {
    let sql = format!(
        "UPDATE apps SET secret_hash = $3 WHERE org_id = $1 AND id = $2 RETURNING {APP_COLUMNS}"
    );
    let row = conn
        .fetch_optional(&sql, &[org.0.into(), app.into(), secret_hash.into()])
        .await
        .map_err(internal)?
        .ok_or(Error::AppNotFound)?;
    revoke_tokens(conn, org, app).await?;
    records::app(row.as_ref())
}

pub(crate) async fn delete_app(conn: &mut dyn SqlConn, org: OrgId, app: i64) -> Result<()> {
    let params = [org.0.into(), app.into()];
    conn.execute(
        "DELETE FROM tokens WHERE org_id = $1 AND app_ref = $2",
        &params,
    )
    .await
    .map_err(internal)?;
    let deleted = conn
        .execute("DELETE FROM apps WHERE org_id = $1 AND id = $2", &params)
        .await
        .map_err(internal)?;
    if deleted == 0 {
        return Err(Error::AppNotFound);
    }
    Ok(())
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

/// Only credentials of enabled organizations: this is the lookup authentication makes.
pub(crate) async fn find_basic_credential(
    conn: &mut dyn SqlConn,
    username: &str,
) -> Result<Option<BasicCredential>> {
    let sql = format!(
        "SELECT {CREDENTIAL_COLUMNS} FROM basic_credentials WHERE username = $1 \
         AND org_id IN (SELECT id FROM organizations WHERE NOT disabled)"
    );
    let row = conn
        .fetch_optional(&sql, &[username.into()])
        .await
        .map_err(internal)?;
    row.map(|r| records::basic_credential(r.as_ref()))
        .transpose()
}

pub(crate) async fn list_basic_credentials(
    conn: &mut dyn SqlConn,
    org: OrgId,
) -> Result<Vec<BasicCredential>> {
    let sql =
        format!("SELECT {CREDENTIAL_COLUMNS} FROM basic_credentials WHERE org_id = $1 ORDER BY id");
    let rows = conn
        .fetch_all(&sql, &[org.0.into()])
        .await
        .map_err(internal)?;
    rows.iter()
        .map(|r| records::basic_credential(r.as_ref()))
        .collect()
}

pub(crate) async fn set_basic_password(
    conn: &mut dyn SqlConn,
    org: OrgId,
    username: &str,
    password_hash: &str,
) -> Result<BasicCredential> {
    let sql = format!(
        "UPDATE basic_credentials SET password_hash = $3 WHERE org_id = $1 AND username = $2 \
         RETURNING {CREDENTIAL_COLUMNS}"
    );
    let row = conn
        .fetch_optional(&sql, &[org.0.into(), username.into(), password_hash.into()])
        .await
        .map_err(internal)?
        .ok_or(Error::CredentialNotFound)?;
    records::basic_credential(row.as_ref())
}

pub(crate) async fn delete_basic_credential(
    conn: &mut dyn SqlConn,
    org: OrgId,
    username: &str,
) -> Result<()> {
    let deleted = conn
        .execute(
            "DELETE FROM basic_credentials WHERE org_id = $1 AND username = $2",
            &[org.0.into(), username.into()],
        )
        .await
        .map_err(internal)?;
    if deleted == 0 {
        return Err(Error::CredentialNotFound);
    }
    Ok(())
}

pub(crate) async fn purge_expired_tokens(conn: &mut dyn SqlConn, now: i64) -> Result<u64> {
    conn.execute("DELETE FROM tokens WHERE expires_at < $1", &[now.into()])
        .await
        .map_err(internal)
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

pub(crate) async fn issue_token(
    conn: &mut dyn SqlConn,
    (org, app): (OrgId, i64),
    secret_hash: &str,
    token_hash: &str,
    expires_at: i64,
) -> Result<bool> {
    let inserted = conn
        .execute(
            "INSERT INTO tokens (org_id, app_ref, token_hash, expires_at, ctime) \
             SELECT p.org_id, p.id, $3, $4, $5 FROM apps p \
             JOIN organizations o ON o.id = p.org_id \
             WHERE p.org_id = $1 AND p.id = $2 AND p.secret_hash = $6 AND NOT o.disabled",
            &[
                org.0.into(),
                app.into(),
                token_hash.into(),
                expires_at.into(),
                now_unix().into(),
                secret_hash.into(),
            ],
        )
        .await
        .map_err(refused("token"))?;
    Ok(inserted == 1)
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
