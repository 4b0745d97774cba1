//! v2 labels: changeLabels through the core's rules, and the label queries.

use crate::assignments::{find_by_refs, remove_in, write_value};
use crate::internal;
use crate::rows::Cols;
use crate::tenants::find_user_in;
use async_trait::async_trait;
use sqlx::{PgConnection, PgPool};
use tagd_core::labels::{apply_label_change, LabelChange, LabelTx, LabelWarning};
use tagd_core::records::{self, sql::ASSIGNMENT_SELECT, sql::GROUP_COLUMNS};
use tagd_core::*;

/// A live, true assignment of an active define group: a label the customer carries.
const CARRIED_LABEL: &str = "NOT a.is_deleted AND a.define_value AND g.attribute = 'define' \
     AND g.is_active AND NOT g.is_deleted";

struct LabelWriter<'c> {
    conn: &'c mut PgConnection,
    org: OrgId,
    executor: &'c Executor,
}

#[async_trait]
impl LabelTx for LabelWriter<'_> {
    async fn label_group(&mut self, name: &LabelName) -> Result<Option<TagGroup>> {
        let row = sqlx::query(&format!(
            "SELECT {GROUP_COLUMNS} FROM tag_groups WHERE org_id = $1 AND name = $2 \
             AND attribute = 'define' AND is_active AND NOT is_deleted"
        ))
        .bind(self.org.0)
        .bind(name.as_str())
        .fetch_optional(&mut *self.conn)
        .await
        .map_err(internal)?;
        row.map(|r| records::tag_group(&Cols(&r))).transpose()
    }

    async fn live_value(&mut self, user: &User, group: &TagGroup) -> Result<Option<TagValue>> {
        let current = find_by_refs(self.conn, self.org, user.id, group.id).await?;
        Ok(current.filter(|a| !a.is_deleted).map(|a| a.value))
    }

    async fn has_labels(&mut self, user: &User) -> Result<bool> {
        sqlx::query_scalar(&format!(
            "SELECT EXISTS (SELECT 1 FROM tag_assignments a \
             JOIN tag_groups g ON g.org_id = a.org_id AND g.id = a.group_ref \
             WHERE a.org_id = $1 AND a.user_ref = $2 AND {CARRIED_LABEL})"
        ))
        .bind(self.org.0)
        .bind(user.id)
        .fetch_one(&mut *self.conn)
        .await
        .map_err(internal)
    }

    async fn set(&mut self, user: &User, group: &TagGroup, value: TagValue) -> Result<()> {
        let refs = (user.id, group.id);
        write_value(
            self.conn,
            self.org,
            refs,
            &value,
            self.executor,
            Source::V2Api,
        )
        .await?;
        Ok(())
    }

    async fn remove(&mut self, user: &User, group: &TagGroup) -> Result<()> {
        remove_in(
            self.conn,
            self.org,
            user.id,
            group.id,
            self.executor,
            Source::V2Api,
        )
        .await?;
        Ok(())
    }
}

pub(crate) async fn change_labels(
    writer: &PgPool,
    org: OrgId,
    user_id: &UserId,
    change: &LabelChange,
    executor: &Executor,
) -> Result<Vec<LabelWarning>> {
    let mut tx = writer.begin().await.map_err(internal)?;
    let user = find_user_in(&mut tx, org, user_id)
        .await?
        .ok_or(Error::UserNotFound)?;
    let mut labels = LabelWriter {
        conn: &mut tx,
        org,
        executor,
    };
    let warnings = apply_label_change(&mut labels, &user, change).await?;
    tx.commit().await.map_err(internal)?;
    Ok(warnings)
}

pub(crate) async fn list_user_labels(
    reader: &PgPool,
    org: OrgId,
    user_id: &UserId,
) -> Result<Vec<Assignment>> {
    let mut conn = reader.acquire().await.map_err(internal)?;
    let user = find_user_in(&mut conn, org, user_id)
        .await?
        .ok_or(Error::UserNotFound)?;
    let rows = sqlx::query(&format!(
        "{ASSIGNMENT_SELECT} WHERE a.org_id = $1 AND a.user_ref = $2 AND {CARRIED_LABEL} \
         ORDER BY a.ctime, a.id"
    ))
    .bind(org.0)
    .bind(user.id)
    .fetch_all(&mut *conn)
    .await
    .map_err(internal)?;
    rows.iter().map(|r| records::assignment(&Cols(r))).collect()
}

pub(crate) async fn list_label_groups(reader: &PgPool, org: OrgId) -> Result<Vec<TagGroup>> {
    let rows = sqlx::query(&format!(
        "SELECT {GROUP_COLUMNS} FROM tag_groups \
         WHERE org_id = $1 AND attribute = 'define' AND NOT is_deleted ORDER BY id"
    ))
    .bind(org.0)
    .fetch_all(reader)
    .await
    .map_err(internal)?;
    rows.iter().map(|r| records::tag_group(&Cols(r))).collect()
}

/// The assignments carrying a label named `$2` (ignoring case) in organization `$1`.
const HOLDS_NAMED_LABEL: &str = "a.org_id = $1 AND lower(g.name) = lower(CAST($2 AS TEXT))";
const HOLDER_JOINS: &str = "FROM tag_assignments a \
     JOIN users u ON u.org_id = a.org_id AND u.id = a.user_ref \
     JOIN tag_groups g ON g.org_id = a.org_id AND g.id = a.group_ref";

pub(crate) async fn count_label_holders(reader: &PgPool, org: OrgId, name: &str) -> Result<i64> {
    sqlx::query_scalar(&format!(
        "SELECT COUNT(DISTINCT a.user_ref) {HOLDER_JOINS} \
         WHERE {HOLDS_NAMED_LABEL} AND {CARRIED_LABEL}"
    ))
    .bind(org.0)
    .bind(name)
    .fetch_one(reader)
    .await
    .map_err(internal)
}

pub(crate) async fn label_holders(
    reader: &PgPool,
    org: OrgId,
    name: &str,
    after: Option<&UserId>,
    offset: i64,
    limit: i64,
) -> Result<Vec<Assignment>> {
    // Customers in numeric order of their ids: shorter digit strings first, then by text.
    let rows = sqlx::query(&format!(
        "WITH holders AS (\
           SELECT DISTINCT a.user_ref, length(u.user_id) AS ulen, u.user_id AS uid {HOLDER_JOINS} \
           WHERE {HOLDS_NAMED_LABEL} AND {CARRIED_LABEL} AND (CAST($3 AS TEXT) IS NULL OR \
             (length(u.user_id), u.user_id) > (length(CAST($3 AS TEXT)), CAST($3 AS TEXT))) \
           ORDER BY ulen, uid LIMIT $4 OFFSET $5) \
         {ASSIGNMENT_SELECT} JOIN holders h ON h.user_ref = a.user_ref \
         WHERE {HOLDS_NAMED_LABEL} AND {CARRIED_LABEL} ORDER BY h.ulen, h.uid, g.id"
    ))
    .bind(org.0)
    .bind(name)
    .bind(after.map(UserId::as_str))
    .bind(limit)
    .bind(offset)
    .fetch_all(reader)
    .await
    .map_err(internal)?;
    rows.iter().map(|r| records::assignment(&Cols(r))).collect()
}
