//! v2 labels: changeLabels through the core's rules, and the label queries.

use crate::coalesce::{LabelsCommand, SingleWrite};
use crate::driver::Driver;
use crate::driver::{Locks, Param, SqlConn};
use crate::pairs::{self, PairKey, PairWrite, Stamp, CHUNK};
use crate::records::{self, sql::ASSIGNMENT_COLUMNS, sql::ASSIGNMENT_SELECT, sql::GROUP_COLUMNS};
use crate::SqlStore;
use crate::{internal, tenants};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use tagd_core::expiry::{expiry_of_assignment, ExpiryPolicy};
use tagd_core::labels::{plan_label_change, LabelChange, LabelWarning};
use tagd_core::names;
use tagd_core::timefmt::now_unix;
use tagd_core::*;

/// A live, true assignment of an active define group: a label the customer carries.
const CARRIED_LABEL: &str = "NOT a.is_deleted \
     AND (a.expires_at IS NULL OR a.expires_at > unixepoch()) \
     AND a.define_value AND g.attribute = 'define' AND g.is_active AND NOT g.is_deleted";

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
    let mut defaults: HashMap<i64, ExpiryPolicy> = HashMap::with_capacity(names.len());
    for chunk in names.chunks(CHUNK) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        // Share-locked, as a single assign locks its group, so an attribute change or a
        // deactivation cannot slip in before the writes.
        let sql = format!(
            "SELECT id, name, expiry_policy, expiry_date, expiry_days FROM tag_groups \
             WHERE org_id = $1 AND name IN ({}) \
             AND attribute = 'define' AND is_active AND NOT is_deleted ORDER BY id {}",
            list.join(", "),
            locks.share
        );
        let mut params: Vec<Param<'_>> = vec![org.0.into()];
        params.extend(chunk.iter().map(|n| Param::from(*n)));
        for row in conn.fetch_all(&sql, &params).await.map_err(internal)? {
            let id = row.int("id")?;
            labels.insert(row.text("name")?, id);
            let policy = row.text("expiry_policy")?;
            let (date, days) = (row.opt_int("expiry_date")?, row.opt_int("expiry_days")?);
            defaults.insert(id, ExpiryPolicy::from_db(&policy, date, days));
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
    let now = now_unix();
    // The expiry each added label asked for, by group; the others take their group's default.
    let asked: HashMap<i64, i64> = change
        .expiry
        .iter()
        .filter_map(|(name, at)| Some((*labels.get(name)?, *at)))
        .collect();
    let mut writes = Vec::with_capacity(plan.steps.len());
    for &(group, carry) in &plan.steps {
        let expires_at = match (carry, asked.get(&group)) {
            (false, _) => None,
            (true, Some(at)) => Some(*at),
            (true, None) => {
                let default = defaults.get(&group).copied().unwrap_or_default();
                expiry_of_assignment(None, default, now)?
            }
        };
        writes.push(PairWrite {
            key: PairKey {
                user: user.id,
                group,
            },
            attribute: Attribute::Define,
            value: carry.then_some(TagValue::Define(true)),
            expires_at,
            rewrite: false,
        });
    }
    let stamp = Stamp {
        org,
        executor,
        source: Source::V2Api,
        now,
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

pub(crate) async fn list_user_labels_ever(
    conn: &mut dyn SqlConn,
    org: OrgId,
    user_id: &UserId,
) -> Result<Vec<Assignment>> {
    let user = tenants::find_user(conn, org, user_id)
        .await?
        .ok_or(Error::UserNotFound)?;
    let sql = format!(
        "SELECT {ASSIGNMENT_COLUMNS}, \
         CAST(CASE WHEN {CARRIED_LABEL} THEN 1 ELSE 0 END AS BIGINT) AS carried \
         FROM tag_assignments a \
         JOIN users u ON u.org_id = a.org_id AND u.id = a.user_ref \
         JOIN tag_groups g ON g.org_id = a.org_id AND g.id = a.group_ref \
         WHERE a.org_id = $1 AND a.user_ref = $2 AND g.attribute = 'define' \
         AND NOT g.is_deleted ORDER BY a.ctime, a.id"
    );
    let rows = conn
        .fetch_all(&sql, &[org.0.into(), user.id.into()])
        .await
        .map_err(internal)?;
    let mut labels = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut label = records::assignment(row.as_ref())?;
        label.is_deleted = row.int("carried")? == 0;
        labels.push(label);
    }
    Ok(labels)
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

/// A label whose search key starts with the prefix: `$2` <= key < `$3` (the key and its
/// upper bound, from [`names::search_key`] and [`names::prefix_upper_bound`]), a range on the
/// `(org_id, name_key)` index. `%` and `_` are ordinary characters here.
const NAME_HAS_PREFIX: &str = "g.name_key >= $2 AND g.name_key < $3";

/// The search key of `prefix` and the first key past every key that starts with it.
fn prefix_range(prefix: &str) -> (String, String) {
    let key = names::search_key(prefix);
    let upper = names::prefix_upper_bound(&key);
    (key, upper)
}

pub(crate) async fn count_label_holders(
    conn: &mut dyn SqlConn,
    org: OrgId,
    prefix: &str,
) -> Result<i64> {
    let (key, upper) = prefix_range(prefix);
    let sql = format!(
        "SELECT COUNT(DISTINCT a.user_ref) AS n FROM tag_groups g \
         JOIN tag_assignments a ON a.org_id = g.org_id AND a.group_ref = g.id \
         WHERE g.org_id = $1 AND {NAME_HAS_PREFIX} AND {CARRIED_LABEL}"
    );
    let row = conn
        .fetch_optional(
            &sql,
            &[org.0.into(), key.as_str().into(), upper.as_str().into()],
        )
        .await
        .map_err(internal)?;
    row.map_or(Ok(0), |r| r.int("n"))
}

/// One page of holders among the customers that `walk` selects (`$4`, and `$5` when
/// `limit_at` is 6), in v2 order on the `(org_id, length(user_id), user_id)` index, each
/// checked for a matching label through its own assignments; the page is `$limit_at` holders
/// after skipping `$limit_at + 1`. `order` must be the index's order for `walk` as SQLite
/// sees it (within one length, `u.user_id` alone), or it sorts every customer left. The
/// `OFFSET 0` keeps PostgreSQL from turning the `EXISTS` into a semi-join that hashes every
/// holder of the label for each page (294 ms a page of 500 against 2 ms). `CROSS JOIN` keeps the page the outer loop on SQLite, whose
/// planner otherwise walked every assignment of the organization against it (64 s for 1,000
/// holders of 100,000); PostgreSQL plans it as any join.
fn holders_page_sql(walk: &str, order: &str, limit_at: usize) -> String {
    let offset_at = limit_at + 1;
    format!(
        "WITH holders AS (\
           SELECT u.id AS user_ref, length(u.user_id) AS ulen, u.user_id AS uid FROM users u \
           WHERE u.org_id = $1 AND {walk} \
             AND EXISTS (SELECT 1 FROM tag_assignments a \
               JOIN tag_groups g ON g.org_id = a.org_id AND g.id = a.group_ref \
               WHERE a.org_id = u.org_id AND a.user_ref = u.id \
                 AND {NAME_HAS_PREFIX} AND {CARRIED_LABEL} LIMIT 1 OFFSET 0) \
           ORDER BY {order} LIMIT ${limit_at} OFFSET ${offset_at}) \
         SELECT {ASSIGNMENT_COLUMNS} FROM holders h \
         CROSS JOIN tag_assignments a \
         JOIN users u ON u.org_id = a.org_id AND u.id = a.user_ref \
         JOIN tag_groups g ON g.org_id = a.org_id AND g.id = a.group_ref \
         WHERE a.org_id = $1 AND a.user_ref = h.user_ref AND {NAME_HAS_PREFIX} \
           AND {CARRIED_LABEL} \
         ORDER BY h.ulen, h.uid, g.id"
    )
}

/// Customers in v2 order (numeric ids: shorter first, then by text) after `after`: first the
/// rest of its length (`length = L AND user_id > A`), then the longer ones (`length > L`).
/// Each is one range of the index, so a page costs the customers it passes and streaming
/// every holder walks the organization's customers once; one `(length, id) > (L, A)` test
/// would not be a range, and every page would start again from the shortest ids.
pub(crate) async fn label_holders(
    conn: &mut dyn SqlConn,
    (org, prefix): (OrgId, &str),
    after: Option<&UserId>,
    offset: i64,
    limit: i64,
) -> Result<Vec<Assignment>> {
    let (key, upper) = prefix_range(prefix);
    let range: [Param<'_>; 3] = [org.0.into(), key.as_str().into(), upper.as_str().into()];
    let mut rows = Vec::new();
    let after_len = match after {
        None => -1,
        Some(after) => {
            let len = after.as_str().chars().count() as i64;
            let sql = holders_page_sql("length(u.user_id) = $4 AND u.user_id > $5", "u.user_id", 6);
            let mut params = range.to_vec();
            params.extend::<[Param<'_>; 4]>([
                len.into(),
                after.as_str().into(),
                limit.into(),
                0_i64.into(),
            ]);
            rows = conn.fetch_all(&sql, &params).await.map_err(internal)?;
            len
        }
    };
    let mut users = rows
        .iter()
        .map(|r| r.text("user_id"))
        .collect::<Result<Vec<_>>>()?;
    users.dedup();
    let missing = limit - users.len() as i64;
    if missing > 0 {
        let skip = if after.is_none() { offset } else { 0 };
        let sql = holders_page_sql("length(u.user_id) > $4", "length(u.user_id), u.user_id", 5);
        let mut params = range.to_vec();
        params.extend::<[Param<'_>; 3]>([after_len.into(), missing.into(), skip.into()]);
        rows.extend(conn.fetch_all(&sql, &params).await.map_err(internal)?);
    }
    rows.iter()
        .map(|r| records::assignment(r.as_ref()))
        .collect()
}

#[async_trait]
impl<D: Driver> Labels for SqlStore<D> {
    async fn change_labels(
        &self,
        org: OrgId,
        user_id: &UserId,
        change: &LabelChange,
        executor: &Executor,
        record: &Recorder<Vec<LabelWarning>>,
    ) -> Result<Vec<LabelWarning>> {
        let command = LabelsCommand {
            user_id: user_id.clone(),
            change: change.clone(),
            executor: executor.clone(),
        };
        self.single_write(org, SingleWrite::ChangeLabels(command), record)
            .await
    }

    async fn list_user_labels(&self, org: OrgId, user_id: &UserId) -> Result<Vec<Assignment>> {
        list_user_labels(self.read().await?.as_mut(), org, user_id).await
    }

    async fn list_user_labels_ever(&self, org: OrgId, user_id: &UserId) -> Result<Vec<Assignment>> {
        list_user_labels_ever(self.read().await?.as_mut(), org, user_id).await
    }

    async fn list_label_groups(&self, org: OrgId) -> Result<Vec<TagGroup>> {
        list_label_groups(self.read().await?.as_mut(), org).await
    }

    async fn count_label_holders(&self, org: OrgId, prefix: &str) -> Result<i64> {
        let mut conn = self.driver.read_long().await.map_err(internal)?;
        count_label_holders(conn.as_mut(), org, prefix).await
    }

    async fn label_holders(
        &self,
        org: OrgId,
        prefix: &str,
        after: Option<&UserId>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Assignment>> {
        let mut conn = self.driver.read_long().await.map_err(internal)?;
        label_holders(conn.as_mut(), (org, prefix), after, offset, limit).await
    }
}
