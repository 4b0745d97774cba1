//! What each server keeps in its own memory: the token cache, which bounds how long another
//! server accepts a revoked token (API.md §2.1, §6.2), and the per-organization rate limit
//! bucket (§3.4).

use super::*;

/// A cheap authenticated read.
fn groups_path(org: &V5Org) -> String {
    format!(
        "/api/v5/entity/tags/group/list?corp_id={}&category=crm&start_index=0&step=1",
        org.corp_id
    )
}

/// A new token for `org`'s app from `POST /api/v5/auth/token` on its server.
async fn new_token(trio: &Trio, org: &V5Org) -> String {
    let response = trio
        .client
        .post(org.url("/api/v5/auth/token"))
        .json(&json!({"app_id": org.app_id, "app_secret": org.app_secret}))
        .send()
        .await
        .expect("request sent");
    let answer = Answer::read(response).await.expect("answer read");
    assert!(answer.ok(), "{}", answer.body);
    answer.body["data"]["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_by_its_server_at_once_and_by_the_others_within_the_cache_time()
{
    const CACHE_SECS: u64 = 1;
    let cache = CACHE_SECS.to_string();
    let Some(trio) = Trio::start(&["--token-cache-secs", &cache]).await else {
        return;
    };
    let orgs = trio.org("Revoked").await;
    for (i, org) in orgs.iter().enumerate() {
        let answer = trio.get(org, &groups_path(org)).await;
        assert!(answer.ok(), "server {i} takes the token: {}", answer.body);
    }

    let path = format!(
        "/admin/v1/orgs/{}/apps/{}/revoke-tokens",
        orgs[0].corp_id, orgs[0].app_id
    );
    let response = trio.servers[0]
        .admin(trio.client.clone())
        .post(&path, &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    let revoked: Value = response.json().await.expect("JSON body");
    let revoked_at = Instant::now();
    assert_eq!(revoked["revoked"], 1, "{revoked}");

    let refused = |answer: &Answer| answer.status == 401 && answer.body["code"] == 40101;
    let answer = trio.get(&orgs[0], &groups_path(&orgs[0])).await;
    assert!(
        refused(&answer),
        "server 0 refuses at once: {}",
        answer.body
    );
    // The others within their cache time; 2 s more for the machine, never more.
    let bound = Duration::from_secs(CACHE_SECS + 2);
    for (i, org) in orgs.iter().enumerate().skip(1) {
        loop {
            let answer = trio.get(org, &groups_path(org)).await;
            if refused(&answer) {
                eprintln!(
                    "server {i} refuses {:?} after the revocation",
                    revoked_at.elapsed()
                );
                break;
            }
            assert!(answer.ok(), "server {i}: {}", answer.body);
            assert!(
                revoked_at.elapsed() < bound,
                "server {i} still takes the revoked token {:?} after the revocation",
                revoked_at.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for (i, org) in orgs.iter().enumerate() {
        let answer = trio.get(org, &groups_path(org)).await;
        assert!(
            refused(&answer),
            "server {i} keeps refusing: {}",
            answer.body
        );
    }

    // The app's secret still issues tokens, and every server takes the new one.
    let token = new_token(&trio, &orgs[1]).await;
    for (i, org) in orgs.iter().enumerate() {
        let org = org.with_auth(&token, &org.app_id);
        let answer = trio.get(&org, &groups_path(&org)).await;
        assert!(
            answer.ok(),
            "server {i} takes the new token: {}",
            answer.body
        );
    }
    trio.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_server_admits_its_own_burst_of_an_organizations_requests() {
    const RATE: u64 = 1;
    const BURST: u64 = 3;
    let (rate, burst) = (RATE.to_string(), BURST.to_string());
    let flags = ["--rate-limit-per-sec", &rate, "--rate-limit-burst", &burst];
    let Some(trio) = Trio::start(&flags).await else {
        return;
    };
    let orgs = trio.org("Limited").await;
    // Its token came from server 0, which took one request of its bucket for it: at RATE a
    // second, a second refills it.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut admitted = 0;
    for (i, org) in orgs.iter().enumerate() {
        // Each server's bucket is full, whatever the others have admitted.
        let started = Instant::now();
        for n in 0..BURST {
            let answer = trio.get(org, &groups_path(org)).await;
            assert!(answer.ok(), "request {n} of server {i}: {}", answer.body);
            if n == 0 {
                let left = format!(";r={};", BURST - 1);
                let header = answer.header("ratelimit").expect("RateLimit header");
                assert!(header.contains(&left), "server {i}'s own bucket: {header}");
            }
            admitted += 1;
        }
        // Past its burst the server refuses, unless its bucket refilled meanwhile (RATE a
        // second: on a slow machine a request or two more may pass, never more than that).
        let mut extra = 0;
        let refusal = loop {
            let answer = trio.get(org, &groups_path(org)).await;
            if !answer.ok() {
                break answer;
            }
            extra += 1;
            let allowed = started.elapsed().as_secs() * RATE;
            assert!(
                extra <= allowed,
                "server {i} admitted {} requests in {:?} with a burst of {BURST}",
                BURST + extra,
                started.elapsed()
            );
        };
        assert_eq!(
            (refusal.status, &refusal.body["code"]),
            (429, &json!(42901)),
            "server {i}: {}",
            refusal.body
        );
        assert!(refusal.header("retry-after").is_some(), "Retry-After");
    }
    assert_eq!(admitted, 3 * BURST, "more than one burst, one per server");
    trio.stop().await;
}
