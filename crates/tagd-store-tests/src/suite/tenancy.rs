use super::*;

/// Everything organization `org` can see, to compare before and after another's probes.
async fn snapshot(
    store: &DynStore,
    w: &World,
) -> (Page<TagGroup>, Vec<Assignment>, Vec<HistoryEntry>) {
    let groups = store
        .list_tag_groups(
            w.org.id,
            &Category::parse("follow_up").expect("valid"),
            0,
            1000,
        )
        .await
        .expect("groups");
    let assignments = store
        .list_user_assignments(w.org.id, &user("u1"))
        .await
        .expect("assignments");
    let mut history = Vec::new();
    for a in &assignments {
        history.extend(
            store
                .assignment_history(w.org.id, &a.entity_id)
                .await
                .expect("history"),
        );
    }
    (groups, assignments, history)
}

pub async fn one_organization_can_neither_read_nor_change_another_organizations_rows(
    store: DynStore,
) {
    let a = world(&store, "A").await;
    let b = world(&store, "B").await;
    store
        .create_user(a.org.id, &user("only_in_a"), &Recorder::none())
        .await
        .expect("user");
    let a_assignment = assign(&store, a.org.id, &a.flag, "u1", "True")
        .await
        .expect("assigned");
    let before = snapshot(&store, &a).await;

    // Reads with B's tenant id never see A's rows.
    assert_eq!(
        store
            .find_tag_group(b.org.id, &a.flag.entity_id)
            .await
            .expect("query"),
        None
    );
    assert_eq!(registered(&store, b.org.id, "only_in_a").await, None);
    assert!(store
        .assignment_history(b.org.id, &a_assignment.entity_id)
        .await
        .expect("query")
        .is_empty());
    assert!(store
        .list_user_assignments(b.org.id, &user("u1"))
        .await
        .expect("query")
        .is_empty());
    let b_groups = store
        .list_tag_groups(
            b.org.id,
            &Category::parse("follow_up").expect("valid"),
            0,
            1000,
        )
        .await
        .expect("query");
    assert!(b_groups.rows.iter().all(|g| g.org_id == b.org.id));
    assert_eq!(b_groups.total, 3);
    assert!(matches!(
        store
            .list_user_assignments(b.org.id, &user("only_in_a"))
            .await,
        Err(Error::UserNotFound)
    ));

    // Writes with B's tenant id answer as if A's ids did not exist.
    let edit = fields("stolen", "stolen", Attribute::Define, "follow_up");
    assert!(matches!(
        update(&store, b.org.id, &a.flag, &edit, None).await,
        Err(Error::GroupNotFound)
    ));
    assert!(matches!(
        set_active(&store, b.org.id, &a.flag, false).await,
        Err(Error::GroupNotFound)
    ));
    assert!(matches!(
        assign(&store, b.org.id, &a.flag, "u1", "False").await,
        Err(Error::GroupNotFound)
    ));
    assert!(matches!(
        assign(&store, b.org.id, &b.flag, "only_in_a", "True").await,
        Err(Error::UserNotFound)
    ));
    assert!(matches!(
        remove(&store, b.org.id, &a.flag, "u1").await,
        Err(Error::GroupNotFound)
    ));

    assert_eq!(
        snapshot(&store, &a).await,
        before,
        "organization A's rows are unchanged"
    );
}
