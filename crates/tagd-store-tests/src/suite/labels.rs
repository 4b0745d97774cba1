use super::*;
use tagd_core::labels::LabelWarning;

async fn label_names(store: &DynStore, org: OrgId, user_id: &str) -> Vec<String> {
    let labels = store
        .list_user_labels(org, &user(user_id))
        .await
        .expect("labels");
    labels.iter().map(|a| a.group_name.to_string()).collect()
}

pub async fn change_labels_sets_known_labels_and_warns_about_unknown_ones_in_request_order(
    store: DynStore,
) {
    let w = world(&store, "Acme").await;
    let old = label_group(&store, w.org.id, "Old1 Customer1", "old1").await;
    let warnings = relabel(
        &store,
        w.org.id,
        "u1",
        &["VIP", "Nope", "Old1 Customer1"],
        &["Gone"],
    )
    .await
    .expect("applied");
    assert_eq!(
        warnings,
        vec![
            LabelWarning::not_found("Nope"),
            LabelWarning::not_found("Gone")
        ]
    );
    assert_eq!(
        label_names(&store, w.org.id, "u1").await,
        vec!["VIP", "Old1 Customer1"]
    );
    let listed = store
        .list_user_assignments(w.org.id, &user("u1"))
        .await
        .expect("v5 view");
    assert!(listed
        .iter()
        .all(|a| a.source == Source::V2Api && a.executor == v2_executor()));
    assert!(listed.iter().all(|a| a.value == TagValue::Define(true)));
    let warnings = relabel(&store, w.org.id, "u1", &[], &["Old1 Customer1"])
        .await
        .expect("applied");
    assert!(warnings.is_empty());
    assert_eq!(label_names(&store, w.org.id, "u1").await, vec!["VIP"]);
    let history = store
        .assignment_history(w.org.id, &listed[1].entity_id)
        .await
        .expect("history");
    assert_eq!(history.len(), 2, "set then removed");
    assert_eq!(listed[1].tags_group_id, old.entity_id);
}

pub async fn a_label_added_and_removed_in_one_request_records_both_changes_in_order(
    store: DynStore,
) {
    let w = world(&store, "Acme").await;
    let change_of = |add: &'static [&'static str], remove: &'static [&'static str]| {
        let store = store.clone();
        async move {
            relabel(&store, w.org.id, "u1", add, remove)
                .await
                .expect("applied")
        }
    };
    // The second remove comes after the customer's only label is gone.
    let warnings = change_of(&["VIP"], &["VIP", "VIP"]).await;
    assert_eq!(warnings, vec![LabelWarning::user_has_none()]);
    assert!(label_names(&store, w.org.id, "u1").await.is_empty());

    assert!(change_of(&["VIP"], &[]).await.is_empty());
    let listed = store
        .list_user_assignments(w.org.id, &user("u1"))
        .await
        .expect("listed");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version, 2, "set, removed, set again");
    let history = store
        .assignment_history(w.org.id, &listed[0].entity_id)
        .await
        .expect("history");
    let changes: Vec<_> = history
        .iter()
        .map(|h| (h.version, h.old_value.as_deref(), h.new_value.as_deref()))
        .collect();
    assert_eq!(
        changes,
        vec![
            (0, None, Some("True")),
            (1, Some("True"), None),
            (2, None, Some("True"))
        ]
    );
    assert!(history.iter().all(|h| h.source == Source::V2Api));
}

pub async fn removing_from_a_customer_without_labels_warns_33001_once(store: DynStore) {
    let w = world(&store, "Acme").await;
    label_group(&store, w.org.id, "Churn risk", "churn").await;
    let warnings = relabel(
        &store,
        w.org.id,
        "u1",
        &[],
        &["VIP", "Unknown", "Churn risk"],
    )
    .await
    .expect("applied");
    assert_eq!(
        warnings,
        vec![
            LabelWarning::user_has_none(),
            LabelWarning::not_found("Unknown")
        ]
    );
    relabel(&store, w.org.id, "u1", &["VIP"], &[])
        .await
        .expect("added");
    let warnings = relabel(&store, w.org.id, "u1", &[], &["Churn risk"])
        .await
        .expect("applied");
    assert!(
        warnings.is_empty(),
        "removing a label the customer lacks is a no-op: {warnings:?}"
    );
    assert_eq!(label_names(&store, w.org.id, "u1").await, vec!["VIP"]);
}

pub async fn adding_a_carried_label_again_changes_nothing(store: DynStore) {
    let w = world(&store, "Acme").await;
    relabel(&store, w.org.id, "u1", &["VIP"], &[])
        .await
        .expect("first");
    relabel(&store, w.org.id, "u1", &["VIP", "VIP"], &[])
        .await
        .expect("again");
    let listed = store
        .list_user_assignments(w.org.id, &user("u1"))
        .await
        .expect("listed");
    assert_eq!((listed.len(), listed[0].version), (1, 0));
    let history = store
        .assignment_history(w.org.id, &listed[0].entity_id)
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
}

pub async fn change_labels_for_an_unknown_customer_is_refused_and_changes_nothing(store: DynStore) {
    let w = world(&store, "Acme").await;
    let refused = relabel(&store, w.org.id, "ghost", &["VIP"], &[]).await;
    assert!(matches!(refused, Err(Error::UserNotFound)), "{refused:?}");
    let holders = store
        .count_label_holders(w.org.id, "VIP")
        .await
        .expect("count");
    assert_eq!(holders, 0);
}

pub async fn inactive_groups_and_typed_groups_are_not_labels(store: DynStore) {
    let w = world(&store, "Acme").await;
    relabel(&store, w.org.id, "u1", &["VIP"], &[])
        .await
        .expect("added");
    set_active(&store, w.org.id, &w.flag, false)
        .await
        .expect("deactivated");
    let warnings = relabel(&store, w.org.id, "u1", &["VIP", "City"], &["VIP"])
        .await
        .expect("applied");
    assert_eq!(
        warnings,
        vec![
            LabelWarning::not_found("VIP"),
            LabelWarning::not_found("City"),
            LabelWarning::not_found("VIP")
        ]
    );
    assert!(
        label_names(&store, w.org.id, "u1").await.is_empty(),
        "an inactive label is not carried"
    );
    let catalog = store.list_label_groups(w.org.id).await.expect("catalog");
    let names: Vec<_> = catalog
        .iter()
        .map(|g| (g.name.to_string(), g.is_active))
        .collect();
    assert_eq!(
        names,
        vec![("VIP".to_owned(), false)],
        "define groups only, inactive included"
    );
}

pub async fn label_holders_are_paged_in_numeric_customer_order_ignoring_label_case(
    store: DynStore,
) {
    let w = world(&store, "Acme").await;
    for id in ["10", "9", "100", "2", "u1"] {
        store
            .create_user(w.org.id, &user(id), &Recorder::none())
            .await
            .expect("user");
        if id != "u1" {
            relabel(&store, w.org.id, id, &["VIP"], &[])
                .await
                .expect("added");
        }
    }
    assert_eq!(
        store
            .count_label_holders(w.org.id, "vip")
            .await
            .expect("count"),
        4
    );
    let ids = |rows: Vec<Assignment>| {
        rows.into_iter()
            .map(|a| a.user_id.to_string())
            .collect::<Vec<_>>()
    };
    let all = store
        .label_holders(w.org.id, "vIp", None, 0, 100)
        .await
        .expect("all");
    assert_eq!(ids(all), vec!["2", "9", "10", "100"]);
    let page = store
        .label_holders(w.org.id, "VIP", None, 1, 2)
        .await
        .expect("page");
    assert_eq!(ids(page), vec!["9", "10"]);
    let after = store
        .label_holders(w.org.id, "VIP", Some(&user("9")), 0, 100)
        .await
        .expect("after");
    assert_eq!(ids(after), vec!["10", "100"]);
    assert!(store
        .label_holders(w.org.id, "nope", None, 0, 10)
        .await
        .expect("none")
        .is_empty());
}

pub async fn labels_of_one_organization_are_invisible_to_another(store: DynStore) {
    let a = world(&store, "A").await;
    let b = world(&store, "B").await;
    relabel(&store, a.org.id, "u1", &["VIP"], &[])
        .await
        .expect("added");
    assert!(label_names(&store, b.org.id, "u1").await.is_empty());
    assert_eq!(
        store
            .count_label_holders(b.org.id, "VIP")
            .await
            .expect("count"),
        0
    );
    assert!(store
        .label_holders(b.org.id, "VIP", None, 0, 10)
        .await
        .expect("page")
        .is_empty());
    let b_catalog = store.list_label_groups(b.org.id).await.expect("catalog");
    assert!(b_catalog.iter().all(|g| g.org_id == b.org.id));
    relabel(&store, b.org.id, "u1", &[], &["VIP"])
        .await
        .expect("applied in B");
    assert_eq!(
        label_names(&store, a.org.id, "u1").await,
        vec!["VIP"],
        "A's label untouched"
    );
}
