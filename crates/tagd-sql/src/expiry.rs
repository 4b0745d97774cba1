//! The expiry sweep: assignments whose expiry has passed are marked deleted and their expiry
//! recorded in the log (`tag.expired`, executed by `system`), a short transaction at a time.
//! Reads never wait for it: every read already leaves expired values out (`records::sql::LIVE`).

use crate::driver::{Param, SqlConn};
use crate::pairs::{stored_value, CHUNK};
use crate::{internal, log, Driver, SqlStore};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use tagd_core::expiry::{Expiries, SweepCursor, SweepStep};
use tagd_core::*;

/// Marks up to `limit` due assignments after `after` expired and records each.
async fn expire_due(
    conn: &mut dyn SqlConn,
    sweep_lock: Option<&str>,
    (now, after): (i64, Option<SweepCursor>),
    limit: usize,
) -> Result<SweepStep> {
    // One server sweeps at a time; the others find the lock taken and wait for their next
    // round. (Correctness does not rest on it: the update below re-checks each row.)
    if let Some(sql) = sweep_lock {
        let held = conn.fetch_optional(sql, &[]).await.map_err(internal)?;
        if !held.map(|r| r.flag("held")).transpose()?.unwrap_or(false) {
            return Ok(SweepStep::default());
        }
    }
    // On the partial index of live assignments that expire, in (expiry, id) order from the
    // cursor on. (A row comparison `(expires_at, id) > ($2, $3)` was tried: an index condition
    // in `EXPLAIN`, yet ten times slower over a million due rows on PostgreSQL;
    // docs/BENCHMARKS.md, W9.)
    let (after_at, after_id) = after.unwrap_or((i64::MIN, i64::MIN));
    let due = conn
        .fetch_all(
            "SELECT a.org_id, a.id, a.expires_at, g.attribute FROM tag_assignments a \
             JOIN tag_groups g ON g.org_id = a.org_id AND g.id = a.group_ref \
             WHERE a.expires_at <= $1 AND NOT a.is_deleted \
             AND (a.expires_at > $2 OR (a.expires_at = $2 AND a.id > $3)) \
             ORDER BY a.expires_at, a.id LIMIT $4",
            &[
                now.into(),
                after_at.into(),
                after_id.into(),
                (limit as i64).into(),
            ],
        )
        .await
        .map_err(internal)?;
    let next = match due.last() {
        Some(last) if due.len() == limit => Some((last.int("expires_at")?, last.int("id")?)),
        _ => None,
    };
    let mut by_org: BTreeMap<i64, Vec<(i64, Attribute)>> = BTreeMap::new();
    for row in &due {
        let attribute = Attribute::parse(&row.text("attribute")?)?;
        by_org
            .entry(row.int("org_id")?)
            .or_default()
            .push((row.int("id")?, attribute));
    }
    let mut recorded = 0;
    for (org, mut ids) in by_org {
        ids.sort_unstable_by_key(|(id, _)| *id);
        for chunk in ids.chunks(CHUNK) {
            recorded += expire_rows(conn, OrgId(org), now, chunk).await?;
        }
    }
    Ok(SweepStep { recorded, next })
}

/// Marks the rows of `chunk` that are still live and due, and records their expiry.
async fn expire_rows(
    conn: &mut dyn SqlConn,
    org: OrgId,
    now: i64,
    chunk: &[(i64, Attribute)],
) -> Result<usize> {
    let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "UPDATE tag_assignments SET is_deleted = TRUE, version = version + 1, \
         mtime = expires_at, executor_kind = 'operator', executor_ref = 0, \
         executor_name = 'system', source = 'system' \
         WHERE org_id = $1 AND id IN ({}) AND NOT is_deleted AND expires_at <= $2 \
         RETURNING id, entity_id, user_ref, group_ref, version, ctime, expires_at, \
         define_value, number_value, string_value",
        list.join(", ")
    );
    let mut params: Vec<Param<'_>> = vec![org.0.into(), now.into()];
    params.extend(chunk.iter().map(|(id, _)| Param::from(*id)));
    let attributes: HashMap<i64, Attribute> = chunk.iter().copied().collect();
    let mut rows = conn.fetch_all(&sql, &params).await.map_err(internal)?;
    // In id order, whatever order RETURNING chose, so the log reads the same on both backends.
    rows.sort_by_key(|r| r.int("id").unwrap_or(0));
    for row in &rows {
        let id = row.int("id")?;
        let attribute = attributes
            .get(&id)
            .copied()
            .ok_or_else(|| Error::internal("an expired row that was not due"))?;
        let expired = log::Expired {
            assignment_id: id,
            entity_id: ExternalId::from_trusted(row.text("entity_id")?),
            user_ref: row.int("user_ref")?,
            group_ref: row.int("group_ref")?,
            value: stored_value(row.as_ref(), attribute)?,
            ctime: row.int("ctime")?,
            expires_at: row.int("expires_at")?,
            version: row.int("version")?,
        };
        log::append_expired(conn, org, expired)?;
    }
    Ok(rows.len())
}

/// Whether any live assignment is due: asked on a read connection first, so that a sweep
/// with nothing to do (almost every second) opens no write transaction.
async fn any_due(conn: &mut dyn SqlConn, now: i64) -> Result<bool> {
    let row = conn
        .fetch_optional(
            "SELECT 1 AS due FROM tag_assignments \
             WHERE expires_at <= $1 AND NOT is_deleted LIMIT 1",
            &[now.into()],
        )
        .await
        .map_err(internal)?;
    Ok(row.is_some())
}

#[async_trait]
impl<D: Driver> Expiries for SqlStore<D> {
    async fn expire_due(
        &self,
        now: i64,
        after: Option<SweepCursor>,
        limit: usize,
    ) -> Result<SweepStep> {
        if after.is_none() && !any_due(self.read().await?.as_mut(), now).await? {
            return Ok(SweepStep::default());
        }
        let sweep_lock = self.driver.sweep_lock();
        in_write!(self, |tx| {
            expire_due(tx.as_mut(), sweep_lock, (now, after), limit).await?
        })
    }
}
