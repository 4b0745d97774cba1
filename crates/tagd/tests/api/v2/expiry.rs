//! v2 and expiry (API.md §11): `expiryDate` on changeLabels adds, `expiryDate` on label rows,
//! and `includeInactive=true` showing labels removed or expired.

use super::interop::both_dialects;
use crate::helpers::TestApp;
use serde_json::json;
use std::time::Duration;
use tagd_core::timefmt::{format_unix, now_unix};

crate::on_both_backends!(
    an_added_label_takes_its_expiry_date_and_a_bad_one_refuses_the_request,
    include_inactive_also_shows_removed_and_expired_labels,
);

async fn an_added_label_takes_its_expiry_date_and_a_bad_one_refuses_the_request(app: &TestApp) {
    let (v2, _, _) = both_dialects(app).await;
    let tomorrow = format_unix(now_unix() + 86_400)[..10].to_owned();
    let body = json!({"add": [{"labelName": "VIP", "expiryDate": tomorrow}]});
    let changed = v2.post("/v2/customers/42/changeLabels", &body).await;
    assert_eq!(
        (changed.status, &changed.json["warnings"]),
        (200, &json!([])),
        "{}",
        changed.text
    );
    let labels = v2.get("/v2/customers/42/labels").await.json;
    assert_eq!(labels["data"][0]["expiryDate"], json!(tomorrow));
    for bad in ["2020-01-01", "tomorrow", "2031-02-30"] {
        let body = json!({"add": [{"labelName": "VIP", "expiryDate": bad}]});
        let refused = v2.post("/v2/customers/42/changeLabels", &body).await;
        assert_eq!(
            (refused.status, &refused.json["errors"][0]["code"]),
            (400, &json!(400))
        );
    }
    // A malformed date refuses the request in a remove entry too (otherwise ignored there).
    let body = json!({"remove": [{"labelName": "", "expiryDate": ""}]});
    assert_eq!(
        v2.post("/v2/customers/42/changeLabels", &body).await.status,
        400
    );
    // Adding it again without a date keeps the date it has.
    v2.change("42", &["VIP"], &[]).await;
    let labels = v2.get("/v2/customers/42/labels").await.json;
    assert_eq!(labels["data"][0]["expiryDate"], json!(tomorrow));
}

async fn include_inactive_also_shows_removed_and_expired_labels(app: &TestApp) {
    let (v2, v5, group_id) = both_dialects(app).await;
    v2.labels(&["Gold"]).await;
    v2.change("42", &["Gold"], &[]).await;
    v2.change("42", &[], &["Gold"]).await;
    let body = json!({"corp_id": v5.corp_id, "tags_group_id": group_id, "user_id": "42",
                      "value": "True", "ttl_secs": 1});
    let (status, answer) = v5.post("/api/v5/entity/user/tags/assign", &body).await;
    assert_eq!(status, 200, "{answer}");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let live = v2.get("/v2/customers/42/labels").await.json;
    assert_eq!(live["data"], json!([]), "VIP expired, Gold removed");
    let all = v2
        .get("/v2/customers/42/labels?includeInactive=true")
        .await
        .json;
    let mut shown: Vec<_> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|l| (l["labelName"].clone(), l["deleted"].clone()))
        .collect();
    shown.sort_by_key(|(name, _)| name.to_string());
    assert_eq!(
        shown,
        [(json!("Gold"), json!(true)), (json!("VIP"), json!(true))]
    );
    for bad in ["maybe", "true&includeInactive=true"] {
        let refused = v2
            .get(&format!("/v2/customers/42/labels?includeInactive={bad}"))
            .await;
        assert_eq!(
            (refused.status, &refused.json["errors"][0]["code"]),
            (400, &json!(400))
        );
    }
}
