//! Tag groups.

use crate::driver::Driver;
use crate::driver::{DbError, Param, SqlConn, SqlTx};
use crate::records::{self, sql::GROUP_COLUMNS};
use crate::SqlStore;
use crate::{internal, log};
use async_trait::async_trait;
use tagd_core::expiry::ExpiryPolicy;
use tagd_core::log::ChangeKind;
use tagd_core::names;
use tagd_core::timefmt::now_unix;
use tagd_core::*;

/// A group that is not deleted, optionally row-locked (`lock_clause` from the driver).
pub(crate) async fn find(
    conn: &mut dyn SqlConn,
    org: OrgId,
    entity_id: &ExternalId,
    lock_clause: &str,
) -> Result<Option<TagGroup>> {
    let sql = format!(
        "SELECT {GROUP_COLUMNS} FROM tag_groups \
         WHERE org_id = $1 AND entity_id = $2 AND NOT is_deleted {lock_clause}"
    );
    let row = conn
        .fetch_optional(&sql, &[org.0.into(), entity_id.as_str().into()])
        .await
        .map_err(internal)?;
    row.map(|r| records::tag_group(r.as_ref())).transpose()
}

/// Refuses a name or variable name used by another live group of the organization.
async fn ensure_names_free(
    conn: &mut dyn SqlConn,
    org: OrgId,
    fields: &TagGroupFields,
    except_id: i64,
) -> Result<()> {
    let clash = conn
        .fetch_optional(
            "SELECT name, variable_name FROM tag_groups \
             WHERE org_id = $1 AND id <> $2 \
             AND ((name = $3 AND NOT is_deleted) OR variable_name = $4) LIMIT 1",
            &[
                org.0.into(),
                except_id.into(),
                fields.name.as_str().into(),
                fields.variable_name.as_str().into(),
            ],
        )
        .await
        .map_err(internal)?;
    match clash {
        Some(row) if row.text("name")? == fields.name.as_str() => {
            Err(Error::Duplicate("name".into()))
        }
        Some(_) => Err(Error::Duplicate("variable_name".into())),
        None => Ok(()),
    }
}

/// The organization's cap on tag groups and how many it has, read under `lock_clause` (the
/// organization's row is locked on PostgreSQL, so concurrent creates in one organization
/// count one after another and never overshoot the cap; SQLite has one writer).
pub(crate) async fn room(
    conn: &mut dyn SqlConn,
    lock_clause: &str,
    org: OrgId,
    default_cap: i64,
) -> Result<TagGroupRoom> {
    let cap = conn
        .fetch_optional(
            &format!("SELECT max_tag_groups FROM organizations WHERE id = $1 {lock_clause}"),
            &[org.0.into()],
        )
        .await
        .map_err(internal)?
        .ok_or(Error::OrgNotFound)?
        .opt_int("max_tag_groups")?
        .unwrap_or(default_cap);
    let used = conn
        .fetch_optional(
            "SELECT COUNT(*) AS n FROM tag_groups WHERE org_id = $1 AND NOT is_deleted",
            &[org.0.into()],
        )
        .await
        .map_err(internal)?
        .map(|r| r.int("n"))
        .transpose()?
        .unwrap_or(0);
    Ok(TagGroupRoom { cap, used })
}

/// What [`room`] found; each create takes one place.
pub(crate) struct TagGroupRoom {
    cap: i64,
    used: i64,
}

impl TagGroupRoom {
    fn take(&mut self) -> Result<()> {
        if self.used >= self.cap {
            return Err(Error::TagGroupLimit { max: self.cap });
        }
        self.used += 1;
        Ok(())
    }
}

/// Creates every group it can in one transaction: `Err(Duplicate("name"))` where the name is
/// already in use (also by an earlier item of the same batch), `Err(TagGroupLimit)` past the
/// organization's cap; any other refusal (a variable name in use) refuses the whole batch.
pub(crate) async fn create_many(
    tx: &mut dyn SqlTx,
    mut room: TagGroupRoom,
    org: OrgId,
    batch: &[TagGroupFields],
    executor: &Executor,
) -> Result<Vec<Result<TagGroup>>> {
    let mut created = Vec::with_capacity(batch.len());
    for fields in batch {
        if let Err(full) = room.take() {
            // A name in use is the more useful answer, and it would take no place anyway.
            match ensure_names_free(tx, org, fields, 0).await {
                Err(Error::Duplicate(what)) if what == "name" => {
                    created.push(Err(Error::Duplicate(what)));
                }
                Err(e) => return Err(e),
                Ok(()) => created.push(Err(full)),
            }
            continue;
        }
        match create(tx, org, fields, executor).await {
            Ok(group) => created.push(Ok(group)),
            Err(Error::Duplicate(what)) if what == "name" => {
                room.used -= 1;
                created.push(Err(Error::Duplicate(what)));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(created)
}

/// Creates one group after taking its place in `room`.
pub(crate) async fn create_within(
    conn: &mut dyn SqlConn,
    mut room: TagGroupRoom,
    org: OrgId,
    fields: &TagGroupFields,
    executor: &Executor,
) -> Result<TagGroup> {
    room.take()?;
    create(conn, org, fields, executor).await
}

/// `$1`..`$12` of a group's insert and update: the organization, `key` (the new entity id, or
/// the row's id), the five fields, the time, who wrote them, and the name's search key.
fn group_params<'a>(
    org: OrgId,
    key: Param<'a>,
    fields: &'a TagGroupFields,
    executor: &'a Executor,
    name_key: &'a str,
) -> [Param<'a>; 12] {
    [
        org.0.into(),
        key,
        fields.name.as_str().into(),
        fields.variable_name.as_str().into(),
        fields.description.as_str().into(),
        fields.attribute.as_str().into(),
        fields.category.as_str().into(),
        now_unix().into(),
        executor.kind.as_str().into(),
        executor.id.into(),
        executor.name.as_str().into(),
        name_key.into(),
    ]
}

/// `$13`..`$15`: the default expiry's policy, date and days; all null when `expiry` is
/// `None` (an update then keeps the group's).
fn expiry_params<'a>(expiry: Option<ExpiryPolicy>) -> [Param<'a>; 3] {
    [
        expiry.map(ExpiryPolicy::name).into(),
        expiry.and_then(ExpiryPolicy::date).into(),
        expiry.and_then(ExpiryPolicy::days).into(),
    ]
}

/// A unique key refuses a taken name or variable name; a foreign key, a vanished organization.
fn group_write_refused(e: DbError) -> Error {
    match e {
        DbError::ForeignKey => Error::OrgNotFound,
        DbError::Unique => Error::Duplicate("name or variable_name".into()),
        other => internal(other),
    }
}

async fn create(
    conn: &mut dyn SqlConn,
    org: OrgId,
    fields: &TagGroupFields,
    executor: &Executor,
) -> Result<TagGroup> {
    ensure_names_free(conn, org, fields, 0).await?;
    let entity_id = ExternalId::generate();
    let name_key = names::search_key(fields.name.as_str());
    let mut params =
        group_params(org, entity_id.as_str().into(), fields, executor, &name_key).to_vec();
    params.extend(expiry_params(Some(fields.expiry.unwrap_or_default())));
    let row = conn
        .fetch_optional(
            &format!(
                "INSERT INTO tag_groups (org_id, entity_id, name, variable_name, description, \
                 attribute, category, ctime, mtime, updated_by_kind, updated_by_ref, \
                 updated_by_name, name_key, expiry_policy, expiry_date, expiry_days) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, $13, $14, $15) \
                 RETURNING {GROUP_COLUMNS}"
            ),
            &params,
        )
        .await
        .map_err(group_write_refused)?;
    let group = records::tag_group(crate::one(row)?.as_ref())?;
    // A label is a define group made through v2 (by a Basic credential).
    let kind = match (group.attribute, executor.kind) {
        (Attribute::Define, ExecutorKind::Credential) => ChangeKind::LabelCreated,
        _ => ChangeKind::GroupCreated,
    };
    log::append_group(conn, kind, &group)?;
    Ok(group)
}

pub(crate) async fn list(
    conn: &mut dyn SqlConn,
    org: OrgId,
    category: &Category,
    offset: i64,
    limit: i64,
) -> Result<Page<TagGroup>> {
    let filter = [org.0.into(), category.as_str().into()];
    let total = conn
        .fetch_optional(
            "SELECT COUNT(*) AS n FROM tag_groups \
             WHERE org_id = $1 AND category = $2 AND NOT is_deleted",
            &filter,
        )
        .await
        .map_err(internal)?
        .map(|r| r.int("n"))
        .transpose()?
        .unwrap_or(0);
    let rows = conn
        .fetch_all(
            &format!(
                "SELECT {GROUP_COLUMNS} FROM tag_groups \
                 WHERE org_id = $1 AND category = $2 AND NOT is_deleted \
                 ORDER BY ctime, entity_id LIMIT $3 OFFSET $4"
            ),
            &[filter[0], filter[1], limit.into(), offset.into()],
        )
        .await
        .map_err(internal)?;
    let rows = rows
        .iter()
        .map(|r| records::tag_group(r.as_ref()))
        .collect::<Result<_>>()?;
    Ok(Page { total, rows })
}

/// Replaces the editable fields; `current` was read with an update lock in this transaction.
pub(crate) async fn update(
    conn: &mut dyn SqlConn,
    current: &TagGroup,
    fields: &TagGroupFields,
    expected_version: Option<i64>,
    executor: &Executor,
) -> Result<TagGroup> {
    let org = current.org_id;
    tagd_core::groups::check_edit(current, expected_version)?;
    tagd_core::groups::check_attribute_change(current, fields, || async {
        let live = conn
            .fetch_optional(
                "SELECT COUNT(*) AS n FROM tag_assignments \
                 WHERE org_id = $1 AND group_ref = $2 AND NOT is_deleted",
                &[org.0.into(), current.id.into()],
            )
            .await
            .map_err(internal)?;
        Ok(live.map(|r| r.int("n")).transpose()?.unwrap_or(0))
    })
    .await?;
    ensure_names_free(conn, org, fields, current.id).await?;
    let name_key = names::search_key(fields.name.as_str());
    let mut params = group_params(org, current.id.into(), fields, executor, &name_key).to_vec();
    params.extend(expiry_params(fields.expiry));
    let row = conn
        .fetch_optional(
            &format!(
                "UPDATE tag_groups SET name = $3, variable_name = $4, description = $5, \
                 attribute = $6, category = $7, version = version + 1, mtime = $8, \
                 updated_by_kind = $9, updated_by_ref = $10, updated_by_name = $11, \
                 name_key = $12, expiry_policy = COALESCE($13, expiry_policy), \
                 expiry_date = CASE WHEN $13 IS NULL THEN expiry_date ELSE $14 END, \
                 expiry_days = CASE WHEN $13 IS NULL THEN expiry_days ELSE $15 END \
                 WHERE org_id = $1 AND id = $2 RETURNING {GROUP_COLUMNS}"
            ),
            &params,
        )
        .await
        .map_err(group_write_refused)?;
    let group = records::tag_group(crate::one(row)?.as_ref())?;
    log::append_group(conn, ChangeKind::GroupUpdated, &group)?;
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

/// Switches a flag; `current` was read with an update lock in this transaction.
pub(crate) async fn set_flag(
    conn: &mut dyn SqlConn,
    current: TagGroup,
    (flag, on): (Flag, bool),
    executor: &Executor,
) -> Result<TagGroup> {
    let (column, now_on) = match flag {
        Flag::Active => {
            tagd_core::groups::check_activation(&current)?;
            ("is_active", current.is_active)
        }
        Flag::Locked => ("is_locked", current.is_locked),
    };
    if now_on == on {
        return Ok(current);
    }
    let row = conn
        .fetch_optional(
            &format!(
                "UPDATE tag_groups SET {column} = $3, mtime = $4, updated_by_kind = $5, \
                 updated_by_ref = $6, updated_by_name = $7 \
                 WHERE org_id = $1 AND id = $2 RETURNING {GROUP_COLUMNS}"
            ),
            &[
                current.org_id.0.into(),
                current.id.into(),
                on.into(),
                now_unix().into(),
                executor.kind.as_str().into(),
                executor.id.into(),
                executor.name.as_str().into(),
            ],
        )
        .await
        .map_err(internal)?;
    let group = records::tag_group(crate::one(row)?.as_ref())?;
    let kind = match (flag, on) {
        (Flag::Active, true) => ChangeKind::GroupActivated,
        (Flag::Active, false) => ChangeKind::GroupDeactivated,
        (Flag::Locked, _) => ChangeKind::GroupUpdated,
    };
    log::append_group(conn, kind, &group)?;
    Ok(group)
}

/// Locks a group for the rest of the transaction, for `update` and `set_flag`.
pub(crate) async fn find_for_update(
    conn: &mut dyn SqlConn,
    lock_clause: &str,
    org: OrgId,
    entity_id: &ExternalId,
) -> Result<TagGroup> {
    find(conn, org, entity_id, lock_clause)
        .await?
        .ok_or(Error::GroupNotFound)
}

/// Fills the search key of groups written before it existed (migration 0003), in Rust so
/// both backends fold case the same way; returns how many were filled.
pub(crate) async fn fill_missing_search_keys(tx: &mut dyn SqlTx) -> Result<u64> {
    let rows = tx
        .fetch_all(
            "SELECT org_id, id, name FROM tag_groups WHERE name_key IS NULL",
            &[],
        )
        .await
        .map_err(internal)?;
    for row in &rows {
        let key = names::search_key(&row.text("name")?);
        tx.execute(
            "UPDATE tag_groups SET name_key = $3 WHERE org_id = $1 AND id = $2",
            &[
                row.int("org_id")?.into(),
                row.int("id")?.into(),
                key.as_str().into(),
            ],
        )
        .await
        .map_err(internal)?;
    }
    Ok(rows.len() as u64)
}

impl<D: Driver> SqlStore<D> {
    /// Switches a flag of a group under an update lock, in one transaction.
    async fn set_group_flag(
        &self,
        org: OrgId,
        entity_id: &ExternalId,
        flag: (Flag, bool),
        executor: &Executor,
        record: &Recorder<TagGroup>,
    ) -> Result<TagGroup> {
        let mut tx = self.write().await?;
        let lock = self.driver.locks().update;
        let current = find_for_update(tx.as_mut(), lock, org, entity_id).await?;
        let group = set_flag(tx.as_mut(), current, flag, executor).await?;
        self.finish(tx, group, record).await
    }
}

#[async_trait]
impl<D: Driver> TagGroups for SqlStore<D> {
    async fn create_tag_group(
        &self,
        org: OrgId,
        fields: &TagGroupFields,
        executor: &Executor,
        record: &Recorder<TagGroup>,
    ) -> Result<TagGroup> {
        let (lock, cap) = (self.driver.locks().update, self.default_max_tag_groups());
        in_write!(self, record, |tx| {
            let room = room(tx.as_mut(), lock, org, cap).await?;
            create_within(tx.as_mut(), room, org, fields, executor).await?
        })
    }

    async fn create_tag_groups(
        &self,
        org: OrgId,
        batch: &[TagGroupFields],
        executor: &Executor,
        record: &Recorder<Vec<Result<TagGroup>>>,
    ) -> Result<Vec<Result<TagGroup>>> {
        let (lock, cap) = (self.driver.locks().update, self.default_max_tag_groups());
        in_write!(self, record, |tx| {
            let room = room(tx.as_mut(), lock, org, cap).await?;
            create_many(tx.as_mut(), room, org, batch, executor).await?
        })
    }

    async fn find_tag_group(&self, org: OrgId, id: &ExternalId) -> Result<Option<TagGroup>> {
        find(self.read().await?.as_mut(), org, id, "").await
    }

    async fn list_tag_groups(
        &self,
        org: OrgId,
        category: &Category,
        offset: i64,
        limit: i64,
    ) -> Result<Page<TagGroup>> {
        list(self.read().await?.as_mut(), org, category, offset, limit).await
    }

    async fn update_tag_group(
        &self,
        org: OrgId,
        id: &ExternalId,
        fields: &TagGroupFields,
        expected_version: Option<i64>,
        executor: &Executor,
        record: &Recorder<TagGroup>,
    ) -> Result<TagGroup> {
        let lock = self.driver.locks().update;
        in_write!(self, record, |tx| {
            let current = find_for_update(tx.as_mut(), lock, org, id).await?;
            update(tx.as_mut(), &current, fields, expected_version, executor).await?
        })
    }

    async fn set_tag_group_active(
        &self,
        org: OrgId,
        id: &ExternalId,
        active: bool,
        executor: &Executor,
        record: &Recorder<TagGroup>,
    ) -> Result<TagGroup> {
        self.set_group_flag(org, id, (Flag::Active, active), executor, record)
            .await
    }

    async fn set_tag_group_locked(
        &self,
        org: OrgId,
        id: &ExternalId,
        locked: bool,
        executor: &Executor,
    ) -> Result<TagGroup> {
        self.set_group_flag(org, id, (Flag::Locked, locked), executor, &Recorder::none())
            .await
    }
}
