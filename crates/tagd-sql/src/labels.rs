//! v2 labels: changeLabels through the core's rules, and the label queries.

use crate::driver::{Locks, Param, SqlConn};
use crate::pairs::{self, PairWrite, Stamp, CHUNK};
use crate::records::{self, sql::ASSIGNMENT_SELECT, sql::GROUP_COLUMNS};
use crate::{internal, tenants};
use std::collections::{HashMap, HashSet};
use tagd_core::labels::{plan_label_change, LabelChange, LabelWarning};
use tagd_core::timefmt::now_unix;
use tagd_core::*;

/// A live, true assignment of an active define group: a label the customer carries.
const CARRIED_LABEL: &str = "NOT a.is_deleted AND a.define_value AND g.attribute = 'define' \
     AND g.is_active AND NOT g.is_deleted";

/// changeLabels inside the caller's transaction: the named labels in one query, the labels
/// the customer carries in another, the plan from the core's rules, and its steps written
/// through [`crate::pairs`] in a few multi-row statements whatever the number of labels.
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
    let mut names: Vec<&str> = change
        .add
        .iter()
        .chain(&change.remove)
        .map(LabelName::as_str)
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut labels = HashMap::with_capacity(names.len());
    for chunk in names.chunks(CHUNK) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        // Share-locked, as a single assign locks its group, so an attribute change or a
        // deactivation cannot slip in before the writes.
        let sql = format!(
            "SELECT id, name FROM tag_groups WHERE org_id = $1 AND name IN ({}) \
             AND attribute = 'define' AND is_active AND NOT is_deleted ORDER BY id {}",
            list.join(", "),
            locks.share
        );
        let mut params: Vec<Param<'_>> = vec![org.0.into()];
        params.extend(chunk.iter().map(|n| Param::from(*n)));
        for row in conn.fetch_all(&sql, &params).await.map_err(internal)? {
            labels.insert(row.text("name")?, row.int("id")?);
        }
    }
    let sql = format!(
        "SELECT a.group_ref FROM tag_assignments a \
         JOIN tag_groups g ON g.org_id = a.org_id AND g.id = a.group_ref \
         WHERE a.org_id = $1 AND a.user_ref = $2 AND {CARRIED_LABEL}"
    );
    let carried = conn
        .fetch_all(&sql, &[org.0.into(), user.id.into()])
        .await
        .map_err(internal)?
        .iter()
        .map(|r| r.int("group_ref"))
        .collect::<Result<HashSet<i64>>>()?;

    let plan = plan_label_change(change, &labels, &carried);
    let writes: Vec<PairWrite> = plan
        .steps
        .iter()
        .map(|&(group, carry)| PairWrite {
            key: (user.id, group),
            attribute: Attribute::Define,
            value: carry.then_some(TagValue::Define(true)),
        })
        .collect();
    let stamp = Stamp {
        org,
        executor,
        source: Source::V2Api,
        now: now_unix(),
    };
    pairs::apply(
        conn,
        locks.update_assignment,
        &stamp,
        &writes,
        &HashSet::new(),
    )
    .await?;
    Ok(plan.warnings)
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
