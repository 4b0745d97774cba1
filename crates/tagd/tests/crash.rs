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
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagd_core::{ExternalId, OrgId, Store, TagValue, UserId};
use tagd_store_tests::harness;

const ADMIN_TOKEN: &str = "crash-test-token-0123456789abcdef0123";
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
    server.terminate().await;
    assert_eq!(run.pending(), 0, "every pending write resolved");
    assert_no_panics(&run);

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

// --- the server process ------------------------------------------------------------------

struct Server {
    child: Child,
    address: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `tagd serve` on `database`, its output in `log`; returns once it listens.
async fn start_server(database: &str, log: &Path) -> Server {
    let port = free_port();
    let out = File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tagd"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            database,
            // The test writes as fast as it can; the rate limit is not what it tests.
            "--rate-limit-per-sec",
            "1000000",
            "--rate-limit-burst",
            "1000000",
        ])
        .env("TAGD_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("TAGD_LOG_FORMAT", "json")
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("tagd serve starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Server {
                child,
                address: format!("http://127.0.0.1:{port}"),
            };
        }
        if let Some(status) = child.try_wait().expect("wait") {
            panic!(
                "tagd serve exited with {status} before listening:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("tagd serve did not listen within 30 s");
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// `kill -KILL <pid>`, then reaps it.
    fn sigkill(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -KILL {pid}");
        let status = self.child.wait().expect("wait");
        assert!(!status.success(), "killed, not exited: {status}");
    }

    /// SIGTERM, and a clean exit.
    async fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "SIGTERM drains and exits 0: {status}");
                return;
            }
            assert!(Instant::now() < deadline, "tagd did not stop on SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A client for a server that may vanish: short timeouts, a new pool per server.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()
        .expect("HTTP client")
}

// --- the run -----------------------------------------------------------------------------

/// What the organization and its credentials are.
#[derive(Clone)]
struct Tenant {
    corp_id: String,
    app_id: String,
    token: String,
    group: String,
}

/// Where one logical write stands, as the client knows it.
#[derive(Debug, Clone, PartialEq)]
enum Write {
    /// Not sent yet.
    Unsent,
    /// The connection was refused: the server never saw it.
    NotDelivered,
    /// Sent, but no answer came (the server died).
    Unanswered,
    /// Answered 200, code 0; the body as received.
    Acknowledged(Vec<u8>),
    /// Its retry answered 409/40903: the killed process left the key claimed.
    Pending,
}

struct Run {
    seed: u64,
    started: Instant,
    tenant: Tenant,
    writes: Vec<Write>,
    rounds: usize,
    kills: usize,
    retried: usize,
    retried_replayed: usize,
    retried_applied: usize,
    retried_in_flight: usize,
    replays_checked: usize,
    /// Writes still in flight (409/40903) after the last restart of the crash rounds.
    pending_at_end: usize,
    /// Pending writes applied once their lease expired.
    pending_resolved: usize,
    logs: Vec<PathBuf>,
}

impl Run {
    fn sent(&self) -> usize {
        self.writes.iter().filter(|w| **w != Write::Unsent).count()
    }
    fn acknowledged(&self) -> usize {
        self.writes
            .iter()
            .filter(|w| matches!(w, Write::Acknowledged(_)))
            .count()
    }
    fn pending(&self) -> usize {
        self.writes.iter().filter(|w| **w == Write::Pending).count()
    }
}

fn seed() -> u64 {
    match std::env::var("TAGD_CRASH_SEED") {
        Ok(raw) => {
            let raw = raw.trim();
            let parsed = match raw.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => raw.parse(),
            };
            parsed.expect("TAGD_CRASH_SEED is a number")
        }
        Err(_) => DEFAULT_SEED,
    }
}

/// The exact body of write `i`, sent the same way every time.
fn write_body(tenant: &Tenant, i: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "corp_id": tenant.corp_id,
        "tags_group_id": tenant.group,
        "user_id": format!("u{i}"),
        "value": i.to_string(),
    }))
    .expect("JSON")
}

fn keyed_write(
    client: &reqwest::Client,
    server_url: &str,
    tenant: &Tenant,
    i: usize,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{server_url}{ASSIGN}"))
        .bearer_auth(&tenant.token)
        .header("X-APP-ID", &tenant.app_id)
        .header("content-type", "application/json")
        .header("Idempotency-Key", format!("w{i}"))
        .body(write_body(tenant, i))
}

/// Status, `code` of the v5 envelope, raw body, and whether the gate says it replayed.
struct Answer {
    status: u16,
    code: Option<i64>,
    body: Vec<u8>,
    replayed: bool,
}

async fn answer(response: reqwest::Response) -> reqwest::Result<Answer> {
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let body = response.bytes().await?.to_vec();
    let code = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["code"].as_i64());
    Ok(Answer {
        status,
        code,
        body,
        replayed,
    })
}

/// POST with the org's token; the answer, which must be 200 / code 0.
async fn v5_ok(
    client: &reqwest::Client,
    server: &Server,
    tenant: &Tenant,
    path: &str,
    body: Value,
) -> Value {
    let response = client
        .post(server.url(path))
        .bearer_auth(&tenant.token)
        .header("X-APP-ID", &tenant.app_id)
        .json(&body)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(
        (status.as_u16(), &answer["code"]),
        (200, &json!(0)),
        "{path}: {answer}"
    );
    answer
}

async fn admin_post(client: &reqwest::Client, server: &Server, path: &str, body: Value) -> Value {
    let response = client
        .post(server.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 201, "{path}");
    response.json().await.expect("JSON")
}

/// Organization, app, token, a `number` group, and [`USERS`] users, through a first server.
async fn set_up(server: &Server) -> Tenant {
    let client = client();
    let org = admin_post(&client, server, "/admin/v1/orgs", json!({"name": "Crash"})).await;
    let corp_id = org["corp_id"].as_str().expect("corp_id").to_owned();
    let app = admin_post(
        &client,
        server,
        &format!("/admin/v1/orgs/{corp_id}/apps"),
        json!({"name": "crash client"}),
    )
    .await;
    let app_id = app["app_id"].as_str().expect("app_id").to_owned();
    let secret = app["app_secret"].as_str().expect("app_secret").to_owned();
    let response = client
        .post(server.url("/api/v5/auth/token"))
        .json(&json!({"app_id": app_id, "app_secret": secret}))
        .send()
        .await
        .expect("request sent");
    let token: Value = response.json().await.expect("JSON");
    let mut tenant = Tenant {
        corp_id: corp_id.clone(),
        app_id,
        token: token["data"]["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        group: String::new(),
    };
    let group = v5_ok(
        &client,
        server,
        &tenant,
        "/api/v5/entity/tags/group/create",
        json!({
            "name": "Crash counter", "variable_name": "crash_counter", "description": "",
            "attribute": "number", "category": "crash", "corp_id": corp_id,
        }),
    )
    .await;
    tenant.group = group["data"]["tags_group_id"]
        .as_str()
        .expect("tags_group_id")
        .to_owned();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (client, tenant, next) = (client.clone(), tenant.clone(), next.clone());
        let address = server.address.clone();
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= USERS {
                    return;
                }
                let response = client
                    .post(format!("{address}/api/v5/user/create"))
                    .bearer_auth(&tenant.token)
                    .header("X-APP-ID", &tenant.app_id)
                    .json(&json!({"corp_id": tenant.corp_id, "user_id": format!("u{i}")}))
                    .send()
                    .await
                    .expect("request sent");
                assert_eq!(response.status(), 200, "user/create u{i}");
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("user worker");
    }
    tenant
}

/// What one streamed write came to.
enum Outcome {
    Acknowledged(Vec<u8>),
    NotDelivered,
    Unanswered,
    Unexpected(u16, String),
}

async fn send_streamed(
    client: &reqwest::Client,
    address: &str,
    tenant: &Tenant,
    i: usize,
) -> Outcome {
    match keyed_write(client, address, tenant, i).send().await {
        Err(e) if e.is_connect() => Outcome::NotDelivered,
        Err(_) => Outcome::Unanswered,
        Ok(response) => match answer(response).await {
            Err(_) => Outcome::Unanswered,
            Ok(a) if a.status == 200 && a.code == Some(0) => Outcome::Acknowledged(a.body),
            Ok(a) => Outcome::Unexpected(a.status, String::from_utf8_lossy(&a.body).into_owned()),
        },
    }
}

/// After a restart, before new writes: every write sent but not acknowledged again, same key
/// and body; then a few acknowledged ones, which must come back byte for byte. A 409/40903 is
/// accepted only for a write that reached the killed server, and only while leases can still
/// run (`leases_expired` false).
async fn recover(run: &mut Run, server: &Server, rng: &mut StdRng, leases_expired: bool) {
    let client = client();
    let open: Vec<usize> = (0..run.writes.len())
        .filter(|&i| {
            matches!(
                run.writes[i],
                Write::NotDelivered | Write::Unanswered | Write::Pending
            )
        })
        .collect();
    for i in open {
        let response = keyed_write(&client, &server.address, &run.tenant, i)
            .send()
            .await
            .unwrap_or_else(|e| panic!("retry of w{i} to a running server: {e}"));
        let a = answer(response).await.expect("retry answer");
        run.retried += 1;
        let was = run.writes[i].clone();
        match (a.status, a.code) {
            (200, Some(0)) => {
                if a.replayed {
                    run.retried_replayed += 1;
                } else {
                    run.retried_applied += 1;
                }
                if was == Write::Pending {
                    run.pending_resolved += 1;
                }
                run.writes[i] = Write::Acknowledged(a.body);
            }
            (409, Some(40903)) => {
                assert!(
                    matches!(was, Write::Unanswered | Write::Pending),
                    "w{i} never reached a server ({was:?}) yet its key is in flight"
                );
                assert!(
                    !leases_expired,
                    "w{i}: its claim's lease expired, yet it is still in flight"
                );
                run.retried_in_flight += 1;
                run.writes[i] = Write::Pending;
            }
            (status, code) => panic!(
                "retry of w{i} ({was:?}) answered {status} code {code:?}: {}",
                String::from_utf8_lossy(&a.body)
            ),
        }
    }
    let mut acknowledged: Vec<usize> = (0..run.writes.len())
        .filter(|&i| matches!(run.writes[i], Write::Acknowledged(_)))
        .collect();
    acknowledged.shuffle(rng);
    for &i in acknowledged.iter().take(REPLAYS_PER_ROUND) {
        let Write::Acknowledged(first) = &run.writes[i] else {
            unreachable!("filtered above");
        };
        let response = keyed_write(&client, &server.address, &run.tenant, i)
            .send()
            .await
            .unwrap_or_else(|e| panic!("replay of w{i} to a running server: {e}"));
        let a = answer(response).await.expect("replay answer");
        assert_eq!(a.status, 200, "replay of acknowledged w{i}");
        assert_eq!(
            String::from_utf8_lossy(&a.body),
            String::from_utf8_lossy(first),
            "replay of w{i} is the first response byte for byte"
        );
        run.replays_checked += 1;
    }
}

/// Streams new writes at `server` and SIGKILLs it after `delay`.
async fn stream_and_kill(run: &mut Run, server: Server, delay: Duration) {
    let client = client();
    let first = run
        .writes
        .iter()
        .position(|w| *w == Write::Unsent)
        .unwrap_or(USERS);
    let next = Arc::new(AtomicUsize::new(first));
    let killed = Arc::new(AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (client, tenant) = (client.clone(), run.tenant.clone());
        let (next, killed, address) = (next.clone(), killed.clone(), server.address.clone());
        workers.spawn(async move {
            let mut outcomes = Vec::new();
            while !killed.load(Ordering::SeqCst) {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= USERS {
                    break;
                }
                outcomes.push((i, send_streamed(&client, &address, &tenant, i).await));
            }
            outcomes
        });
    }
    tokio::time::sleep(delay).await;
    server.sigkill();
    killed.store(true, Ordering::SeqCst);
    run.kills += 1;
    let mut unexpected = Vec::new();
    while let Some(done) = workers.join_next().await {
        for (i, outcome) in done.expect("stream worker") {
            assert_eq!(
                run.writes[i],
                Write::Unsent,
                "w{i} is sent once while streaming"
            );
            run.writes[i] = match outcome {
                Outcome::Acknowledged(body) => Write::Acknowledged(body),
                Outcome::NotDelivered => Write::NotDelivered,
                Outcome::Unanswered => Write::Unanswered,
                Outcome::Unexpected(status, body) => {
                    unexpected.push(format!("w{i}: {status} {body}"));
                    Write::Unanswered
                }
            };
        }
    }
    assert!(
        unexpected.is_empty(),
        "unexpected answers while streaming: {unexpected:?}"
    );
}

/// Set-up, then [`ROUNDS`] rounds of restart, recovery, stream and SIGKILL, then a last
/// restart that recovers and stops cleanly.
async fn crash_rounds(backend: &str, url: &str, logs: &Path, rng: &mut StdRng, seed: u64) -> Run {
    eprintln!("crash: backend={backend} seed={seed:#x} (TAGD_CRASH_SEED to override)");
    let started = Instant::now();
    let log = logs.join("setup.log");
    let server = start_server(url, &log).await;
    let tenant = set_up(&server).await;
    server.terminate().await;
    let mut run = Run {
        seed,
        started,
        tenant,
        writes: vec![Write::Unsent; USERS],
        rounds: 0,
        kills: 0,
        retried: 0,
        retried_replayed: 0,
        retried_applied: 0,
        retried_in_flight: 0,
        replays_checked: 0,
        pending_at_end: 0,
        pending_resolved: 0,
        logs: vec![log],
    };
    for round in 0..ROUNDS {
        let log = logs.join(format!("round-{round:02}.log"));
        let server = start_server(url, &log).await;
        run.logs.push(log);
        recover(&mut run, &server, rng, false).await;
        let delay = Duration::from_millis(rng.gen_range(KILL_AFTER_MS.0..=KILL_AFTER_MS.1));
        stream_and_kill(&mut run, server, delay).await;
        run.rounds += 1;
    }
    let log = logs.join("final.log");
    let server = start_server(url, &log).await;
    run.logs.push(log);
    recover(&mut run, &server, rng, false).await;
    server.terminate().await;
    run.pending_at_end = run.pending();
    assert!(
        run.sent() < USERS,
        "every user was written: raise USERS so the last rounds still stream"
    );
    run
}

fn assert_no_panics(run: &Run) {
    for log in &run.logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        assert!(
            !text.contains("panicked"),
            "tagd panicked ({}):\n{text}",
            log.display()
        );
    }
}

// --- verification ------------------------------------------------------------------------

#[derive(Default)]
struct Summary {
    lost: usize,
    duplicates: usize,
    pending_with_effect: usize,
    response_mismatches: usize,
    problems: Vec<String>,
}

impl Summary {
    fn problem(&mut self, text: String) {
        self.problems.push(text);
    }

    fn assert_clean(&self) {
        assert!(
            self.problems.is_empty(),
            "{} problem(s): lost={} duplicates={} recorded_response_mismatches={}\n{}",
            self.problems.len(),
            self.lost,
            self.duplicates,
            self.response_mismatches,
            self.problems.join("\n")
        );
    }
}

/// Facts read with SQL while no server runs.
struct Facts {
    /// Assignments whose user or group is missing.
    orphans: i64,
    /// Assignments whose version is not their history count minus one.
    version_mismatches: i64,
    /// History entries per user id (`u{i}`).
    history: BTreeMap<String, i64>,
    /// Idempotency keys of the organization: key → (status, body).
    keys: BTreeMap<String, (Option<i64>, Option<String>)>,
}

const ORG_ID: &str = "SELECT id FROM organizations WHERE corp_id = $1";
const ORPHANS: &str = "SELECT COUNT(*) FROM tag_assignments a \
     LEFT JOIN users u ON u.org_id = a.org_id AND u.id = a.user_ref \
     LEFT JOIN tag_groups g ON g.org_id = a.org_id AND g.id = a.group_ref \
     WHERE u.id IS NULL OR g.id IS NULL";
const VERSION_MISMATCHES: &str = "SELECT COUNT(*) FROM tag_assignments a \
     WHERE a.version <> (SELECT COUNT(*) - 1 FROM assignment_history h \
                         WHERE h.org_id = a.org_id AND h.assignment_ref = a.id)";
const HISTORY_PER_USER: &str = "SELECT u.user_id, COUNT(h.id) FROM assignment_history h \
     JOIN tag_assignments a ON a.org_id = h.org_id AND a.id = h.assignment_ref \
     JOIN users u ON u.org_id = a.org_id AND u.id = a.user_ref \
     WHERE h.org_id = $1 GROUP BY u.user_id";
const KEYS: &str = "SELECT key, status, body FROM idempotency_keys WHERE org_id = $1";
/// Stands for the lease running out: open claims of the organization become abandoned.
const EXPIRE_LEASES: &str =
    "UPDATE idempotency_keys SET locked_until = 0 WHERE org_id = $1 AND status IS NULL";

/// The same queries on either connection type.
macro_rules! read_facts {
    ($conn:expr, $org:expr) => {{
        let conn = $conn;
        let orphans = sqlx::query_scalar(ORPHANS)
            .fetch_one(&mut *conn)
            .await
            .expect("orphans");
        let version_mismatches = sqlx::query_scalar(VERSION_MISMATCHES)
            .fetch_one(&mut *conn)
            .await
            .expect("versions");
        let history: Vec<(String, i64)> = sqlx::query_as(HISTORY_PER_USER)
            .bind($org.0)
            .fetch_all(&mut *conn)
            .await
            .expect("history");
        let keys: Vec<(String, Option<i64>, Option<String>)> = sqlx::query_as(KEYS)
            .bind($org.0)
            .fetch_all(&mut *conn)
            .await
            .expect("keys");
        Facts {
            orphans,
            version_mismatches,
            history: history.into_iter().collect(),
            keys: keys.into_iter().map(|(k, s, b)| (k, (s, b))).collect(),
        }
    }};
}

impl Db {
    fn name(&self) -> &'static str {
        match self {
            Db::Sqlite { .. } => "sqlite",
            Db::Postgres { .. } => "postgres",
        }
    }

    fn url(&self) -> &str {
        match self {
            Db::Sqlite { url } | Db::Postgres { url, .. } => url,
        }
    }

    async fn sqlite(url: &str, read_only: bool) -> sqlx::SqliteConnection {
        use std::str::FromStr;
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .expect("SQLite URL")
            .read_only(read_only);
        sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("SQLite connects")
    }

    async fn postgres(url: &str) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(url)
            .await
            .expect("PostgreSQL connects")
    }

    async fn org_id(&self, corp_id: &str) -> OrgId {
        let id: i64 = match self {
            Db::Sqlite { url } => {
                let mut conn = Db::sqlite(url, true).await;
                let id = sqlx::query_scalar(ORG_ID)
                    .bind(corp_id)
                    .fetch_one(&mut conn)
                    .await;
                conn.close().await.expect("closed");
                id
            }
            Db::Postgres { url, .. } => {
                let mut conn = Db::postgres(url).await;
                let id = sqlx::query_scalar(ORG_ID)
                    .bind(corp_id)
                    .fetch_one(&mut conn)
                    .await;
                conn.close().await.expect("closed");
                id
            }
        }
        .expect("the organization");
        OrgId(id)
    }

    async fn facts(&self, org: OrgId) -> Facts {
        match self {
            Db::Sqlite { url } => {
                let mut conn = Db::sqlite(url, true).await;
                let facts = read_facts!(&mut conn, org);
                conn.close().await.expect("closed");
                facts
            }
            Db::Postgres { url, .. } => {
                let mut conn = Db::postgres(url).await;
                let schema: String = sqlx::query_scalar("SELECT current_schema()")
                    .fetch_one(&mut conn)
                    .await
                    .expect("schema");
                assert!(
                    schema.starts_with("tagd_test_"),
                    "the fixture's schema: {schema}"
                );
                let facts = read_facts!(&mut conn, org);
                conn.close().await.expect("closed");
                facts
            }
        }
    }

    /// Makes every open claim of `org` abandoned; how many there were.
    async fn expire_leases(&self, org: OrgId) -> usize {
        let done = match self {
            Db::Sqlite { url } => {
                let mut conn = Db::sqlite(url, false).await;
                let done = sqlx::query(EXPIRE_LEASES)
                    .bind(org.0)
                    .execute(&mut conn)
                    .await
                    .expect("leases expired")
                    .rows_affected();
                conn.close().await.expect("closed");
                done
            }
            Db::Postgres { url, .. } => {
                let mut conn = Db::postgres(url).await;
                let done = sqlx::query(EXPIRE_LEASES)
                    .bind(org.0)
                    .execute(&mut conn)
                    .await
                    .expect("leases expired")
                    .rows_affected();
                conn.close().await.expect("closed");
                done
            }
        };
        usize::try_from(done).expect("a count")
    }

    /// SQLite: `PRAGMA integrity_check` is `ok`. PostgreSQL: `bt_index_check` (amcheck, with
    /// `heapallindexed`) passes on every btree index of the schema. What was checked.
    async fn integrity(&self) -> String {
        match self {
            Db::Sqlite { url } => {
                let store = tagd_sqlite::open(url).await.expect("SQLite opens");
                let verdict = store
                    .driver()
                    .integrity_check()
                    .await
                    .expect("integrity_check");
                store.driver().close().await;
                assert_eq!(verdict, "ok", "PRAGMA integrity_check");
                "integrity_check=ok".to_owned()
            }
            Db::Postgres { url, admin_url, .. } => {
                let mut conn = Db::postgres(url).await;
                let schema: String = sqlx::query_scalar("SELECT current_schema()")
                    .fetch_one(&mut conn)
                    .await
                    .expect("schema");
                conn.close().await.expect("closed");
                let mut admin = Db::postgres(admin_url).await;
                sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS amcheck")
                    .execute(&mut admin)
                    .await
                    .expect("amcheck");
                let indexes: Vec<String> = sqlx::query_scalar(
                    "SELECT c.oid::regclass::text FROM pg_index i \
                     JOIN pg_class c ON c.oid = i.indexrelid \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     JOIN pg_am am ON am.oid = c.relam \
                     WHERE n.nspname = $1 AND am.amname = 'btree' ORDER BY 1",
                )
                .bind(&schema)
                .fetch_all(&mut admin)
                .await
                .expect("indexes");
                assert!(
                    indexes.len() >= 10,
                    "the schema's btree indexes: {indexes:?}"
                );
                for index in &indexes {
                    let check = format!(
                        "SELECT bt_index_check('{}'::regclass, true)",
                        index.replace('\'', "''")
                    );
                    sqlx::raw_sql(&check)
                        .execute(&mut admin)
                        .await
                        .unwrap_or_else(|e| panic!("bt_index_check({index}): {e}"));
                }
                admin.close().await.expect("closed");
                format!("amcheck_btree_indexes_ok={}", indexes.len())
            }
        }
    }
}

/// Before the leases expire: a pending write has had no second effect (at most one history
/// entry; tagd's design says none) and its key is still an open claim.
fn check_pending(run: &Run, facts: &Facts, s: &mut Summary) {
    for (i, write) in run.writes.iter().enumerate() {
        if *write != Write::Pending {
            continue;
        }
        let entries = facts.history.get(&format!("u{i}")).copied().unwrap_or(0);
        if entries > 1 {
            s.duplicates += 1;
            s.problem(format!("duplicate: pending w{i} applied {entries} times"));
        }
        if entries == 1 {
            s.pending_with_effect += 1;
        }
        let key = facts.keys.get(&format!("w{i}"));
        if !matches!(key, Some((None, None))) {
            s.problem(format!(
                "pending w{i}: its key is {key:?}, not an open claim"
            ));
        }
    }
}

/// Through the store: every acknowledged write is live with its value, under the entity id
/// its answer named, with exactly one history entry; an unsent write left nothing.
async fn check_store(db: &Db, run: &Run, org: OrgId, s: &mut Summary) {
    match db {
        Db::Sqlite { url } => {
            let store = tagd_sqlite::open(url).await.expect("SQLite opens");
            check_store_with(&store, run, org, s).await;
            store.driver().close().await;
        }
        Db::Postgres { store, .. } => check_store_with(store.as_ref(), run, org, s).await,
    }
}

async fn check_store_with(store: &dyn Store, run: &Run, org: OrgId, s: &mut Summary) {
    let corp_id = ExternalId::parse("corp_id", &run.tenant.corp_id).expect("corp_id");
    let found = store.find_org_by_corp_id(&corp_id).await.expect("query");
    assert_eq!(found.map(|o| o.id), Some(org), "the organization");
    for (i, write) in run.writes.iter().enumerate() {
        let user = UserId::parse(&format!("u{i}")).expect("user id");
        let live = store
            .list_user_assignments(org, &user)
            .await
            .expect("assignments");
        let mut entries = 0;
        for assignment in &live {
            entries += store
                .assignment_history(org, &assignment.entity_id)
                .await
                .expect("history")
                .len();
        }
        match write {
            Write::Acknowledged(body) => {
                let sent: Value = serde_json::from_slice(body).expect("JSON body");
                match live.as_slice() {
                    [] => {
                        s.lost += 1;
                        s.problem(format!("lost: acknowledged w{i} has no assignment"));
                    }
                    [a] => {
                        if a.value != TagValue::Number(i as f64) {
                            s.problem(format!("w{i}: value {:?}", a.value));
                        }
                        if sent["data"].as_str() != Some(a.entity_id.as_str()) {
                            s.problem(format!(
                                "w{i}: answered {} for {}",
                                sent["data"],
                                a.entity_id.as_str()
                            ));
                        }
                    }
                    more => s.problem(format!("w{i}: {} live assignments", more.len())),
                }
                if entries > 1 {
                    s.duplicates += 1;
                    s.problem(format!("duplicate: w{i} has {entries} history entries"));
                }
            }
            Write::Unsent => {
                if !live.is_empty() || entries != 0 {
                    s.problem(format!("stray: unsent w{i} has an assignment"));
                }
            }
            Write::NotDelivered | Write::Unanswered | Write::Pending => {
                s.problem(format!("w{i} left {write:?} after the last server"));
            }
        }
    }
}

/// With SQL: the references and versions hold, each acknowledged write has one history entry
/// and its key holds the response the client saw, byte for byte; unsent writes left no key.
fn check_facts(run: &Run, facts: &Facts, s: &mut Summary) {
    if facts.orphans != 0 {
        s.problem(format!(
            "{} assignments without user or group",
            facts.orphans
        ));
    }
    if facts.version_mismatches != 0 {
        s.problem(format!(
            "{} assignments whose version is not count(history) - 1",
            facts.version_mismatches
        ));
    }
    for (i, write) in run.writes.iter().enumerate() {
        let entries = facts.history.get(&format!("u{i}")).copied().unwrap_or(0);
        let key = facts.keys.get(&format!("w{i}"));
        match write {
            Write::Acknowledged(body) => {
                if entries != 1 {
                    s.problem(format!(
                        "SQL: acknowledged w{i} has {entries} history entries"
                    ));
                }
                let body = String::from_utf8_lossy(body).into_owned();
                if key != Some(&(Some(200), Some(body.clone()))) {
                    s.response_mismatches += 1;
                    s.problem(format!("w{i}: recorded {key:?}, client saw {body}"));
                }
            }
            Write::Unsent => {
                if entries != 0 || key.is_some() {
                    s.problem(format!(
                        "stray: unsent w{i}: {entries} entries, key {key:?}"
                    ));
                }
            }
            Write::NotDelivered | Write::Unanswered | Write::Pending => {}
        }
    }
}
