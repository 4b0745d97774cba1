//! `GET /v2/customers/{userId}/labels`, the label catalog and label search (API.md §3.2–3.5).

use super::{V2Answer, V2Org};
use crate::helpers::TestApp;
use serde_json::{json, Value};

crate::on_both_backends!(
    customer_labels_show_integer_ids_of_the_org_label_assignment_and_writer,
    creating_labels_warns_33002_for_names_in_use_and_creates_the_others,
    invalid_labels_get_400_and_create_nothing,
    the_catalog_lists_every_define_group_active_or_not,
    search_pages_customers_in_user_id_order_ignoring_the_label_case,
    search_with_limit_minus_one_streams_every_customer,
    search_refuses_a_missing_query_and_bad_paging,
);

/// The keys of a JSON object row, sorted, to compare with the documented field list.
fn sorted_keys(row: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = row
        .as_object()
        .expect("row")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// A v2 success: empty `warnings` and `errors`.
fn assert_no_warnings_or_errors(answer: &V2Answer) {
    assert_eq!(
        (
            answer.json["warnings"].clone(),
            answer.json["errors"].clone()
        ),
        (json!([]), json!([]))
    );
}

/// The label called `name` in a `GET /v2/organization/labels` body, if listed.
fn catalog_label(catalog: &Value, name: &str) -> Option<Value> {
    catalog["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|l| l["name"] == name)
        .cloned()
}

async fn customer_labels_show_integer_ids_of_the_org_label_assignment_and_writer(app: &TestApp) {
    let org = V2Org::create(app, "Acme", "loyalty", "pw").await;
    org.customers(app, &["564663098"]).await;
    org.labels(&["VIP"]).await;
    org.change("564663098", &["VIP"], &[]).await;
    let answer = org.get("/v2/customers/564663098/labels").await;
    assert_eq!(answer.status, 200);
    let row = &answer.json["data"][0];
    assert_eq!(
        sorted_keys(row),
        [
            "addedBy",
            "deleted",
            "expiryDate",
            "id",
            "labelId",
            "labelName",
            "orgId",
            "userId"
        ]
    );
    for key in ["id", "orgId", "addedBy", "labelId", "userId"] {
        assert!(row[key].is_i64(), "{key} is an integer: {row}");
    }
    assert_eq!(
        (
            row["userId"].clone(),
            row["labelName"].clone(),
            row["deleted"].clone()
        ),
        (json!(564663098), json!("VIP"), json!(false))
    );
    let catalog = org.get("/v2/organization/labels").await;
    assert_eq!(row["labelId"], catalog.json["data"][0]["id"]);
    assert_eq!(row["orgId"], catalog.json["data"][0]["orgId"]);
    assert_eq!(
        row["addedBy"], catalog.json["data"][0]["lastUpdatedBy"],
        "the same credential wrote both"
    );
    assert_no_warnings_or_errors(&answer);
}

async fn creating_labels_warns_33002_for_names_in_use_and_creates_the_others(app: &TestApp) {
    let org = V2Org::create(app, "Acme", "loyalty", "pw").await;
    org.labels(&["VIP"]).await;
    let body = json!({"orgLabels": [
        {"name": "Gold", "description": "spent over 1000"},
        {"name": "VIP"},
        {"name": "Silver"},
    ]});
    let answer = org.post("/v2/organization/labels", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json["warnings"],
        json!([{"status": false, "code": 33002, "message": "VIP label already exists"}])
    );
    let catalog = org.get("/v2/organization/labels").await.json;
    let silver = catalog_label(&catalog, "Silver");
    assert_eq!(
        answer.json["entity"],
        silver.expect("Silver created")["id"],
        "entity is the last label created"
    );
    let gold = catalog_label(&catalog, "Gold");
    assert_eq!(
        gold.expect("Gold created")["description"],
        "spent over 1000"
    );
}

async fn invalid_labels_get_400_and_create_nothing(app: &TestApp) {
    let org = V2Org::create(app, "Acme", "loyalty", "pw").await;
    for body in [
        json!({"orgLabels": [{"name": "Fine"}, {"name": ""}]}),
        json!({"orgLabels": [{"name": "Fine"}, {"name": "x".repeat(256)}]}),
        json!({"orgLabels": [{"name": "Fine", "description": "d".repeat(256)}]}),
        json!({"orgLabels": [{"description": "no name"}]}),
        json!({"orgLabels": []}),
        json!({"labels": [{"name": "Fine"}]}),
    ] {
        let answer = org.post("/v2/organization/labels", &body).await;
        assert_eq!(
            (answer.status, answer.json["errors"][0]["code"].clone()),
            (400, json!(400)),
            "{body}"
        );
    }
    let catalog = org.get("/v2/organization/labels").await.json;
    assert_eq!(catalog["data"], json!([]));
}

async fn the_catalog_lists_every_define_group_active_or_not(app: &TestApp) {
    let org = V2Org::create(app, "Acme", "loyalty", "pw").await;
    org.labels(&["VIP", "Gold"]).await;
    let catalog = org.get("/v2/organization/labels").await.json;
    let rows = catalog["data"].as_array().expect("data");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        sorted_keys(&rows[0]),
        [
            "active",
            "description",
            "id",
            "lastUpdatedBy",
            "name",
            "orgId"
        ]
    );
    assert!(rows.iter().all(|r| r["active"] == true));
}

async fn search_pages_customers_in_user_id_order_ignoring_the_label_case(app: &TestApp) {
    let org = V2Org::create(app, "Acme", "loyalty", "pw").await;
    let ids = ["100", "9", "42", "7", "1000"];
    org.customers(app, &ids).await;
    org.labels(&["VIP"]).await;
    for id in ids {
        org.change(id, &["VIP"], &[]).await;
    }
    let first = org
        .get("/v2/customers/labels/search?q=vip&offset=0&limit=2")
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.json["pagination"],
        json!({"limit": 2, "offset": 0, "total": 5})
    );
    let users = |v: &Value| {
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|d| d["userId"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(users(&first.json), vec![json!(7), json!(9)]);
    let second = org
        .get("/v2/customers/labels/search?q=VIP&offset=2&limit=2")
        .await;
    assert_eq!(users(&second.json), vec![json!(42), json!(100)]);
    let count_only = org.get("/v2/customers/labels/search?q=VIP&limit=0").await;
    assert_eq!(count_only.json["pagination"]["total"], 5);
    assert_eq!(
        count_only.json["data"],
        json!([]),
        "limit=0 counts without rows"
    );
    let defaults = org.get("/v2/customers/labels/search?q=Vip").await;
    assert_eq!(
        defaults.json["pagination"],
        json!({"limit": 10, "offset": 0, "total": 5})
    );
    assert_eq!(
        defaults.json["data"][0],
        json!({"userId": 7, "customerLabels": [{
            "orgId": defaults.json["data"][0]["customerLabels"][0]["orgId"],
            "labelId": defaults.json["data"][0]["customerLabels"][0]["labelId"],
            "userId": 7,
            "labelName": "VIP"
        }]})
    );
    assert_no_warnings_or_errors(&defaults);
}

async fn search_with_limit_minus_one_streams_every_customer(app: &TestApp) {
    let org = V2Org::create(app, "Acme", "loyalty", "pw").await;
    org.labels(&["VIP"]).await;
    // More customers than one streamed chunk (500), registered and labelled in bulk.
    let org_row = app
        .store
        .find_org_by_corp_id(&tagd_core::CorpId::parse("corp_id", &org.corp_id).expect("hex"))
        .await
        .expect("query")
        .expect("org");
    let label = tagd_core::LabelName::parse_optional("VIP")
        .expect("valid")
        .expect("not blank");
    let change = tagd_core::labels::LabelChange {
        expiry: Default::default(),
        add: vec![label],
        remove: vec![],
    };
    for i in 1..=600u32 {
        let user = tagd_core::UserId::parse(&i.to_string()).expect("valid");
        app.store
            .create_user(org_row.id, &user, &tagd_core::Recorder::none())
            .await
            .expect("user");
        app.store
            .change_labels(
                org_row.id,
                &user,
                &change,
                &tagd_core::Executor::operator(),
                &tagd_core::Recorder::none(),
            )
            .await
            .expect("labelled");
    }
    let all = org.get("/v2/customers/labels/search?q=VIP&limit=-1").await;
    assert_eq!(all.status, 200, "{}", &all.text[..all.text.len().min(300)]);
    assert_eq!(
        all.json["pagination"],
        json!({"limit": -1, "offset": 0, "total": 600})
    );
    let users: Vec<i64> = all.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["userId"].as_i64().expect("id"))
        .collect();
    assert_eq!(users, (1..=600).collect::<Vec<i64>>());
    let skipped = org
        .get("/v2/customers/labels/search?q=VIP&limit=-1&offset=550")
        .await;
    assert_eq!(skipped.json["data"].as_array().map(Vec::len), Some(50));
    assert_eq!(skipped.json["data"][0]["userId"], 551);
}

async fn search_refuses_a_missing_query_and_bad_paging(app: &TestApp) {
    let org = V2Org::create(app, "Acme", "loyalty", "pw").await;
    for query in [
        "",
        "?q=",
        "?q=VIP&limit=1001",
        "?q=VIP&limit=-2",
        "?q=VIP&offset=-1",
        "?q=VIP&limit=ten",
    ] {
        let answer = org
            .get(&format!("/v2/customers/labels/search{query}"))
            .await;
        assert_eq!(
            (answer.status, answer.json["errors"][0]["code"].clone()),
            (400, json!(400)),
            "{query}"
        );
    }
}
