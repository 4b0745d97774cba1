//! Tag assignments. Every change and its change-log entry commit in one transaction.

use crate::coalesce::{RemoveCommand, SingleWrite};
use crate::driver::Driver;
use crate::driver::{Locks, SqlConn};
use crate::pairs::{PairKey, Stamp};
use crate::records::{
    self, sql::ASSIGNMENT_SELECT, sql::GROUP_COLUMNS, sql::HISTORY_COLUMNS, sql::LIVE,
};
use crate::SqlStore;
use crate::{internal, log, tenants};
use async_trait::async_trait;
use tagd_core::expiry::{expiry_of_assignment, is_live};
use tagd_core::log::TagChange;
use tagd_core::timefmt::now_unix;
use tagd_core::*;

/// The live-or-deleted assignment of one (user, group), if it was ever made, read with
/// `lock_clause` so concurrent writers of the same pair queue instead of losing updates.
pub(crate) async fn find_by_refs(
    conn: &mut dyn SqlConn,
    lock_clause: &str,
    org: OrgId,
    pair: PairKey,
) -> Result<Option<Assignment>> {
    let sql = format!(
        "{ASSIGNMENT_SELECT} WHERE a.org_id = $1 AND a.user_ref = $2 AND a.group_ref = $3 \
         {lock_clause}"
    );
    let row = conn
        .fetch_optional(&sql, &[org.0.into(), pair.user.into(), pair.group.into()])
        .await
        .map_err(internal)?;
    row.map(|r| records::assignment(r.as_ref())).transpose()
}

/// Records the change a write made to a pair in the change log.
fn record_change(
    conn: &mut dyn SqlConn,
    stamp: &Stamp<'_>,
    pair: PairKey,
    written: &Written,
    old_value: Option<String>,
    value: Option<(TagValue, Option<i64>)>,
) -> Result<()> {
    let (value, expires_at) = value.unzip();
    let change = TagChange {
        assignment_id: written.id,
        entity_id: written.entity_id.clone(),
        user_ref: pair.user,
        group_ref: pair.group,
        value,
        expires_at: expires_at.flatten(),
        old_value,
        version: written.version,
        ctime: written.ctime,
        at: stamp.now,
        executor: stamp.executor.clone(),
        source: stamp.source,
    };
    log::append_tag(conn, stamp.org, change)
}

/// Whether the row counts at `now`: not removed and not expired.
fn is_live_at(a: &Assignment, now: i64) -> bool {
    !a.is_deleted && is_live(a.expires_at, now)
}

/// The row's value as history shows it before a change at `now`: `None` when it did not count.
fn live_text(a: &Assignment, now: i64) -> Option<String> {
    is_live_at(a, now).then(|| a.value.to_text())
}

/// Whether the row is still marked live though its expiry has passed: the sweep has not
/// recorded it yet, so the write that finds it records the expiry first.
fn expired_unrecorded(a: &Assignment, now: i64) -> bool {
    !a.is_deleted && !is_live(a.expires_at, now)
}

/// The live group `tags_group_id` and the internal id of user `user_id`, in one statement, the
/// group share-locked so an attribute change cannot slip in between a write's check and the
/// write.
async fn group_and_user(
    conn: &mut dyn SqlConn,
    locks: Locks,
    org: OrgId,
    tags_group_id: &ExternalId,
    user_id: &UserId,
) -> Result<(TagGroup, i64)> {
    let share = locks.share;
    let sql = format!(
        "SELECT {GROUP_COLUMNS}, \
         (SELECT id FROM users WHERE org_id = $1 AND user_id = $3) AS user_ref \
         FROM tag_groups WHERE org_id = $1 AND entity_id = $2 AND NOT is_deleted {share}"
    );
    let params = [
        org.0.into(),
        tags_group_id.as_str().into(),
        user_id.as_str().into(),
    ];
    let row = conn
        .fetch_optional(&sql, &params)
        .await
        .map_err(internal)?
        .ok_or(Error::GroupNotFound)?;
    let group = records::tag_group(row.as_ref())?;
    let user_ref = row.opt_int("user_ref")?.ok_or(Error::UserNotFound)?;
    Ok((group, user_ref))
}

/// One assignment inside the caller's transaction: checks, upsert, history. The written row
/// is built from what was read and written rather than read again: a single assign is five
/// statements.
pub(crate) async fn assign(
    conn: &mut dyn SqlConn,
    locks: Locks,
    org: OrgId,
    command: &AssignCommand,
) -> Result<Assignment> {
    let (group, user_ref) =
        group_and_user(conn, locks, org, &command.tags_group_id, &command.user_id).await?;
    let value = tagd_core::assignments::value_to_assign(&group, &command.raw_value)?;
    let stamp = Stamp::now(org, &command.executor, command.source);
    let expires_at = expiry_of_assignment(command.expiry, group.expiry, stamp.now)?;
    let pair = PairKey {
        user: user_ref,
        group: group.id,
    };
    let set = (&value, expires_at);
    let written = write_value(conn, locks.update_assignment, &stamp, pair, set).await?;
    Ok(Assignment {
        org_id: org,
        id: written.id,
        entity_id: written.entity_id,
        user_id: command.user_id.clone(),
        group_id: group.id,
        tags_group_id: group.entity_id,
        group_name: group.name,
        variable_name: group.variable_name,
        value,
        executor: command.executor.clone(),
        source: command.source,
        version: written.version,
        ctime: written.ctime,
        mtime: written.mtime,
        is_deleted: false,
        expires_at,
    })
}

/// The row a [`write_value`] left.
pub(crate) struct Written {
    pub id: i64,
    pub entity_id: ExternalId,
    pub version: i64,
    pub ctime: i64,
    pub mtime: i64,
}

/// Sets the value of a pair inside the caller's transaction: insert or update, then the
/// history entry. A first assignment races other first assignments of the same pair: the
/// loser's insert does nothing, and its next pass finds (and locks) the winner's row. The
/// conflict has no target: two first assignments of one pair in the same second compute the
/// same entity id, and on PostgreSQL the loser can meet the winner's row on the entity-id key
/// before the pair key; naming only the pair key turned that into an error.
pub(crate) async fn write_value(
    conn: &mut dyn SqlConn,
    update_lock: &str,
    stamp: &Stamp<'_>,
    pair: PairKey,
    (value, expires_at): (&TagValue, Option<i64>),
) -> Result<Written> {
    let Stamp {
        org,
        executor,
        source,
        now,
    } = *stamp;
    let entity_id = ExternalId::of_assignment(org, pair.user, pair.group, now);
    let values = [
        org.0.into(),
        pair.user.into(),
        pair.group.into(),
        value.define_value().into(),
        value.number_value().into(),
        value.string_value().into(),
        executor.kind.as_str().into(),
        executor.id.into(),
        executor.name.as_str().into(),
        source.as_str().into(),
        now.into(),
        expires_at.into(),
    ];
    let (before, written) = loop {
        if let Some(existing) = find_by_refs(conn, update_lock, org, pair).await? {
            let mut version = existing.version + 1;
            if expired_unrecorded(&existing, now) {
                log::append_expired(conn, org, log::Expired::of(&existing, pair.user, version)?)?;
                version += 1;
            }
            let written = Written {
                id: existing.id,
                entity_id: existing.entity_id.clone(),
                version,
                ctime: existing.ctime,
                mtime: now,
            };
            break (Some(existing), written);
        }
        let mut insert = values.to_vec();
        insert.push(entity_id.as_str().into());
        let inserted = conn
            .fetch_optional(
                "INSERT INTO tag_assignments (org_id, user_ref, group_ref, define_value, \
                 number_value, string_value, executor_kind, executor_ref, executor_name, source, \
                 ctime, mtime, expires_at, entity_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13) \
                 ON CONFLICT DO NOTHING RETURNING id",
                &insert,
            )
            .await
            .map_err(internal)?;
        if let Some(row) = inserted {
            let written = Written {
                id: row.int("id")?,
                entity_id: entity_id.clone(),
                version: 0,
                ctime: now,
                mtime: now,
            };
            break (None, written);
        }
    };
    if before.is_some() {
        let mut update = values.to_vec();
        update.push(written.version.into());
        conn.execute(
            "UPDATE tag_assignments SET define_value = $4, number_value = $5, string_value = $6, \
             executor_kind = $7, executor_ref = $8, executor_name = $9, source = $10, \
             version = $13, mtime = $11, expires_at = $12, is_deleted = FALSE \
             WHERE org_id = $1 AND user_ref = $2 AND group_ref = $3",
            &update,
        )
        .await
        .map_err(internal)?;
    }
    let old = before.as_ref().and_then(|a| live_text(a, now));
    let set = Some((value.clone(), expires_at));
    record_change(conn, stamp, pair, &written, old, set)?;
    Ok(written)
}

/// Soft-deletes the live assignment of a pair inside the caller's transaction.
pub(crate) async fn remove_value(
    conn: &mut dyn SqlConn,
    update_lock: &str,
    stamp: &Stamp<'_>,
    pair: PairKey,
) -> Result<Option<Assignment>> {
    let org = stamp.org;
    let Some(before) = find_by_refs(conn, update_lock, org, pair).await? else {
        return Ok(None);
    };
    // An expired value is gone already: the sweep records its expiry, not this removal.
    if !is_live_at(&before, stamp.now) {
        return Ok(None);
    }
    // Its time once the row lock is held, so a removal that waited is stamped after the
    // write it waited for.
    let stamp = &Stamp {
        now: now_unix(),
        ..*stamp
    };
    conn.execute(
        "UPDATE tag_assignments SET is_deleted = TRUE, version = version + 1, mtime = $4, \
         executor_kind = $5, executor_ref = $6, executor_name = $7, source = $8 \
         WHERE org_id = $1 AND user_ref = $2 AND group_ref = $3",
        &[
            org.0.into(),
            pair.user.into(),
            pair.group.into(),
            stamp.now.into(),
            stamp.executor.kind.as_str().into(),
            stamp.executor.id.into(),
            stamp.executor.name.as_str().into(),
            stamp.source.as_str().into(),
        ],
    )
    .await
    .map_err(internal)?;
    let after = find_by_refs(conn, "", org, pair)
        .await?
        .ok_or_else(|| Error::internal("assignment vanished after removal"))?;
    let written = Written {
        id: after.id,
        entity_id: after.entity_id.clone(),
        version: after.version,
        ctime: after.ctime,
        mtime: after.mtime,
    };
    record_change(
        conn,
        stamp,
        pair,
        &written,
        live_text(&before, stamp.now),
        None,
    )?;
    Ok(Some(after))
}

/// Removes one user's tag inside the caller's transaction: `None` when there was none.
pub(crate) async fn remove(
    conn: &mut dyn SqlConn,
    locks: Locks,
    org: OrgId,
    command: &RemoveCommand,
) -> Result<Option<Assignment>> {
    let (group, user_ref) =
        group_and_user(conn, locks, org, &command.tags_group_id, &command.user_id).await?;
    let stamp = Stamp::now(org, &command.executor, command.source);
    let pair = PairKey {
        user: user_ref,
        group: group.id,
    };
    remove_value(conn, locks.update_assignment, &stamp, pair).await
}

/// A user's live tags in one indexed query (users by `(org_id, user_id)`, assignments by
/// `(org_id, user_ref, ...)`); only an empty answer asks whether the user exists at all.
pub(crate) async fn list_for_user(
    conn: &mut dyn SqlConn,
    org: OrgId,
    user_id: &UserId,
) -> Result<Vec<Assignment>> {
    let sql = format!(
        "{ASSIGNMENT_SELECT} WHERE a.org_id = $1 AND u.user_id = $2 AND {LIVE} \
         ORDER BY a.ctime, a.id"
    );
    let rows = conn
        .fetch_all(&sql, &[org.0.into(), user_id.as_str().into()])
        .await
        .map_err(internal)?;
    if rows.is_empty() && tenants::find_user(conn, org, user_id).await?.is_none() {
        return Err(Error::UserNotFound);
    }
    rows.iter()
        .map(|r| records::assignment(r.as_ref()))
        .collect()
}

pub(crate) async fn history(
    conn: &mut dyn SqlConn,
    org: OrgId,
    assignment: &ExternalId,
) -> Result<Vec<HistoryEntry>> {
    // Through the index by user (the assignment's user, then its changes among theirs): the
    // log keeps no index by assignment (migration 0008).
    let sql = format!(
        "SELECT {HISTORY_COLUMNS} FROM change_log \
         WHERE org_id = $1 \
         AND user_ref = (SELECT user_ref FROM tag_assignments WHERE org_id = $1 AND entity_id = $2) \
         AND assignment_ref = \
           (SELECT id FROM tag_assignments WHERE org_id = $1 AND entity_id = $2) \
         ORDER BY version"
    );
    let rows = conn
        .fetch_all(&sql, &[org.0.into(), assignment.as_str().into()])
        .await
        .map_err(internal)?;
    rows.iter()
        .map(|r| records::history_entry(r.as_ref()))
        .collect()
}

#[async_trait]
impl<D: Driver> Assignments for SqlStore<D> {
    async fn assign(
        &self,
        org: OrgId,
        command: &AssignCommand,
        record: &Recorder<Assignment>,
    ) -> Result<Assignment> {
        let write = SingleWrite::Assign(command.clone());
        self.single_write(org, write, record).await
    }

    async fn assign_batch(
        &self,
        org: OrgId,
        commands: &[AssignCommand],
        record: &Recorder<Vec<Result<Assignment>>>,
    ) -> Result<Vec<Result<Assignment>>> {
        let locks = self.driver.locks();
        in_write!(self, record, |tx| {
            let mut results = Vec::with_capacity(commands.len());
            for command in commands {
                match assign(tx.as_mut(), locks, org, command).await {
                    Err(e) if e.is_fault() => return Err(e),
                    outcome => results.push(outcome),
                }
            }
            results
        })
    }

    async fn remove_assignment(
        &self,
        org: OrgId,
        tags_group_id: &ExternalId,
        user_id: &UserId,
        executor: &Executor,
        source: Source,
        record: &Recorder<Option<Assignment>>,
    ) -> Result<Option<Assignment>> {
        let command = RemoveCommand {
            tags_group_id: tags_group_id.clone(),
            user_id: user_id.clone(),
            executor: executor.clone(),
            source,
        };
        self.single_write(org, SingleWrite::Remove(command), record)
            .await
    }

    async fn list_user_assignments(&self, org: OrgId, user: &UserId) -> Result<Vec<Assignment>> {
        list_for_user(self.read().await?.as_mut(), org, user).await
    }

    async fn assignment_history(
        &self,
        org: OrgId,
        assignment: &ExternalId,
    ) -> Result<Vec<HistoryEntry>> {
        history(self.read().await?.as_mut(), org, assignment).await
    }
}
