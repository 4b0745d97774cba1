//! Tag assignments and their append-only history. Every change and its history entry commit
//! in one transaction.

use crate::groups;
use crate::internal;
use crate::rows::Cols;
use crate::tenants::find_user_in;
use sqlx::{SqliteConnection, SqlitePool};
use tagd_core::records::{self, sql::ASSIGNMENT_SELECT, sql::HISTORY_COLUMNS};
use tagd_core::timefmt::now_unix;
use tagd_core::*;

/// The live-or-deleted assignment of one (user, group), if it was ever made.
pub(crate) async fn find_by_refs(
    conn: &mut SqliteConnection,
    org: OrgId,
    user_ref: i64,
    group_ref: i64,
) -> Result<Option<Assignment>> {
    let row = sqlx::query(&format!(
        "{ASSIGNMENT_SELECT} WHERE a.org_id = $1 AND a.user_ref = $2 AND a.group_ref = $3"
    ))
    .bind(org.0)
    .bind(user_ref)
    .bind(group_ref)
    .fetch_optional(conn)
    .await
    .map_err(internal)?;
    row.map(|r| records::assignment(&Cols(&r))).transpose()
}

async fn record_history(
    conn: &mut SqliteConnection,
    org: OrgId,
    after: &Assignment,
    old_value: Option<String>,
    new_value: Option<String>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO assignment_history (org_id, assignment_ref, version, executor_kind, \
         executor_ref, executor_name, source, old_value, new_value, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(org.0)
    .bind(after.id)
    .bind(after.version)
    .bind(after.executor.kind.as_str())
    .bind(after.executor.id)
    .bind(&after.executor.name)
    .bind(after.source.as_str())
    .bind(old_value)
    .bind(new_value)
    .bind(after.mtime)
    .execute(conn)
    .await
    .map_err(internal)?;
    Ok(())
}

fn live_text(a: &Assignment) -> Option<String> {
    (!a.is_deleted).then(|| a.value.to_text())
}

pub(crate) async fn assign(
    writer: &SqlitePool,
    org: OrgId,
    command: &AssignCommand,
) -> Result<Assignment> {
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(internal)?;
    let after = assign_in(&mut tx, org, command).await?;
    tx.commit().await.map_err(internal)?;
    Ok(after)
}

/// One assignment inside the caller's transaction: checks, upsert, history.
pub(crate) async fn assign_in(
    conn: &mut SqliteConnection,
    org: OrgId,
    command: &AssignCommand,
) -> Result<Assignment> {
    let group = groups::find(conn, org, &command.tags_group_id)
        .await?
        .ok_or(Error::GroupNotFound)?;
    let user = find_user_in(conn, org, &command.user_id)
        .await?
        .ok_or(Error::UserNotFound)?;
    if !group.is_active {
        return Err(Error::GroupInactive);
    }
    let value = TagValue::parse(group.attribute, &command.raw_value)?;
    write_value(
        conn,
        org,
        (user.id, group.id),
        &value,
        &command.executor,
        command.source,
    )
    .await
}

/// Sets the value of (user, group) inside the caller's transaction: insert or update, then
/// the history entry.
pub(crate) async fn write_value(
    conn: &mut SqliteConnection,
    org: OrgId,
    (user_ref, group_ref): (i64, i64),
    value: &TagValue,
    executor: &Executor,
    source: Source,
) -> Result<Assignment> {
    let before = find_by_refs(conn, org, user_ref, group_ref).await?;
    let now = now_unix();
    let query = sqlx::query(match before {
        Some(_) => {
            "UPDATE tag_assignments SET define_value = $4, number_value = $5, string_value = $6, \
             executor_kind = $7, executor_ref = $8, executor_name = $9, source = $10, \
             version = version + 1, mtime = $11, is_deleted = FALSE \
             WHERE org_id = $1 AND user_ref = $2 AND group_ref = $3"
        }
        None => {
            "INSERT INTO tag_assignments (org_id, user_ref, group_ref, define_value, number_value, \
             string_value, executor_kind, executor_ref, executor_name, source, ctime, mtime, \
             entity_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)"
        }
    });
    let query = query
        .bind(org.0)
        .bind(user_ref)
        .bind(group_ref)
        .bind(value.define_value())
        .bind(value.number_value())
        .bind(value.string_value())
        .bind(executor.kind.as_str())
        .bind(executor.id)
        .bind(&executor.name)
        .bind(source.as_str())
        .bind(now);
    // Only a new assignment gets an entity id: re-assigning keeps the first one.
    let query = match before {
        Some(_) => query,
        None => query.bind(ExternalId::generate().to_string()),
    };
    query.execute(&mut *conn).await.map_err(internal)?;
    let after = find_by_refs(conn, org, user_ref, group_ref)
        .await?
        .ok_or_else(|| Error::internal("assignment vanished after write"))?;
    let old = before.as_ref().and_then(live_text);
    record_history(conn, org, &after, old, Some(value.to_text())).await?;
    Ok(after)
}

pub(crate) async fn remove(
    writer: &SqlitePool,
    org: OrgId,
    tags_group_id: &ExternalId,
    user_id: &UserId,
    executor: &Executor,
    source: Source,
) -> Result<Option<Assignment>> {
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(internal)?;
    let group = groups::find(&mut tx, org, tags_group_id)
        .await?
        .ok_or(Error::GroupNotFound)?;
    let user = find_user_in(&mut tx, org, user_id)
        .await?
        .ok_or(Error::UserNotFound)?;
    let removed = remove_in(&mut tx, org, user.id, group.id, executor, source).await?;
    tx.commit().await.map_err(internal)?;
    Ok(removed)
}

/// Soft-deletes the live assignment of (user, group) inside the caller's transaction.
pub(crate) async fn remove_in(
    conn: &mut SqliteConnection,
    org: OrgId,
    user_ref: i64,
    group_ref: i64,
    executor: &Executor,
    source: Source,
) -> Result<Option<Assignment>> {
    let Some(before) = find_by_refs(conn, org, user_ref, group_ref).await? else {
        return Ok(None);
    };
    if before.is_deleted {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE tag_assignments SET is_deleted = TRUE, version = version + 1, mtime = $4, \
         executor_kind = $5, executor_ref = $6, executor_name = $7, source = $8 \
         WHERE org_id = $1 AND user_ref = $2 AND group_ref = $3",
    )
    .bind(org.0)
    .bind(user_ref)
    .bind(group_ref)
    .bind(now_unix())
    .bind(executor.kind.as_str())
    .bind(executor.id)
    .bind(&executor.name)
    .bind(source.as_str())
    .execute(&mut *conn)
    .await
    .map_err(internal)?;
    let after = find_by_refs(conn, org, user_ref, group_ref)
        .await?
        .ok_or_else(|| Error::internal("assignment vanished after removal"))?;
    record_history(conn, org, &after, live_text(&before), None).await?;
    Ok(Some(after))
}

pub(crate) async fn list_for_user(
    reader: &SqlitePool,
    org: OrgId,
    user_id: &UserId,
) -> Result<Vec<Assignment>> {
    let mut conn = reader.acquire().await.map_err(internal)?;
    let user = find_user_in(&mut conn, org, user_id)
        .await?
        .ok_or(Error::UserNotFound)?;
    let rows = sqlx::query(&format!(
        "{ASSIGNMENT_SELECT} WHERE a.org_id = $1 AND a.user_ref = $2 AND NOT a.is_deleted \
         ORDER BY a.ctime, a.id"
    ))
    .bind(org.0)
    .bind(user.id)
    .fetch_all(&mut *conn)
    .await
    .map_err(internal)?;
    rows.iter().map(|r| records::assignment(&Cols(r))).collect()
}

pub(crate) async fn history(
    reader: &SqlitePool,
    org: OrgId,
    assignment: &ExternalId,
) -> Result<Vec<HistoryEntry>> {
    let rows = sqlx::query(&format!(
        "SELECT {HISTORY_COLUMNS} FROM assignment_history \
         WHERE org_id = $1 AND assignment_ref = \
           (SELECT id FROM tag_assignments WHERE org_id = $1 AND entity_id = $2) \
         ORDER BY id"
    ))
    .bind(org.0)
    .bind(assignment.as_str())
    .fetch_all(reader)
    .await
    .map_err(internal)?;
    rows.iter()
        .map(|r| records::history_entry(&Cols(r)))
        .collect()
}
