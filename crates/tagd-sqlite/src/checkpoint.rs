//! Copies the WAL into the database file from its own connection, off the write path.
//!
//! SQLite's default (`wal_autocheckpoint=1000`) runs a checkpoint inside the `COMMIT` that
//! grows the WAL past 1,000 pages, and with group commit every waiting write waits for it.
//! The automatic checkpoint is off, and this thread runs a `PASSIVE` checkpoint every
//! [`CHECKPOINT_EVERY`] instead, which never blocks the writer or readers.
//!
//! SQLite starts the WAL over only when a write begins after a checkpoint that copied all of
//! it. Under writes that never pause, a passive checkpoint never catches up with the WAL's
//! end, so the WAL (and the wal-index SQLite maps into the process) grew without bound: 29 GB
//! of WAL and a resident set rising by 6–14 MB a minute in 15 minutes of the soak
//! (docs/RELIABILITY.md). A `TRUNCATE` checkpoint from this connection did not help: it needs
//! the write lock, and the writer took it again before each of its tries. So once the WAL
//! holds more than [`RESTART_ABOVE_BYTES`], this thread raises a flag, and the writer itself
//! (`group_commit.rs`) copies the rest right after its next commit ([`copy_whole_wal`]): only
//! the frames since this thread's last copy, so writes wait for little more than one fsync.
//! `journal_size_limit` then trims the file to that size when the WAL starts over.

use crate::rows::Conn;
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagd_core::{Error, Result};

/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// How often while the WAL waits for the writer's copy.
const CATCH_UP_EVERY: Duration = Duration::from_millis(10);
/// The WAL size past which the writer copies it whole, so that it starts over.
pub(crate) const RESTART_ABOVE_BYTES: i64 = 128 << 20;
const _: () = assert!(
    RESTART_ABOVE_BYTES == 134_217_728,
    "journal_size_limit in SETTINGS"
);

pub(crate) struct Checkpointer {
    stop: Arc<AtomicBool>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Checkpointer {
    /// Ends the thread after its current round.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Checkpoints `path` every [`CHECKPOINT_EVERY`]; raises `wal_too_long` when the
    /// writer should copy the whole WAL.
    pub(crate) fn start(path: &PathBuf, wal_too_long: Arc<AtomicBool>) -> Result<Self> {
        let mut conn = Conn::new(Connection::open(path).map_err(Error::internal)?);
        conn.batch(&crate::settings_sql())
            .map_err(Error::internal)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut pause = CHECKPOINT_EVERY;
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(pause);
                    pause = CHECKPOINT_EVERY;
                    match wal_bytes_after_passive(&conn.0) {
                        Ok(bytes) if bytes > RESTART_ABOVE_BYTES => {
                            wal_too_long.store(true, Ordering::Relaxed);
                            // Until the writer has copied the rest, keep the rest small:
                            // the writes queued behind its copy wait for that much.
                            pause = CATCH_UP_EVERY;
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
                    }
                }
            })
            .map_err(Error::internal)?;
        Ok(Checkpointer { stop })
    }
}

/// Runs a passive checkpoint; answers the WAL's size in bytes (its frames since it last
/// started over, times the page size).
fn wal_bytes_after_passive(conn: &Connection) -> rusqlite::Result<i64> {
    let frames: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    Ok(frames.max(0) * page_size)
}

/// Copies what the WAL holds beyond the checkpointer's last copy, from the writer's own
/// connection between two of its transactions: with no write in between, the WAL is then
/// copied whole and the next write starts it over from its beginning. Passive: it never
/// waits; a reader of an older snapshot (a long export) can keep it from copying all, in
/// which case it answers false. Nothing else waits for it but the writes queued behind it.
pub(crate) fn copy_whole_wal(conn: &Connection) -> WalCopy {
    let started = Instant::now();
    let outcome = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
        ))
    });
    match outcome {
        Ok((0, frames, copied)) if frames == copied => {
            tracing::debug!(
                took_ms = started.elapsed().as_millis() as u64,
                frames,
                "WAL copied whole: the next write starts it over"
            );
            WalCopy::Whole
        }
        // The checkpointer's own copy was running: the next commit tries again.
        Ok((busy, ..)) if busy != 0 => WalCopy::Again,
        Ok((_, frames, copied)) => {
            tracing::info!(
                frames,
                copied,
                "WAL not copied whole: a reader of an older snapshot held on; trying again later"
            );
            WalCopy::ReaderHeld
        }
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpoint by the writer failed");
            WalCopy::ReaderHeld
        }
    }
}

/// What [`copy_whole_wal`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WalCopy {
    /// Copied whole: the next write starts the WAL over.
    Whole,
    /// Another checkpoint was running: try again after the next commit.
    Again,
    /// A reader of an older snapshot kept it from copying all: try again later.
    ReaderHeld,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer writing 4 KiB rows without pause (copying the whole WAL after a write when the
    /// flag says so, as the group writer does), while a checkpointer runs passive
    /// checkpoints every 20 ms for `rounds` rounds and raises the flag past `limit` bytes.
    /// Answers (the most the WAL file held after a round, bytes written).
    fn wal_under_endless_writes(limit: Option<i64>, rounds: usize) -> (u64, u64) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("wal.db");
        let setup = |conn: &Connection| {
            conn.execute_batch(&crate::settings_sql())
                .expect("settings");
            // Faster writes for the test; the WAL grows the same.
            conn.execute_batch("PRAGMA synchronous = OFF;")
                .expect("synchronous");
        };
        let writer = Connection::open(&path).expect("writer");
        setup(&writer);
        writer
            .execute_batch("CREATE TABLE t (x BLOB)")
            .expect("table");
        let checkpointer = Connection::open(&path).expect("checkpointer");
        setup(&checkpointer);
        let (stop, too_long) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (stopped, copy_now) = (stop.clone(), too_long.clone());
        let written = std::thread::spawn(move || {
            let blob = vec![7u8; 4096];
            let mut written = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                writer
                    .execute("INSERT INTO t (x) VALUES (?1)", [&blob])
                    .expect("insert");
                written += blob.len() as u64;
                if copy_now.swap(false, Ordering::Relaxed) {
                    copy_whole_wal(&writer);
                }
            }
            written
        });
        let wal = path.with_extension("db-wal");
        let mut most = 0;
        for _ in 0..rounds {
            std::thread::sleep(Duration::from_millis(20));
            let bytes = wal_bytes_after_passive(&checkpointer).expect("checkpoint");
            if limit.is_some_and(|limit| bytes > limit) {
                too_long.store(true, Ordering::Relaxed);
            }
            most = most.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
        stop.store(true, Ordering::Relaxed);
        (most, written.join().expect("writer ran"))
    }

    #[test]
    fn under_writes_that_never_pause_the_writer_keeps_the_wal_near_its_limit() {
        let limit = 1 << 20;
        let (most, written) = wal_under_endless_writes(Some(limit), 100);
        assert!(written > 16 * (limit as u64), "wrote only {written} bytes");
        assert!(
            most < written / 4,
            "the WAL reached {most} bytes of {written} written"
        );
    }

    #[test]
    fn passive_checkpoints_alone_let_the_wal_grow_with_endless_writes() {
        // Why the writer's copy exists: without it the WAL never starts over.
        let (most, written) = wal_under_endless_writes(None, 100);
        assert!(
            most > written / 2,
            "the WAL held {most} bytes of {written} written"
        );
    }
}
