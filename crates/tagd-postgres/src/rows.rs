//! PostgreSQL rows and statements seen through the shared store's driver traits.

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{PgConnection, Postgres};
use std::ops::DerefMut;
use tagd_core::{Error, Result};
use tagd_sql::records::Columns;
use tagd_sql::{DbError, Param, Row, SqlConn, SqlTx};

struct Cols(PgRow);

impl Columns for Cols {
    fn int(&self, column: &str) -> Result<i64> {
        sqlx::Row::try_get(&self.0, column).map_err(Error::internal)
    }
    fn text(&self, column: &str) -> Result<String> {
        sqlx::Row::try_get(&self.0, column).map_err(Error::internal)
    }
    fn flag(&self, column: &str) -> Result<bool> {
        sqlx::Row::try_get(&self.0, column).map_err(Error::internal)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        sqlx::Row::try_get(&self.0, column).map_err(Error::internal)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        sqlx::Row::try_get(&self.0, column).map_err(Error::internal)
    }
    fn opt_float(&self, column: &str) -> Result<Option<f64>> {
        sqlx::Row::try_get(&self.0, column).map_err(Error::internal)
    }
    fn opt_flag(&self, column: &str) -> Result<Option<bool>> {
        sqlx::Row::try_get(&self.0, column).map_err(Error::internal)
    }
}

pub(crate) fn classify(e: sqlx::Error) -> DbError {
    // No connection, or one lost mid-statement: the database is unreachable, and the same
    // request may succeed once it is back (503, not 500).
    if matches!(
        e,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::WorkerCrashed
    ) {
        return DbError::Busy(e.to_string());
    }
    match e.as_database_error() {
        Some(db) if db.is_unique_violation() => DbError::Unique,
        Some(db) if db.is_foreign_key_violation() => DbError::ForeignKey,
        Some(db) if db.code().as_deref().is_some_and(conflict) => DbError::Conflict(e.to_string()),
        Some(db) if db.code().as_deref().is_some_and(transient) => DbError::Busy(e.to_string()),
        _ => DbError::Other(e.to_string()),
    }
}

/// SQLSTATEs of a transaction rolled back to resolve a conflict with a concurrent one
/// (serialization failure, deadlock): the store runs it again.
fn conflict(code: &str) -> bool {
    matches!(code, "40001" | "40P01")
}

/// SQLSTATEs after which the same request may succeed when retried: the statement was
/// rolled back because of the server's state, not because of the request.
fn transient(code: &str) -> bool {
    conflict(code)
        || matches!(
            code,
            // Lock not available, statement or lock timeout.
            "55P03" | "57014"
        // The server shutting down (administrator, crash), starting up, or out of resources:
        // too many connections, disk full, out of memory.
        | "57P01" | "57P02" | "57P03" | "53000" | "53100" | "53200" | "53300"
        )
        || code.starts_with("08") // connection exceptions
}

type Query<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

fn bound<'q>(sql: &'q str, params: &[Param<'q>]) -> Query<'q> {
    params
        .iter()
        .fold(sqlx::query(sql), |query, param| match *param {
            Param::Int(v) => query.bind(v),
            Param::Text(v) => query.bind(v),
            Param::Bool(v) => query.bind(v),
            Param::OptInt(v) => query.bind(v),
            Param::OptText(v) => query.bind(v),
            Param::OptFloat(v) => query.bind(v),
            Param::OptBool(v) => query.bind(v),
        })
}

/// A pooled connection or an open transaction.
pub(crate) struct Conn<C>(pub C);

#[async_trait::async_trait]
impl<C: DerefMut<Target = PgConnection> + Send> SqlConn for Conn<C> {
    async fn fetch_optional(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<Row>, DbError> {
        let row = bound(sql, params)
            .fetch_optional(&mut *self.0)
            .await
            .map_err(classify)?;
        Ok(row.map(|r| Box::new(Cols(r)) as Row))
    }

    async fn fetch_all(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, DbError> {
        let rows = bound(sql, params)
            .fetch_all(&mut *self.0)
            .await
            .map_err(classify)?;
        Ok(rows.into_iter().map(|r| Box::new(Cols(r)) as Row).collect())
    }

    /// An unnamed statement, so PostgreSQL plans it with these values.
    async fn fetch_all_replanned(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, DbError> {
        let rows = bound(sql, params)
            .persistent(false)
            .fetch_all(&mut *self.0)
            .await
            .map_err(classify)?;
        Ok(rows.into_iter().map(|r| Box::new(Cols(r)) as Row).collect())
    }

    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError> {
        let done = bound(sql, params)
            .execute(&mut *self.0)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected())
    }

    fn can_copy(&self) -> bool {
        true
    }

    async fn copy_in(&mut self, statement: &str, rows: &[u8]) -> Result<u64, DbError> {
        let mut copy = self.0.copy_in_raw(statement).await.map_err(classify)?;
        if let Err(e) = copy.send(rows).await {
            // Ends the COPY so the connection (and its transaction) can go on to roll back.
            let _ = copy.abort("tagd could not send the rows").await;
            return Err(classify(e));
        }
        copy.finish().await.map_err(classify)
    }
}

#[async_trait::async_trait]
impl SqlTx for Conn<sqlx::Transaction<'static, Postgres>> {
    /// A commit refused by the server (a conflict, a full disk) was not applied; one whose
    /// connection broke may have been.
    async fn commit(self: Box<Self>) -> Result<(), DbError> {
        self.0.commit().await.map_err(|e| {
            let lost = matches!(e, sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed)
                || e.as_database_error()
                    .and_then(|db| db.code())
                    .is_some_and(|code| {
                        code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02")
                    });
            match classify(e) {
                DbError::Busy(cause) if lost => DbError::OutcomeUnknown(cause),
                other => other,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_restart_an_outage_or_a_full_disk_is_transient_and_a_bad_statement_is_not() {
        for code in [
            "57P01", "57P03", "53300", "53100", "08006", "40001", "40P01",
        ] {
            assert!(super::transient(code), "{code}");
        }
        for code in ["42601", "23505", "22P02", "XX000"] {
            assert!(!super::transient(code), "{code}");
        }
    }
}
