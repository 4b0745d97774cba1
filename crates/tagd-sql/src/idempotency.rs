//! Idempotency keys: claim, record, release, purge (see `tagd_core::idempotency`).

use crate::driver::Driver;
use crate::driver::{SqlConn, SqlTx};
use crate::internal;
use crate::SqlStore;
use async_trait::async_trait;
use tagd_core::idempotency::{Claim, ClaimOutcome, Reply, RETENTION_SECS};
use tagd_core::timefmt::now_unix;
use tagd_core::IdempotencyKeys;
use tagd_core::{Error, Result};

pub(crate) async fn claim(conn: &mut dyn SqlConn, claim: &Claim) -> Result<ClaimOutcome> {
    let now = now_unix();
    let key = [claim.org.0.into(), claim.key.as_str().into()];
    // A key past its retention is forgotten first, so it counts as new.
    conn.execute(
        "DELETE FROM idempotency_keys WHERE org_id = $1 AND key = $2 AND created_at < $3",
        &[key[0], key[1], (now - RETENTION_SECS).into()],
    )
    .await
    .map_err(internal)?;
    let inserted = conn
        .execute(
            "INSERT INTO idempotency_keys (org_id, key, fingerprint, locked_until, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id, key) DO NOTHING",
            &[
                key[0],
                key[1],
                claim.fingerprint.as_str().into(),
                (now + claim.lease_secs).into(),
                now.into(),
            ],
        )
        .await
        .map_err(internal)?;
    if inserted == 1 {
        return Ok(ClaimOutcome::Fresh);
    }
    let row = conn
        .fetch_optional(
            "SELECT fingerprint, status, content_type, body, locked_until FROM idempotency_keys \
             WHERE org_id = $1 AND key = $2",
            &key,
        )
        .await
        .map_err(internal)?
        .ok_or(Error::IdempotencyInFlight)?; // deleted between the two statements
    if row.text("fingerprint")? != claim.fingerprint {
        return Ok(ClaimOutcome::Mismatch);
    }
    if let Some(status) = row.opt_int("status")? {
        return Ok(ClaimOutcome::Replay(Reply {
            code: u16::try_from(status).map_err(Error::internal)?,
            format: row.opt_text("content_type")?.unwrap_or_default(),
            body: row.opt_text("body")?.unwrap_or_default(),
        }));
    }
    let locked_until = row.int("locked_until")?;
    if locked_until > now {
        return Ok(ClaimOutcome::InFlight {
            retry_after_secs: locked_until - now,
        });
    }
    // Abandoned (its process died before answering): no effect was committed, take it over.
    let taken = conn
        .execute(
            "UPDATE idempotency_keys SET locked_until = $3 \
             WHERE org_id = $1 AND key = $2 AND status IS NULL AND locked_until <= $4",
            &[key[0], key[1], (now + claim.lease_secs).into(), now.into()],
        )
        .await
        .map_err(internal)?;
    Ok(if taken == 1 {
        ClaimOutcome::Fresh
    } else {
        ClaimOutcome::InFlight {
            retry_after_secs: 1,
        }
    })
}

/// Writes `response` into the claimed row, if it has none yet; the number of rows changed.
async fn record(conn: &mut dyn SqlConn, claim: &Claim, response: &Reply) -> Result<u64> {
    conn.execute(
        "UPDATE idempotency_keys SET status = $3, content_type = $4, body = $5 \
         WHERE org_id = $1 AND key = $2 AND fingerprint = $6 AND status IS NULL",
        &[
            claim.org.0.into(),
            claim.key.as_str().into(),
            i64::from(response.code).into(),
            response.format.as_str().into(),
            response.body.as_str().into(),
            claim.fingerprint.as_str().into(),
        ],
    )
    .await
    .map_err(internal)
}

/// Just before a write commits: records the request's reply in the same transaction. A claim
/// lost meanwhile refuses the write, which then rolls back.
pub(crate) async fn record_with_effect(
    tx: &mut dyn SqlTx,
    claim: &Claim,
    reply: &Reply,
) -> Result<()> {
    if record(tx, claim, reply).await? != 1 {
        return Err(Error::IdempotencyInFlight);
    }
    Ok(())
}

pub(crate) async fn save(conn: &mut dyn SqlConn, claim: &Claim, response: &Reply) -> Result<()> {
    record(conn, claim, response).await.map(|_| ())
}

pub(crate) async fn release(conn: &mut dyn SqlConn, claim: &Claim) -> Result<()> {
    conn.execute(
        "DELETE FROM idempotency_keys \
         WHERE org_id = $1 AND key = $2 AND fingerprint = $3 AND status IS NULL",
        &[
            claim.org.0.into(),
            claim.key.as_str().into(),
            claim.fingerprint.as_str().into(),
        ],
    )
    .await
    .map_err(internal)?;
    Ok(())
}

pub(crate) async fn purge(conn: &mut dyn SqlConn, older_than_secs: i64) -> Result<u64> {
    conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < $1",
        &[(now_unix() - older_than_secs).into()],
    )
    .await
    .map_err(internal)
}

#[async_trait]
impl<D: Driver> IdempotencyKeys for SqlStore<D> {
    async fn claim_idempotency_key(&self, claim: &Claim) -> Result<ClaimOutcome> {
        in_write!(self, |tx| crate::idempotency::claim(tx.as_mut(), claim)
            .await?)
    }

    async fn save_idempotent_response(&self, claim: &Claim, response: &Reply) -> Result<()> {
        in_write!(self, |tx| save(tx.as_mut(), claim, response).await?)
    }

    async fn release_idempotency_key(&self, claim: &Claim) -> Result<()> {
        in_write!(self, |tx| release(tx.as_mut(), claim).await?)
    }

    async fn purge_idempotency_keys(&self, older_than_secs: i64) -> Result<u64> {
        in_write!(self, |tx| purge(tx.as_mut(), older_than_secs).await?)
    }
}
