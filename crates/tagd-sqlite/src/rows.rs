//! A SQLite connection seen through the shared store's driver traits, run inline.
//!
//! Statements run on the calling task's thread, with no hand-off: an indexed lookup takes
//! tens of microseconds, less than the two thread switches a connection on its own worker
//! thread costs per statement (sqlx's design). Measured on two cores: a read on a worker
//! thread capped a one-query endpoint at 33,000 requests/s against 95,000 without a query,
//! and thread switches were the top of the profile of every write. Only the slow calls (the
//! `COMMIT` that fsyncs, checkpoints) leave the async workers; see `group_commit.rs` and
//! `lib.rs`.

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, ToSql};
use std::sync::Arc;
use tagd_core::{Error, Result};
use tagd_sql::records::Columns;
use tagd_sql::{DbError, Param, Row};

/// Prepared statements kept per connection (the store has fewer distinct statements).
const STATEMENT_CACHE: usize = 512;

/// One connection, its statements cached.
pub(crate) struct Conn(pub Connection);

impl Conn {
    pub(crate) fn new(connection: Connection) -> Self {
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Conn(connection)
    }

    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.0.execute_batch(sql).map_err(classify)
    }

    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        first_only: bool,
    ) -> Result<Vec<Row>, DbError> {
        let (sql, order) = positional(sql);
        let binds = ordered(params, &order)?;
        let mut statement = self.0.prepare_cached(&sql).map_err(classify)?;
        let names: Arc<[String]> = statement
            .column_names()
            .into_iter()
            .map(String::from)
            .collect();
        let mut rows = statement
            .query(rusqlite::params_from_iter(binds))
            .map_err(classify)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(classify)? {
            let values = (0..names.len())
                .map(|i| row.get::<_, Value>(i))
                .collect::<rusqlite::Result<Vec<Value>>>()
                .map_err(classify)?;
            out.push(Box::new(Owned {
                names: names.clone(),
                values,
            }) as Row);
            if first_only {
                break;
            }
        }
        Ok(out)
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError> {
        let (sql, order) = positional(sql);
        let binds = ordered(params, &order)?;
        let mut statement = self.0.prepare_cached(&sql).map_err(classify)?;
        let changed = statement
            .execute(rusqlite::params_from_iter(binds))
            .map_err(classify)?;
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }
}

/// Whatever holds a connection for a while (the connection itself, a lent reader, a write's
/// savepoint) runs statements on it, through [`sql_conn_via_lent!`].
pub(crate) trait Lends: Send {
    fn lent(&mut self) -> Result<&mut Conn, DbError>;
}

impl Lends for Conn {
    fn lent(&mut self) -> Result<&mut Conn, DbError> {
        Ok(self)
    }
}

/// The store's [`SqlConn`] for a [`Lends`] type, written once (a blanket impl of a foreign
/// trait is not allowed).
macro_rules! sql_conn_via_lent {
    ($holder:ty) => {
        #[async_trait::async_trait]
        impl tagd_sql::SqlConn for $holder {
            async fn fetch_optional(
                &mut self,
                sql: &str,
                params: &[tagd_sql::Param<'_>],
            ) -> Result<Option<tagd_sql::Row>, tagd_sql::DbError> {
                use $crate::rows::Lends;
                Ok(self.lent()?.query(sql, params, true)?.into_iter().next())
            }

            async fn fetch_all(
                &mut self,
                sql: &str,
                params: &[tagd_sql::Param<'_>],
            ) -> Result<Vec<tagd_sql::Row>, tagd_sql::DbError> {
                use $crate::rows::Lends;
                self.lent()?.query(sql, params, false)
            }

            async fn execute(
                &mut self,
                sql: &str,
                params: &[tagd_sql::Param<'_>],
            ) -> Result<u64, tagd_sql::DbError> {
                use $crate::rows::Lends;
                self.lent()?.execute(sql, params)
            }
        }
    };
}
pub(crate) use sql_conn_via_lent;

sql_conn_via_lent!(Conn);

/// A row copied out of its statement, read by column name.
struct Owned {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl Owned {
    fn value(&self, column: &str) -> Result<&Value> {
        self.names
            .iter()
            .position(|n| n == column)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| Error::internal(format!("no column {column}")))
    }

    fn mistyped(column: &str, value: &Value) -> Error {
        Error::internal(format!("column {column} holds {:?}", value.data_type()))
    }
}

impl Columns for Owned {
    fn int(&self, column: &str) -> Result<i64> {
        self.opt_int(column)?
            .ok_or_else(|| Error::internal(format!("column {column} is NULL")))
    }
    fn text(&self, column: &str) -> Result<String> {
        self.opt_text(column)?
            .ok_or_else(|| Error::internal(format!("column {column} is NULL")))
    }
    fn flag(&self, column: &str) -> Result<bool> {
        self.opt_flag(column)?
            .ok_or_else(|| Error::internal(format!("column {column} is NULL")))
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        match self.value(column)? {
            Value::Null => Ok(None),
            Value::Integer(i) => Ok(Some(*i)),
            other => Err(Self::mistyped(column, other)),
        }
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        match self.value(column)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.clone())),
            other => Err(Self::mistyped(column, other)),
        }
    }
    fn opt_float(&self, column: &str) -> Result<Option<f64>> {
        match self.value(column)? {
            Value::Null => Ok(None),
            Value::Real(f) => Ok(Some(*f)),
            // SQLite stores a REAL with an integral value as an integer when it can.
            Value::Integer(i) => Ok(Some(*i as f64)),
            other => Err(Self::mistyped(column, other)),
        }
    }
    fn opt_flag(&self, column: &str) -> Result<Option<bool>> {
        Ok(self.opt_int(column)?.map(|i| i != 0))
    }
}

/// A parameter bound without copying its text.
struct Bind<'a>(Param<'a>);

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Param::Int(v) => ToSqlOutput::Owned(Value::Integer(v)),
            Param::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Param::Bool(v) => ToSqlOutput::Owned(Value::Integer(i64::from(v))),
            Param::OptInt(v) => ToSqlOutput::Owned(v.map_or(Value::Null, Value::Integer)),
            Param::OptText(v) => v.map_or(ToSqlOutput::Owned(Value::Null), |t| {
                ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes()))
            }),
            Param::OptFloat(v) => ToSqlOutput::Owned(v.map_or(Value::Null, Value::Real)),
            Param::OptBool(v) => {
                ToSqlOutput::Owned(v.map_or(Value::Null, |b| Value::Integer(i64::from(b))))
            }
        })
    }
}

fn ordered<'a>(params: &[Param<'a>], order: &[usize]) -> Result<Vec<Bind<'a>>, DbError> {
    order
        .iter()
        .map(|&i| {
            params.get(i).copied().map(Bind).ok_or_else(|| {
                DbError::Other(format!(
                    "statement names parameter ${} of {}",
                    i + 1,
                    params.len()
                ))
            })
        })
        .collect()
}

pub(crate) fn classify(e: rusqlite::Error) -> DbError {
    use rusqlite::ffi;
    match &e {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => DbError::Unique,
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => DbError::ForeignKey,
            // SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
            code if matches!(code & 0xff, ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED) => {
                DbError::Busy(e.to_string())
            }
            // A full disk: the write is rolled back, reads go on, and writes succeed again
            // once there is space (503, not 500).
            code if code & 0xff == ffi::SQLITE_FULL => DbError::Busy(e.to_string()),
            _ => DbError::Other(e.to_string()),
        },
        _ => DbError::Other(e.to_string()),
    }
}

/// A statement with its `$n` placeholders made anonymous `?`s, and the parameter each `?`
/// takes, in order (`$1` used twice is bound twice).
///
/// Why: SQLite numbers named parameters by first appearance, not by their digits, and finds
/// a named parameter by a linear search of the statement's names, so binding n `$k`
/// parameters costs O(n^2); with 800 parameters that was a fifth of the CPU of a changeLabels
/// of 100 labels. Anonymous `?`s are bound by position.
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
