use super::*;

pub async fn a_new_tag_group_is_active_custom_unlocked_at_version_zero(store: DynStore) {
    let org = store.create_org("Acme").await.expect("org");
    let group = create_group(
        &store,
        org.id,
        &fields(
            "group_possible",
            "champion_26004",
            Attribute::Define,
            "follow_up",
        ),
    )
    .await
    .expect("created");
    assert!(group.is_active && !group.is_auto && !group.is_locked && !group.is_deleted);
    assert_eq!((group.group_type.as_str(), group.version), ("custom", 0));
    assert_eq!(group.calculation_rules, serde_json::json!({}));
    assert_eq!(group.ctime, group.mtime);
    assert_eq!(group.updated_by, app_executor(), "the creator is recorded");
    let found = store
        .find_tag_group(org.id, &group.entity_id)
        .await
        .expect("query");
    assert_eq!(found, Some(group));
}

pub async fn names_and_variable_names_are_unique_per_organization_only(store: DynStore) {
    let a = store.create_org("A").await.expect("a");
    let b = store.create_org("B").await.expect("b");
    create_group(&store, a.id, &fields("VIP", "vip", Attribute::Define, "c"))
        .await
        .expect("first");
    let same_name =
        create_group(&store, a.id, &fields("VIP", "vip2", Attribute::Define, "c")).await;
    assert!(
        matches!(&same_name, Err(Error::Duplicate(w)) if w == "name"),
        "{same_name:?}"
    );
    let same_var = create_group(&store, a.id, &fields("VIP2", "vip", Attribute::Define, "c")).await;
    assert!(
        matches!(&same_var, Err(Error::Duplicate(w)) if w == "variable_name"),
        "{same_var:?}"
    );
    create_group(&store, b.id, &fields("VIP", "vip", Attribute::Define, "c"))
        .await
        .expect("another organization may use the same names");
}

pub async fn tag_groups_are_listed_by_category_in_ctime_then_entity_id_order_with_a_total(
    store: DynStore,
) {
    let org = store.create_org("Acme").await.expect("org");
    for i in 0..5 {
        create_group(
            &store,
            org.id,
            &fields(&format!("g{i}"), &format!("g{i}"), Attribute::Define, "b2b"),
        )
        .await
        .expect("created");
    }
    create_group(
        &store,
        org.id,
        &fields("other", "other", Attribute::Define, "b2c"),
    )
    .await
    .expect("other");
    let category = Category::parse("b2b").expect("valid");
    let all = store
        .list_tag_groups(org.id, &category, 0, 1000)
        .await
        .expect("all");
    assert_eq!((all.total, all.rows.len()), (5, 5));
    let mut sorted = all.rows.clone();
    sorted.sort_by(|x, y| (x.ctime, x.entity_id.as_str()).cmp(&(y.ctime, y.entity_id.as_str())));
    assert_eq!(all.rows, sorted);
    let page = store
        .list_tag_groups(org.id, &category, 2, 2)
        .await
        .expect("page");
    assert_eq!(page.total, 5);
    assert_eq!(page.rows, all.rows[2..4].to_vec());
    let past_end = store
        .list_tag_groups(org.id, &category, 10, 2)
        .await
        .expect("past end");
    assert_eq!((past_end.total, past_end.rows.len()), (5, 0));
}

pub async fn updating_a_group_bumps_its_version_and_refuses_a_stale_one(store: DynStore) {
    let w = world(&store, "Acme").await;
    let edit = fields(
        "VIP customers",
        "vip_customers",
        Attribute::Define,
        "loyalty",
    );
    let updated = update(&store, w.org.id, &w.flag, &edit, Some(0))
        .await
        .expect("updated");
    assert_eq!(updated.version, 1);
    assert_eq!(
        (updated.name.as_str(), updated.category.as_str()),
        ("VIP customers", "loyalty")
    );
    assert_eq!(updated.entity_id, w.flag.entity_id);
    let stale = update(&store, w.org.id, &w.flag, &edit, Some(0)).await;
    assert!(matches!(stale, Err(Error::StaleVersion)), "{stale:?}");
    let unversioned = update(&store, w.org.id, &w.flag, &edit, None)
        .await
        .expect("ok");
    assert_eq!(unversioned.version, 2);
    let clash = fields("City", "vip_customers", Attribute::Define, "loyalty");
    let dup = update(&store, w.org.id, &w.flag, &clash, None).await;
    assert!(matches!(dup, Err(Error::Duplicate(_))), "{dup:?}");
    let missing = store
        .update_tag_group(
            w.org.id,
            &ExternalId::generate(),
            &edit,
            None,
            &app_executor(),
            &Recorder::none(),
        )
        .await;
    assert!(matches!(missing, Err(Error::GroupNotFound)), "{missing:?}");
}

pub async fn the_attribute_cannot_change_while_live_assignments_exist(store: DynStore) {
    let w = world(&store, "Acme").await;
    assign(&store, w.org.id, &w.flag, "u1", "True")
        .await
        .expect("assigned");
    let to_number = fields("VIP", "vip", Attribute::Number, "follow_up");
    let refused = update(&store, w.org.id, &w.flag, &to_number, None).await;
    assert!(matches!(refused, Err(Error::AttributeInUse)), "{refused:?}");
    remove(&store, w.org.id, &w.flag, "u1")
        .await
        .expect("removed");
    let changed = update(&store, w.org.id, &w.flag, &to_number, None)
        .await
        .expect("free now");
    assert_eq!(changed.attribute, Attribute::Number);
}

pub async fn an_inactive_group_refuses_assignments_and_activation_is_idempotent(store: DynStore) {
    let w = world(&store, "Acme").await;
    assign(&store, w.org.id, &w.flag, "u1", "True")
        .await
        .expect("assigned");
    let off = set_active(&store, w.org.id, &w.flag, false)
        .await
        .expect("off");
    assert!(!off.is_active);
    let again = set_active(&store, w.org.id, &w.flag, false)
        .await
        .expect("off again");
    assert_eq!(again, off);
    let refused = assign(&store, w.org.id, &w.flag, "u1", "False").await;
    assert!(matches!(refused, Err(Error::GroupInactive)), "{refused:?}");
    let kept = store
        .list_user_assignments(w.org.id, &user("u1"))
        .await
        .expect("listed");
    assert_eq!(kept.len(), 1, "an inactive group keeps its assignments");
    assert_eq!(kept[0].value, TagValue::Define(true));
    let on = set_active(&store, w.org.id, &w.flag, true)
        .await
        .expect("on");
    assert!(on.is_active);
    assign(&store, w.org.id, &w.flag, "u1", "False")
        .await
        .expect("accepted again");
}

pub async fn a_locked_group_refuses_edits_and_activation_but_takes_assignments(store: DynStore) {
    let w = world(&store, "Acme").await;
    let locked = store
        .set_tag_group_locked(w.org.id, &w.flag.entity_id, true, &Executor::operator())
        .await
        .expect("locked");
    assert!(locked.is_locked);
    let edit = fields("VIP2", "vip2", Attribute::Define, "follow_up");
    let refused = update(&store, w.org.id, &w.flag, &edit, None).await;
    assert!(matches!(refused, Err(Error::GroupLocked)), "{refused:?}");
    let refused = set_active(&store, w.org.id, &w.flag, false).await;
    assert!(matches!(refused, Err(Error::GroupLocked)), "{refused:?}");
    assign(&store, w.org.id, &w.flag, "u1", "True")
        .await
        .expect("assignments still work");
    let unlocked = store
        .set_tag_group_locked(w.org.id, &w.flag.entity_id, false, &Executor::operator())
        .await
        .expect("unlocked");
    assert_eq!((unlocked.is_locked, unlocked.version), (false, 0));
    assert_eq!(
        unlocked.updated_by,
        Executor::operator(),
        "the last writer is recorded"
    );
    update(&store, w.org.id, &w.flag, &edit, None)
        .await
        .expect("editable again");
}

pub async fn a_batch_of_groups_skips_names_in_use_and_creates_the_rest_together(store: DynStore) {
    let w = world(&store, "Acme").await;
    let batch = [
        fields("Gold", "gold", Attribute::Define, "label"),
        fields("VIP", "vip_again", Attribute::Define, "label"),
        fields("Gold", "gold_again", Attribute::Define, "label"),
        fields("Silver", "silver", Attribute::Define, "label"),
    ];
    let created = store
        .create_tag_groups(w.org.id, &batch, &app_executor(), &Recorder::none())
        .await
        .expect("batch");
    let names: Vec<_> = created
        .iter()
        .map(|g| g.as_ref().ok().map(|g| g.name.to_string()))
        .collect();
    assert_eq!(
        names,
        vec![Some("Gold".into()), None, None, Some("Silver".into())]
    );
    let clash = [
        fields("Bronze", "bronze", Attribute::Define, "label"),
        fields("Other", "gold", Attribute::Define, "label"),
    ];
    let refused = store
        .create_tag_groups(w.org.id, &clash, &app_executor(), &Recorder::none())
        .await;
    assert!(matches!(refused, Err(Error::Duplicate(_))), "{refused:?}");
    let catalog = store.list_label_groups(w.org.id).await.expect("catalog");
    assert!(
        catalog.iter().all(|g| g.name.as_str() != "Bronze"),
        "a refused batch creates nothing"
    );
}
