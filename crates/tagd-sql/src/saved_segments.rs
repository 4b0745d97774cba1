//! Saved segments persisted: one row each, soft-deleted; every write logged in the same
//! transaction. The rules (names, filter validity, references) are checked in core and by the
//! caller; here the store keeps names unique, versions current and references intact.

use crate::driver::{DbError, Driver, SqlConn};
use crate::records::Columns;
use crate::{internal, log, one, SqlStore};
use async_trait::async_trait;
use tagd_core::log::{Change, ChangeKind, Subject};
use tagd_core::saved_segments::{self, SavedSegment, SavedSegments, SegmentFields};
use tagd_core::timefmt::now_unix;
use tagd_core::*;

pub(crate) const SEGMENT_COLUMNS: &str =
    "id, org_id, entity_id, name, description, filter, version, is_deleted, ctime, mtime";

pub(crate) fn segment(row: &dyn Columns) -> Result<SavedSegment> {
    let filter = serde_json::from_str(&row.text("filter")?)
        .map_err(|e| Error::internal(format!("a saved filter is not JSON: {e}")))?;
    Ok(SavedSegment {
        org_id: OrgId(row.int("org_id")?),
        id: row.int("id")?,
        entity_id: ExternalId::from_trusted(row.text("entity_id")?),
        name: row.text("name")?,
        description: Description::from_trusted(row.text("description")?),
        filter,
        version: row.int("version")?,
        ctime: row.int("ctime")?,
        mtime: row.int("mtime")?,
        is_deleted: row.flag("is_deleted")?,
    })
}

fn duplicate_name(e: DbError) -> Error {
    match e {
        DbError::Unique => Error::Duplicate("name".into()),
        other => internal(other),
    }
}

/// Runs the statement that writes a segment row (`RETURNING` it) and logs the row as left.
async fn written(
    conn: &mut dyn SqlConn,
    sql: &str,
    params: &[crate::Param<'_>],
    kind: ChangeKind,
) -> Result<SavedSegment> {
    let row = conn
        .fetch_optional(sql, params)
        .await
        .map_err(duplicate_name)?;
    let saved = segment(one(row)?.as_ref())?;
    let subject = Subject::Segment(Box::new(saved.clone()));
    log::append(conn, saved.org_id, Change { kind, subject })?;
    Ok(saved)
}

async fn live(
    conn: &mut dyn SqlConn,
    lock: &str,
    org: OrgId,
    id: &ExternalId,
) -> Result<Option<SavedSegment>> {
    let sql = format!(
        "SELECT {SEGMENT_COLUMNS} FROM segments WHERE org_id = $1 AND entity_id = $2 \
         AND NOT is_deleted {lock}"
    );
    let row = conn
        .fetch_optional(&sql, &[org.0.into(), id.as_str().into()])
        .await
        .map_err(internal)?;
    row.map(|r| segment(r.as_ref())).transpose()
}

async fn all_live(conn: &mut dyn SqlConn, org: OrgId) -> Result<Vec<SavedSegment>> {
    let sql = format!(
        "SELECT {SEGMENT_COLUMNS} FROM segments WHERE org_id = $1 AND NOT is_deleted ORDER BY id"
    );
    let rows = conn
        .fetch_all(&sql, &[org.0.into()])
        .await
        .map_err(internal)?;
    rows.iter().map(|r| segment(r.as_ref())).collect()
}

#[async_trait]
impl<D: Driver> SavedSegments for SqlStore<D> {
    async fn create_segment(
        &self,
        org: OrgId,
        fields: &SegmentFields,
        record: &Recorder<SavedSegment>,
    ) -> Result<SavedSegment> {
        in_write!(self, record, |tx| {
            let conn = tx.as_mut();
            let count = one(conn
                .fetch_optional(
                    "SELECT COUNT(*) AS n FROM segments WHERE org_id = $1 AND NOT is_deleted",
                    &[org.0.into()],
                )
                .await
                .map_err(internal)?)?
            .int("n")?;
            saved_segments::check_room(count)?;
            let now = now_unix();
            let entity_id = ExternalId::generate();
            let filter = fields.filter.to_string();
            let sql = format!(
                "INSERT INTO segments (org_id, entity_id, name, description, filter, ctime, mtime) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {SEGMENT_COLUMNS}"
            );
            let params = [
                org.0.into(),
                entity_id.as_str().into(),
                fields.name.as_str().into(),
                fields.description.as_str().into(),
                filter.as_str().into(),
                now.into(),
            ];
            written(conn, &sql, &params, ChangeKind::SegmentSaved).await?
        })
    }

    async fn update_segment(
        &self,
        org: OrgId,
        id: &ExternalId,
        fields: &SegmentFields,
        expected_version: Option<i64>,
        record: &Recorder<SavedSegment>,
    ) -> Result<SavedSegment> {
        let lock = self.driver.locks().update;
        in_write!(self, record, |tx| {
            let conn = tx.as_mut();
            let current = live(conn, lock, org, id)
                .await?
                .ok_or(Error::SegmentNotFound)?;
            saved_segments::check_edit(&current, expected_version)?;
            let filter = fields.filter.to_string();
            let sql = format!(
                "UPDATE segments SET name = $3, description = $4, filter = $5, \
                 version = version + 1, mtime = $6 WHERE org_id = $1 AND id = $2 \
                 RETURNING {SEGMENT_COLUMNS}"
            );
            let params = [
                org.0.into(),
                current.id.into(),
                fields.name.as_str().into(),
                fields.description.as_str().into(),
                filter.as_str().into(),
                now_unix().into(),
            ];
            written(conn, &sql, &params, ChangeKind::SegmentSaved).await?
        })
    }

    async fn delete_segment(
        &self,
        org: OrgId,
        id: &ExternalId,
        record: &Recorder<SavedSegment>,
    ) -> Result<SavedSegment> {
        let lock = self.driver.locks().update;
        in_write!(self, record, |tx| {
            let conn = tx.as_mut();
            let current = live(conn, lock, org, id)
                .await?
                .ok_or(Error::SegmentNotFound)?;
            // The organization's segments are few (capped): their filters are read whole.
            saved_segments::check_unreferenced(&current, &all_live(conn, org).await?)?;
            let sql = format!(
                "UPDATE segments SET is_deleted = TRUE, version = version + 1, mtime = $3 \
                 WHERE org_id = $1 AND id = $2 RETURNING {SEGMENT_COLUMNS}"
            );
            let params = [org.0.into(), current.id.into(), now_unix().into()];
            written(conn, &sql, &params, ChangeKind::SegmentDeleted).await?
        })
    }

    async fn find_segment(&self, org: OrgId, id: &ExternalId) -> Result<Option<SavedSegment>> {
        live(self.read().await?.as_mut(), "", org, id).await
    }

    async fn list_segments(
        &self,
        org: OrgId,
        start: i64,
        step: i64,
    ) -> Result<(i64, Vec<SavedSegment>)> {
        let mut conn = self.read().await?;
        let total = one(conn
            .fetch_optional(
                "SELECT COUNT(*) AS n FROM segments WHERE org_id = $1 AND NOT is_deleted",
                &[org.0.into()],
            )
            .await
            .map_err(internal)?)?
        .int("n")?;
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM segments WHERE org_id = $1 AND NOT is_deleted \
             ORDER BY id LIMIT $2 OFFSET $3"
        );
        let rows = conn
            .fetch_all(&sql, &[org.0.into(), step.into(), start.into()])
            .await
            .map_err(internal)?;
        let rows = rows
            .iter()
            .map(|r| segment(r.as_ref()))
            .collect::<Result<_>>()?;
        Ok((total, rows))
    }

    async fn all_segments(&self, org: OrgId) -> Result<Vec<SavedSegment>> {
        all_live(self.read().await?.as_mut(), org).await
    }
}
