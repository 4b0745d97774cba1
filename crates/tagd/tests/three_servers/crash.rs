//! kill -9 of one of three servers (docs/RELIABILITY.md, EVENTS.md §3): while a client
//! streams writes round-robin, the server that delivers the organization's webhook is killed.
//! Every write the client saw acknowledged reads back through a survivor, and another server
//! takes the endpoint over once the dead one's lease has run out (10 s), delivering every
//! event, the writes after the kill too.

use super::*;
use crate::support::receiver::Receiver;
use futures_util::future::join_all;
use sqlx::Connection;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Write `i` assigns value `i` to user `u{i}` through server `i % 3` (or the next if dead).
const WRITES: usize = 300;
const IN_FLIGHT: usize = 8;
/// The kill comes once this many writes are acknowledged.
const KILL_AFTER: usize = 100;
/// A dead server's hold on an endpoint (EVENTS.md §3), plus room for a loaded machine.
const TAKEOVER: Duration = Duration::from_secs(10 + 30);

/// A write the client saw acknowledged (200, code 0).
struct Ack {
    user: usize,
    server: usize,
    version: i64,
    after_kill: bool,
}

/// The index in `pids` of the server that holds the lease of webhook `id` and is not
/// `excluded`, waited for.
async fn lease_holder(url: &str, id: &str, pids: &[u32], excluded: Option<usize>) -> usize {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("PostgreSQL connects");
    let deadline = Instant::now() + TAKEOVER;
    loop {
        let owner: Option<String> =
            sqlx::query_scalar("SELECT lease_owner FROM webhooks WHERE entity_id = $1")
                .bind(id)
                .fetch_one(&mut conn)
                .await
                .expect("the endpoint's row");
        // `<pid>-<random>` (docs/OPERATIONS.md).
        let pid = owner
            .as_deref()
            .and_then(|o| o.split('-').next()?.parse().ok());
        let holder = pids.iter().position(|p| Some(*p) == pid);
        if let Some(holder) = holder.filter(|h| Some(*h) != excluded) {
            return holder;
        }
        assert!(
            Instant::now() < deadline,
            "no server other than {excluded:?} leases the endpoint: {owner:?} (servers {pids:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_server_loses_no_acknowledged_write_and_another_takes_its_webhook_over() {
    let Some(mut trio) = Trio::start(&["--webhook-allow-private"]).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let orgs = trio.org("Killed").await;
    let group = orgs[0]
        .create_group("Spend", "spend", "number", "crm")
        .await;
    let admin = trio.servers[0].admin(trio.client.clone());
    let users = format!("/admin/v1/orgs/{}/users", orgs[0].corp_id);
    for i in 0..WRITES {
        admin
            .created(&users, &json!({"user_id": format!("u{i}")}))
            .await;
    }
    let (webhook, _, start) = create_endpoint(&trio, &orgs[1], &receiver.url).await;
    let pids: Vec<u32> = trio.servers.iter().map(TagdProcess::pid).collect();
    let victim = lease_holder(&trio.fixture.url, &webhook, &pids, None).await;
    let victim_process = trio.servers.remove(victim);
    let survivors: Vec<usize> = (0..3).filter(|s| *s != victim).collect();

    let next = AtomicUsize::new(0);
    let dead = AtomicUsize::new(usize::MAX);
    let acks = Mutex::new(Vec::<Ack>::new());
    let failures = Mutex::new(Vec::<(usize, String)>::new());
    let (next, dead, acks, failures) = (&next, &dead, &acks, &failures);
    let (client, orgs_ref, group_ref) = (&trio.client, &orgs, &group);
    let writer = move || async move {
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= WRITES {
                return;
            }
            let killed = dead.load(Ordering::SeqCst);
            let server = if i % 3 == killed { (i + 1) % 3 } else { i % 3 };
            let org = &orgs_ref[server];
            let body = assign_body(org, group_ref, &format!("u{i}"), &i.to_string());
            match try_post(client, org, ASSIGN, &body, None).await {
                Ok(answer) if answer.ok() => acks.lock().expect("lock").push(Ack {
                    user: i,
                    server,
                    version: answer.version(),
                    after_kill: killed != usize::MAX,
                }),
                Ok(answer) => {
                    let what = format!("{} {}", answer.status, answer.body);
                    failures.lock().expect("lock").push((server, what));
                }
                Err(error) => failures
                    .lock()
                    .expect("lock")
                    .push((server, error.to_string())),
            }
        }
    };
    let killer = async move {
        while acks.lock().expect("lock").len() < KILL_AFTER {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        victim_process.sigkill();
        dead.store(victim, Ordering::SeqCst);
    };
    tokio::join!(join_all((0..IN_FLIGHT).map(|_| writer())), killer);

    let acks = std::mem::take(&mut *acks.lock().expect("lock"));
    let failures = std::mem::take(&mut *failures.lock().expect("lock"));
    assert!(
        failures.iter().all(|(server, _)| *server == victim),
        "only writes sent to the killed server {victim} may fail: {failures:?}"
    );
    let after_kill: HashSet<String> = acks
        .iter()
        .filter(|a| a.after_kill)
        .map(|a| format!("u{}", a.user))
        .collect();
    assert!(!after_kill.is_empty(), "writes acknowledged after the kill");

    // Every acknowledged write, read back through a survivor at its version.
    for (n, ack) in acks.iter().enumerate() {
        let reader = &orgs[survivors[n % 2]];
        let path = format!(
            "/api/v5/entity/user/tags/list?corp_id={}&user_id=u{}&min_version={}",
            reader.corp_id, ack.user, ack.version
        );
        let (status, answer) = reader.get(&path).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["data"]["rows"][0]["number_value"],
            json!(ack.user as f64),
            "write {} acknowledged by server {} at version {}: {answer}",
            ack.user,
            ack.server,
            ack.version
        );
    }

    // Every event reaches the receiver, the writes after the kill included, once another
    // server has taken the endpoint over; first arrivals in version order.
    let feed = orgs[survivors[0]].whole_feed().await;
    let logged: HashSet<&str> = feed.iter().map(|e| e["id"].as_str().expect("id")).collect();
    // (It may also get a few events from before: docs/EVENTS.md, "about the moment".)
    let wanted: HashSet<&str> = feed
        .iter()
        .filter(|e| e["version"].as_i64().expect("version") > start)
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    receiver
        .wait_until(TAKEOVER, |got| {
            let ids: HashSet<&str> = got.iter().map(|r| r.webhook_id.as_str()).collect();
            wanted.is_subset(&ids)
        })
        .await;
    let received = receiver.received();
    let mut seen = HashSet::new();
    let mut newest = i64::MIN;
    for delivery in &received {
        assert!(
            logged.contains(delivery.webhook_id.as_str()),
            "{delivery:?}"
        );
        if seen.insert(delivery.webhook_id.clone()) {
            let version = delivery.body["version"].as_i64().expect("version");
            assert!(version > newest, "{version} arrived after {newest}");
            newest = version;
        }
    }
    let delivered_users: HashSet<String> = received
        .iter()
        .filter_map(|r| r.body["data"]["user_id"].as_str().map(str::to_owned))
        .collect();
    assert!(after_kill.is_subset(&delivered_users));
    let holder = lease_holder(&trio.fixture.url, &webhook, &pids, Some(victim)).await;
    eprintln!(
        "three servers, kill -9: server {victim} killed after {KILL_AFTER} acknowledged writes; \
         {} acknowledged ({} after the kill), {} failed; {} events delivered, {} repeats; \
         server {holder} took the endpoint over",
        acks.len(),
        after_kill.len(),
        failures.len(),
        seen.len(),
        received.len() - seen.len()
    );
    trio.stop().await;
}
