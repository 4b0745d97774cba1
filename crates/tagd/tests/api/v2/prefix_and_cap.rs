//! Issue 20: label search by prefix as Capillary documents it, and the cap on an
//! organization's labels (tag groups) with warning 33003; issue 10: names that look alike are
//! one name, and invisible characters are refused.

use super::V2Org;
use crate::helpers::{TestApp, ADMIN_TOKEN};
use crate::on_both_backends;
use serde_json::{json, Value};

on_both_backends!(
    search_by_a_prefix_finds_every_customer_once_with_every_matching_label,
    labels_past_the_cap_warn_33003_and_the_others_are_created,
    names_are_normalized_and_invisible_characters_refused_in_both_dialects,
);

fn holders(answer: &Value) -> Vec<(i64, Vec<String>)> {
    answer["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| {
            let labels = d["customerLabels"]
                .as_array()
                .expect("labels")
                .iter()
                .map(|l| l["labelName"].as_str().expect("name").to_owned())
                .collect();
            (d["userId"].as_i64().expect("id"), labels)
        })
        .collect()
}

async fn search_by_a_prefix_finds_every_customer_once_with_every_matching_label(app: &TestApp) {
    let org = V2Org::create(app, "Acme", "loyalty", "pw").await;
    org.customers(app, &["1", "2", "3"]).await;
    org.labels(&["Premium", "Premium Gold", "Goldfish", "50% off"])
        .await;
    org.change("1", &["Premium", "Premium Gold"], &[]).await;
    org.change("2", &["Goldfish"], &[]).await;
    org.change("3", &["Premium Gold", "50% off"], &[]).await;
    let s = |x: &str| x.to_owned();

    let prem = org.get("/v2/customers/labels/search?q=prem").await;
    assert_eq!(prem.json["pagination"]["total"], 2, "customers, not labels");
    assert_eq!(
        holders(&prem.json),
        vec![
            (1, vec![s("Premium"), s("Premium Gold")]),
            (3, vec![s("Premium Gold")])
        ]
    );
    let gold = org.get("/v2/customers/labels/search?q=Gold").await;
    assert_eq!(holders(&gold.json), vec![(2, vec![s("Goldfish")])]);
    let spaced = org.get("/v2/customers/labels/search?q=PREMIUM%20G").await;
    assert_eq!(
        holders(&spaced.json),
        vec![(1, vec![s("Premium Gold")]), (3, vec![s("Premium Gold")])]
    );
    let percent = org.get("/v2/customers/labels/search?q=50%25").await;
    assert_eq!(holders(&percent.json), vec![(3, vec![s("50% off")])]);
    let wildcard = org.get("/v2/customers/labels/search?q=%25").await;
    assert_eq!(
        wildcard.json["pagination"]["total"], 0,
        "% is an ordinary character"
    );
    let underscore = org.get("/v2/customers/labels/search?q=_").await;
    assert_eq!(underscore.json["pagination"]["total"], 0);
    let streamed = org.get("/v2/customers/labels/search?q=p&limit=-1").await;
    assert_eq!(holders(&streamed.json), holders(&prem.json));

    let other = V2Org::create(app, "Other", "other", "pw").await;
    let none = other.get("/v2/customers/labels/search?q=prem").await;
    assert_eq!(
        (none.status, &none.json["pagination"]["total"]),
        (200, &json!(0))
    );
}

async fn labels_past_the_cap_warn_33003_and_the_others_are_created(app: &TestApp) {
    let org = V2Org::create(app, "Acme", "loyalty", "pw").await;
    let limits = app
        .client
        .put(app.url(&format!("/admin/v1/orgs/{}/limits", org.corp_id)))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"max_tag_groups": 3}))
        .send()
        .await
        .expect("sent");
    assert_eq!(limits.status(), 200);
    org.labels(&["A"]).await;
    let created = org
        .post(
            "/v2/organization/labels",
            &json!({"orgLabels": [{"name": "A"}, {"name": "B"}, {"name": "C"}, {"name": "D"}]}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(
        created.json["warnings"],
        json!([
            {"status": false, "code": 33002, "message": "A label already exists"},
            {"status": false, "code": 33003, "message": "D label limit reached"}
        ])
    );
    let catalog = org.get("/v2/organization/labels").await;
    let names: Vec<&str> = catalog.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(names, vec!["A", "B", "C"]);
}

async fn names_are_normalized_and_invisible_characters_refused_in_both_dialects(app: &TestApp) {
    let org = V2Org::create(app, "Acme", "loyalty", "pw").await;
    org.labels(&["Caf\u{e9}"]).await;
    let again = org
        .post(
            "/v2/organization/labels",
            &json!({"orgLabels": [{"name": "Cafe\u{301}"}]}),
        )
        .await;
    assert_eq!(
        again.json["warnings"][0]["code"], 33002,
        "the decomposed form is the same name: {}",
        again.text
    );
    for name in ["VIP\u{200B}", "\u{202E}VIP", "V\u{2066}IP"] {
        let refused = org
            .post(
                "/v2/organization/labels",
                &json!({"orgLabels": [{"name": name}]}),
            )
            .await;
        assert_eq!(refused.status, 400, "{name:?}: {}", refused.text);
        assert!(refused.text.contains("name"), "{}", refused.text);
    }
    let v5 = app.v5_org("Five").await;
    let (status, refused) = v5
        .post(
            "/api/v5/entity/tags/group/create",
            &json!({"name": "VIP\u{200D}", "variable_name": "vip", "description": "",
                    "attribute": "define", "category": "c", "corp_id": v5.corp_id}),
        )
        .await;
    assert_eq!(
        (status, &refused["code"]),
        (400, &json!(40001)),
        "{refused}"
    );
    assert!(
        refused["msg"]
            .as_str()
            .is_some_and(|m| m.contains("`name`")),
        "{refused}"
    );
}
