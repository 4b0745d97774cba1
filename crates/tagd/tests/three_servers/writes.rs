//! Writes through any server: read back on the others at their version (API.md §3.6, §4.9),
//! and one `Idempotency-Key` answered alike by every server, with one effect (§3.3).

use super::*;

/// The number value of `user`'s only tag as `org`'s server lists it at `min_version`.
async fn listed(org: &V5Org, user: &str, min_version: i64) -> Value {
    let path = format!(
        "/api/v5/entity/user/tags/list?corp_id={}&user_id={user}&min_version={min_version}",
        org.corp_id
    );
    let (status, answer) = org.get(&path).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["total"], 1, "{answer}");
    answer["data"]["rows"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_any_server_reads_back_on_the_others_at_its_version() {
    let Some(trio) = Trio::start(&[]).await else {
        return;
    };
    let orgs = trio.org("Round robin").await;
    let group = orgs[0]
        .create_group("Spend", "spend", "number", "crm")
        .await;
    orgs[1].create_user("u1").await;
    // One user written by each server in turn: every read is on a server whose index holds
    // the value the previous server wrote, so each must catch up to the write's version.
    for value in 1u32..=12 {
        let writer = (value % 3) as usize;
        let body = assign_body(&orgs[writer], &group, "u1", &value.to_string());
        let answer = trio.post(&orgs[writer], ASSIGN, &body, None).await;
        assert!(answer.ok(), "{}", answer.body);
        let version = answer.version();
        for reader in [(writer + 1) % 3, (writer + 2) % 3] {
            let row = listed(&orgs[reader], "u1", version).await;
            assert_eq!(
                row["number_value"],
                json!(f64::from(value)),
                "server {reader} reads server {writer}'s write at version {version}: {row}"
            );
        }
    }
    trio.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_write_sent_to_each_server_is_answered_alike_and_applied_once() {
    let Some(trio) = Trio::start(&[]).await else {
        return;
    };
    let orgs = trio.org("Keyed").await;
    let group = orgs[0]
        .create_group("Spend", "spend", "number", "crm")
        .await;
    orgs[1].create_user("u1").await;
    let body = assign_body(&orgs[0], &group, "u1", "7");
    let first = trio.post(&orgs[0], ASSIGN, &body, Some("key-1")).await;
    assert!(first.ok(), "{}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    for server in [1, 2] {
        let again = trio.post(&orgs[server], ASSIGN, &body, Some("key-1")).await;
        assert_eq!(
            (again.status, &again.body),
            (first.status, &first.body),
            "server {server} answers as server 0 did"
        );
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
    }
    // The same key with another body, on yet another server: 422 / 42201, nothing applied.
    let other = assign_body(&orgs[0], &group, "u1", "8");
    let conflict = trio.post(&orgs[2], ASSIGN, &other, Some("key-1")).await;
    assert_eq!(
        (conflict.status, &conflict.body["code"]),
        (422, &json!(42201)),
        "{}",
        conflict.body
    );

    // One effect: the assignment's first version, one history entry, on every server.
    for org in &orgs {
        let row = listed(org, "u1", first.version()).await;
        assert_eq!(
            (&row["number_value"], &row["version"]),
            (&json!(7.0), &json!(0))
        );
        let path = format!(
            "/api/v5/entity/user/tags/history?corp_id={}&user_id=u1",
            org.corp_id
        );
        let (status, history) = org.get(&path).await;
        assert_eq!(status, 200, "{history}");
        let rows = history["data"]["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), 1, "one change: {history}");
        assert_eq!(rows[0]["op"], "assign");
    }
    trio.stop().await;
}
