//! Crash safety of `tagd serve`, on SQLite always and on PostgreSQL when
//! `TAGD_TEST_POSTGRES_URL` is set (docs/RELIABILITY.md).
//!
//! A client streams keyed v5 assignments (write `i` assigns value `i` to user `u{i}` under
//! `Idempotency-Key: w{i}`, 8 in flight) while the server is killed with SIGKILL after a random
//! delay, round after round, on the same database. After each restart, and before new writes,
//! every write that was sent but not acknowledged is retried with the same key and body, and a
//! few acknowledged ones are sent again. A retry may find its key still claimed by the killed
//! process (409/40903, until the claim's lease (request timeout + 15 s: 45 s by default) runs out); such writes stay *pending*.
//!
//! Then, with the server stopped: the pending writes must have had no second effect and their
//! keys must still be open claims; their leases are made to expire (the one thing done to the
//! database behind tagd's back, standing for two minutes of waiting), a last server must apply
//! each of them once; and the store, opened directly, must hold every acknowledged write once,
//! with the responses the client saw recorded, in a database that passes its integrity checks.
//!
//! `TAGD_CRASH_SEED` overrides the seed of the kill delays (printed on every run); the order of
//! events inside a round still depends on timing, so a seed reproduces the schedule of kills,
//! not every interleaving.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sqlx::Connection;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagd_core::{CorpId, OrgId, Store, TagValue, UserId};
use tagd_store_tests::harness;

#[path = "../support/mod.rs"]
mod support;

mod checks;
mod events;
mod index;
mod run;

use checks::*;
use index::*;
use run::*;
use support::process::TagdProcess;

/// Users registered up front; write `i` targets user `u{i}`, so at most this many writes.
const USERS: usize = 20_000;
/// Rounds of start, retry, stream, SIGKILL.
const ROUNDS: usize = 20;
/// Keyed writes in flight at once.
const IN_FLIGHT: usize = 8;
/// Kill delay after the stream starts, in milliseconds (inclusive range).
const KILL_AFTER_MS: (u64, u64) = (20, 400);
/// Acknowledged writes sent again after each restart.
const REPLAYS_PER_ROUND: usize = 5;
const DEFAULT_SEED: u64 = 0x7a6d_c4a5_0001;
const ASSIGN: &str = "/api/v5/entity/user/tags/assign";

/// The backends' runs share two cores: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_sigkill_without_losing_or_repeating_a_write() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("crash.db").display());
    crash_test(&Db::Sqlite { url }, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_sigkill_without_losing_or_repeating_a_write() {
    let _serial = SERIAL.lock().await;
    let Some(fixture) = harness::postgres().await else {
        return;
    };
    let admin_url = std::env::var(harness::POSTGRES_URL_VAR).expect("set, since a fixture exists");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::Postgres {
        url: fixture.url.clone(),
        admin_url,
        store: fixture.store.clone(),
    };
    crash_test(&db, dir.path()).await;
    drop(db);
    fixture.cleanup().await;
}

/// What power-loss durability rests on, since SIGKILL cannot cut power: tagd's SQLite
/// connections fsync the WAL at every commit, and the PostgreSQL it runs on (through the URL
/// a tagd process uses) has `fsync`, `synchronous_commit` and `full_page_writes` on.
#[tokio::test]
async fn durability_settings_behind_power_loss_are_in_effect() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("settings.db").display());
    // Read on the writer connection itself: every write commits through it.
    let driver = tagd_sqlite::SqliteDriver::connect(&url)
        .await
        .expect("SQLite opens");
    let (synchronous, journal) = driver.writer_durability().await.expect("settings");
    driver.close().await;
    assert_eq!(
        (synchronous, journal.as_str()),
        (2, "wal"),
        "synchronous=FULL (2), WAL"
    );

    let Some(fixture) = harness::postgres().await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&fixture.url)
        .await
        .expect("PostgreSQL connects");
    for (setting, durable) in [
        ("fsync", &["on"][..]),
        (
            "synchronous_commit",
            &["on", "local", "remote_write", "remote_apply"][..],
        ),
        ("full_page_writes", &["on"][..]),
    ] {
        let value: String = sqlx::query_scalar(&format!("SHOW {setting}"))
            .fetch_one(&mut conn)
            .await
            .expect("setting");
        assert!(durable.contains(&value.as_str()), "{setting} = {value}");
    }
    conn.close().await.expect("closed");
    fixture.cleanup().await;
}

/// The database under test, as the test reaches it directly (never while a server runs).
enum Db {
    Sqlite {
        url: String,
    },
    Postgres {
        /// The fixture's URL: its own schema.
        url: String,
        /// `TAGD_TEST_POSTGRES_URL`, for the extension and the catalog.
        admin_url: String,
        store: Arc<dyn Store>,
    },
}

async fn crash_test(db: &Db, dir: &Path) {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut run = crash_rounds(db.name(), db.url(), dir, &mut rng, seed).await;

    // The writes left in flight by killed processes: no effect, keys still open claims.
    let org = db.org_id(&run.tenant.corp_id).await;
    let mut summary = Summary::default();
    check_pending(&run, &db.facts(org).await, &mut summary);
    // Their leases run out (as two minutes would do); a last server applies each once.
    let expired = db.expire_leases(org).await;
    assert_eq!(
        expired, run.pending_at_end,
        "one open claim per pending write"
    );
    let log = dir.join("after-lease.log");
    let server = start_server(db.url(), &log).await;
    run.logs.push(log);
    recover(&mut run, &server, &mut rng, true).await;
    stop(server).await;
    assert_eq!(run.pending(), 0, "every pending write resolved");
    assert_no_panics(&run);
    check_index_matches_sql(db.url(), &run, dir, &mut summary).await;

    // The store, opened directly, and the database beneath it.
    check_store(db, &run, org, &mut summary).await;
    let facts = db.facts(org).await;
    check_facts(&run, &facts, &mut summary);
    let integrity = db.integrity().await;
    eprintln!(
        "crash: backend={} rounds={} kills={} acknowledged={} retried={} lost={} duplicates={} \
         pending={} | seed={:#x} writes_sent={} retries: replayed={} applied={} in_flight_409={} \
         replays_checked={} pending_with_effect={} pending_applied_after_lease={} {} orphans={} \
         version_mismatches={} recorded_response_mismatches={} elapsed={:.1}s",
        db.name(),
        run.rounds,
        run.kills,
        run.acknowledged(),
        run.retried,
        summary.lost,
        summary.duplicates,
        run.pending_at_end,
        run.seed,
        run.sent(),
        run.retried_replayed,
        run.retried_applied,
        run.retried_in_flight,
        run.replays_checked,
        summary.pending_with_effect,
        run.pending_resolved,
        integrity,
        facts.orphans,
        facts.version_mismatches,
        summary.response_mismatches,
        run.started.elapsed().as_secs_f64(),
    );
    summary.assert_clean();
}
