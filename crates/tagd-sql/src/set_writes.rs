//! A batch of coalesced single writes applied as sets, in a handful of statements whatever its
//! size.
//!
//! One at a time, a single assign is three statements (the group and the user, the pair's row,
//! its insert or update), and on PostgreSQL each is a round trip while the batch's transaction
//! holds its locks. Here, per organization of the batch:
//! 1. the groups the writes name are read (share-locked) and their users, one statement each;
//! 2. each write is checked as it would be alone (unknown group, unknown user, bad value or
//!    expiry: that write alone is refused, with the same error);
//! 3. the writes that passed go, in their order, through [`pairs::apply`] (the pairs read and
//!    row-locked at once, one multi-row insert, one multi-row update, the change-log entries),
//!    one call per run of writes by the same executor and door, since a stamp is shared.
//!
//! A v2 changeLabels among them is planned and written as alone (`labels.rs`, one pair write of
//! its own), in its place between the runs: it shares the transaction, its commit and (on
//! SQLite) the savepoint, not the statements.
//!
//! The outcome of each write is what it would have been alone: an assign always changes its
//! pair (API.md: every assign is a write, even with the same value), a removal of a pair with
//! no live value changes nothing and answers `None`.

use crate::coalesce::{LabelsCommand, Outcome, SingleWrite};
use crate::driver::{Locks, Param, SqlConn};
use crate::internal;
use crate::labels::change_labels;
use crate::pairs::{self, Applied, PairKey, PairWrite, Stamp};
use crate::records::{self, sql::GROUP_COLUMNS};
use crate::{log, tenants};
use std::collections::{HashMap, HashSet};
use tagd_core::assignments::value_to_assign;
use tagd_core::expiry::expiry_of_assignment;
use tagd_core::timefmt::now_unix;
use tagd_core::*;

/// One write of the batch.
pub(crate) struct Queued<'a> {
    pub org: OrgId,
    pub write: &'a SingleWrite,
}

/// What one write of the batch did.
pub(crate) struct Done {
    pub outcome: Result<Outcome>,
    /// Where its last change-log entry sits among the transaction's pending changes.
    pub logged_at: Option<usize>,
}

/// A write that passed its checks, ready for [`pairs::apply`].
struct Checked<'a> {
    job: usize,
    write: PairWrite,
    group: &'a TagGroup,
    user_id: &'a UserId,
    executor: &'a Executor,
    source: Source,
}

/// Applies `queued` in order inside the caller's transaction. An `Err` is a fault: the
/// transaction is to be rolled back.
pub(crate) async fn apply_all(
    conn: &mut dyn SqlConn,
    locks: Locks,
    queued: &[Queued<'_>],
) -> Result<Vec<Done>> {
    let mut done: Vec<Option<Done>> = queued.iter().map(|_| None).collect();
    let mut orgs: Vec<OrgId> = Vec::new();
    for q in queued {
        if !orgs.contains(&q.org) {
            orgs.push(q.org);
        }
    }
    for org in orgs {
        let mine: Vec<usize> = (0..queued.len())
            .filter(|&i| queued[i].org == org)
            .collect();
        let named: Vec<(&ExternalId, &UserId)> = mine
            .iter()
            .filter_map(|&i| names_of(queued[i].write))
            .collect();
        let (group_ids, user_ids): (Vec<&ExternalId>, Vec<&UserId>) = named.into_iter().unzip();
        let groups = read_groups(conn, locks.share, org, &group_ids).await?;
        let user_ids = distinct(user_ids.iter().map(|id| id.as_str()));
        let users = tenants::user_refs(conn, org, &user_ids, false).await?;
        let now = now_unix();
        // Pair writes gather into runs; a changeLabels (which plans its own writes) ends one,
        // so every write still applies in its order.
        let mut run: Vec<Checked<'_>> = Vec::new();
        for &job in &mine {
            if let SingleWrite::ChangeLabels(c) = queued[job].write {
                apply_run(conn, locks, org, &mut run, &mut done).await?;
                done[job] = Some(change_labels_in_batch(conn, locks, org, c).await?);
                continue;
            }
            match check(job, queued[job].write, &groups, &users, now) {
                Ok(write) => {
                    let same_stamp = run
                        .last()
                        .is_none_or(|r| r.executor == write.executor && r.source == write.source);
                    if !same_stamp {
                        apply_run(conn, locks, org, &mut run, &mut done).await?;
                    }
                    run.push(write);
                }
                Err(refusal) => {
                    done[job] = Some(Done {
                        outcome: Err(refusal),
                        logged_at: None,
                    })
                }
            }
        }
        apply_run(conn, locks, org, &mut run, &mut done).await?;
    }
    done.into_iter()
        .map(|d| d.ok_or_else(|| Error::internal("a coalesced write was not applied")))
        .collect()
}

/// Writes a run of checked pair writes (one executor and door) through [`pairs::apply`], and
/// empties it.
async fn apply_run(
    conn: &mut dyn SqlConn,
    locks: Locks,
    org: OrgId,
    run: &mut Vec<Checked<'_>>,
    done: &mut [Option<Done>],
) -> Result<()> {
    let Some(first) = run.first() else {
        return Ok(());
    };
    let stamp = Stamp::now(org, first.executor, first.source);
    let writes: Vec<PairWrite> = run.iter().map(|c| c.write.clone()).collect();
    let lock = locks.update_assignment;
    let applied = pairs::apply(conn, lock, &stamp, &writes, &HashSet::new()).await?;
    for (write, applied) in run.iter().zip(applied) {
        done[write.job] = Some(outcome_of(org, write, applied)?);
    }
    run.clear();
    Ok(())
}

/// A changeLabels among the batch's writes: planned and written as alone (`labels.rs`), its
/// refusal (an unknown customer) its own answer.
async fn change_labels_in_batch(
    conn: &mut dyn SqlConn,
    locks: Locks,
    org: OrgId,
    command: &LabelsCommand,
) -> Result<Done> {
    let before = log::pending(conn)?;
    let (user_id, change, executor) = (&command.user_id, &command.change, &command.executor);
    let outcome = match change_labels(conn, locks, (org, user_id), change, executor).await {
        Err(e) if e.is_fault() => return Err(e),
        outcome => outcome.map(Outcome::Labels),
    };
    let after = log::pending(conn)?;
    Ok(Done {
        outcome,
        logged_at: (after > before).then(|| after - 1),
    })
}

/// The group and user a pair write names; `None` for a changeLabels, which reads its own.
fn names_of(write: &SingleWrite) -> Option<(&ExternalId, &UserId)> {
    match write {
        SingleWrite::Assign(c) => Some((&c.tags_group_id, &c.user_id)),
        SingleWrite::Remove(c) => Some((&c.tags_group_id, &c.user_id)),
        SingleWrite::ChangeLabels(_) => None,
    }
}

/// The write's checks, in the order a write alone makes them.
fn check<'a>(
    job: usize,
    write: &'a SingleWrite,
    groups: &'a HashMap<ExternalId, TagGroup>,
    users: &HashMap<String, i64>,
    now: i64,
) -> Result<Checked<'a>> {
    let (group_id, user_id, executor, source) = match write {
        SingleWrite::Assign(c) => (&c.tags_group_id, &c.user_id, &c.executor, c.source),
        SingleWrite::Remove(c) => (&c.tags_group_id, &c.user_id, &c.executor, c.source),
        SingleWrite::ChangeLabels(_) => {
            return Err(Error::internal("a changeLabels checked as a pair write"))
        }
    };
    let group = groups.get(group_id).ok_or(Error::GroupNotFound)?;
    let user = *users.get(user_id.as_str()).ok_or(Error::UserNotFound)?;
    // An assign sets its value (and is a write even when equal); a removal clears it.
    let (value, expires_at) = match write {
        SingleWrite::Assign(c) => (
            Some(value_to_assign(group, &c.raw_value)?),
            expiry_of_assignment(c.expiry, group.expiry, now)?,
        ),
        _ => (None, None),
    };
    let write = PairWrite {
        key: PairKey {
            user,
            group: group.id,
        },
        attribute: group.attribute,
        rewrite: value.is_some(),
        value,
        expires_at,
    };
    Ok(Checked {
        job,
        write,
        group,
        user_id,
        executor,
        source,
    })
}

/// The answer a write alone would have given.
fn outcome_of(org: OrgId, checked: &Checked<'_>, applied: Applied) -> Result<Done> {
    let logged_at = applied.logged_at;
    let assignment = applied.state.map(|state| Assignment {
        org_id: org,
        id: state.id,
        entity_id: state.entity_id,
        user_id: checked.user_id.clone(),
        group_id: checked.group.id,
        tags_group_id: checked.group.entity_id.clone(),
        group_name: checked.group.name.clone(),
        variable_name: checked.group.variable_name.clone(),
        value: state.value,
        executor: checked.executor.clone(),
        source: checked.source,
        version: state.version,
        ctime: state.ctime,
        mtime: state.mtime,
        is_deleted: state.deleted,
        expires_at: state.expires_at,
    });
    let outcome = match checked.write.value {
        Some(_) => Outcome::Assigned(
            assignment.ok_or_else(|| Error::internal("an assign changed nothing"))?,
        ),
        None => Outcome::Removed(assignment),
    };
    Ok(Done {
        outcome: Ok(outcome),
        logged_at,
    })
}

/// The live groups of `ids`, share-locked as a write alone locks its group.
async fn read_groups(
    conn: &mut dyn SqlConn,
    share: &str,
    org: OrgId,
    ids: &[&ExternalId],
) -> Result<HashMap<ExternalId, TagGroup>> {
    let ids = distinct(ids.iter().map(|id| id.as_str()));
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT {GROUP_COLUMNS} FROM tag_groups \
         WHERE org_id = $1 AND entity_id IN ({}) AND NOT is_deleted {share}",
        crate::placeholders(2, ids.len())
    );
    let mut params: Vec<Param<'_>> = vec![org.0.into()];
    params.extend(ids.iter().map(|id| Param::from(*id)));
    let rows = conn.fetch_all(&sql, &params).await.map_err(internal)?;
    rows.iter()
        .map(|row| {
            let group = records::tag_group(row.as_ref())?;
            Ok((group.entity_id.clone(), group))
        })
        .collect()
}

/// The values in sorted order, each once (sorted so that concurrent batches lock in one
/// order).
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut values: Vec<&str> = values.collect();
    values.sort_unstable();
    values.dedup();
    values
}
