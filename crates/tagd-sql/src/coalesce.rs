//! Coalesced single writes: concurrent single assigns, removals and v2 changeLabels share one
//! transaction.
//!
//! A single assign alone is a transaction of its own: `BEGIN`, three statements, the change-log
//! insert and `COMMIT`, and on PostgreSQL each writer share-locks the tag group row, which for
//! many concurrent writers of one group means a new MultiXact per locker. Here a write that
//! carries no idempotency key is queued instead; a few batch tasks (the driver's
//! [`Driver::coalesced_batches`]) each take everything queued, apply the writes in one
//! transaction as sets (`set_writes.rs`: a few statements per batch, not three per write),
//! write their change-log entries with one insert, commit once, and only then answer each
//! write. Under load many writes share a commit and a group lock; alone,
//! a write runs at once in a batch of one, so nothing waits for a timer.
//!
//! Failures stay per write. A write refused by the rules (unknown group, bad value) made no
//! change and is answered with its refusal while the others commit. A database error before
//! the commit rolls the batch back and every write of it runs again alone, so it gets its own
//! real outcome (unless no connection could be had at all: then nothing ran, and every write
//! is answered "busy" at once instead of waiting for a connection again, one after another);
//! a failed commit is not retried (it may have committed), it is the answer of every write in
//! it, as for a write alone.
//!
//! A queued write belongs to a request with a deadline: the batch starts it only through
//! [`Recorder::begin_commit`], which fails once the deadline gave the request up, and from then
//! on the deadline waits for its real outcome (see `tagd-http`'s gate).

use crate::assignments::{assign, remove};
use crate::driver::{Driver, Locks, SqlTx};
use crate::labels::change_labels;
use crate::log::{self, WriteTx};
use crate::set_writes::{self, Queued};
use crate::{internal, SqlStore};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tagd_core::labels::{LabelChange, LabelWarning};
use tagd_core::log::LogEntry;
use tagd_core::*;
use tokio::sync::oneshot;

/// Writes a batch takes at most; more wait for the next batch.
const MAX_BATCH: usize = 128;

/// A removal of one user's tag.
#[derive(Debug, Clone)]
pub(crate) struct RemoveCommand {
    pub tags_group_id: ExternalId,
    pub user_id: UserId,
    pub executor: Executor,
    pub source: Source,
}

/// A v2 changeLabels of one customer.
#[derive(Debug, Clone)]
pub(crate) struct LabelsCommand {
    pub user_id: UserId,
    pub change: LabelChange,
    pub executor: Executor,
}

/// A write that may share a transaction with others.
pub(crate) enum SingleWrite {
    Assign(AssignCommand),
    Remove(RemoveCommand),
    ChangeLabels(LabelsCommand),
}

/// What a [`SingleWrite`] answers.
pub(crate) enum Outcome {
    Assigned(Assignment),
    Removed(Option<Assignment>),
    Labels(Vec<LabelWarning>),
}

struct Job {
    org: OrgId,
    write: SingleWrite,
    record: Recorder<()>,
    answer: oneshot::Sender<Result<Outcome>>,
}

/// The queue of writes and how many batch tasks run it.
#[derive(Default)]
pub(crate) struct Coalescer {
    queue: Mutex<VecDeque<Job>>,
    running: AtomicUsize,
}

impl Coalescer {
    fn take(&self) -> Vec<Job> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let n = queue.len().min(MAX_BATCH);
        queue.drain(..n).collect()
    }

    fn is_empty(&self) -> bool {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Takes a batch slot if one is free.
    fn claim_slot(&self, max: usize) -> bool {
        let mut running = self.running.load(Ordering::SeqCst);
        while running < max {
            match self.running.compare_exchange(
                running,
                running + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(now) => running = now,
            }
        }
        false
    }
}

/// Gives the request's queued write up when the request stops waiting for it.
struct GiveUpOnDrop<'a, T> {
    record: &'a Recorder<T>,
    answered: bool,
}

impl<T> Drop for GiveUpOnDrop<'_, T> {
    fn drop(&mut self) {
        if !self.answered {
            self.record.abandon();
        }
    }
}

/// How a batch went wrong.
enum BatchError {
    /// No connection (or transaction) could be had: nothing ran.
    NoConnection(Error),
    /// Before the commit: rolled back, nothing of it happened; each write may run again.
    RolledBack(Error),
    /// The commit itself: its outcome is the answer.
    Commit(Error),
}

/// What a [`SingleWrite`] of each kind answers, taken out of its [`Outcome`].
pub(crate) trait SingleOutcome: Sized {
    fn from_outcome(outcome: Outcome) -> Result<Self>;
}

impl SingleOutcome for Assignment {
    fn from_outcome(outcome: Outcome) -> Result<Self> {
        match outcome {
            Outcome::Assigned(assignment) => Ok(assignment),
            _ => Err(Error::internal("an assign answered as another write")),
        }
    }
}

impl SingleOutcome for Option<Assignment> {
    fn from_outcome(outcome: Outcome) -> Result<Self> {
        match outcome {
            Outcome::Removed(removed) => Ok(removed),
            _ => Err(Error::internal("a removal answered as another write")),
        }
    }
}

impl SingleOutcome for Vec<LabelWarning> {
    fn from_outcome(outcome: Outcome) -> Result<Self> {
        match outcome {
            Outcome::Labels(warnings) => Ok(warnings),
            _ => Err(Error::internal("a changeLabels answered as another write")),
        }
    }
}

impl<D: Driver> SqlStore<D> {
    /// Runs `write` in a shared transaction when the driver coalesces and the request claimed
    /// no idempotency key, otherwise in a transaction of its own.
    pub(crate) async fn single_write<T: SingleOutcome + Send + Sync>(
        &self,
        org: OrgId,
        write: SingleWrite,
        record: &Recorder<T>,
    ) -> Result<T> {
        let max = self.driver.coalesced_batches();
        if let Some(detached) = record.detach().filter(|_| max > 0) {
            let outcome = self.coalesced(org, write, detached, record, max).await?;
            return T::from_outcome(outcome);
        }
        let locks = self.driver.locks();
        in_write!(self, record, |tx| {
            T::from_outcome(run_one(&mut tx, locks, org, &write).await?)?
        })
    }

    async fn coalesced<T>(
        &self,
        org: OrgId,
        write: SingleWrite,
        detached: Recorder<()>,
        record: &Recorder<T>,
        max: usize,
    ) -> Result<Outcome> {
        let (answer, answered) = oneshot::channel();
        self.coalescer
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(Job {
                org,
                write,
                record: detached,
                answer,
            });
        if self.coalescer.claim_slot(max) {
            tokio::spawn(self.clone().drain(max));
        }
        let mut waiting = GiveUpOnDrop {
            record,
            answered: false,
        };
        let outcome = answered
            .await
            .unwrap_or_else(|_| Err(Error::internal("the write batch stopped")));
        waiting.answered = true;
        outcome
    }

    /// One batch task: batches until the queue is empty.
    async fn drain(self, max: usize) {
        loop {
            let jobs = self.coalescer.take();
            if jobs.is_empty() {
                self.coalescer.running.fetch_sub(1, Ordering::SeqCst);
                // A write queued after the take may have found every slot taken.
                if !self.coalescer.is_empty() && self.coalescer.claim_slot(max) {
                    continue;
                }
                return;
            }
            self.run_batch(jobs).await;
        }
    }

    async fn run_batch(&self, jobs: Vec<Job>) {
        // A write whose request was given up is dropped here, unrun.
        let jobs: Vec<Job> = jobs
            .into_iter()
            .filter(|j| j.record.begin_commit())
            .collect();
        if jobs.is_empty() {
            return;
        }
        match self.try_batch_retrying(&jobs).await {
            Ok(outcomes) => answer_all(jobs, outcomes),
            // No connection to be had (the database unreachable): running each write alone
            // would wait for one again, write after write, past the requests' deadlines;
            // nothing ran, so every write is answered with that at once.
            Err(BatchError::NoConnection(e)) => {
                for job in jobs {
                    answer(job, Err(e.clone()));
                }
            }
            Err(BatchError::RolledBack(e)) if jobs.len() > 1 => {
                tracing::debug!(cause = %e, writes = jobs.len(), "a write batch rolled back: its writes run alone");
                for job in jobs {
                    let alone = std::slice::from_ref(&job);
                    let outcome = match self.try_batch_retrying(alone).await {
                        Ok(mut outcomes) => outcomes
                            .pop()
                            .unwrap_or_else(|| Err(Error::internal("a batch lost its write"))),
                        Err(
                            BatchError::NoConnection(e)
                            | BatchError::RolledBack(e)
                            | BatchError::Commit(e),
                        ) => Err(e),
                    };
                    answer(job, outcome);
                }
            }
            Err(BatchError::RolledBack(e) | BatchError::Commit(e)) => {
                for job in jobs {
                    answer(job, Err(e.clone()));
                }
            }
        }
    }

    /// [`Self::try_batch`], run again while the database rolls it back for a conflict.
    async fn try_batch_retrying(&self, jobs: &[Job]) -> Result<Vec<Result<Outcome>>, BatchError> {
        let mut conflicts = 0;
        loop {
            match self.try_batch(jobs).await {
                Err(BatchError::RolledBack(e))
                    if crate::conflicts::retry(&e, &mut conflicts).await => {}
                outcome => return outcome,
            }
        }
    }

    /// Runs `jobs` in one transaction, as sets ([`crate::set_writes`]); their outcomes in order
    /// once it committed.
    async fn try_batch(&self, jobs: &[Job]) -> Result<Vec<Result<Outcome>>, BatchError> {
        let locks = self.driver.locks();
        let mut tx = self.write().await.map_err(BatchError::NoConnection)?;
        let queued: Vec<Queued<'_>> = jobs
            .iter()
            .map(|job| Queued {
                org: job.org,
                write: &job.write,
            })
            .collect();
        let done = set_writes::apply_all(&mut tx, locks, &queued)
            .await
            .map_err(BatchError::RolledBack)?;
        let pending_orgs = tx.pending_orgs();
        let scheme = self.driver.version_scheme();
        let written = log::flush(&mut tx, scheme)
            .await
            .map_err(BatchError::RolledBack)?;
        Box::new(tx)
            .commit()
            .await
            .map_err(|e| BatchError::Commit(internal(e)))?;
        self.announce(&written);
        let logged_at: Vec<Option<usize>> = done.iter().map(|d| d.logged_at).collect();
        report_versions(jobs, &logged_at, &pending_orgs, &written);
        Ok(done.into_iter().map(|d| d.outcome).collect())
    }
}

async fn run_one(
    tx: &mut WriteTx,
    locks: Locks,
    org: OrgId,
    write: &SingleWrite,
) -> Result<Outcome> {
    match write {
        SingleWrite::Assign(command) => {
            assign(tx, locks, org, command).await.map(Outcome::Assigned)
        }
        SingleWrite::Remove(command) => remove(tx, locks, org, command).await.map(Outcome::Removed),
        SingleWrite::ChangeLabels(c) => {
            change_labels(tx, locks, (org, &c.user_id), &c.change, &c.executor)
                .await
                .map(Outcome::Labels)
        }
    }
}

/// Tells each write the version of its last change-log entry. `logged_at` is that entry's
/// place among the transaction's changes, whose organizations `pending_orgs` lists; the flush
/// keeps each organization's changes in that order.
fn report_versions(
    jobs: &[Job],
    logged_at: &[Option<usize>],
    pending_orgs: &[OrgId],
    written: &[(OrgId, Vec<LogEntry>)],
) {
    let mut seen: HashMap<OrgId, usize> = HashMap::new();
    let place_in_org: Vec<usize> = pending_orgs
        .iter()
        .map(|org| {
            let n = seen.entry(*org).or_default();
            *n += 1;
            *n - 1
        })
        .collect();
    for (job, at) in jobs.iter().zip(logged_at) {
        let Some(&place) = at.and_then(|at| place_in_org.get(at)) else {
            continue;
        };
        let last = written
            .iter()
            .find(|(org, _)| *org == job.org)
            .and_then(|(_, entries)| entries.get(place));
        if let Some(entry) = last {
            job.record.committed_version(entry.version);
        }
    }
}

fn answer_all(jobs: Vec<Job>, outcomes: Vec<Result<Outcome>>) {
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        answer(job, outcome);
    }
}

fn answer(job: Job, outcome: Result<Outcome>) {
    job.record.committing(false);
    // A request that stopped waiting gets no answer; its write stands or fell as reported.
    let _ = job.answer.send(outcome);
}
