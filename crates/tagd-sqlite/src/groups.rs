//! Tag groups.

use crate::rows::Cols;
use crate::{db_error, internal};
use sqlx::{SqliteConnection, SqlitePool};
use tagd_core::records::{self, sql::GROUP_COLUMNS};
use tagd_core::timefmt::now_unix;
use tagd_core::*;

pub(crate) async fn find(
    conn: &mut SqliteConnection,
    org: OrgId,
    entity_id: &ExternalId,
) -> Result<Option<TagGroup>> {
    let row = sqlx::query(&format!(
        "SELECT {GROUP_COLUMNS} FROM tag_groups \
         WHERE org_id = $1 AND entity_id = $2 AND NOT is_deleted"
    ))
    .bind(org.0)
    .bind(entity_id.as_str())
    .fetch_optional(conn)
    .await
    .map_err(internal)?;
    row.map(|r| records::tag_group(&Cols(&r))).transpose()
}

/// Refuses a name or variable name used by another live group of the organization.
async fn ensure_names_free(
    conn: &mut SqliteConnection,
    org: OrgId,
    fields: &TagGroupFields,
    except_id: i64,
) -> Result<()> {
    let clash: Option<(String, String)> = sqlx::query_as(
        "SELECT name, variable_name FROM tag_groups \
         WHERE org_id = $1 AND id <> $2 AND ((name = $3 AND NOT is_deleted) OR variable_name = $4) \
         LIMIT 1",
    )
    .bind(org.0)
    .bind(except_id)
    .bind(fields.name.as_str())
    .bind(fields.variable_name.as_str())
    .fetch_optional(conn)
    .await
    .map_err(internal)?;
    match clash {
        Some((name, _)) if name == fields.name.as_str() => Err(Error::Duplicate("name".into())),
        Some(_) => Err(Error::Duplicate("variable_name".into())),
        None => Ok(()),
    }
}

pub(crate) async fn create(
    writer: &SqlitePool,
    org: OrgId,
    fields: &TagGroupFields,
    executor: &Executor,
) -> Result<TagGroup> {
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(internal)?;
    let group = create_in(&mut tx, org, fields, executor).await?;
    tx.commit().await.map_err(internal)?;
    Ok(group)
}

/// Creates every group it can in one transaction; `None` where the name is already in use
/// (also by an earlier item of the same batch).
pub(crate) async fn create_many(
    writer: &SqlitePool,
    org: OrgId,
    batch: &[TagGroupFields],
    executor: &Executor,
) -> Result<Vec<Option<TagGroup>>> {
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(internal)?;
    let mut created = Vec::with_capacity(batch.len());
    for fields in batch {
        match create_in(&mut tx, org, fields, executor).await {
            Ok(group) => created.push(Some(group)),
            Err(Error::Duplicate(what)) if what == "name" => created.push(None),
            Err(e) => return Err(e),
        }
    }
    tx.commit().await.map_err(internal)?;
    Ok(created)
}

async fn create_in(
    conn: &mut SqliteConnection,
    org: OrgId,
    fields: &TagGroupFields,
    executor: &Executor,
) -> Result<TagGroup> {
    ensure_names_free(conn, org, fields, 0).await?;
    let now = now_unix();
    let row = sqlx::query(&format!(
        "INSERT INTO tag_groups (org_id, entity_id, name, variable_name, description, attribute, \
         category, ctime, mtime, updated_by_kind, updated_by_ref, updated_by_name) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11) RETURNING {GROUP_COLUMNS}"
    ))
    .bind(org.0)
    .bind(ExternalId::generate().as_str())
    .bind(fields.name.as_str())
    .bind(fields.variable_name.as_str())
    .bind(fields.description.as_str())
    .bind(fields.attribute.as_str())
    .bind(fields.category.as_str())
    .bind(now)
    .bind(executor.kind.as_str())
    .bind(executor.id)
    .bind(&executor.name)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| match e.as_database_error() {
        Some(db) if db.is_foreign_key_violation() => Error::OrgNotFound,
        _ => db_error("name or variable_name")(e),
    })?;
    records::tag_group(&Cols(&row))
}

pub(crate) async fn list(
    reader: &SqlitePool,
    org: OrgId,
    category: &Category,
    offset: i64,
    limit: i64,
) -> Result<Page<TagGroup>> {
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tag_groups WHERE org_id = $1 AND category = $2 AND NOT is_deleted",
    )
    .bind(org.0)
    .bind(category.as_str())
    .fetch_one(reader)
    .await
    .map_err(internal)?;
    let rows = sqlx::query(&format!(
        "SELECT {GROUP_COLUMNS} FROM tag_groups \
         WHERE org_id = $1 AND category = $2 AND NOT is_deleted \
         ORDER BY ctime, entity_id LIMIT $3 OFFSET $4"
    ))
    .bind(org.0)
    .bind(category.as_str())
    .bind(limit)
    .bind(offset)
    .fetch_all(reader)
    .await
    .map_err(internal)?;
    let rows = rows
        .iter()
        .map(|r| records::tag_group(&Cols(r)))
        .collect::<Result<_>>()?;
    Ok(Page { total, rows })
}

pub(crate) async fn update(
    writer: &SqlitePool,
    org: OrgId,
    entity_id: &ExternalId,
    fields: &TagGroupFields,
    expected_version: Option<i64>,
    executor: &Executor,
) -> Result<TagGroup> {
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(internal)?;
    let current = find(&mut tx, org, entity_id)
        .await?
        .ok_or(Error::GroupNotFound)?;
    if current.is_locked {
        return Err(Error::GroupLocked);
    }
    if expected_version.is_some_and(|v| v != current.version) {
        return Err(Error::StaleVersion);
    }
    if fields.attribute != current.attribute {
        let live: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tag_assignments \
             WHERE org_id = $1 AND group_ref = $2 AND NOT is_deleted",
        )
        .bind(org.0)
        .bind(current.id)
        .fetch_one(&mut *tx)
        .await
        .map_err(internal)?;
        if live > 0 {
            return Err(Error::AttributeInUse);
        }
    }
    ensure_names_free(&mut tx, org, fields, current.id).await?;
    let row = sqlx::query(&format!(
        "UPDATE tag_groups SET name = $3, variable_name = $4, description = $5, attribute = $6, \
         category = $7, version = version + 1, mtime = $8, updated_by_kind = $9, \
         updated_by_ref = $10, updated_by_name = $11 \
         WHERE org_id = $1 AND id = $2 RETURNING {GROUP_COLUMNS}"
    ))
    .bind(org.0)
    .bind(current.id)
    .bind(fields.name.as_str())
    .bind(fields.variable_name.as_str())
    .bind(fields.description.as_str())
    .bind(fields.attribute.as_str())
    .bind(fields.category.as_str())
    .bind(now_unix())
    .bind(executor.kind.as_str())
    .bind(executor.id)
    .bind(&executor.name)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_error("name or variable_name"))?;
    let group = records::tag_group(&Cols(&row))?;
    tx.commit().await.map_err(internal)?;
    Ok(group)
}

/// A flag the operator or a client can switch on a group.
#[derive(Clone, Copy)]
pub(crate) enum Flag {
    /// Clients (de)activate; refused on a locked group.
    Active,
    /// Only the operator locks and unlocks.
    Locked,
}

pub(crate) async fn set_flag(
    writer: &SqlitePool,
    org: OrgId,
    entity_id: &ExternalId,
    (flag, on): (Flag, bool),
    executor: &Executor,
) -> Result<TagGroup> {
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(internal)?;
    let current = find(&mut tx, org, entity_id)
        .await?
        .ok_or(Error::GroupNotFound)?;
    let (column, now_on) = match flag {
        Flag::Active if current.is_locked => return Err(Error::GroupLocked),
        Flag::Active => ("is_active", current.is_active),
        Flag::Locked => ("is_locked", current.is_locked),
    };
    if now_on == on {
        return Ok(current);
    }
    let row = sqlx::query(&format!(
        "UPDATE tag_groups SET {column} = $3, mtime = $4, updated_by_kind = $5, \
         updated_by_ref = $6, updated_by_name = $7 \
         WHERE org_id = $1 AND id = $2 RETURNING {GROUP_COLUMNS}"
    ))
    .bind(org.0)
    .bind(current.id)
    .bind(on)
    .bind(now_unix())
    .bind(executor.kind.as_str())
    .bind(executor.id)
    .bind(&executor.name)
    .fetch_one(&mut *tx)
    .await
    .map_err(internal)?;
    let group = records::tag_group(&Cols(&row))?;
    tx.commit().await.map_err(internal)?;
    Ok(group)
}
