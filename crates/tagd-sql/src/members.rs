//! The saved-segment memberships last announced, and the announcer's moves recorded: the
//! membership rows, the `segment.entered` / `segment.exited` entries and the announcer's
//! position, in one transaction.

use crate::driver::{Driver, Param, SqlConn};
use crate::pairs::CHUNK;
use crate::{internal, log, SqlStore};
use async_trait::async_trait;
use tagd_core::log::{Change, ChangeKind, Membership, Subject};
use tagd_core::saved_segments::{AnnouncedMembers, MemberChanges, MemberMove};
use tagd_core::timefmt::now_unix;
use tagd_core::webhooks::Lease;
use tagd_core::*;

/// The announcer's position is kept as this sink.
pub const SINK: &str = "segments";

#[async_trait]
impl<D: Driver> AnnouncedMembers for SqlStore<D> {
    async fn announced_memberships(
        &self,
        org: OrgId,
        user_refs: &[i64],
    ) -> Result<Vec<(i64, i64)>> {
        let mut conn = self.read().await?;
        let mut found = Vec::new();
        for chunk in user_refs.chunks(CHUNK) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT segment_ref, user_ref FROM segment_members \
                 WHERE org_id = $1 AND user_ref IN ({})",
                list.join(", ")
            );
            let mut params: Vec<Param<'_>> = vec![org.0.into()];
            params.extend(chunk.iter().map(|r| Param::from(*r)));
            for row in conn.fetch_all(&sql, &params).await.map_err(internal)? {
                found.push((row.int("segment_ref")?, row.int("user_ref")?));
            }
        }
        Ok(found)
    }

    async fn announced_members(&self, org: OrgId, segment_ref: i64) -> Result<Vec<i64>> {
        let rows = self
            .read()
            .await?
            .fetch_all(
                "SELECT user_ref FROM segment_members WHERE org_id = $1 AND segment_ref = $2 \
                 ORDER BY user_ref",
                &[org.0.into(), segment_ref.into()],
            )
            .await
            .map_err(internal)?;
        rows.iter().map(|r| r.int("user_ref")).collect()
    }

    async fn announced_segments(&self, org: OrgId) -> Result<Vec<i64>> {
        let rows = self
            .read()
            .await?
            .fetch_all(
                "SELECT segment_ref FROM announced_segments WHERE org_id = $1",
                &[org.0.into()],
            )
            .await
            .map_err(internal)?;
        rows.iter().map(|r| r.int("segment_ref")).collect()
    }

    async fn record_member_moves(
        &self,
        org: OrgId,
        lease: &Lease<'_>,
        changes: &MemberChanges<'_>,
        position: i64,
    ) -> Result<bool> {
        in_write!(self, |tx| {
            let conn = tx.as_mut();
            let held =
                crate::webhooks::save_sink_position(conn, org, SINK, lease, position).await?;
            if held {
                record(conn, org, changes).await?;
            }
            held
        })
    }
}

async fn record(conn: &mut dyn SqlConn, org: OrgId, changes: &MemberChanges<'_>) -> Result<()> {
    let moves = changes.moves;
    for segment_ref in changes.forget {
        for table in ["segment_members", "announced_segments"] {
            let sql = format!("DELETE FROM {table} WHERE org_id = $1 AND segment_ref = $2");
            conn.execute(&sql, &[org.0.into(), (*segment_ref).into()])
                .await
                .map_err(internal)?;
        }
    }
    for segment_ref in changes.started {
        conn.execute(
            "INSERT INTO announced_segments (org_id, segment_ref) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
            &[org.0.into(), (*segment_ref).into()],
        )
        .await
        .map_err(internal)?;
    }
    let entered: Vec<&MemberMove> = moves.iter().filter(|m| m.entered).collect();
    for chunk in entered.chunks(CHUNK) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("($1, ${}, ${})", 2 * i + 2, 2 * i + 3))
            .collect();
        let sql = format!(
            "INSERT INTO segment_members (org_id, segment_ref, user_ref) VALUES {} \
             ON CONFLICT DO NOTHING",
            rows.join(", ")
        );
        let mut params: Vec<Param<'_>> = vec![org.0.into()];
        for m in chunk {
            params.push(m.segment.id.into());
            params.push(m.user_ref.into());
        }
        conn.execute(&sql, &params).await.map_err(internal)?;
    }
    for m in moves.iter().filter(|m| !m.entered) {
        conn.execute(
            "DELETE FROM segment_members WHERE org_id = $1 AND segment_ref = $2 AND user_ref = $3",
            &[org.0.into(), m.segment.id.into(), m.user_ref.into()],
        )
        .await
        .map_err(internal)?;
    }
    let at = now_unix();
    for m in moves.iter().filter(|m| m.announce) {
        let kind = if m.entered {
            ChangeKind::SegmentEntered
        } else {
            ChangeKind::SegmentExited
        };
        let subject = Subject::Membership(Box::new(Membership {
            segment: m.segment.clone(),
            user_ref: m.user_ref,
            user_id: m.user_id.clone(),
            at,
        }));
        log::append(conn, org, Change { kind, subject })?;
    }
    Ok(())
}
