//! How change-log versions are made on a PostgreSQL database, chosen once per database and
//! kept in `settings`, so every server over it makes them the same way.
//!
//! - `transaction-id` (the default): the writing transaction's id, shifted, plus the entry's
//!   place in it. No lock between writers of one organization; correct where transaction ids
//!   are one sequence (one PostgreSQL, with or without replicas).
//! - `counter`: a row per organization (`org_versions`), bumped by each write and held until
//!   it commits, as on SQLite. Writers of one organization queue on that row; correct on
//!   Citus, whose nodes number their transactions each on their own.

use sqlx::{PgPool, Row};
use tagd_core::{Error, Result};
use tagd_sql::VersionScheme;

/// The `settings` key that holds the choice.
const SETTING: &str = "log_versions";

/// The scheme's name in `settings` and on the command line.
pub fn scheme_name(scheme: VersionScheme) -> &'static str {
    match scheme {
        VersionScheme::Counter => "counter",
        VersionScheme::TransactionId => "transaction-id",
    }
}

/// The scheme the database at `pool` uses.
pub(crate) async fn load(pool: &PgPool) -> Result<VersionScheme> {
    let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
        .bind(SETTING)
        .fetch_optional(pool)
        .await
        .map_err(Error::internal)?;
    let name: Option<String> = row.map(|r| r.get("value"));
    match name.as_deref() {
        None | Some("transaction-id") => Ok(VersionScheme::TransactionId),
        Some("counter") => Ok(VersionScheme::Counter),
        Some(other) => Err(Error::internal(format!(
            "settings.{SETTING} is {other:?}: neither counter nor transaction-id"
        ))),
    }
}

/// Makes the database at `pool` use `scheme` from now on, in one transaction that holds off
/// every writer of the change log. Each organization's versions keep increasing across the
/// switch: a counter starts at the organization's newest version, and transaction-id
/// versions are only taken back when the current one is above every version given.
/// The servers over the database read the choice when they start: stop them first.
pub(crate) async fn store(pool: &PgPool, scheme: VersionScheme) -> Result<()> {
    let mut tx = pool.begin().await.map_err(Error::internal)?;
    sqlx::query("LOCK TABLE change_log IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .map_err(Error::internal)?;
    match scheme {
        VersionScheme::Counter => {
            sqlx::query(
                "INSERT INTO org_versions (org_id, version) \
                 SELECT org_id, MAX(version) FROM change_log GROUP BY org_id \
                 ON CONFLICT (org_id) DO UPDATE \
                 SET version = GREATEST(org_versions.version, EXCLUDED.version)",
            )
            .execute(&mut *tx)
            .await
            .map_err(Error::internal)?;
        }
        VersionScheme::TransactionId => {
            let row = sqlx::query(
                "SELECT (pg_current_xact_id()::text::bigint << 20) \
                 > COALESCE((SELECT MAX(version) FROM change_log), 0) AS above",
            )
            .fetch_one(&mut *tx)
            .await
            .map_err(Error::internal)?;
            if !row.get::<bool, _>("above") {
                return Err(Error::invalid(
                    "log_versions",
                    "the counter has given versions above the transaction ids: stay on counter",
                ));
            }
        }
    }
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(SETTING)
    .bind(scheme_name(scheme))
    .execute(&mut *tx)
    .await
    .map_err(Error::internal)?;
    tx.commit().await.map_err(Error::internal)
}
