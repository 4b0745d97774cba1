//! The client side of the crash test: set-up, the stream of keyed writes, the kills, and the
//! retries after each restart; what the client knows of each write is a [`Write`].

use super::*;

/// `tagd serve` on `database`, its output in `log`; returns once it listens.
pub(super) async fn start_server(database: &str, log: &Path) -> TagdProcess {
    start_server_with(database, log, &[]).await
}

/// [`start_server`] with `extra` flags.
pub(super) async fn start_server_with(database: &str, log: &Path, extra: &[&str]) -> TagdProcess {
    // The test writes as fast as it can; the rate limit is not what it tests.
    let mut flags = vec![
        "--rate-limit-per-sec",
        "1000000",
        "--rate-limit-burst",
        "1000000",
        "--log-format",
        "json",
    ];
    flags.extend_from_slice(extra);
    TagdProcess::start(database, &flags, Some(log)).await
}

/// SIGTERM, and a clean exit.
pub(super) async fn stop(server: TagdProcess) {
    let status = server.terminate().await;
    assert!(status.success(), "SIGTERM drains and exits 0: {status}");
}

/// A client for a server that may vanish: short timeouts, a new pool per server.
pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()
        .expect("HTTP client")
}

/// What the organization and its credentials are.
#[derive(Clone)]
pub(super) struct Tenant {
    pub(super) corp_id: String,
    pub(super) app_id: String,
    pub(super) token: String,
    pub(super) group: String,
}

/// Where one logical write stands, as the client knows it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Write {
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

pub(super) struct Run {
    pub(super) seed: u64,
    pub(super) started: Instant,
    pub(super) tenant: Tenant,
    pub(super) writes: Vec<Write>,
    pub(super) rounds: usize,
    pub(super) kills: usize,
    pub(super) retried: usize,
    pub(super) retried_replayed: usize,
    pub(super) retried_applied: usize,
    pub(super) retried_in_flight: usize,
    pub(super) replays_checked: usize,
    /// Writes still in flight (409/40903) after the last restart of the crash rounds.
    pub(super) pending_at_end: usize,
    /// Pending writes applied once their lease expired.
    pub(super) pending_resolved: usize,
    pub(super) logs: Vec<PathBuf>,
}

impl Run {
    pub(super) fn sent(&self) -> usize {
        self.writes.iter().filter(|w| **w != Write::Unsent).count()
    }
    pub(super) fn acknowledged(&self) -> usize {
        self.writes
            .iter()
            .filter(|w| matches!(w, Write::Acknowledged(_)))
            .count()
    }
    pub(super) fn pending(&self) -> usize {
        self.writes.iter().filter(|w| **w == Write::Pending).count()
    }
}

pub(super) fn seed() -> u64 {
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
pub(super) fn write_body(tenant: &Tenant, i: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "corp_id": tenant.corp_id,
        "tags_group_id": tenant.group,
        "user_id": format!("u{i}"),
        "value": i.to_string(),
    }))
    .expect("JSON")
}

pub(super) fn keyed_write(
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
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) code: Option<i64>,
    pub(super) body: Vec<u8>,
    pub(super) replayed: bool,
}

pub(super) async fn answer(response: reqwest::Response) -> reqwest::Result<Answer> {
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

/// Organization, app, token, a `number` group, and [`USERS`] users, through a first server.
pub(super) async fn set_up(server: &TagdProcess) -> Tenant {
    let org = server.admin(client()).v5_org("Crash").await;
    let group = org
        .create_group("Crash counter", "crash_counter", "number", "crash")
        .await;
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (org, next) = (org.clone(), next.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= USERS {
                    return;
                }
                org.create_user(&format!("u{i}")).await;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("user worker");
    }
    Tenant {
        corp_id: org.corp_id,
        app_id: org.app_id,
        token: org.token,
        group,
    }
}

/// What one streamed write came to.
pub(super) enum Outcome {
    Acknowledged(Vec<u8>),
    NotDelivered,
    Unanswered,
    Unexpected(u16, String),
}

pub(super) async fn send_streamed(
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
pub(super) async fn recover(
    run: &mut Run,
    server: &TagdProcess,
    rng: &mut StdRng,
    leases_expired: bool,
) {
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
pub(super) async fn stream_and_kill(run: &mut Run, server: TagdProcess, delay: Duration) {
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
pub(super) async fn crash_rounds(
    backend: &str,
    url: &str,
    logs: &Path,
    rng: &mut StdRng,
    seed: u64,
) -> Run {
    eprintln!("crash: backend={backend} seed={seed:#x} (TAGD_CRASH_SEED to override)");
    let started = Instant::now();
    let log = logs.join("setup.log");
    let server = start_server(url, &log).await;
    let tenant = set_up(&server).await;
    stop(server).await;
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
    stop(server).await;
    run.pending_at_end = run.pending();
    assert!(
        run.sent() < USERS,
        "every user was written: raise USERS so the last rounds still stream"
    );
    run
}

pub(super) fn assert_no_panics(run: &Run) {
    for log in &run.logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        assert!(
            !text.contains("panicked"),
            "tagd panicked ({}):\n{text}",
            log.display()
        );
    }
}
