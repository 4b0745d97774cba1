//! Apps, Basic credentials and tokens: how callers prove who they are.

use crate::driver::{Driver, SqlConn};
use crate::records::{self, sql::TOKEN_SELECT};
use crate::tenants::refused;
use crate::{internal, one, SqlStore};
use async_trait::async_trait;
use tagd_core::timefmt::now_unix;
use tagd_core::*;

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
    app: AppRef,
    secret_hash: &str,
) -> Result<App> {
    let sql = format!(
        "UPDATE apps SET secret_hash = $3 WHERE org_id = $1 AND id = $2 RETURNING {APP_COLUMNS}"
    );
    let row = conn
        .fetch_optional(&sql, &[org.0.into(), app.0.into(), secret_hash.into()])
        .await
        .map_err(internal)?
        .ok_or(Error::AppNotFound)?;
    revoke_tokens(conn, org, app).await?;
    records::app(row.as_ref())
}

pub(crate) async fn delete_app(conn: &mut dyn SqlConn, org: OrgId, app: AppRef) -> Result<()> {
    let params = [org.0.into(), app.0.into()];
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
    app: AppRef,
    token_hash: &str,
    expires_at: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO tokens (org_id, app_ref, token_hash, expires_at, ctime) \
         VALUES ($1, $2, $3, $4, $5)",
        &[
            org.0.into(),
            app.0.into(),
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
    (org, app): (OrgId, AppRef),
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
                app.0.into(),
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

pub(crate) async fn revoke_tokens(conn: &mut dyn SqlConn, org: OrgId, app: AppRef) -> Result<u64> {
    conn.execute(
        "UPDATE tokens SET revoked = TRUE WHERE org_id = $1 AND app_ref = $2 AND NOT revoked",
        &[org.0.into(), app.0.into()],
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

#[async_trait]
impl<D: Driver> Credentials for SqlStore<D> {
    async fn create_app(&self, org: OrgId, name: &str, secret_hash: &str) -> Result<App> {
        in_write!(self, |tx| create_app(tx.as_mut(), org, name, secret_hash)
            .await?)
    }

    async fn find_app(&self, app_id: &ExternalId) -> Result<Option<App>> {
        find_app(self.read().await?.as_mut(), app_id).await
    }

    async fn find_org_app(&self, org: OrgId, app_id: &ExternalId) -> Result<Option<App>> {
        find_org_app(self.read().await?.as_mut(), org, app_id).await
    }

    async fn list_apps(&self, org: OrgId) -> Result<Vec<App>> {
        list_apps(self.read().await?.as_mut(), org).await
    }

    async fn rotate_app_secret(&self, org: OrgId, app: AppRef, secret_hash: &str) -> Result<App> {
        in_write!(self, |tx| {
            rotate_app_secret(tx.as_mut(), org, app, secret_hash).await?
        })
    }

    async fn delete_app(&self, org: OrgId, app: AppRef) -> Result<()> {
        in_write!(self, |tx| delete_app(tx.as_mut(), org, app).await?)
    }

    async fn list_basic_credentials(&self, org: OrgId) -> Result<Vec<BasicCredential>> {
        list_basic_credentials(self.read().await?.as_mut(), org).await
    }

    async fn set_basic_password(
        &self,
        org: OrgId,
        username: &str,
        password_hash: &str,
    ) -> Result<BasicCredential> {
        in_write!(self, |tx| {
            set_basic_password(tx.as_mut(), org, username, password_hash).await?
        })
    }

    async fn delete_basic_credential(&self, org: OrgId, username: &str) -> Result<()> {
        in_write!(self, |tx| {
            delete_basic_credential(tx.as_mut(), org, username).await?
        })
    }

    async fn purge_expired_tokens(&self, now: i64) -> Result<u64> {
        in_write!(self, |tx| purge_expired_tokens(tx.as_mut(), now).await?)
    }

    async fn create_basic_credential(
        &self,
        org: OrgId,
        username: &str,
        password_hash: &str,
    ) -> Result<BasicCredential> {
        in_write!(self, |tx| {
            create_basic_credential(tx.as_mut(), org, username, password_hash).await?
        })
    }

    async fn find_basic_credential(&self, username: &str) -> Result<Option<BasicCredential>> {
        find_basic_credential(self.read().await?.as_mut(), username).await
    }

    async fn create_token(
        &self,
        org: OrgId,
        app: AppRef,
        hash: &str,
        expires_at: i64,
    ) -> Result<()> {
        in_write!(self, |tx| {
            create_token(tx.as_mut(), org, app, hash, expires_at).await?
        })
    }

    async fn issue_token(
        &self,
        org: OrgId,
        app: AppRef,
        secret_hash: &str,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<bool> {
        in_write!(self, |tx| {
            issue_token(tx.as_mut(), (org, app), secret_hash, token_hash, expires_at).await?
        })
    }

    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        find_token(self.read().await?.as_mut(), token_hash).await
    }

    async fn revoke_tokens(&self, org: OrgId, app: AppRef) -> Result<u64> {
        in_write!(self, |tx| revoke_tokens(tx.as_mut(), org, app).await?)
    }
}
