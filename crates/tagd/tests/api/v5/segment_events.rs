//! `segment.entered` / `segment.exited` proven against the truth: after random changes to
//! random users, the moves the change feed announced, applied to each saved segment's first
//! members, give exactly the members a segment query answers now; and a user's moves in a
//! segment alternate (never entered twice without an exit between). On both backends, with
//! the index and without it (every evaluation from SQL).

use super::segments::{query, users};
use super::*;
use crate::helpers::default_config;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tagd_http::HttpConfig;

crate::on_both_backends!(announced_moves_add_up_to_the_members_after_random_changes);

fn without_index() -> HttpConfig {
    HttpConfig {
        index_memory_mb: 0,
        ..default_config()
    }
}

crate::on_both_backends_with!(super::without_index(); sql_sqlite, sql_postgres;
    announced_moves_add_up_to_the_members_after_random_changes,
);

const USERS: usize = 12;
const CHANGES: usize = 80;

/// A saved segment's members now, as a segment query answers.
async fn members(org: &V5Org, segment: &str) -> BTreeSet<String> {
    let answer = query(org, json!({"filter": {"segment": segment}, "limit": 1000})).await;
    users(success(&answer)).into_iter().collect()
}

/// Every segment event of the feed, in version order: (segment id, user id, entered).
async fn moves(org: &V5Org) -> Vec<(String, String, bool)> {
    let mut found = Vec::new();
    let mut after = 0;
    loop {
        let path = format!(
            "/api/v5/changes?corp_id={}&after_version={after}&limit=1000",
            org.corp_id
        );
        let page = success(&org.get(&path).await).clone();
        let rows = page["rows"].as_array().expect("rows").clone();
        let Some(last) = rows.last() else {
            return found;
        };
        after = last["version"].as_i64().expect("version");
        for event in rows {
            let entered = match event["type"].as_str() {
                Some("segment.entered") => true,
                Some("segment.exited") => false,
                _ => continue,
            };
            let data = &event["data"];
            found.push((
                data["segment_id"].as_str().expect("segment").to_owned(),
                data["user_id"].as_str().expect("user").to_owned(),
                entered,
            ));
        }
    }
}

async fn announced_moves_add_up_to_the_members_after_random_changes(app: &TestApp) {
    let seed: u64 = std::env::var("TAGD_SEGMENT_EVENTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    eprintln!("segment events: seed {seed} (TAGD_SEGMENT_EVENTS_SEED)");
    let mut rng = StdRng::seed_from_u64(seed);
    let org = app.v5_org("Acme").await;
    for i in 0..USERS {
        org.create_user(&format!("u{i}")).await;
    }
    let score = org.create_group("Score", "score", "number", "crm").await;
    let vip = org.create_group("VIP", "vip", "define", "crm").await;
    for i in 0..USERS / 2 {
        org.assign(&score, &format!("u{i}"), &rng.gen_range(0..100).to_string())
            .await;
    }
    let filters = [
        json!({"all": [{"tag": "vip", "op": "exists"}, {"tag": "score", "op": "gte", "value": 50}]}),
        json!({"not": {"tag": "vip", "op": "exists"}}),
        json!({"any": [{"tag": "score", "op": "lt", "value": 20}, {"tag": "vip", "op": "exists"}]}),
    ];
    let mut first: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (i, filter) in filters.iter().enumerate() {
        let body = json!({"corp_id": org.corp_id, "name": format!("S{i}"), "description": "",
                          "filter": filter});
        let id = success(&org.post("/api/v5/segments/create", &body).await)["segment_id"]
            .as_str()
            .expect("id")
            .to_owned();
        first.insert(id.clone(), members(&org, &id).await);
    }
    // The announcer records the first members when it reads the segments' entries.
    wait_for_announcer(app, &org, filters.len()).await;

    for _ in 0..CHANGES {
        let user = format!("u{}", rng.gen_range(0..USERS));
        match rng.gen_range(0..4) {
            0 | 1 => {
                org.assign(&score, &user, &rng.gen_range(0..100).to_string())
                    .await;
            }
            2 => {
                let value = if rng.gen_bool(0.5) { "True" } else { "False" };
                org.assign(&vip, &user, value).await;
            }
            _ => {
                let group = if rng.gen_bool(0.5) { &score } else { &vip };
                let body = json!({"corp_id": org.corp_id, "tags_group_id": group, "user_id": user});
                let (status, answer) = org.post(TAG_REMOVE, &body).await;
                assert!(status == 200 || status == 404, "{answer}");
            }
        }
    }

    // Within a few seconds the moves add up to the members of every segment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let announced = moves(&org).await;
        let mut folded = first.clone();
        let mut inside: BTreeMap<(String, String), bool> = BTreeMap::new();
        for (segment, user, entered) in &announced {
            let was = inside.insert((segment.clone(), user.clone()), *entered);
            let before = was.unwrap_or_else(|| first[segment].contains(user));
            assert_ne!(
                before,
                *entered,
                "{user} {} {segment} twice in a row (seed {seed})",
                if *entered { "entered" } else { "left" }
            );
            let set = folded.get_mut(segment).expect("a saved segment");
            if *entered {
                set.insert(user.clone());
            } else {
                set.remove(user);
            }
        }
        let mut truth = BTreeMap::new();
        for segment in first.keys() {
            truth.insert(segment.clone(), members(&org, segment).await);
        }
        if folded == truth {
            eprintln!(
                "segment events: {} moves announced add up (seed {seed})",
                announced.len()
            );
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the announced moves give {folded:?}, the segments hold {truth:?} (seed {seed})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
