//! Bulk import and export ([`Bulk`]), written once over the driver traits like the rest of
//! the store.
//!
//! One batch is one write transaction, applied with few statements whatever its size:
//! 1. each tag group the batch names is read once (share-locked, cached by id and by
//!    variable name), and every row is checked against it and its value parsed;
//! 2. the users of the rows that passed are inserted with multi-row
//!    `INSERT ... ON CONFLICT DO NOTHING RETURNING`, the others read back;
//! 3. the assignments are written in order through [`crate::pairs`] (one read, one insert,
//!    one update and one history insert per chunk of rows).

use crate::driver::{DbError, Locks, Param, SqlConn};
use crate::pairs::{self, stored_value, PairKey, PairWrite, Stamp, CHUNK};
use crate::records::{sql::GROUP_COLUMNS, Columns};
use crate::{groups, internal, log, records, Driver, SqlStore};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use tagd_core::bulk::{
    Bulk, ExportRow, ExportUser, GroupRef, ImportOutcome, ImportReport, ImportRow, Refusal,
};
use tagd_core::expiry::expiry_of_assignment;
use tagd_core::timefmt::now_unix;
use tagd_core::*;

#[async_trait]
impl<D: Driver> Bulk for SqlStore<D> {
    async fn import_batch(
        &self,
        org: OrgId,
        rows: &[ImportRow],
        executor: &Executor,
    ) -> Result<ImportReport> {
        let locks = self.driver.locks();
        let mut tx = self.write().await?;
        let report = import(tx.as_mut(), locks, org, rows, executor).await?;
        self.finish(tx, report, &Recorder::none()).await
    }

    fn import_streams(&self) -> usize {
        self.driver.import_streams()
    }

    async fn import_finished(&self, _org: OrgId) -> Result<()> {
        let mut conn = self.read().await?;
        for statement in self.driver.after_bulk() {
            conn.execute(statement, &[]).await.map_err(internal)?;
        }
        Ok(())
    }

    async fn export_assignments(
        &self,
        org: OrgId,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ExportRow>> {
        let mut conn = self.read().await?;
        let rows = conn
            .fetch_all(
                EXPORT_ASSIGNMENTS,
                &[org.0.into(), after.unwrap_or(i64::MIN).into(), limit.into()],
            )
            .await
            .map_err(internal)?;
        rows.iter().map(|r| export_row(r.as_ref())).collect()
    }

    async fn export_users_without_assignments(
        &self,
        org: OrgId,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ExportUser>> {
        let mut conn = self.read().await?;
        let rows = conn
            .fetch_all(
                EXPORT_BARE_USERS,
                &[org.0.into(), after.unwrap_or(i64::MIN).into(), limit.into()],
            )
            .await
            .map_err(internal)?;
        rows.iter()
            .map(|r| {
                Ok(ExportUser {
                    key: r.int("id")?,
                    user_id: UserId::from_trusted(r.text("user_id")?),
                })
            })
            .collect()
    }
}

/// Live assignments of groups that are not deleted, by key.
const EXPORT_ASSIGNMENTS: &str = "SELECT a.id, u.user_id, g.entity_id AS group_entity_id, \
     g.variable_name, g.attribute, a.define_value, a.number_value, a.string_value, a.version, \
     a.source, a.mtime \
     FROM tag_assignments a \
     JOIN users u ON u.org_id = a.org_id AND u.id = a.user_ref \
     JOIN tag_groups g ON g.org_id = a.org_id AND g.id = a.group_ref \
     WHERE a.org_id = $1 AND a.id > $2 AND NOT a.is_deleted \
     AND (a.expires_at IS NULL OR a.expires_at > unixepoch()) AND NOT g.is_deleted \
     ORDER BY a.id LIMIT $3";

/// Users that have no live assignment of a group that is not deleted, by key.
const EXPORT_BARE_USERS: &str = "SELECT u.id, u.user_id FROM users u \
     WHERE u.org_id = $1 AND u.id > $2 AND NOT EXISTS (\
       SELECT 1 FROM tag_assignments a \
       JOIN tag_groups g ON g.org_id = a.org_id AND g.id = a.group_ref \
       WHERE a.org_id = u.org_id AND a.user_ref = u.id AND NOT a.is_deleted \
       AND (a.expires_at IS NULL OR a.expires_at > unixepoch()) AND NOT g.is_deleted) \
     ORDER BY u.id LIMIT $3";

fn export_row(row: &dyn Columns) -> Result<ExportRow> {
    let attribute = Attribute::parse(&row.text("attribute")?)?;
    Ok(ExportRow {
        key: row.int("id")?,
        user_id: UserId::from_trusted(row.text("user_id")?),
        tags_group_id: ExternalId::from_trusted(row.text("group_entity_id")?),
        variable_name: VariableName::from_trusted(row.text("variable_name")?),
        attribute,
        value: stored_value(row, attribute)?,
        version: row.int("version")?,
        source: Source::from_db(&row.text("source")?),
        mtime: row.int("mtime")?,
    })
}

/// The groups a batch names, each read once.
#[derive(Default)]
struct GroupCache {
    groups: Vec<TagGroup>,
    by_id: HashMap<ExternalId, Option<usize>>,
    by_variable: HashMap<VariableName, Option<usize>>,
}

impl GroupCache {
    fn remember(&mut self, group: Option<TagGroup>) -> Option<usize> {
        let group = group?;
        if let Some(known) = self.groups.iter().position(|g| g.id == group.id) {
            return Some(known);
        }
        self.by_id
            .insert(group.entity_id.clone(), Some(self.groups.len()));
        self.by_variable
            .insert(group.variable_name.clone(), Some(self.groups.len()));
        self.groups.push(group);
        Some(self.groups.len() - 1)
    }

    async fn by_id(
        &mut self,
        conn: &mut dyn SqlConn,
        share: &str,
        org: OrgId,
        id: &ExternalId,
    ) -> Result<Option<usize>> {
        if let Some(known) = self.by_id.get(id) {
            return Ok(*known);
        }
        let found = groups::find(conn, org, id, share).await?;
        let index = self.remember(found);
        self.by_id.insert(id.clone(), index);
        Ok(index)
    }

    async fn by_variable(
        &mut self,
        conn: &mut dyn SqlConn,
        share: &str,
        org: OrgId,
        variable: &VariableName,
    ) -> Result<Option<usize>> {
        if let Some(known) = self.by_variable.get(variable) {
            return Ok(*known);
        }
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM tag_groups \
             WHERE org_id = $1 AND variable_name = $2 AND NOT is_deleted {share}"
        );
        let row = conn
            .fetch_optional(&sql, &[org.0.into(), variable.as_str().into()])
            .await
            .map_err(internal)?;
        let found = row.map(|r| records::tag_group(r.as_ref())).transpose()?;
        let index = self.remember(found);
        self.by_variable.insert(variable.clone(), index);
        Ok(index)
    }

    /// The group a row names (active or not: `value_to_assign` decides), or why the row is
    /// refused.
    async fn resolve(
        &mut self,
        conn: &mut dyn SqlConn,
        share: &str,
        org: OrgId,
        group: &GroupRef,
    ) -> Result<Result<usize, Refusal>> {
        let index = match group {
            GroupRef::Id(id) => self.by_id(conn, share, org, id).await?,
            GroupRef::VariableName(v) => self.by_variable(conn, share, org, v).await?,
            GroupRef::Both(id, v) => match self.by_id(conn, share, org, id).await? {
                Some(i) if self.groups[i].variable_name != *v => {
                    return Ok(Err(Refusal::GroupMismatch))
                }
                found => found,
            },
        };
        Ok(match index {
            None => Err(Refusal::GroupNotFound),
            Some(i) => Ok(i),
        })
    }
}

/// A row after its checks: refused, a user only, or its group (index in the cache) and value.
/// A row's group (by its place in the cache), value and expiry, or why it is refused.
type Checked = Result<Option<(usize, TagValue, Option<i64>)>, Refusal>;

async fn import(
    conn: &mut dyn SqlConn,
    locks: Locks,
    org: OrgId,
    rows: &[ImportRow],
    executor: &Executor,
) -> Result<ImportReport> {
    let mut cache = GroupCache::default();
    let now = now_unix();
    let mut checked: Vec<Checked> = Vec::with_capacity(rows.len());
    for row in rows {
        let item = match &row.assignment {
            None => Ok(None),
            Some(a) => match cache.resolve(conn, locks.share, org, &a.group).await? {
                Err(refusal) => Err(refusal),
                Ok(g) => {
                    let group = &cache.groups[g];
                    tagd_core::assignments::value_to_assign(group, &a.raw_value)
                        .and_then(|value| {
                            let expires_at = expiry_of_assignment(None, group.expiry, now)?;
                            Ok(Some((g, value, expires_at)))
                        })
                        .map_err(Refusal::from)
                }
            },
        };
        checked.push(item);
    }

    let mut seen = HashSet::new();
    let mut names: Vec<&UserId> = rows
        .iter()
        .zip(&checked)
        .filter(|(row, item)| item.is_ok() && seen.insert(row.user_id.as_str()))
        .map(|(row, _)| &row.user_id)
        .collect();
    // In key order, as the pairs below: concurrent imports then wait for each other's rows
    // in the same order instead of deadlocking.
    names.sort_unstable();
    let (user_refs, created) = upsert_users(conn, org, &names).await?;
    let users_created = u64::try_from(created.len()).unwrap_or(u64::MAX);
    // A created user's first row is the one that registered it.
    let mut fresh = created;
    let user_ref = |u: &UserId| {
        user_refs
            .get(u.as_str())
            .copied()
            .ok_or_else(|| Error::internal("an imported user has no id"))
    };

    // The rows that set a value, as pair writes; `write_of[i]` is row i's write.
    let mut writes = Vec::new();
    let mut write_of = Vec::with_capacity(rows.len());
    for (row, item) in rows.iter().zip(&checked) {
        let write = match item {
            Ok(Some((g, value, expires_at))) => {
                let group = &cache.groups[*g];
                writes.push(PairWrite {
                    key: PairKey {
                        user: user_ref(&row.user_id)?,
                        group: group.id,
                    },
                    attribute: group.attribute,
                    value: Some(value.clone()),
                    expires_at: *expires_at,
                    rewrite: false,
                });
                Some(writes.len() - 1)
            }
            _ => None,
        };
        write_of.push(write);
    }
    let stamp = Stamp {
        org,
        executor,
        source: Source::Import,
        now,
    };
    let new_users: HashSet<i64> = fresh
        .iter()
        .filter_map(|u| user_refs.get(u.as_str()).copied())
        .collect();
    let applied = pairs::apply(conn, locks.update_assignment, &stamp, &writes, &new_users).await?;

    let mut outcomes = Vec::with_capacity(rows.len());
    for ((row, item), write) in rows.iter().zip(&checked).zip(&write_of) {
        let outcome = match (item, write) {
            (Err(refusal), _) => ImportOutcome::Refused(refusal.clone()),
            (Ok(_), Some(w)) => {
                fresh.remove(row.user_id.as_str());
                if applied[*w].changed {
                    ImportOutcome::Applied
                } else {
                    ImportOutcome::Unchanged
                }
            }
            (Ok(_), None) if fresh.remove(row.user_id.as_str()) => ImportOutcome::Applied,
            (Ok(_), None) => ImportOutcome::Unchanged,
        };
        outcomes.push(outcome);
    }

    Ok(ImportReport {
        outcomes,
        users_created,
    })
}

/// Registers the users (idempotently); returns every user's id and the set of users this
/// call created.
async fn upsert_users(
    conn: &mut dyn SqlConn,
    org: OrgId,
    names: &[&UserId],
) -> Result<(HashMap<String, i64>, HashSet<String>)> {
    let mut refs = HashMap::with_capacity(names.len());
    let mut created = HashSet::new();
    let now = now_unix();
    let refused = |e| match e {
        DbError::ForeignKey => Error::OrgNotFound,
        other => internal(other),
    };
    for chunk in names.chunks(CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("($1, ${}, $2)", i + 3))
            .collect();
        let sql = format!(
            "INSERT INTO users (org_id, user_id, ctime) VALUES {} \
             ON CONFLICT (org_id, user_id) DO NOTHING RETURNING id, user_id",
            values.join(", ")
        );
        let mut params: Vec<Param<'_>> = vec![org.0.into(), now.into()];
        params.extend(chunk.iter().map(|u| Param::from(u.as_str())));
        for row in conn.fetch_all(&sql, &params).await.map_err(refused)? {
            let user = User {
                org_id: org,
                id: row.int("id")?,
                user_id: UserId::from_trusted(row.text("user_id")?),
                ctime: now,
            };
            log::append_user(conn, &user)?;
            refs.insert(user.user_id.to_string(), user.id);
            created.insert(user.user_id.to_string());
        }
        let existing: Vec<&str> = chunk
            .iter()
            .map(|u| u.as_str())
            .filter(|u| !refs.contains_key(*u))
            .collect();
        if !existing.is_empty() {
            refs.extend(crate::tenants::user_refs(conn, org, &existing, true).await?);
        }
    }
    Ok((refs, created))
}
