//! Many changes to (user, group) pairs in a handful of statements: bulk import and
//! changeLabels write through here.
//!
//! 1. the assignments of every pair named are read at once, row-locked;
//! 2. the changes are played in order in memory: a value equal to the live one (or a removal
//!    of a pair with none) is a no-op, anything else is one change (version + 1, one history
//!    entry), so a pair named twice gets two versions, as two single writes would give it;
//! 3. the final state is written with one multi-row insert (new pairs), one multi-row update
//!    (existing pairs) and one multi-row history insert per chunk.
//!
//! A first insert can lose a race with another writer of the same pair (PostgreSQL; SQLite has
//! one writer): its `ON CONFLICT DO NOTHING` skips the row, and that pair's changes are
//! replayed one by one through `assignments::write_value`/`remove_value`, the path every
//! single write takes.

use crate::assignments::{find_by_refs, remove_value, write_value};
use crate::driver::{Param, SqlConn};
use crate::records::Columns;
use crate::{internal, log};
use std::collections::{HashMap, HashSet};
use tagd_core::expiry::is_live;
use tagd_core::log::TagChange;
use tagd_core::timefmt::now_unix;
use tagd_core::*;

/// Rows one multi-row statement carries (at most 8 parameters a row). SQLite once made this
/// small: it found a named `$n` parameter by a linear search of the statement's names, so a
/// statement's cost grew with the square of its parameters (100 rows a statement imported
/// 1.7x faster than 500). The SQLite driver now binds anonymous `?` parameters in order
/// (`tagd-sqlite/src/rows.rs`), which removed that cost, so statements carry 500 rows again
/// (docs/BENCHMARKS.md, "Bulk import and export, first version").
pub(crate) const CHUNK: usize = 500;

/// Rows from which a bulk write loads by `COPY` where the database has it: below, the extra
/// round trips (`COPY` start, ids or version base) cost about what they save (a changeLabels
/// of 100 labels, 100 log entries, measured 6% slower by `COPY`; an import batch of 5,000
/// rows several times faster).
pub(crate) const COPY_FROM: usize = CHUNK;

/// The columns a new pair's row is written to (after its id, when copied): the multi-row
/// `INSERT` and the `COPY` both name them from here.
const NEW_PAIR_COLUMNS: &str = "org_id, user_ref, group_ref, define_value, number_value, \
     string_value, executor_kind, executor_ref, executor_name, source, version, ctime, mtime, \
     entity_id, is_deleted, expires_at";

/// A (user, group) pair of one organization, by the rows' internal ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PairKey {
    pub user: i64,
    pub group: i64,
}

impl PairKey {
    /// The pair a row's `user_ref` and `group_ref` name.
    fn of_row(row: &dyn Columns) -> Result<Self> {
        Ok(PairKey {
            user: row.int("user_ref")?,
            group: row.int("group_ref")?,
        })
    }
}

/// One change: set `value` on the pair (expiring at `expires_at`), or remove its live value.
#[derive(Clone)]
pub(crate) struct PairWrite {
    pub key: PairKey,
    pub attribute: Attribute,
    pub value: Option<TagValue>,
    pub expires_at: Option<i64>,
    /// Whether setting the value the pair already holds is a change too (a v5 assign: every
    /// assign is a write); otherwise it is a no-op (changeLabels, import).
    pub rewrite: bool,
}

/// What one write of [`apply`] did.
pub(crate) struct Applied {
    /// Whether it changed the pair.
    pub changed: bool,
    /// After a change: the assignment as this write left it.
    pub state: Option<PairState>,
    /// Where this write's last change-log entry (its change, or an expiry it found) sits among
    /// the transaction's pending changes.
    pub logged_at: Option<usize>,
}

/// An assignment as one write of a batch left it.
pub(crate) struct PairState {
    pub id: i64,
    pub entity_id: ExternalId,
    pub version: i64,
    pub ctime: i64,
    pub mtime: i64,
    /// The value in the row's columns (a removal keeps it).
    pub value: TagValue,
    pub deleted: bool,
    pub expires_at: Option<i64>,
}

/// Who writes, when, and through which door: shared by every statement of a write (one
/// assignment, or a batch) and by the history entries it records.
#[derive(Clone, Copy)]
pub(crate) struct Stamp<'a> {
    pub org: OrgId,
    pub executor: &'a Executor,
    pub source: Source,
    pub now: i64,
}

impl<'a> Stamp<'a> {
    /// A stamp of this instant.
    pub fn now(org: OrgId, executor: &'a Executor, source: Source) -> Self {
        Stamp {
            org,
            executor,
            source,
            now: now_unix(),
        }
    }

    /// `$1`..`$6`: organization, executor kind, id and name, source, time.
    fn params(&self) -> Vec<Param<'_>> {
        vec![
            self.org.0.into(),
            self.executor.kind.as_str().into(),
            self.executor.id.into(),
            self.executor.name.as_str().into(),
            self.source.as_str().into(),
            self.now.into(),
        ]
    }
}

/// The value held in the `define_value`, `number_value`, `string_value` columns.
pub(crate) fn stored_value(row: &dyn Columns, attribute: Attribute) -> Result<TagValue> {
    Ok(match attribute {
        Attribute::Define => TagValue::Define(row.opt_flag("define_value")?.unwrap_or(false)),
        Attribute::Number => TagValue::Number(row.opt_float("number_value")?.unwrap_or(0.0)),
        Attribute::String => TagValue::String(row.opt_text("string_value")?.unwrap_or_default()),
    })
}

/// One pair of the batch, as the changes leave it.
struct Pair {
    /// The assignment's id, once it exists.
    id: Option<i64>,
    /// Its external id and creation time, once it exists.
    entity_id: Option<ExternalId>,
    ctime: i64,
    /// Whether the assignment existed (live or deleted) before the batch.
    existed: bool,
    /// The current version; `None` for a pair never assigned.
    version: Option<i64>,
    /// The value in the row's columns (a removal keeps it) and whether the row is deleted.
    value: Option<TagValue>,
    deleted: bool,
    /// The row's expiry.
    expires_at: Option<i64>,
    changed: bool,
    /// The batch's writes naming it, in order.
    writes: Vec<usize>,
}

impl Pair {
    /// The value that counts at `now`: not removed, not expired.
    fn live(&self, now: i64) -> Option<&TagValue> {
        self.value
            .as_ref()
            .filter(|_| !self.deleted && is_live(self.expires_at, now))
    }

    /// Marked live, but its expiry has passed and the sweep has not recorded it yet.
    fn expired_unrecorded(&self, now: i64) -> bool {
        self.value.is_some() && !self.deleted && !is_live(self.expires_at, now)
    }
}

/// A pair's version, value, deleted flag and expiry after one write.
type After = (i64, TagValue, bool, Option<i64>);

/// One change of one pair, for its change-log entry.
struct Change {
    pair: PairKey,
    /// The write that made it.
    write: usize,
    version: i64,
    old: Option<String>,
    new: Option<TagValue>,
    expires_at: Option<i64>,
    /// An expiry found by this write (recorded as the sweep would record it, at `at`).
    expired_at: Option<i64>,
}

/// Applies `writes` in order inside the caller's transaction; answers what each did. `lock` is
/// the driver's row lock for assignments. `new_users` are users this transaction created: they
/// have no assignments yet (no other transaction can give them one before this one commits),
/// so their pairs are not read.
pub(crate) async fn apply(
    conn: &mut dyn SqlConn,
    lock: &str,
    stamp: &Stamp<'_>,
    writes: &[PairWrite],
    new_users: &HashSet<i64>,
) -> Result<Vec<Applied>> {
    let mut pairs = read_pairs(conn, lock, stamp.org, writes, new_users).await?;
    // Stamped once the rows are locked, so a write that waited for another is stamped after it.
    let stamp = &Stamp {
        now: now_unix(),
        ..*stamp
    };
    let mut applied = Vec::with_capacity(writes.len());
    // Per write that changed its pair: the pair after it.
    let mut after: Vec<Option<After>> = Vec::new();
    let mut changes = Vec::new();
    for (i, write) in writes.iter().enumerate() {
        let pair = pairs
            .get_mut(&write.key)
            .ok_or_else(|| Error::internal("a written pair was not read"))?;
        pair.writes.push(i);
        if pair.expired_unrecorded(stamp.now) {
            let version = pair.version.map_or(0, |v| v + 1);
            changes.push(Change {
                pair: write.key,
                write: i,
                version,
                old: pair.value.as_ref().map(TagValue::to_text),
                new: None,
                expires_at: None,
                expired_at: pair.expires_at,
            });
            pair.deleted = true;
            pair.version = Some(version);
            pair.changed = true;
        }
        let unchanged = !(write.rewrite && write.value.is_some())
            && pair.live(stamp.now) == write.value.as_ref()
            && (write.value.is_none() || pair.expires_at == write.expires_at);
        if unchanged {
            applied.push(false);
            after.push(None);
            continue;
        }
        let version = pair.version.map_or(0, |v| v + 1);
        changes.push(Change {
            pair: write.key,
            write: i,
            version,
            old: pair.live(stamp.now).map(TagValue::to_text),
            new: write.value.clone(),
            expires_at: write.expires_at.filter(|_| write.value.is_some()),
            expired_at: None,
        });
        match &write.value {
            Some(value) => {
                pair.value = Some(value.clone());
                pair.deleted = false;
                pair.expires_at = write.expires_at;
            }
            None => pair.deleted = true,
        }
        pair.version = Some(version);
        pair.changed = true;
        applied.push(true);
        let value = pair.value.clone();
        after.push(value.map(|v| (version, v, pair.deleted, pair.expires_at)));
    }

    let lost = insert_new_pairs(conn, stamp, &mut pairs, new_users).await?;
    update_existing_pairs(conn, stamp, &pairs).await?;
    let recorded: Vec<&Change> = changes.iter().filter(|c| !lost.contains(&c.pair)).collect();
    let first_entry = log::pending(conn)?;
    let mut logged_at: Vec<Option<usize>> = vec![None; writes.len()];
    for (k, change) in recorded.iter().enumerate() {
        logged_at[change.write] = Some(first_entry + k);
    }
    record_changes(conn, stamp, &pairs, recorded)?;
    let mut applied: Vec<Applied> = applied
        .into_iter()
        .zip(after)
        .zip(logged_at)
        .zip(writes)
        .map(|(((changed, after), logged_at), write)| {
            let pair = pairs.get(&write.key);
            let state = after
                .zip(pair)
                .and_then(|((version, value, deleted, expires_at), p)| {
                    Some(PairState {
                        id: p.id?,
                        entity_id: p.entity_id.clone()?,
                        version,
                        ctime: p.ctime,
                        mtime: stamp.now,
                        value,
                        deleted,
                        expires_at,
                    })
                });
            Applied {
                changed,
                state,
                logged_at,
            }
        })
        .collect();

    // Pairs whose first insert lost a race: their writes again, one by one.
    let mut lost: Vec<PairKey> = lost.into_iter().collect();
    lost.sort_unstable();
    // Replayed after the writer that won, so stamped with a time of their own.
    let stamp = &Stamp {
        now: now_unix(),
        ..*stamp
    };
    for key in &lost {
        let Some(pair) = pairs.get(key) else { continue };
        for &i in &pair.writes {
            applied[i] = replay(conn, lock, stamp, &writes[i]).await?;
        }
    }
    Ok(applied)
}

/// One write of a pair whose first insert lost a race, through the single-write path.
async fn replay(
    conn: &mut dyn SqlConn,
    lock: &str,
    stamp: &Stamp<'_>,
    write: &PairWrite,
) -> Result<Applied> {
    let key = write.key;
    let state = match &write.value {
        Some(value) => {
            let expires_at = write.expires_at;
            let current = find_by_refs(conn, lock, stamp.org, key).await?;
            let live = current
                .filter(|a| !a.is_deleted && is_live(a.expires_at, stamp.now))
                .filter(|a| a.expires_at == expires_at)
                .map(|a| a.value);
            if !write.rewrite && live.as_ref() == Some(value) {
                None
            } else {
                let written = write_value(conn, lock, stamp, key, (value, expires_at)).await?;
                Some(PairState {
                    id: written.id,
                    entity_id: written.entity_id,
                    version: written.version,
                    ctime: written.ctime,
                    mtime: written.mtime,
                    value: value.clone(),
                    deleted: false,
                    expires_at,
                })
            }
        }
        None => remove_value(conn, lock, stamp, key)
            .await?
            .map(|a| PairState {
                id: a.id,
                entity_id: a.entity_id,
                version: a.version,
                ctime: a.ctime,
                mtime: a.mtime,
                value: a.value,
                deleted: a.is_deleted,
                expires_at: a.expires_at,
            }),
    };
    let logged_at = state
        .as_ref()
        .map(|_| log::pending(conn))
        .transpose()?
        .and_then(|n| n.checked_sub(1));
    Ok(Applied {
        changed: state.is_some(),
        state,
        logged_at,
    })
}

/// `$n` placeholders of row `i` of a multi-row statement whose per-row parameters start at
/// `$first` and are `width` wide.
fn row_params(first: usize, width: usize, i: usize) -> Vec<String> {
    (0..width)
        .map(|k| format!("${}", first + i * width + k))
        .collect()
}

/// The state of every pair the writes name (live or deleted assignment, or none),
/// row-locked.
async fn read_pairs(
    conn: &mut dyn SqlConn,
    lock: &str,
    org: OrgId,
    writes: &[PairWrite],
    new_users: &HashSet<i64>,
) -> Result<HashMap<PairKey, Pair>> {
    let mut pairs: HashMap<PairKey, Pair> = HashMap::with_capacity(writes.len());
    let mut attributes: HashMap<i64, Attribute> = HashMap::new();
    for write in writes {
        attributes.insert(write.key.group, write.attribute);
        pairs.entry(write.key).or_insert(Pair {
            id: None,
            entity_id: None,
            ctime: 0,
            existed: false,
            version: None,
            value: None,
            deleted: false,
            expires_at: None,
            changed: false,
            writes: Vec::new(),
        });
    }
    // By users, the leading columns of the (org_id, user_ref, group_ref) key, so both
    // databases read that index whatever their statistics say. The groups only filter
    // (`+ 0` keeps them out of index choice: on a table that grew faster than its statistics,
    // PostgreSQL would otherwise pick the by-group index and read the whole group).
    let mut users: Vec<i64> = pairs
        .keys()
        .map(|key| key.user)
        .filter(|u| !new_users.contains(u))
        .collect();
    users.sort_unstable();
    users.dedup();
    let mut groups: Vec<i64> = attributes.keys().copied().collect();
    groups.sort_unstable();
    let group_filter = if groups.len() <= CHUNK {
        let list: Vec<String> = (0..groups.len()).map(|i| format!("${}", i + 2)).collect();
        format!("AND a.group_ref + 0 IN ({})", list.join(", "))
    } else {
        String::new()
    };
    let first_user = if group_filter.is_empty() {
        2
    } else {
        2 + groups.len()
    };
    for chunk in users.chunks(CHUNK) {
        let list: Vec<String> = (0..chunk.len())
            .map(|i| format!("${}", first_user + i))
            .collect();
        let sql = format!(
            "SELECT a.id, a.entity_id, a.ctime, a.user_ref, a.group_ref, a.define_value, \
             a.number_value, a.string_value, a.version, a.is_deleted, a.expires_at \
             FROM tag_assignments a \
             WHERE a.org_id = $1 {group_filter} AND a.user_ref IN ({}) {lock}",
            list.join(", ")
        );
        let mut params: Vec<Param<'_>> = vec![org.0.into()];
        if !group_filter.is_empty() {
            params.extend(groups.iter().map(|g| Param::from(*g)));
        }
        params.extend(chunk.iter().map(|u| Param::from(*u)));
        for row in conn
            .fetch_all_replanned(&sql, &params)
            .await
            .map_err(internal)?
        {
            let key = PairKey::of_row(row.as_ref())?;
            // Another group of the same user: not this batch's business.
            let Some(pair) = pairs.get_mut(&key) else {
                continue;
            };
            let attribute = attributes
                .get(&key.group)
                .copied()
                .ok_or_else(|| Error::internal("an assignment of an unread group"))?;
            pair.id = Some(row.int("id")?);
            pair.entity_id = Some(ExternalId::from_trusted(row.text("entity_id")?));
            pair.ctime = row.int("ctime")?;
            pair.existed = true;
            pair.version = Some(row.int("version")?);
            pair.value = Some(stored_value(row.as_ref(), attribute)?);
            pair.deleted = row.flag("is_deleted")?;
            pair.expires_at = row.opt_int("expires_at")?;
        }
    }
    Ok(pairs)
}

/// Inserts the changed pairs that had no assignment, in their final state; returns the pairs
/// another writer inserted first (nothing of them was written here).
async fn insert_new_pairs(
    conn: &mut dyn SqlConn,
    stamp: &Stamp<'_>,
    pairs: &mut HashMap<PairKey, Pair>,
    new_users: &HashSet<i64>,
) -> Result<HashSet<PairKey>> {
    let mut new: Vec<PairKey> = pairs
        .iter()
        .filter(|(_, p)| p.changed && p.id.is_none())
        .map(|(k, _)| *k)
        .collect();
    new.sort_unstable();
    // Pairs of users this transaction created cannot meet another writer's row (nobody else
    // sees those users before the commit), so they need no `ON CONFLICT` and can be copied.
    if conn.can_copy() && new.len() >= COPY_FROM && new.iter().all(|k| new_users.contains(&k.user))
    {
        copy_new_pairs(conn, stamp, pairs, &new).await?;
        return Ok(HashSet::new());
    }
    let mut lost: HashSet<PairKey> = new.iter().copied().collect();
    let mut inserted = HashMap::new();
    for chunk in new.chunks(CHUNK) {
        let entity_ids: Vec<ExternalId> = chunk
            .iter()
            .map(|key| ExternalId::of_assignment(stamp.org, key.user, key.group, stamp.now))
            .collect();
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p = row_params(7, 9, i);
                format!(
                    "($1, {}, {}, {}, {}, {}, $2, $3, $4, $5, {}, $6, $6, {}, {}, {})",
                    p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO tag_assignments ({NEW_PAIR_COLUMNS}) VALUES {} \
             ON CONFLICT DO NOTHING \
             RETURNING id, user_ref, group_ref",
            values.join(", ")
        );
        let mut params = stamp.params();
        for (key, entity_id) in chunk.iter().zip(&entity_ids) {
            let pair = &pairs[key];
            let value = pair.value.as_ref();
            params.extend::<[Param<'_>; 9]>([
                key.user.into(),
                key.group.into(),
                value.and_then(TagValue::define_value).into(),
                value.and_then(TagValue::number_value).into(),
                value.and_then(TagValue::string_value).into(),
                pair.version.unwrap_or(0).into(),
                entity_id.as_str().into(),
                pair.deleted.into(),
                pair.expires_at.into(),
            ]);
        }
        for row in conn.fetch_all(&sql, &params).await.map_err(internal)? {
            inserted.insert(PairKey::of_row(row.as_ref())?, row.int("id")?);
        }
        for (key, entity_id) in chunk.iter().zip(entity_ids) {
            if let (Some(id), Some(pair)) = (inserted.get(key), pairs.get_mut(key)) {
                lost.remove(key);
                pair.id = Some(*id);
                pair.entity_id = Some(entity_id);
                pair.ctime = stamp.now;
            }
        }
    }
    Ok(lost)
}

/// Loads new pairs, none of which can exist yet, by `COPY` (PostgreSQL), with ids taken from
/// the table's identity sequence first, since `COPY` answers no ids.
async fn copy_new_pairs(
    conn: &mut dyn SqlConn,
    stamp: &Stamp<'_>,
    pairs: &mut HashMap<PairKey, Pair>,
    new: &[PairKey],
) -> Result<()> {
    let n = i64::try_from(new.len()).map_err(Error::internal)?;
    let ids = conn
        .fetch_all(
            "SELECT nextval(pg_get_serial_sequence('tag_assignments', 'id')) AS id \
             FROM generate_series(1, $1)",
            &[n.into()],
        )
        .await
        .map_err(internal)?;
    if ids.len() != new.len() {
        return Err(Error::internal("the sequence gave too few ids"));
    }
    let mut data = String::with_capacity(new.len() * 160);
    let mut written = Vec::with_capacity(new.len());
    for (key, id) in new.iter().zip(&ids) {
        let id = id.int("id")?;
        let entity_id = ExternalId::of_assignment(stamp.org, key.user, key.group, stamp.now);
        let pair = &pairs[key];
        let value = pair.value.as_ref();
        crate::driver::copy_line(
            &mut data,
            &[
                id.into(),
                stamp.org.0.into(),
                key.user.into(),
                key.group.into(),
                value.and_then(TagValue::define_value).into(),
                value.and_then(TagValue::number_value).into(),
                value.and_then(TagValue::string_value).into(),
                stamp.executor.kind.as_str().into(),
                stamp.executor.id.into(),
                stamp.executor.name.as_str().into(),
                stamp.source.as_str().into(),
                pair.version.unwrap_or(0).into(),
                stamp.now.into(),
                stamp.now.into(),
                entity_id.as_str().into(),
                pair.deleted.into(),
                pair.expires_at.into(),
            ],
        );
        written.push((*key, id, entity_id));
    }
    let copy = format!("COPY tag_assignments (id, {NEW_PAIR_COLUMNS}) FROM STDIN");
    conn.copy_in(&copy, data.as_bytes())
        .await
        .map_err(internal)?;
    for (key, id, entity_id) in written {
        if let Some(pair) = pairs.get_mut(&key) {
            pair.id = Some(id);
            pair.entity_id = Some(entity_id);
            pair.ctime = stamp.now;
        }
    }
    Ok(())
}

/// Writes the final state of the changed pairs that had an assignment (live or deleted).
async fn update_existing_pairs(
    conn: &mut dyn SqlConn,
    stamp: &Stamp<'_>,
    pairs: &HashMap<PairKey, Pair>,
) -> Result<()> {
    let mut existing: Vec<(i64, &Pair)> = pairs
        .values()
        .filter(|p| p.changed && p.existed)
        .filter_map(|p| p.id.map(|id| (id, p)))
        .collect();
    existing.sort_unstable_by_key(|(id, _)| *id);
    for chunk in existing.chunks(CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("({})", row_params(7, 7, i).join(", ")))
            .collect();
        let sql = format!(
            "UPDATE tag_assignments SET define_value = v.column2, number_value = v.column3, \
             string_value = v.column4, version = v.column5, is_deleted = v.column6, \
             expires_at = v.column7, \
             executor_kind = $2, executor_ref = $3, executor_name = $4, source = $5, mtime = $6 \
             FROM (VALUES {}) AS v \
             WHERE tag_assignments.org_id = $1 AND tag_assignments.id = v.column1",
            values.join(", ")
        );
        let mut params = stamp.params();
        for (id, pair) in chunk {
            let value = pair.value.as_ref();
            params.extend::<[Param<'_>; 7]>([
                (*id).into(),
                value.and_then(TagValue::define_value).into(),
                value.and_then(TagValue::number_value).into(),
                value.and_then(TagValue::string_value).into(),
                pair.version.unwrap_or(0).into(),
                pair.deleted.into(),
                pair.expires_at.into(),
            ]);
        }
        conn.execute(&sql, &params).await.map_err(internal)?;
    }
    Ok(())
}

/// One change-log entry per change, in order.
fn record_changes(
    conn: &mut dyn SqlConn,
    stamp: &Stamp<'_>,
    pairs: &HashMap<PairKey, Pair>,
    changes: Vec<&Change>,
) -> Result<()> {
    for change in changes {
        let pair = pairs
            .get(&change.pair)
            .ok_or_else(|| Error::internal("a changed pair was not read"))?;
        let (Some(id), Some(entity_id)) = (pair.id, pair.entity_id.clone()) else {
            return Err(Error::internal("a changed pair has no assignment"));
        };
        let (at, executor, source) = match change.expired_at {
            Some(at) => (at, Executor::system(), Source::System),
            None => (stamp.now, stamp.executor.clone(), stamp.source),
        };
        let tag = TagChange {
            assignment_id: id,
            entity_id,
            user_ref: change.pair.user,
            group_ref: change.pair.group,
            value: change.new.clone(),
            expires_at: change.expires_at,
            old_value: change.old.clone(),
            version: change.version,
            ctime: pair.ctime,
            at,
            executor,
            source,
        };
        match change.expired_at {
            Some(_) => log::append_tag_expired(conn, stamp.org, tag)?,
            None => log::append_tag(conn, stamp.org, tag)?,
        }
    }
    Ok(())
}
