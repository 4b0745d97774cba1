//! SQLite rows and statements seen through the shared store's driver traits.

use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Sqlite, SqliteConnection};
use std::ops::DerefMut;
use tagd_core::{Error, Result};
use tagd_sql::records::Columns;
use tagd_sql::{DbError, Param, Row, SqlConn};

struct Cols(SqliteRow);

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
    if matches!(e, sqlx::Error::PoolTimedOut) {
        return DbError::Busy(e.to_string());
    }
    match e.as_database_error() {
        Some(db) if db.is_unique_violation() => DbError::Unique,
        Some(db) if db.is_foreign_key_violation() => DbError::ForeignKey,
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
        Some(db)
            if db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| matches!(c & 0xff, 5 | 6)) =>
        {
            DbError::Busy(e.to_string())
        }
        _ => DbError::Other(e.to_string()),
    }
}

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// A statement with its `$n` placeholders made anonymous `?`s, and the parameter each `?`
/// takes, in order (`$1` used twice is bound twice).
///
/// Why: for every parameter it binds, sqlx asks SQLite for the parameter's name, and SQLite
/// finds a named parameter by a linear search of the statement's names, so a statement with
/// n `$k` parameters costs O(n^2) to bind; with 800 parameters that was a fifth of the CPU of
/// a changeLabels of 100 labels. Anonymous `?`s have no names to search.
fn positional(sql: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(sql.len());
    let mut order = Vec::new();
    let mut in_literal = false;
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c == '\'' {
            in_literal = !in_literal;
        }
        let digits_follow = chars.peek().is_some_and(|(_, d)| d.is_ascii_digit());
        if c != '$' || in_literal || !digits_follow {
            out.push(c);
            continue;
        }
        let mut number = 0usize;
        while let Some((_, d)) = chars.peek().copied().filter(|(_, d)| d.is_ascii_digit()) {
            number = number * 10 + (d as usize - '0' as usize);
            chars.next();
        }
        out.push('?');
        order.push(number.saturating_sub(1));
    }
    (out, order)
}

fn bound<'q>(sql: &'q str, params: &[Param<'q>], order: &[usize]) -> Result<Query<'q>, DbError> {
    order.iter().try_fold(sqlx::query(sql), |query, &i| {
        let param = params.get(i).ok_or_else(|| {
            DbError::Other(format!(
                "statement names parameter ${} of {}",
                i + 1,
                params.len()
            ))
        })?;
        Ok(match *param {
            Param::Int(v) => query.bind(v),
            Param::Text(v) => query.bind(v),
            Param::Bool(v) => query.bind(v),
            Param::OptText(v) => query.bind(v),
            Param::OptFloat(v) => query.bind(v),
            Param::OptBool(v) => query.bind(v),
        })
    })
}

/// A pooled connection or an open transaction.
pub(crate) struct Conn<C>(pub C);

#[async_trait::async_trait]
impl<C: DerefMut<Target = SqliteConnection> + Send> SqlConn for Conn<C> {
    async fn fetch_optional(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<Row>, DbError> {
        let (sql, order) = positional(sql);
        let row = bound(&sql, params, &order)?
            .fetch_optional(&mut *self.0)
            .await
            .map_err(classify)?;
        Ok(row.map(|r| Box::new(Cols(r)) as Row))
    }

    async fn fetch_all(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, DbError> {
        let (sql, order) = positional(sql);
        let rows = bound(&sql, params, &order)?
            .fetch_all(&mut *self.0)
            .await
            .map_err(classify)?;
        Ok(rows.into_iter().map(|r| Box::new(Cols(r)) as Row).collect())
    }

    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError> {
        let (sql, order) = positional(sql);
        let done = bound(&sql, params, &order)?
            .execute(&mut *self.0)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::positional;

    #[test]
    fn numbered_placeholders_become_anonymous_ones_bound_in_order_of_use() {
        let (sql, order) = positional("SELECT $2, $10 FROM t WHERE a = $1 AND b = $2");
        assert_eq!(sql, "SELECT ?, ? FROM t WHERE a = ? AND b = ?");
        assert_eq!(order, [1, 9, 0, 1]);
    }

    #[test]
    fn dollars_in_string_literals_and_without_digits_are_left_alone() {
        let (sql, order) = positional("SELECT '$1', $x, $3");
        assert_eq!(sql, "SELECT '$1', $x, ?");
        assert_eq!(order, [2]);
    }
}
