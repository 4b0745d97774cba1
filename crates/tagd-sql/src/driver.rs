//! What a database driver gives the shared SQL store: connections that run a statement with
//! parameters and hand back rows, transactions that commit, and the few words of SQL that
//! differ between databases. Everything else (the queries, their order, the rules) is written
//! once, in this crate.

use crate::records::Columns;
use async_trait::async_trait;
use tagd_core::PoolStats;

/// One bound parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Param<'a> {
    Int(i64),
    Text(&'a str),
    Bool(bool),
    OptInt(Option<i64>),
    OptText(Option<&'a str>),
    OptFloat(Option<f64>),
    OptBool(Option<bool>),
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}
impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Param::Text(v)
    }
}
impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Param::Text(v)
    }
}
impl From<bool> for Param<'_> {
    fn from(v: bool) -> Self {
        Param::Bool(v)
    }
}
impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Param::OptText(v)
    }
}
impl From<Option<i64>> for Param<'_> {
    fn from(v: Option<i64>) -> Self {
        Param::OptInt(v)
    }
}
impl From<Option<f64>> for Param<'_> {
    fn from(v: Option<f64>) -> Self {
        Param::OptFloat(v)
    }
}
impl From<Option<bool>> for Param<'_> {
    fn from(v: Option<bool>) -> Self {
        Param::OptBool(v)
    }
}

/// A row the driver read, seen through its named columns.
pub type Row = Box<dyn Columns + Send + Sync>;

/// How a statement failed, as far as the store's rules care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// A unique key refused the row.
    Unique,
    /// A foreign key refused the row (its parent does not exist).
    ForeignKey,
    /// The database is busy or unreachable (locked, a lock or pool wait ran out, restarting,
    /// full): the statement or transaction was not applied, and may succeed when retried.
    Busy(String),
    /// The transaction was rolled back to resolve a conflict with a concurrent one (deadlock,
    /// serialization failure): running it again is expected to succeed.
    Conflict(String),
    /// A commit whose outcome is unknown: the connection was lost while it ran.
    OutcomeUnknown(String),
    /// Anything else; the text is for the log only.
    Other(String),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Unique => f.write_str("unique violation"),
            DbError::ForeignKey => f.write_str("foreign key violation"),
            DbError::Busy(text) => write!(f, "database busy: {text}"),
            DbError::Conflict(text) => write!(f, "write conflict: {text}"),
            DbError::OutcomeUnknown(text) => write!(f, "commit outcome unknown: {text}"),
            DbError::Other(text) => f.write_str(text),
        }
    }
}

/// A connection, or an open transaction, that runs statements.
#[async_trait]
pub trait SqlConn: Send {
    async fn fetch_optional(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<Row>, DbError>;
    async fn fetch_all(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, DbError>;
    /// Runs a statement and returns the number of rows it changed.
    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError>;
    /// The changes an open write has made so far, for the change log; `None` outside a
    /// write. Only the store's own write transaction ([`crate::log::WriteTx`]) keeps them.
    fn change_buffer(&mut self) -> Option<&mut crate::log::ChangeBuffer> {
        None
    }
    /// `fetch_all` for a lookup whose best plan depends on its values: planned for them at
    /// every run, never from a cached generic plan. Bulk writes look keys up in tables that
    /// grow faster than their statistics; PostgreSQL's generic plan for such a lookup, chosen
    /// after five runs, read 500 keys in 58 ms instead of under one.
    async fn fetch_all_replanned(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, DbError> {
        self.fetch_all(sql, params).await
    }
    /// Whether [`Self::copy_in`] works here: PostgreSQL's `COPY ... FROM STDIN`.
    fn can_copy(&self) -> bool {
        false
    }
    /// Loads `rows` with `statement` (`COPY table (columns) FROM STDIN`), each row's cells
    /// written as [`copy_line`] writes them; answers the rows loaded. Bulk writes use it where
    /// [`Self::can_copy`] says so: PostgreSQL loads rows by `COPY` several times faster than
    /// from a multi-row `INSERT` of bound parameters (docs/BENCHMARKS.md, W3).
    async fn copy_in(&mut self, statement: &str, rows: &[u8]) -> Result<u64, DbError> {
        let _ = (statement, rows);
        Err(DbError::Other("this database has no COPY".into()))
    }
}

/// Appends one row of `cells` to `out` in the text format of PostgreSQL's `COPY`: cells
/// separated by tabs, `\N` for null, backslash, tab and line breaks escaped.
pub fn copy_line(out: &mut String, cells: &[Param<'_>]) {
    use std::fmt::Write;
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        // Writing to a String cannot fail.
        let _ = match *cell {
            Param::Int(v) | Param::OptInt(Some(v)) => write!(out, "{v}"),
            Param::Bool(v) | Param::OptBool(Some(v)) => {
                write!(out, "{}", if v { 't' } else { 'f' })
            }
            Param::OptFloat(Some(v)) => write!(out, "{v:?}"),
            Param::Text(v) | Param::OptText(Some(v)) => {
                for c in v.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => out.push(c),
                    }
                }
                Ok(())
            }
            Param::OptInt(None)
            | Param::OptText(None)
            | Param::OptFloat(None)
            | Param::OptBool(None) => {
                out.push_str("\\N");
                Ok(())
            }
        };
    }
    out.push('\n');
}

/// An open write transaction: dropped without `commit`, it rolls back.
#[async_trait]
pub trait SqlTx: SqlConn {
    async fn commit(self: Box<Self>) -> Result<(), DbError>;
}

/// The clauses that row-lock what a `SELECT` reads, until the transaction ends. Empty where
/// the database serializes writers on its own (SQLite's single writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locks {
    /// On a tag group an assignment depends on: many assigners together, no editor beside.
    pub share: &'static str,
    /// On a tag group being edited: alone.
    pub update: &'static str,
    /// On an assignment read through its joins (alias `a`): alone, without locking the
    /// user and group rows it joins.
    pub update_assignment: &'static str,
}

/// How a database numbers an organization's change-log entries (docs/DECISIONS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionScheme {
    /// A counter row per organization, bumped by each write: right where writers commit one
    /// at a time, in order (SQLite).
    Counter,
    /// The writing transaction's id, shifted left, plus the entry's place in it: no lock
    /// between writers; readers stop below the oldest transaction still running
    /// (PostgreSQL, one server).
    TransactionId,
}

/// A database the shared store can run on.
#[async_trait]
pub trait Driver: Clone + Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn name(&self) -> &'static str;
    fn locks(&self) -> Locks;
    fn version_scheme(&self) -> VersionScheme;
    /// A connection for reads.
    async fn read(&self) -> Result<Box<dyn SqlConn>, DbError>;
    /// A connection for reads that may run long (a search over many customers): a driver
    /// that runs statements on the calling thread runs these off the async workers.
    async fn read_long(&self) -> Result<Box<dyn SqlConn>, DbError> {
        self.read().await
    }
    /// A new write transaction.
    async fn write(&self) -> Result<Box<dyn SqlTx>, DbError>;
    fn pool_stats(&self) -> Vec<PoolStats>;
    /// Appended to a text column so it compares by bytes, as Rust orders strings (the
    /// index's order): PostgreSQL's default collation follows the locale.
    fn binary_collation(&self) -> &'static str {
        ""
    }
    /// Import batches of disjoint users written at once
    /// ([`tagd_core::bulk::Bulk::import_streams`]).
    fn import_streams(&self) -> usize {
        1
    }
    /// How many transactions of coalesced single writes may run at once (`coalesce.rs`);
    /// 0 runs every write in a transaction of its own.
    fn coalesced_batches(&self) -> usize {
        0
    }
    /// A statement that takes the expiry sweep's lock for the rest of the transaction and
    /// answers `held` (whether it got it), so one server sweeps at a time; `None` where one
    /// writer at a time is all a database allows anyway (SQLite).
    fn sweep_lock(&self) -> Option<&'static str> {
        None
    }
    /// Statements run once an import is done, outside any transaction, to refresh what the
    /// database knows of the tables it grew (none by default).
    fn after_bulk(&self) -> &'static [&'static str] {
        &[]
    }
    /// The same database through connections of its own (at most `max_connections`),
    /// opened by the runtime that first uses them, so that their I/O is driven there; a
    /// driver without a pool (or whose connections are not tied to a runtime) returns itself.
    fn with_own_connections(&self, _pool: &'static str, _max_connections: u32) -> Self {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_lines_escape_what_the_text_format_reserves_and_mark_nulls() {
        let mut out = String::new();
        copy_line(
            &mut out,
            &[
                Param::Int(-7),
                Param::Text("a\tb\nc\\d\re"),
                Param::OptText(None),
                Param::Bool(true),
                Param::OptBool(Some(false)),
                Param::OptFloat(Some(0.1)),
                Param::OptFloat(Some(1e21)),
                Param::OptInt(None),
                Param::Text("\\N"),
            ],
        );
        assert_eq!(
            out,
            "-7\ta\\tb\\nc\\\\d\\re\t\\N\tt\tf\t0.1\t1e21\t\\N\t\\\\N\n"
        );
    }
}
