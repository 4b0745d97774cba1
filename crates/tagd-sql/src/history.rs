//! History read back from the change log: per user or tag group, newest first, and the
//! organization's change feed in version order (API.md §11).

use crate::driver::{Param, SqlConn};
use crate::records::{self, sql::GROUP_COLUMNS, Columns};
use crate::{groups, internal, log, tenants, Driver, SqlStore};
use async_trait::async_trait;
use std::collections::HashMap;
use tagd_core::history::{FeedPage, History, HistoryFilter, HistoryRow};
use tagd_core::log::{ChangeKind, Subject};
use tagd_core::*;

/// Tag changes of the organization that `filter` selects, newest first.
pub(crate) async fn tag_history(
    conn: &mut dyn SqlConn,
    org: OrgId,
    filter: &HistoryFilter,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<HistoryRow>> {
    let mut params: Vec<Param<'_>> = vec![org.0.into()];
    let mut sql = String::from(
        "SELECT l.version, l.kind, l.old_value, l.new_value, l.executor_name, l.source, l.at, \
         l.expires_at, u.user_id, g.entity_id AS group_entity_id, g.variable_name, g.attribute \
         FROM change_log l \
         JOIN users u ON u.org_id = l.org_id AND u.id = l.user_ref \
         JOIN tag_groups g ON g.org_id = l.org_id AND g.id = l.group_ref \
         WHERE l.org_id = $1 AND l.assignment_ref IS NOT NULL",
    );
    if let Some(user_id) = &filter.user {
        let user = tenants::find_user(conn, org, user_id)
            .await?
            .ok_or(Error::UserNotFound)?;
        params.push(user.id.into());
        sql.push_str(&format!(" AND l.user_ref = ${}", params.len()));
    }
    if let Some(group) = &filter.group {
        let group = groups::find(conn, org, group, "")
            .await?
            .ok_or(Error::GroupNotFound)?;
        params.push(group.id.into());
        sql.push_str(&format!(" AND l.group_ref = ${}", params.len()));
    }
    if let Some(before) = before {
        params.push(before.into());
        sql.push_str(&format!(" AND l.version < ${}", params.len()));
    }
    if let Some(since) = filter.since {
        params.push(since.into());
        sql.push_str(&format!(" AND l.at >= ${}", params.len()));
    }
    params.push((limit as i64).into());
    sql.push_str(&format!(" ORDER BY l.version DESC LIMIT ${}", params.len()));
    let rows = conn.fetch_all(&sql, &params).await.map_err(internal)?;
    rows.iter().map(|r| history_row(r.as_ref())).collect()
}

fn history_row(row: &dyn Columns) -> Result<HistoryRow> {
    let attribute = Attribute::parse(&row.text("attribute")?)?;
    let typed = |column: &str| -> Result<Option<TagValue>> {
        Ok(row
            .opt_text(column)?
            .map(|text| TagValue::from_text(attribute, &text)))
    };
    Ok(HistoryRow {
        version: row.int("version")?,
        kind: ChangeKind::from_db(&row.text("kind")?)?,
        tags_group_id: ExternalId::from_trusted(row.text("group_entity_id")?),
        variable_name: VariableName::from_trusted(row.text("variable_name")?),
        attribute,
        user_id: UserId::from_trusted(row.text("user_id")?),
        old_value: typed("old_value")?,
        new_value: typed("new_value")?,
        executor_id: row.text("executor_name")?,
        source: Source::from_db(&row.text("source")?),
        at: row.int("at")?,
        expires_at: row.opt_int("expires_at")?,
    })
}

/// A page of the log with the users and groups its tag entries name.
async fn change_feed(
    conn: &mut dyn SqlConn,
    scheme: crate::VersionScheme,
    org: OrgId,
    after: i64,
    limit: usize,
) -> Result<FeedPage> {
    let (page, users) = log::read_with_users(conn, scheme, org, after, limit).await?;
    let mut group_refs = Vec::new();
    for entry in &page.entries {
        if let Subject::Tag(tag) = &entry.change.subject {
            group_refs.push(tag.group_ref);
        }
    }
    let mut groups = HashMap::with_capacity(group_refs.len());
    for row in log::rows_by_id(conn, org, "tag_groups", GROUP_COLUMNS, group_refs).await? {
        let group = records::tag_group(row.as_ref())?;
        groups.insert(group.id, group);
    }
    Ok(FeedPage {
        entries: page.entries,
        safe_version: page.safe_version,
        users,
        groups,
    })
}

#[async_trait]
impl<D: Driver> History for SqlStore<D> {
    async fn tag_history(
        &self,
        org: OrgId,
        filter: &HistoryFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<HistoryRow>> {
        tag_history(self.read().await?.as_mut(), org, filter, before, limit).await
    }

    async fn change_feed(&self, org: OrgId, after: i64, limit: usize) -> Result<FeedPage> {
        let scheme = self.driver.version_scheme();
        change_feed(self.read().await?.as_mut(), scheme, org, after, limit).await
    }
}
