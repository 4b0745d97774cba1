//! Webhook endpoints and sink positions persisted (API.md §12). An endpoint is one row with
//! its delivery position and retry state; attempts are kept per endpoint, the newest
//! [`KEPT_ATTEMPTS`]. Workers hold a lease (owner, until) on what they deliver, and save only
//! while they hold it and the row is still at the version they loaded.

use crate::driver::{Driver, SqlConn};
use crate::records::Columns;
use crate::{internal, log, one, SqlStore};
use async_trait::async_trait;
use tagd_core::timefmt::now_unix;
use tagd_core::webhooks::{
    self, DeliveryAttempt, Lease, Webhook, WebhookFields, WebhookProgress, WebhookUrl, Webhooks,
    KEPT_ATTEMPTS,
};
use tagd_core::*;

const WEBHOOK_COLUMNS: &str = "id, org_id, entity_id, url, event_types, description, secret, \
     previous_secret, previous_secret_until, enabled, disabled_reason, delivered_version, \
     failures, next_attempt_ms, version, replays, ctime, mtime";

fn webhook(row: &dyn Columns) -> Result<Webhook> {
    let types = row.text("event_types")?;
    let previous = match (
        row.opt_text("previous_secret")?,
        row.opt_int("previous_secret_until")?,
    ) {
        (Some(secret), Some(until)) => Some((secret, until)),
        _ => None,
    };
    Ok(Webhook {
        org_id: OrgId(row.int("org_id")?),
        id: row.int("id")?,
        webhook_id: ExternalId::from_trusted(row.text("entity_id")?),
        url: WebhookUrl::from_trusted(row.text("url")?),
        event_types: types
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        description: Description::from_trusted(row.text("description")?),
        secret: row.text("secret")?,
        previous_secret: previous,
        enabled: row.flag("enabled")?,
        disabled_reason: row.opt_text("disabled_reason")?,
        delivered_version: row.int("delivered_version")?,
        failures: row.int("failures")?,
        next_attempt_ms: row.opt_int("next_attempt_ms")?,
        version: row.int("version")?,
        replays: row.int("replays")?,
        ctime: row.int("ctime")?,
        mtime: row.int("mtime")?,
    })
}

fn attempt(row: &dyn Columns) -> Result<DeliveryAttempt> {
    Ok(DeliveryAttempt {
        event_id: row.text("event_id")?,
        event_type: row.text("event_type")?,
        version: row.int("version")?,
        attempt: row.int("attempt")?,
        status: row.opt_int("status")?,
        duration_ms: row.int("duration_ms")?,
        error: row.opt_text("error")?,
        at: row.int("at")?,
    })
}

async fn live(
    conn: &mut dyn SqlConn,
    lock: &str,
    org: OrgId,
    id: &ExternalId,
) -> Result<Option<Webhook>> {
    let sql = format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = $1 AND entity_id = $2 \
         AND NOT is_deleted {lock}"
    );
    let row = conn
        .fetch_optional(&sql, &[org.0.into(), id.as_str().into()])
        .await
        .map_err(internal)?;
    row.map(|r| webhook(r.as_ref())).transpose()
}

/// Runs an `UPDATE … RETURNING` of one live endpoint (`WebhookNotFound` when none).
async fn updated(
    conn: &mut dyn SqlConn,
    set: &str,
    params: &[crate::Param<'_>],
) -> Result<Webhook> {
    let sql = format!(
        "UPDATE webhooks SET {set}, version = version + 1 \
         WHERE org_id = $1 AND entity_id = $2 AND NOT is_deleted RETURNING {WEBHOOK_COLUMNS}"
    );
    let row = conn.fetch_optional(&sql, params).await.map_err(internal)?;
    row.map(|r| webhook(r.as_ref()))
        .transpose()?
        .ok_or(Error::WebhookNotFound)
}

#[async_trait]
impl<D: Driver> Webhooks for SqlStore<D> {
    async fn create_webhook(
        &self,
        org: OrgId,
        url: &WebhookUrl,
        event_types: &[String],
        description: &Description,
        secret: &str,
        record: &Recorder<Webhook>,
    ) -> Result<Webhook> {
        let scheme = self.driver.version_scheme();
        in_write!(self, record, |tx| {
            let conn = tx.as_mut();
            let live = one(conn
                .fetch_optional(
                    "SELECT COUNT(*) AS n FROM webhooks WHERE org_id = $1 AND NOT is_deleted",
                    &[org.0.into()],
                )
                .await
                .map_err(internal)?)?
            .int("n")?;
            webhooks::check_room(live)?;
            // Events from now on: everything at or below the horizon is committed already.
            let start = log::horizon(conn, scheme, org).await?;
            let now = now_unix();
            let types = event_types.join(",");
            let entity_id = ExternalId::generate();
            let sql = format!(
                "INSERT INTO webhooks (org_id, entity_id, url, event_types, description, secret, \
                 delivered_version, ctime, mtime) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 RETURNING {WEBHOOK_COLUMNS}"
            );
            let params = [
                org.0.into(),
                entity_id.as_str().into(),
                url.as_str().into(),
                types.as_str().into(),
                description.as_str().into(),
                secret.into(),
                start.into(),
                now.into(),
            ];
            let row = conn.fetch_optional(&sql, &params).await.map_err(internal)?;
            webhook(one(row)?.as_ref())?
        })
    }

    async fn update_webhook(
        &self,
        org: OrgId,
        id: &ExternalId,
        fields: &WebhookFields,
    ) -> Result<Webhook> {
        let lock = self.driver.locks().update;
        in_write!(self, |tx| {
            let conn = tx.as_mut();
            let current = live(conn, lock, org, id)
                .await?
                .ok_or(Error::WebhookNotFound)?;
            let url = fields.url.as_ref().unwrap_or(&current.url);
            let types = fields
                .event_types
                .as_ref()
                .unwrap_or(&current.event_types)
                .join(",");
            let description = fields.description.as_ref().unwrap_or(&current.description);
            let enabled = fields.enabled.unwrap_or(current.enabled);
            // Resuming starts the next event afresh; pausing keeps the retry state.
            let resumed = enabled && !current.enabled;
            let reason = if enabled {
                None
            } else if fields.enabled == Some(false) {
                Some("paused by a client")
            } else {
                current.disabled_reason.as_deref()
            };
            let params = [
                org.0.into(),
                id.as_str().into(),
                url.as_str().into(),
                types.as_str().into(),
                description.as_str().into(),
                enabled.into(),
                reason.into(),
                resumed.into(),
                now_unix().into(),
            ];
            updated(
                conn,
                "url = $3, event_types = $4, description = $5, enabled = $6, \
                 disabled_reason = $7, \
                 failures = CASE WHEN $8 THEN 0 ELSE failures END, \
                 next_attempt_ms = CASE WHEN $8 THEN NULL ELSE next_attempt_ms END, mtime = $9",
                &params,
            )
            .await?
        })
    }

    async fn delete_webhook(&self, org: OrgId, id: &ExternalId) -> Result<()> {
        in_write!(self, |tx| {
            let conn = tx.as_mut();
            let params = [org.0.into(), id.as_str().into(), now_unix().into()];
            let hook = updated(
                conn,
                "is_deleted = TRUE, enabled = FALSE, mtime = $3",
                &params,
            )
            .await?;
            conn.execute(
                "DELETE FROM webhook_attempts WHERE org_id = $1 AND webhook_ref = $2",
                &[org.0.into(), hook.id.into()],
            )
            .await
            .map_err(internal)?;
        })
    }

    async fn rotate_webhook_secret(
        &self,
        org: OrgId,
        id: &ExternalId,
        secret: &str,
        previous_until: i64,
        record: &Recorder<Webhook>,
    ) -> Result<Webhook> {
        in_write!(self, record, |tx| {
            let params = [
                org.0.into(),
                id.as_str().into(),
                secret.into(),
                previous_until.into(),
                now_unix().into(),
            ];
            updated(
                tx.as_mut(),
                "previous_secret = secret, previous_secret_until = $4, secret = $3, mtime = $5",
                &params,
            )
            .await?
        })
    }

    async fn replay_webhook(
        &self,
        org: OrgId,
        id: &ExternalId,
        after_version: i64,
    ) -> Result<Webhook> {
        in_write!(self, |tx| {
            let params = [
                org.0.into(),
                id.as_str().into(),
                after_version.into(),
                now_unix().into(),
            ];
            updated(
                tx.as_mut(),
                "delivered_version = $3, failures = 0, next_attempt_ms = NULL, enabled = TRUE, \
                 disabled_reason = NULL, replays = replays + 1, mtime = $4",
                &params,
            )
            .await?
        })
    }

    async fn find_webhook(&self, org: OrgId, id: &ExternalId) -> Result<Option<Webhook>> {
        live(self.read().await?.as_mut(), "", org, id).await
    }

    async fn list_webhooks(&self, org: OrgId) -> Result<Vec<Webhook>> {
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE org_id = $1 AND NOT is_deleted \
             ORDER BY id"
        );
        let rows = self
            .read()
            .await?
            .fetch_all(&sql, &[org.0.into()])
            .await
            .map_err(internal)?;
        rows.iter().map(|r| webhook(r.as_ref())).collect()
    }

    async fn webhook_attempts(
        &self,
        org: OrgId,
        id: &ExternalId,
        limit: usize,
    ) -> Result<Vec<DeliveryAttempt>> {
        let mut conn = self.read().await?;
        let hook = live(conn.as_mut(), "", org, id)
            .await?
            .ok_or(Error::WebhookNotFound)?;
        let rows = conn
            .fetch_all(
                "SELECT event_id, event_type, version, attempt, status, duration_ms, error, at \
                 FROM webhook_attempts WHERE org_id = $1 AND webhook_ref = $2 \
                 ORDER BY id DESC LIMIT $3",
                &[org.0.into(), hook.id.into(), (limit as i64).into()],
            )
            .await
            .map_err(internal)?;
        rows.iter().map(|r| attempt(r.as_ref())).collect()
    }

    async fn deliverable_webhooks(&self) -> Result<Vec<(OrgId, i64, i64)>> {
        let rows = self
            .read()
            .await?
            .fetch_all(
                "SELECT org_id, id, version FROM webhooks WHERE enabled AND NOT is_deleted \
                 ORDER BY org_id, id",
                &[],
            )
            .await
            .map_err(internal)?;
        rows.iter()
            .map(|r| Ok((OrgId(r.int("org_id")?), r.int("id")?, r.int("version")?)))
            .collect()
    }

    async fn claim_webhook(
        &self,
        org: OrgId,
        id: i64,
        lease: &Lease<'_>,
    ) -> Result<Option<Webhook>> {
        in_write!(self, |tx| {
            let sql = format!(
                "UPDATE webhooks SET lease_owner = $3, lease_until = $4 \
                 WHERE org_id = $1 AND id = $2 AND enabled AND NOT is_deleted \
                 AND (lease_owner IS NULL OR lease_owner = $3 OR lease_until < $5) \
                 RETURNING {WEBHOOK_COLUMNS}"
            );
            let params = [
                org.0.into(),
                id.into(),
                lease.owner.into(),
                lease.until.into(),
                lease.now.into(),
            ];
            let row = tx
                .as_mut()
                .fetch_optional(&sql, &params)
                .await
                .map_err(internal)?;
            row.map(|r| webhook(r.as_ref())).transpose()?
        })
    }

    async fn save_webhook_progress(
        &self,
        org: OrgId,
        id: i64,
        (lease, replays): (&Lease<'_>, i64),
        progress: &WebhookProgress,
        attempts: &[DeliveryAttempt],
    ) -> Result<bool> {
        in_write!(self, |tx| {
            let conn = tx.as_mut();
            let disabled = progress.disabled_reason.as_deref();
            let saved = conn
                .execute(
                    "UPDATE webhooks SET delivered_version = $5, failures = $6, \
                     next_attempt_ms = $7, enabled = $8, \
                     disabled_reason = COALESCE($9, disabled_reason), lease_until = $10 \
                     WHERE org_id = $1 AND id = $2 AND lease_owner = $3 AND replays = $4 \
                     AND enabled AND NOT is_deleted",
                    &[
                        org.0.into(),
                        id.into(),
                        lease.owner.into(),
                        replays.into(),
                        progress.delivered_version.into(),
                        progress.failures.into(),
                        progress.next_attempt_ms.into(),
                        disabled.is_none().into(),
                        disabled.into(),
                        lease.until.into(),
                    ],
                )
                .await
                .map_err(internal)?
                == 1;
            if saved && !attempts.is_empty() {
                record_attempts(conn, org, id, attempts).await?;
            }
            saved
        })
    }

    async fn claim_sink(&self, org: OrgId, sink: &str, lease: &Lease<'_>) -> Result<Option<i64>> {
        in_write!(self, |tx| {
            let conn = tx.as_mut();
            // A sink starts at the beginning of the organization's log.
            conn.execute(
                "INSERT INTO event_sinks (org_id, sink, delivered_version) VALUES ($1, $2, 0) \
                 ON CONFLICT (org_id, sink) DO NOTHING",
                &[org.0.into(), sink.into()],
            )
            .await
            .map_err(internal)?;
            let row = conn
                .fetch_optional(
                    "UPDATE event_sinks SET lease_owner = $3, lease_until = $4 \
                     WHERE org_id = $1 AND sink = $2 \
                     AND (lease_owner IS NULL OR lease_owner = $3 OR lease_until < $5) \
                     RETURNING delivered_version",
                    &[
                        org.0.into(),
                        sink.into(),
                        lease.owner.into(),
                        lease.until.into(),
                        lease.now.into(),
                    ],
                )
                .await
                .map_err(internal)?;
            row.map(|r| r.int("delivered_version")).transpose()?
        })
    }

    async fn save_sink(
        &self,
        org: OrgId,
        sink: &str,
        lease: &Lease<'_>,
        delivered: i64,
    ) -> Result<bool> {
        in_write!(self, |tx| {
            save_sink_position(tx.as_mut(), org, sink, lease, delivered).await?
        })
    }
}

/// Moves the organization's position in `sink` to `delivered` (and renews the lease), if
/// `lease` still holds it.
pub(crate) async fn save_sink_position(
    conn: &mut dyn SqlConn,
    org: OrgId,
    sink: &str,
    lease: &Lease<'_>,
    delivered: i64,
) -> Result<bool> {
    let saved = conn
        .execute(
            "UPDATE event_sinks SET delivered_version = $4, lease_until = $5 \
             WHERE org_id = $1 AND sink = $2 AND lease_owner = $3",
            &[
                org.0.into(),
                sink.into(),
                lease.owner.into(),
                delivered.into(),
                lease.until.into(),
            ],
        )
        .await
        .map_err(internal)?;
    Ok(saved == 1)
}

/// Records `attempts` and forgets all but the newest [`KEPT_ATTEMPTS`] of the endpoint.
async fn record_attempts(
    conn: &mut dyn SqlConn,
    org: OrgId,
    id: i64,
    attempts: &[DeliveryAttempt],
) -> Result<()> {
    // The newest only (the rest would be forgotten at once), one statement per chunk.
    let newest = &attempts[attempts.len().saturating_sub(KEPT_ATTEMPTS as usize)..];
    for chunk in newest.chunks(50) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p: Vec<String> = (1..=10).map(|c| format!("${}", i * 10 + c)).collect();
                format!("({})", p.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO webhook_attempts (org_id, webhook_ref, event_id, event_type, version, \
             attempt, status, duration_ms, error, at) VALUES {}",
            rows.join(", ")
        );
        let mut params: Vec<crate::Param<'_>> = Vec::with_capacity(chunk.len() * 10);
        for a in chunk {
            let row: [crate::Param<'_>; 10] = [
                org.0.into(),
                id.into(),
                a.event_id.as_str().into(),
                a.event_type.as_str().into(),
                a.version.into(),
                a.attempt.into(),
                a.status.into(),
                a.duration_ms.into(),
                a.error.as_deref().into(),
                a.at.into(),
            ];
            params.extend(row);
        }
        conn.execute(&sql, &params).await.map_err(internal)?;
    }
    conn.execute(
        "DELETE FROM webhook_attempts WHERE org_id = $1 AND webhook_ref = $2 AND id < \
         (SELECT MIN(id) FROM (SELECT id FROM webhook_attempts \
          WHERE org_id = $1 AND webhook_ref = $2 ORDER BY id DESC LIMIT $3) AS kept)",
        &[org.0.into(), id.into(), KEPT_ATTEMPTS.into()],
    )
    .await
    .map_err(internal)?;
    Ok(())
}
