//! The change log (API.md §9), written and read back. A write collects its changes in the
//! [`ChangeBuffer`] of its transaction as it makes them; just before commit, [`flush`] gives
//! them their versions and inserts them, in the same transaction. Versions come from the
//! driver's [`VersionScheme`] (docs/DECISIONS.md, "The change log").

use crate::driver::{DbError, Param, Row, SqlConn, SqlTx, VersionScheme};
use crate::internal;
use crate::pairs::{CHUNK, COPY_FROM};
use crate::records::{self, sql::ASSIGNMENT_SELECT, sql::GROUP_COLUMNS, sql::LIVE, Columns};
use crate::saved_segments::SEGMENT_COLUMNS;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use tagd_core::log::ENTRIES_PER_TRANSACTION_BITS;
use tagd_core::log::{
    Change, ChangeKind, LogEntry, LogHeads, LogPage, Membership, Subject, TagChange,
};
use tagd_core::saved_segments::SavedSegment;
use tagd_core::*;

/// The changes of one open write, in the order it made them.
#[derive(Default)]
pub struct ChangeBuffer {
    changes: Vec<(OrgId, Change)>,
}

/// The store's write transaction: the driver's, plus the changes it made.
pub(crate) struct WriteTx {
    inner: Box<dyn SqlTx>,
    buffer: ChangeBuffer,
}

impl WriteTx {
    pub fn new(inner: Box<dyn SqlTx>) -> Self {
        WriteTx {
            inner,
            buffer: ChangeBuffer::default(),
        }
    }

    /// The transaction as the statements of a write take it.
    pub fn as_mut(&mut self) -> &mut Self {
        self
    }

    /// The organization of each change made so far and not yet flushed, in order.
    pub fn pending_orgs(&self) -> Vec<OrgId> {
        self.buffer.changes.iter().map(|(org, _)| *org).collect()
    }
}

#[async_trait]
impl SqlConn for WriteTx {
    async fn fetch_optional(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<Row>, DbError> {
        self.inner.fetch_optional(sql, params).await
    }
    async fn fetch_all(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, DbError> {
        self.inner.fetch_all(sql, params).await
    }
    async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError> {
        self.inner.execute(sql, params).await
    }
    async fn fetch_all_replanned(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, DbError> {
        self.inner.fetch_all_replanned(sql, params).await
    }
    fn can_copy(&self) -> bool {
        self.inner.can_copy()
    }
    async fn copy_in(&mut self, statement: &str, rows: &[u8]) -> Result<u64, DbError> {
        self.inner.copy_in(statement, rows).await
    }
    fn change_buffer(&mut self) -> Option<&mut ChangeBuffer> {
        Some(&mut self.buffer)
    }
}

#[async_trait]
impl SqlTx for WriteTx {
    async fn commit(self: Box<Self>) -> Result<(), DbError> {
        self.inner.commit().await
    }
}

/// Records `change` in the write running on `conn`.
pub(crate) fn append(conn: &mut dyn SqlConn, org: OrgId, change: Change) -> Result<()> {
    conn.change_buffer()
        .ok_or_else(|| Error::internal("a change outside a write transaction"))?
        .changes
        .push((org, change));
    Ok(())
}

/// How many changes the write running on `conn` made so far and has not flushed.
pub(crate) fn pending(conn: &mut dyn SqlConn) -> Result<usize> {
    Ok(conn
        .change_buffer()
        .ok_or_else(|| Error::internal("a change outside a write transaction"))?
        .changes
        .len())
}

/// Records a tag change.
pub(crate) fn append_tag(conn: &mut dyn SqlConn, org: OrgId, tag: TagChange) -> Result<()> {
    let kind = match tag.value {
        Some(_) => ChangeKind::TagAssigned,
        None => ChangeKind::TagRemoved,
    };
    let subject = Subject::Tag(tag);
    append(conn, org, Change { kind, subject })
}

/// Records an expiry made into a change already (`value` none, executed by `system`).
pub(crate) fn append_tag_expired(conn: &mut dyn SqlConn, org: OrgId, tag: TagChange) -> Result<()> {
    let subject = Subject::Tag(tag);
    append(
        conn,
        org,
        Change {
            kind: ChangeKind::TagExpired,
            subject,
        },
    )
}

/// An assignment whose expiry passed while it was live, as the row held it.
pub(crate) struct Expired {
    pub assignment_id: i64,
    pub entity_id: ExternalId,
    pub user_ref: i64,
    pub group_ref: i64,
    pub value: TagValue,
    pub ctime: i64,
    pub expires_at: i64,
    /// The assignment's version the expiry gives it.
    pub version: i64,
}

impl Expired {
    /// The expiry of `a` (live, expiry passed), at version `version`.
    pub fn of(a: &Assignment, user_ref: i64, version: i64) -> Result<Self> {
        Ok(Expired {
            assignment_id: a.id,
            entity_id: a.entity_id.clone(),
            user_ref,
            group_ref: a.group_id,
            value: a.value.clone(),
            ctime: a.ctime,
            expires_at: a
                .expires_at
                .ok_or_else(|| Error::internal("an expiry of an assignment that never expires"))?,
            version,
        })
    }
}

/// Records that a live assignment expired: `tag.expired`, executed by `system` at the instant
/// it expired.
pub(crate) fn append_expired(conn: &mut dyn SqlConn, org: OrgId, expired: Expired) -> Result<()> {
    let tag = TagChange {
        assignment_id: expired.assignment_id,
        entity_id: expired.entity_id,
        user_ref: expired.user_ref,
        group_ref: expired.group_ref,
        value: None,
        expires_at: None,
        old_value: Some(expired.value.to_text()),
        version: expired.version,
        ctime: expired.ctime,
        at: expired.expires_at,
        executor: Executor::system(),
        source: Source::System,
    };
    append_tag_expired(conn, org, tag)
}

/// Records a change of a group, as `group` now is.
pub(crate) fn append_group(
    conn: &mut dyn SqlConn,
    kind: ChangeKind,
    group: &TagGroup,
) -> Result<()> {
    let subject = Subject::Group(Box::new(group.clone()));
    append(conn, group.org_id, Change { kind, subject })
}

/// Records a user's registration.
pub(crate) fn append_user(conn: &mut dyn SqlConn, user: &User) -> Result<()> {
    let subject = Subject::User {
        user_ref: user.id,
        user_id: user.user_id.clone(),
        ctime: user.ctime,
    };
    let kind = ChangeKind::UserCreated;
    append(conn, user.org_id, Change { kind, subject })
}

/// Gives the buffered changes their versions and writes them; answers them per organization.
pub(crate) async fn flush(
    tx: &mut WriteTx,
    scheme: VersionScheme,
) -> Result<Vec<(OrgId, Vec<LogEntry>)>> {
    let changes = std::mem::take(&mut tx.buffer.changes);
    let mut by_org: BTreeMap<OrgId, Vec<Change>> = BTreeMap::new();
    for (org, change) in changes {
        by_org.entry(org).or_default().push(change);
    }
    let mut written = Vec::with_capacity(by_org.len());
    let mut next_in_transaction = 0;
    for (org, changes) in by_org {
        let n = changes.len() as i64;
        // On PostgreSQL the entries carry their place in the transaction, and the insert
        // adds the transaction id to it (no round trip of its own): what it answers is the
        // base to add here too.
        let first = match scheme {
            VersionScheme::Counter => counted_versions(tx, org, changes.len()).await?,
            VersionScheme::TransactionId => next_in_transaction,
        };
        if next_in_transaction + n >= 1 << ENTRIES_PER_TRANSACTION_BITS {
            return Err(Error::internal(
                "too many change-log entries in one transaction",
            ));
        }
        next_in_transaction += n;
        let mut entries: Vec<LogEntry> = changes
            .into_iter()
            .zip(first..)
            .map(|(change, version)| LogEntry { version, change })
            .collect();
        let base = insert(tx, org, &entries, scheme).await?;
        for entry in &mut entries {
            entry.version += base;
        }
        written.push((org, entries));
    }
    Ok(written)
}

/// The first of `n` versions from the organization's counter.
async fn counted_versions(tx: &mut WriteTx, org: OrgId, n: usize) -> Result<i64> {
    let n = n as i64;
    let row = tx
        .fetch_optional(
            "INSERT INTO org_versions (org_id, version) VALUES ($1, $2) \
             ON CONFLICT (org_id) DO UPDATE SET version = org_versions.version + $2 \
             RETURNING version",
            &[org.0.into(), n.into()],
        )
        .await
        .map_err(internal)?;
    Ok(crate::one(row)?.int("version")? - n + 1)
}

const LOG_COLUMNS: usize = 16;

/// The [`LOG_COLUMNS`] columns an entry is written to, in [`row_params`]' order: the `INSERT`
/// and the `COPY` both name them from here.
const LOG_COLUMN_NAMES: &str = "org_id, version, kind, user_ref, group_ref, assignment_ref, \
     subject_version, executor_kind, executor_ref, executor_name, source, old_value, \
     new_value, at, segment_ref, expires_at";

/// Inserts the entries; answers what was added to their versions (the transaction id, shifted,
/// on PostgreSQL; nothing with a counter).
async fn insert(
    tx: &mut WriteTx,
    org: OrgId,
    entries: &[LogEntry],
    scheme: VersionScheme,
) -> Result<i64> {
    if scheme == VersionScheme::TransactionId && tx.can_copy() && entries.len() >= COPY_FROM {
        return copy_entries(tx, org, entries).await;
    }
    let mut base = 0;
    for chunk in entries.chunks(CHUNK) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let mut cells: Vec<String> = (0..LOG_COLUMNS)
                    .map(|k| format!("${}", i * LOG_COLUMNS + k + 1))
                    .collect();
                if scheme == VersionScheme::TransactionId {
                    cells[1] = format!(
                        "(pg_current_xact_id()::text::bigint << {ENTRIES_PER_TRANSACTION_BITS}) + {}",
                        cells[1]
                    );
                }
                format!("({})", cells.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO change_log ({LOG_COLUMN_NAMES}) VALUES {} RETURNING version",
            rows.join(", ")
        );
        let texts: Vec<Option<String>> = chunk.iter().map(new_value_text).collect();
        let mut params: Vec<Param<'_>> = Vec::with_capacity(chunk.len() * LOG_COLUMNS);
        for (entry, new_value) in chunk.iter().zip(&texts) {
            params.extend(row_params(org, entry, new_value.as_deref()));
        }
        if scheme == VersionScheme::Counter {
            tx.execute(&sql.replace(" RETURNING version", ""), &params)
                .await
                .map_err(internal)?;
            continue;
        }
        let returned = tx.fetch_all(&sql, &params).await.map_err(internal)?;
        let first = returned.first().map(|r| r.int("version")).transpose()?;
        let first = first.ok_or_else(|| Error::internal("the log insert returned nothing"))?;
        // The entry's place sits below the shifted transaction id: masking it off leaves the
        // base, whatever order the rows came back in.
        base = first & !((1 << ENTRIES_PER_TRANSACTION_BITS) - 1);
    }
    Ok(base)
}

/// [`insert`] by `COPY` (PostgreSQL), for a bulk write's many entries: the version base (the
/// shifted transaction id) is read first, since `COPY` computes nothing.
async fn copy_entries(tx: &mut WriteTx, org: OrgId, entries: &[LogEntry]) -> Result<i64> {
    let row = tx
        .fetch_optional(
            &format!(
                "SELECT pg_current_xact_id()::text::bigint << {ENTRIES_PER_TRANSACTION_BITS} \
                 AS base"
            ),
            &[],
        )
        .await
        .map_err(internal)?;
    let base = crate::one(row)?.int("base")?;
    let mut data = String::with_capacity(entries.len() * 120);
    for entry in entries {
        let new_value = new_value_text(entry);
        let mut cells = row_params(org, entry, new_value.as_deref());
        cells[1] = (base + entry.version).into();
        crate::driver::copy_line(&mut data, &cells);
    }
    let copy = format!("COPY change_log ({LOG_COLUMN_NAMES}) FROM STDIN");
    tx.copy_in(&copy, data.as_bytes()).await.map_err(internal)?;
    Ok(base)
}

fn new_value_text(entry: &LogEntry) -> Option<String> {
    match &entry.change.subject {
        Subject::Tag(tag) => tag.value.as_ref().map(TagValue::to_text),
        _ => None,
    }
}

/// The 16 cells of one entry's row.
fn row_params<'a>(org: OrgId, entry: &'a LogEntry, new_value: Option<&'a str>) -> Vec<Param<'a>> {
    let kind = entry.change.kind.as_str();
    let mut cells: Vec<Param<'a>> = vec![org.0.into(), entry.version.into(), kind.into()];
    match &entry.change.subject {
        Subject::Tag(tag) => cells.extend([
            Param::from(Some(tag.user_ref)),
            Some(tag.group_ref).into(),
            Some(tag.assignment_id).into(),
            tag.version.into(),
            tag.executor.kind.as_str().into(),
            tag.executor.id.into(),
            tag.executor.name.as_str().into(),
            tag.source.as_str().into(),
            tag.old_value.as_deref().into(),
            new_value.into(),
            tag.at.into(),
            Param::OptInt(None),
            tag.expires_at.into(),
        ]),
        Subject::Group(group) => cells.extend([
            Param::OptInt(None),
            Some(group.id).into(),
            Param::OptInt(None),
            group.version.into(),
            group.updated_by.kind.as_str().into(),
            group.updated_by.id.into(),
            group.updated_by.name.as_str().into(),
            source_of(&group.updated_by).as_str().into(),
            Param::OptText(None),
            Param::OptText(None),
            group.mtime.into(),
            Param::OptInt(None),
            Param::OptInt(None),
        ]),
        Subject::User {
            user_ref, ctime, ..
        } => cells.extend([
            Param::from(Some(*user_ref)),
            Param::OptInt(None),
            Param::OptInt(None),
            0.into(),
            ExecutorKind::Operator.as_str().into(),
            0.into(),
            "system".into(),
            Source::OpenApi.as_str().into(),
            Param::OptText(None),
            Param::OptText(None),
            (*ctime).into(),
            Param::OptInt(None),
            Param::OptInt(None),
        ]),
        Subject::Segment(saved) => cells.extend([
            Param::OptInt(None),
            Param::OptInt(None),
            Param::OptInt(None),
            saved.version.into(),
            ExecutorKind::Operator.as_str().into(),
            0.into(),
            "system".into(),
            Source::OpenApi.as_str().into(),
            Param::OptText(None),
            Param::OptText(None),
            saved.mtime.into(),
            Some(saved.id).into(),
            Param::OptInt(None),
        ]),
        Subject::Membership(moved) => cells.extend([
            Param::from(Some(moved.user_ref)),
            Param::OptInt(None),
            Param::OptInt(None),
            moved.segment.version.into(),
            ExecutorKind::Operator.as_str().into(),
            0.into(),
            "system".into(),
            Source::System.as_str().into(),
            Param::OptText(None),
            Param::OptText(None),
            moved.at.into(),
            Some(moved.segment.id).into(),
            Param::OptInt(None),
        ]),
    }
    cells
}

/// The door a group change came through, from who made it.
fn source_of(executor: &Executor) -> Source {
    match executor.kind {
        ExecutorKind::Credential => Source::V2Api,
        ExecutorKind::App => Source::OpenApi,
        ExecutorKind::Operator => Source::Import,
    }
}

/// SQL for the newest version no running transaction can precede: every entry at or below it
/// is committed (or will never be).
fn horizon_sql(scheme: VersionScheme) -> &'static str {
    match scheme {
        VersionScheme::Counter => {
            "SELECT COALESCE((SELECT version FROM org_versions WHERE org_id = $1), 0) AS horizon"
        }
        VersionScheme::TransactionId => {
            "SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20) - 1 AS horizon"
        }
    }
}

/// The latest version of the organization that is committed.
pub(crate) async fn head(conn: &mut dyn SqlConn, scheme: VersionScheme, org: OrgId) -> Result<i64> {
    let sql = match scheme {
        VersionScheme::Counter => horizon_sql(scheme),
        VersionScheme::TransactionId => {
            "SELECT COALESCE(MAX(version), 0) AS horizon FROM change_log WHERE org_id = $1"
        }
    };
    let row = conn
        .fetch_optional(sql, &[org.0.into()])
        .await
        .map_err(internal)?;
    crate::one(row)?.int("horizon")
}

/// The newest version no running transaction can precede.
pub(crate) async fn horizon(
    conn: &mut dyn SqlConn,
    scheme: VersionScheme,
    org: OrgId,
) -> Result<i64> {
    let params: &[Param<'_>] = match scheme {
        VersionScheme::Counter => &[org.0.into()],
        VersionScheme::TransactionId => &[],
    };
    let row = conn
        .fetch_optional(horizon_sql(scheme), params)
        .await
        .map_err(internal)?;
    crate::one(row)?.int("horizon")
}

pub(crate) async fn heads(
    conn: &mut dyn SqlConn,
    scheme: VersionScheme,
    after: i64,
) -> Result<LogHeads> {
    let (horizon, rows) = match scheme {
        VersionScheme::Counter => {
            let sql = "SELECT org_id, version FROM org_versions";
            (0, conn.fetch_all(sql, &[]).await.map_err(internal)?)
        }
        VersionScheme::TransactionId => {
            // The horizon first: every entry at or below it is committed by then, so the
            // statement after it sees them all.
            let horizon = horizon(conn, scheme, OrgId(0)).await?;
            let sql = "SELECT org_id, MAX(version) AS version FROM change_log \
                       WHERE version > $1 GROUP BY org_id";
            (
                horizon,
                conn.fetch_all(sql, &[after.into()])
                    .await
                    .map_err(internal)?,
            )
        }
    };
    let heads = rows
        .iter()
        .map(|r| Ok((OrgId(r.int("org_id")?), r.int("version")?)))
        .collect::<Result<_>>()?;
    Ok(LogHeads { horizon, heads })
}

pub(crate) async fn users_page(
    conn: &mut dyn SqlConn,
    org: OrgId,
    after: i64,
    limit: usize,
) -> Result<Vec<User>> {
    let rows = conn
        .fetch_all(
            "SELECT id, org_id, user_id, ctime FROM users WHERE org_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3",
            &[org.0.into(), after.into(), (limit as i64).into()],
        )
        .await
        .map_err(internal)?;
    rows.iter().map(|r| records::user(r.as_ref())).collect()
}

pub(crate) async fn all_groups(conn: &mut dyn SqlConn, org: OrgId) -> Result<Vec<TagGroup>> {
    let rows = conn
        .fetch_all(
            &format!("SELECT {GROUP_COLUMNS} FROM tag_groups WHERE org_id = $1 ORDER BY id"),
            &[org.0.into()],
        )
        .await
        .map_err(internal)?;
    rows.iter()
        .map(|r| records::tag_group(r.as_ref()))
        .collect()
}

pub(crate) async fn live_assignments_page(
    conn: &mut dyn SqlConn,
    org: OrgId,
    after: i64,
    limit: usize,
) -> Result<Vec<TagChange>> {
    let sql = format!(
        "{ASSIGNMENT_SELECT} WHERE a.org_id = $1 AND a.id > $2 AND {LIVE} \
         ORDER BY a.id LIMIT $3"
    );
    let rows = conn
        .fetch_all(&sql, &[org.0.into(), after.into(), (limit as i64).into()])
        .await
        .map_err(internal)?;
    let mut page = Vec::with_capacity(rows.len());
    for row in &rows {
        let a = records::assignment(row.as_ref())?;
        page.push(TagChange {
            assignment_id: a.id,
            entity_id: a.entity_id,
            user_ref: row.int("user_ref")?,
            group_ref: a.group_id,
            value: Some(a.value),
            expires_at: a.expires_at,
            old_value: None,
            version: a.version,
            ctime: a.ctime,
            at: a.mtime,
            executor: a.executor,
            source: a.source,
        });
    }
    Ok(page)
}

/// The entries after `after`, up to the horizon, oldest first.
pub(crate) async fn read(
    conn: &mut dyn SqlConn,
    scheme: VersionScheme,
    org: OrgId,
    after: i64,
    limit: usize,
) -> Result<LogPage> {
    Ok(read_with_users(conn, scheme, org, after, limit).await?.0)
}

/// A page of the log, and the external ids of the users its tag entries name (read in the
/// same statement: a reader that renders them needs no second round trip).
pub(crate) async fn read_with_users(
    conn: &mut dyn SqlConn,
    scheme: VersionScheme,
    org: OrgId,
    after: i64,
    limit: usize,
) -> Result<(LogPage, HashMap<i64, UserId>)> {
    let horizon = horizon(conn, scheme, org).await?;
    let limit = limit.max(1) as i64;
    let rows = conn
        .fetch_all(
            "SELECT l.version, l.kind, l.user_ref, l.group_ref, l.assignment_ref, \
             l.subject_version, l.executor_kind, l.executor_ref, l.executor_name, l.source, \
             l.old_value, l.new_value, l.at, l.segment_ref, l.expires_at, a.entity_id, \
             a.ctime AS assignment_ctime, \
             u.user_id, u.ctime AS user_ctime, g.attribute \
             FROM change_log l \
             LEFT JOIN tag_assignments a ON a.org_id = l.org_id AND a.id = l.assignment_ref \
             LEFT JOIN users u ON u.org_id = l.org_id AND u.id = l.user_ref \
             LEFT JOIN tag_groups g ON g.org_id = l.org_id AND g.id = l.group_ref \
             WHERE l.org_id = $1 AND l.version > $2 AND l.version <= $3 \
             ORDER BY l.version LIMIT $4",
            &[org.0.into(), after.into(), horizon.into(), limit.into()],
        )
        .await
        .map_err(internal)?;
    let groups = groups_named(conn, org, &rows).await?;
    let segments = segments_named(conn, org, &rows).await?;
    let entries = rows
        .iter()
        .map(|row| entry(row.as_ref(), &groups, &segments))
        .collect::<Result<Vec<_>>>()?;
    let safe_version = match entries.last() {
        Some(last) if entries.len() as i64 == limit => last.version,
        _ => horizon.max(after),
    };
    let mut users = HashMap::new();
    for row in &rows {
        if let (Some(user_ref), Some(user_id)) =
            (row.opt_int("user_ref")?, row.opt_text("user_id")?)
        {
            users.insert(user_ref, UserId::from_trusted(user_id));
        }
    }
    let page = LogPage {
        entries,
        safe_version,
    };
    Ok((page, users))
}

/// The current rows of the groups that group entries name.
async fn groups_named(
    conn: &mut dyn SqlConn,
    org: OrgId,
    rows: &[Row],
) -> Result<HashMap<i64, TagGroup>> {
    let mut ids = Vec::new();
    for row in rows {
        if row.opt_int("assignment_ref")?.is_none() {
            ids.extend(row.opt_int("group_ref")?);
        }
    }
    let mut groups = HashMap::with_capacity(ids.len());
    for row in rows_by_id(conn, org, "tag_groups", GROUP_COLUMNS, ids).await? {
        let group = records::tag_group(row.as_ref())?;
        groups.insert(group.id, group);
    }
    Ok(groups)
}

/// The current rows of the saved segments segment entries name.
async fn segments_named(
    conn: &mut dyn SqlConn,
    org: OrgId,
    rows: &[Row],
) -> Result<HashMap<i64, SavedSegment>> {
    let mut ids = Vec::new();
    for row in rows {
        ids.extend(row.opt_int("segment_ref")?);
    }
    let mut named = HashMap::with_capacity(ids.len());
    for row in rows_by_id(conn, org, "segments", SEGMENT_COLUMNS, ids).await? {
        let saved = crate::saved_segments::segment(row.as_ref())?;
        named.insert(saved.id, saved);
    }
    Ok(named)
}

/// The rows of `table` of `org` whose `id` is among `ids`, in a few statements.
pub(crate) async fn rows_by_id(
    conn: &mut dyn SqlConn,
    org: OrgId,
    table: &str,
    columns: &str,
    mut ids: Vec<i64>,
) -> Result<Vec<Row>> {
    ids.sort_unstable();
    ids.dedup();
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT {columns} FROM {table} WHERE org_id = $1 AND id IN ({})",
            list.join(", ")
        );
        let mut params: Vec<Param<'_>> = vec![org.0.into()];
        params.extend(chunk.iter().map(|id| Param::from(*id)));
        found.extend(conn.fetch_all(&sql, &params).await.map_err(internal)?);
    }
    Ok(found)
}

fn entry(
    row: &dyn Columns,
    groups: &HashMap<i64, TagGroup>,
    segments: &HashMap<i64, SavedSegment>,
) -> Result<LogEntry> {
    let kind = ChangeKind::from_db(&row.text("kind")?)?;
    let subject = match kind {
        ChangeKind::TagAssigned | ChangeKind::TagRemoved | ChangeKind::TagExpired => {
            let attribute = Attribute::parse(&row.text("attribute")?)?;
            let value = row
                .opt_text("new_value")?
                .map(|text| TagValue::from_text(attribute, &text));
            Subject::Tag(TagChange {
                assignment_id: row.int("assignment_ref")?,
                entity_id: ExternalId::from_trusted(row.text("entity_id")?),
                user_ref: row.int("user_ref")?,
                group_ref: row.int("group_ref")?,
                value,
                expires_at: row.opt_int("expires_at")?,
                old_value: row.opt_text("old_value")?,
                version: row.int("subject_version")?,
                ctime: row.int("assignment_ctime")?,
                at: row.int("at")?,
                executor: Executor {
                    kind: ExecutorKind::from_db(&row.text("executor_kind")?),
                    id: row.int("executor_ref")?,
                    name: row.text("executor_name")?,
                },
                source: Source::from_db(&row.text("source")?),
            })
        }
        ChangeKind::SegmentSaved | ChangeKind::SegmentDeleted => {
            let id = row.int("segment_ref")?;
            let saved = segments
                .get(&id)
                .ok_or_else(|| Error::internal("a logged segment has no row"))?;
            Subject::Segment(Box::new(saved.clone()))
        }
        ChangeKind::SegmentEntered | ChangeKind::SegmentExited => {
            let id = row.int("segment_ref")?;
            let segment = segments
                .get(&id)
                .ok_or_else(|| Error::internal("a logged segment has no row"))?
                .clone();
            Subject::Membership(Box::new(Membership {
                segment,
                user_ref: row.int("user_ref")?,
                user_id: UserId::from_trusted(row.text("user_id")?),
                at: row.int("at")?,
            }))
        }
        ChangeKind::UserCreated => Subject::User {
            user_ref: row.int("user_ref")?,
            user_id: UserId::from_trusted(row.text("user_id")?),
            ctime: row.int("user_ctime")?,
        },
        _ => {
            let id = row.int("group_ref")?;
            let group = groups
                .get(&id)
                .ok_or_else(|| Error::internal("a logged group has no row"))?;
            Subject::Group(Box::new(group.clone()))
        }
    };
    Ok(LogEntry {
        version: row.int("version")?,
        change: Change { kind, subject },
    })
}
