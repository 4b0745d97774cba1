//! Organizations, their users and the operator's settings.

use crate::driver::Driver;
use crate::driver::{DbError, Param, SqlConn};
use crate::pairs::CHUNK;
use crate::records;
use crate::SqlStore;
use crate::{internal, log, one, placeholders};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use tagd_core::timefmt::now_unix;
use tagd_core::*;

const ADMIN_TOKEN_KEY: &str = "admin_token_sha256";

/// A unique violation means `what` is taken; a foreign key one that the organization is gone.
pub(crate) fn refused(what: &'static str) -> impl Fn(DbError) -> Error {
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
    let corp_id = CorpId::generate();
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
               (SELECT COUNT(*) FROM tag_assignments WHERE org_id = $1 AND NOT is_deleted \
                AND (expires_at IS NULL OR expires_at > unixepoch())) \
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
        .map(|r| Ok((CorpId::from_trusted(r.text("corp_id")?), r.int("n")?)))
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
    if inserted == 1 {
        log::append_user(conn, &user)?;
    }
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

/// The internal ids of those of `user_ids` registered in `org`, by user id, read in chunks of
/// [`CHUNK`]. `replanned`: planned for these values at every run
/// ([`SqlConn::fetch_all_replanned`]), for a bulk write's lookups in a fast-growing table.
pub(crate) async fn user_refs(
    conn: &mut dyn SqlConn,
    org: OrgId,
    user_ids: &[&str],
    replanned: bool,
) -> Result<HashMap<String, i64>> {
    let mut refs = HashMap::with_capacity(user_ids.len());
    for chunk in user_ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT id, user_id FROM users WHERE org_id = $1 AND user_id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut params: Vec<Param<'_>> = vec![org.0.into()];
        params.extend(chunk.iter().map(|u| Param::from(*u)));
        let rows = if replanned {
            conn.fetch_all_replanned(&sql, &params).await
        } else {
            conn.fetch_all(&sql, &params).await
        };
        for row in rows.map_err(internal)? {
            refs.insert(row.text("user_id")?, row.int("id")?);
        }
    }
    Ok(refs)
}

#[async_trait]
impl<D: Driver> Tenants for SqlStore<D> {
    async fn admin_token_hash(&self) -> Result<Option<String>> {
        admin_token_hash(self.read().await?.as_mut()).await
    }

    async fn init_admin_token_hash(&self, hash: &str) -> Result<bool> {
        in_write!(self, |tx| init_admin_token_hash(tx.as_mut(), hash).await?)
    }

    async fn create_org(&self, name: &str) -> Result<Organization> {
        in_write!(self, |tx| create_org(tx.as_mut(), name).await?)
    }

    async fn find_org_by_corp_id(&self, corp_id: &CorpId) -> Result<Option<Organization>> {
        find_org_by_corp_id(self.read().await?.as_mut(), corp_id).await
    }

    async fn get_org(&self, org: OrgId) -> Result<Organization> {
        get_org(self.read().await?.as_mut(), org).await
    }

    async fn list_orgs(&self) -> Result<Vec<Organization>> {
        list_orgs(self.read().await?.as_mut()).await
    }

    async fn org_counts(&self, org: OrgId) -> Result<OrgCounts> {
        org_counts(self.read().await?.as_mut(), org).await
    }

    async fn set_org_disabled(&self, org: OrgId, disabled: bool) -> Result<Organization> {
        in_write!(self, |tx| set_org_disabled(tx.as_mut(), org, disabled)
            .await?)
    }

    async fn set_org_max_tag_groups(&self, org: OrgId, max: Option<i64>) -> Result<Organization> {
        in_write!(self, |tx| set_org_max_tag_groups(tx.as_mut(), org, max)
            .await?)
    }

    fn default_max_tag_groups(&self) -> i64 {
        self.default_max_tag_groups.load(Ordering::Relaxed)
    }

    fn set_default_max_tag_groups(&self, max: i64) {
        self.default_max_tag_groups.store(max, Ordering::Relaxed);
    }

    async fn tag_groups_per_org(&self) -> Result<Vec<(CorpId, i64)>> {
        tag_groups_per_org(self.read().await?.as_mut()).await
    }

    async fn create_user(
        &self,
        org: OrgId,
        user_id: &UserId,
        record: &Recorder<(User, bool)>,
    ) -> Result<(User, bool)> {
        in_write!(self, record, |tx| create_user(tx.as_mut(), org, user_id)
            .await?)
    }

    async fn find_user(&self, org: OrgId, user_id: &UserId) -> Result<Option<User>> {
        find_user(self.read().await?.as_mut(), org, user_id).await
    }
}
