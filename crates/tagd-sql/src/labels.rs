//! v2 labels: changeLabels through the core's rules, and the label queries.

use crate::assignments::{find_by_refs, remove_value, write_value, Write};
use crate::driver::{Locks, SqlConn};
use crate::records::{self, sql::ASSIGNMENT_SELECT, sql::GROUP_COLUMNS};
use crate::{internal, tenants};
use async_trait::async_trait;
use tagd_core::labels::{apply_label_change, LabelChange, LabelTx, LabelWarning};
use tagd_core::*;

/// A live, true assignment of an active define group: a label the customer carries.
const CARRIED_LABEL: &str = "NOT a.is_deleted AND a.define_value AND g.attribute = 'define' \
     AND g.is_active AND NOT g.is_deleted";

struct LabelWriter<'c> {
    conn: &'c mut dyn SqlConn,
    locks: Locks,
    org: OrgId,
    executor: &'c Executor,
}

/// The v2 write of (user, group) by `executor`.
fn v2_write<'e>(org: OrgId, executor: &'e Executor, user: &User, group: &TagGroup) -> Write<'e> {
    Write {
        org,
        refs: (user.id, group.id),
        executor,
        source: Source::V2Api,
    }
}

#[async_trait]
impl LabelTx for LabelWriter<'_> {
    async fn label_group(&mut self, name: &LabelName) -> Result<Option<TagGroup>> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM tag_groups WHERE org_id = $1 AND name = $2 \
             AND attribute = 'define' AND is_active AND NOT is_deleted {}",
            self.locks.share
        );
        let row = self
            .conn
            .fetch_optional(&sql, &[self.org.0.into(), name.as_str().into()])
            .await
            .map_err(internal)?;
        row.map(|r| records::tag_group(r.as_ref())).transpose()
    }

    async fn live_value(&mut self, user: &User, group: &TagGroup) -> Result<Option<TagValue>> {
        let lock = self.locks.update_assignment;
        let current = find_by_refs(self.conn, lock, self.org, (user.id, group.id)).await?;
        Ok(current.filter(|a| !a.is_deleted).map(|a| a.value))
    }

    async fn has_labels(&mut self, user: &User) -> Result<bool> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM tag_assignments a \
             JOIN tag_groups g ON g.org_id = a.org_id AND g.id = a.group_ref \
             WHERE a.org_id = $1 AND a.user_ref = $2 AND {CARRIED_LABEL}) AS carries"
        );
        let row = self
            .conn
            .fetch_optional(&sql, &[self.org.0.into(), user.id.into()])
            .await
            .map_err(internal)?;
        row.map_or(Ok(false), |r| r.flag("carries"))
    }

    async fn set(&mut self, user: &User, group: &TagGroup, value: TagValue) -> Result<()> {
        let write = v2_write(self.org, self.executor, user, group);
        let lock = self.locks.update_assignment;
        write_value(self.conn, lock, &write, &value).await?;
        Ok(())
    }

    async fn remove(&mut self, user: &User, group: &TagGroup) -> Result<()> {
        let write = v2_write(self.org, self.executor, user, group);
        let lock = self.locks.update_assignment;
        remove_value(self.conn, lock, &write).await?;
        Ok(())
    }
}

pub(crate) async fn change_labels(
    conn: &mut dyn SqlConn,
    locks: Locks,
    (org, user_id): (OrgId, &UserId),
    change: &LabelChange,
    executor: &Executor,
) -> Result<Vec<LabelWarning>> {
    let user = tenants::find_user(conn, org, user_id)
        .await?
        .ok_or(Error::UserNotFound)?;
    let mut labels = LabelWriter {
        conn,
        locks,
        org,
        executor,
    };
    apply_label_change(&mut labels, &user, change).await
}

pub(crate) async fn list_user_labels(
    conn: &mut dyn SqlConn,
    org: OrgId,
    user_id: &UserId,
) -> Result<Vec<Assignment>> {
    let user = tenants::find_user(conn, org, user_id)
        .await?
        .ok_or(Error::UserNotFound)?;
    let sql = format!(
        "{ASSIGNMENT_SELECT} WHERE a.org_id = $1 AND a.user_ref = $2 AND {CARRIED_LABEL} \
         ORDER BY a.ctime, a.id"
    );
    let rows = conn
        .fetch_all(&sql, &[org.0.into(), user.id.into()])
        .await
        .map_err(internal)?;
    rows.iter()
        .map(|r| records::assignment(r.as_ref()))
        .collect()
}

pub(crate) async fn list_label_groups(conn: &mut dyn SqlConn, org: OrgId) -> Result<Vec<TagGroup>> {
    let sql = format!(
        "SELECT {GROUP_COLUMNS} FROM tag_groups \
         WHERE org_id = $1 AND attribute = 'define' AND NOT is_deleted ORDER BY id"
    );
    let rows = conn
        .fetch_all(&sql, &[org.0.into()])
        .await
        .map_err(internal)?;
    rows.iter()
        .map(|r| records::tag_group(r.as_ref()))
        .collect()
}

/// The assignments carrying a label named `$2` (ignoring case) in organization `$1`.
const HOLDS_NAMED_LABEL: &str = "a.org_id = $1 AND lower(g.name) = lower(CAST($2 AS TEXT))";
const HOLDER_JOINS: &str = "FROM tag_assignments a \
     JOIN users u ON u.org_id = a.org_id AND u.id = a.user_ref \
     JOIN tag_groups g ON g.org_id = a.org_id AND g.id = a.group_ref";

pub(crate) async fn count_label_holders(
    conn: &mut dyn SqlConn,
    org: OrgId,
    name: &str,
) -> Result<i64> {
    let sql = format!(
        "SELECT COUNT(DISTINCT a.user_ref) AS n {HOLDER_JOINS} \
         WHERE {HOLDS_NAMED_LABEL} AND {CARRIED_LABEL}"
    );
    let row = conn
        .fetch_optional(&sql, &[org.0.into(), name.into()])
        .await
        .map_err(internal)?;
    row.map_or(Ok(0), |r| r.int("n"))
}

pub(crate) async fn label_holders(
    conn: &mut dyn SqlConn,
    (org, name): (OrgId, &str),
    after: Option<&UserId>,
    offset: i64,
    limit: i64,
) -> Result<Vec<Assignment>> {
    // Customers in numeric order of their ids: shorter digit strings first, then by text.
    let sql = format!(
        "WITH holders AS (\
           SELECT DISTINCT a.user_ref, length(u.user_id) AS ulen, u.user_id AS uid {HOLDER_JOINS} \
           WHERE {HOLDS_NAMED_LABEL} AND {CARRIED_LABEL} AND (CAST($3 AS TEXT) IS NULL OR \
             (length(u.user_id), u.user_id) > (length(CAST($3 AS TEXT)), CAST($3 AS TEXT))) \
           ORDER BY ulen, uid LIMIT $4 OFFSET $5) \
         {ASSIGNMENT_SELECT} JOIN holders h ON h.user_ref = a.user_ref \
         WHERE {HOLDS_NAMED_LABEL} AND {CARRIED_LABEL} ORDER BY h.ulen, h.uid, g.id"
    );
    let params = [
        org.0.into(),
        name.into(),
        after.map(UserId::as_str).into(),
        limit.into(),
        offset.into(),
    ];
    let rows = conn.fetch_all(&sql, &params).await.map_err(internal)?;
    rows.iter()
        .map(|r| records::assignment(r.as_ref()))
        .collect()
}
