//! Paging of the group list: zero-based `start_index`, `step` 1–1,000, `total` of every
//! matching row, one category only, ordered by `ctime` then `entity_id`.

use super::*;
use crate::helpers::TestApp;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

crate::on_both_backends!(
    the_group_list_pages_by_zero_based_offset_and_total_counts_every_row_of_the_category,
    the_group_list_is_ordered_by_ctime_then_entity_id_and_shows_inactive_groups,
);

async fn page(org: &V5Org, category: &str, start_index: i64, step: i64) -> Value {
    let answer = org
        .get(&format!(
            "{GROUP_LIST}?corp_id={}&category={category}&start_index={start_index}&step={step}",
            org.corp_id
        ))
        .await;
    success(&answer).clone()
}

fn ids(page: &Value) -> Vec<String> {
    page["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["entity_id"].as_str().expect("entity_id").to_owned())
        .collect()
}

/// Sleeps just past the next whole second, so the next row gets a later `ctime`.
async fn until_the_next_second() {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    let rest = Duration::from_secs(1) - Duration::from_nanos(u64::from(since_epoch.subsec_nanos()));
    tokio::time::sleep(rest + Duration::from_millis(20)).await;
}

async fn the_group_list_pages_by_zero_based_offset_and_total_counts_every_row_of_the_category(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    for i in 0..7 {
        org.create_group(
            &format!("page {i}"),
            &format!("page_{i}"),
            "define",
            "paged",
        )
        .await;
    }
    for i in 0..2 {
        org.create_group(
            &format!("other {i}"),
            &format!("other_{i}"),
            "number",
            "other",
        )
        .await;
    }
    let everything = page(&org, "paged", 0, 1000).await;
    assert_eq!(everything["total"], json!(7));
    let all = ids(&everything);
    assert_eq!(all.len(), 7);
    assert!(everything["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .all(|r| r["category"] == "paged"));

    let mut walked = Vec::new();
    for (start, expected_len) in [(0, 3), (3, 3), (6, 1)] {
        let p = page(&org, "paged", start, 3).await;
        assert_eq!(p["total"], json!(7), "total counts every row, not the page");
        let got = ids(&p);
        assert_eq!(got.len(), expected_len, "page at {start}");
        walked.extend(got);
    }
    assert_eq!(walked, all, "pages are consecutive slices of one order");

    for start in 0..7 {
        let one = page(&org, "paged", start, 1).await;
        let start_index = usize::try_from(start).expect("small");
        assert_eq!(ids(&one), [all[start_index].clone()]);
    }
    for beyond in [7, 8, 1_000_000, i64::MAX] {
        let p = page(&org, "paged", beyond, 10).await;
        assert_eq!(p, json!({"total": 7, "rows": []}));
    }
    assert_eq!(page(&org, "other", 0, 1000).await["total"], json!(2));
    assert_eq!(
        page(&org, "no such category", 0, 1).await,
        json!({"total": 0, "rows": []})
    );
}

async fn the_group_list_is_ordered_by_ctime_then_entity_id_and_shows_inactive_groups(
    app: &TestApp,
) {
    let org = app.v5_org("Acme").await;
    let mut created = Vec::new();
    for batch in 0..2 {
        if batch == 1 {
            until_the_next_second().await;
        }
        for i in 0..5 {
            let name = format!("b{batch} g{i}");
            created.push(
                org.create_group(&name, &format!("b{batch}_g{i}"), "define", "c")
                    .await,
            );
        }
    }
    let deactivated = json!({"entity_id": created[7], "corp_id": org.corp_id});
    success(&org.post(GROUP_DEACTIVATE, &deactivated).await);

    let listed = page(&org, "c", 0, 1000).await;
    assert_eq!(listed["total"], json!(10));
    let rows = listed["rows"].as_array().expect("rows");
    let keys: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["ctime"].as_str().expect("ctime").to_owned(),
                r["entity_id"].as_str().expect("entity_id").to_owned(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "ordered by ctime, then entity_id");
    assert!(
        keys.first().map(|k| &k.0) < keys.last().map(|k| &k.0),
        "the two batches have different ctimes"
    );
    // Every group of the first batch comes before every group of the second.
    let position = |id: &String| keys.iter().position(|k| &k.1 == id).expect("listed");
    let last_of_first = created[..5].iter().map(position).max().expect("five");
    let first_of_second = created[5..].iter().map(position).min().expect("five");
    assert!(last_of_first < first_of_second);
    let inactive = rows
        .iter()
        .find(|r| r["entity_id"] == created[7])
        .expect("an inactive group is listed");
    assert_eq!(inactive["is_active"], json!(false));
}
