//! One model under two dialects: v2 labels are v5 `define` tags and the other way round.

use super::V2Org;
use crate::helpers::TestApp;
use serde_json::json;

crate::on_both_backends!(
    labels_set_through_v2_are_listed_by_v5_with_source_v2_api,
    a_define_tag_assigned_through_v5_is_a_v2_label_that_changelabels_can_remove,
    deactivating_a_group_in_v5_makes_v2_treat_the_label_as_not_found,
);

/// One organization with a v2 credential, a v5 app and token, customer 42 and label VIP.
pub(super) async fn both_dialects(app: &TestApp) -> (V2Org, crate::helpers::V5Org, String) {
    let v5 = app.v5_org("Acme").await;
    let path = format!("/admin/v1/orgs/{}/basic-credentials", v5.corp_id);
    let created = app
        .admin_post(&path, &json!({"username": "loyalty", "password": "pw"}))
        .await;
    assert_eq!(created.status(), 201);
    let v2 = V2Org {
        corp_id: v5.corp_id.clone(),
        authorization: super::basic("loyalty", "pw"),
        address: app.address.clone(),
        client: app.client.clone(),
    };
    v2.customers(app, &["42"]).await;
    let body = json!({"name": "VIP", "variable_name": "vip", "description": "", "attribute": "define",
                      "category": "follow_up", "corp_id": v5.corp_id});
    let (status, group) = v5.post("/api/v5/entity/tags/group/create", &body).await;
    assert_eq!(status, 200, "{group}");
    let group_id = group["data"]["tags_group_id"]
        .as_str()
        .expect("id")
        .to_owned();
    (v2, v5, group_id)
}

async fn labels_set_through_v2_are_listed_by_v5_with_source_v2_api(app: &TestApp) {
    let (v2, v5, group_id) = both_dialects(app).await;
    assert_eq!(
        v2.change("42", &["VIP"], &[]).await.json["warnings"],
        json!([])
    );
    let (status, listed) = v5
        .get(&format!(
            "/api/v5/entity/user/tags/list?corp_id={}&user_id=42",
            v5.corp_id
        ))
        .await;
    assert_eq!(status, 200);
    let row = &listed["data"]["rows"][0];
    assert_eq!(listed["data"]["total"], 1);
    assert_eq!(
        (row["tags_group_id"].as_str(), row["source"].as_str()),
        (Some(group_id.as_str()), Some("v2_api"))
    );
    assert_eq!(
        (row["define_value"].clone(), row["attribute"].clone()),
        (json!(true), json!("define"))
    );
    assert_eq!(
        row["executor_id"], "loyalty",
        "the credential that wrote it"
    );
}

async fn a_define_tag_assigned_through_v5_is_a_v2_label_that_changelabels_can_remove(
    app: &TestApp,
) {
    let (v2, v5, group_id) = both_dialects(app).await;
    let body =
        json!({"corp_id": v5.corp_id, "tags_group_id": group_id, "user_id": "42", "value": "True"});
    let (status, _) = v5.post("/api/v5/entity/user/tags/assign", &body).await;
    assert_eq!(status, 200);
    assert_eq!(v2.carried("42").await, vec!["VIP"]);
    let removed = v2.change("42", &[], &["VIP"]).await;
    assert_eq!(removed.json["warnings"], json!([]));
    assert!(v2.carried("42").await.is_empty());
    let (_, listed) = v5
        .get(&format!(
            "/api/v5/entity/user/tags/list?corp_id={}&user_id=42",
            v5.corp_id
        ))
        .await;
    assert_eq!(listed["data"]["total"], 0, "removed for v5 too");
    let falsy = json!({"corp_id": v5.corp_id, "tags_group_id": group_id, "user_id": "42", "value": "False"});
    v5.post("/api/v5/entity/user/tags/assign", &falsy).await;
    assert!(
        v2.carried("42").await.is_empty(),
        "a define tag set to False is not a label"
    );
}

async fn deactivating_a_group_in_v5_makes_v2_treat_the_label_as_not_found(app: &TestApp) {
    let (v2, v5, group_id) = both_dialects(app).await;
    v2.change("42", &["VIP"], &[]).await;
    let body = json!({"entity_id": group_id, "corp_id": v5.corp_id});
    let (status, _) = v5.post("/api/v5/entity/tags/group/deactivate", &body).await;
    assert_eq!(status, 200);
    let add = v2.change("42", &["VIP"], &[]).await;
    assert_eq!(
        add.json["warnings"][0],
        json!({"status": false, "code": 33000, "message": "VIP label not found"})
    );
    let remove = v2.change("42", &[], &["VIP"]).await;
    assert_eq!(remove.json["warnings"][0]["code"], 33000);
    assert!(v2.carried("42").await.is_empty());
    let search = v2.get("/v2/customers/labels/search?q=VIP").await;
    assert_eq!(search.json["pagination"]["total"], 0);
    let catalog = v2.get("/v2/organization/labels").await;
    assert_eq!(
        catalog.json["data"][0]["active"], false,
        "still in the catalog, inactive"
    );
    v5.post("/api/v5/entity/tags/group/activate", &body).await;
    assert_eq!(
        v2.carried("42").await,
        vec!["VIP"],
        "the assignment was kept"
    );
}
