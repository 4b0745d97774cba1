use super::*;

pub async fn assigning_parses_the_value_and_refuses_unknown_groups_and_users(store: DynStore) {
    let w = world(&store, "Acme").await;
    let a = assign(&store, w.org.id, &w.number, "u1", "1250.5")
        .await
        .expect("number");
    assert_eq!(a.value, TagValue::Number(1250.5));
    let s = assign(&store, w.org.id, &w.text, "u1", "Pune")
        .await
        .expect("string");
    assert_eq!(s.value, TagValue::String("Pune".into()));
    let bad = assign(&store, w.org.id, &w.number, "u1", "lots").await;
    assert!(matches!(bad, Err(Error::InvalidValue(_))), "{bad:?}");
    let bad_flag = assign(&store, w.org.id, &w.flag, "u1", "maybe").await;
    assert!(
        matches!(bad_flag, Err(Error::InvalidValue(_))),
        "{bad_flag:?}"
    );
    let no_user = assign(&store, w.org.id, &w.flag, "ghost", "True").await;
    assert!(matches!(no_user, Err(Error::UserNotFound)), "{no_user:?}");
    let mut no_group = assign_command(&w.flag, "u1", "True");
    no_group.tags_group_id = ExternalId::generate();
    assert!(matches!(
        store.assign(w.org.id, &no_group, &Recorder::none()).await,
        Err(Error::GroupNotFound)
    ));
    let listed = store
        .list_user_assignments(w.org.id, &user("u1"))
        .await
        .expect("listed");
    assert_eq!(listed.len(), 2, "refused writes left nothing behind");
    let ghost = store.list_user_assignments(w.org.id, &user("ghost")).await;
    assert!(matches!(ghost, Err(Error::UserNotFound)));
}

pub async fn reassigning_keeps_the_entity_id_bumps_the_version_and_records_history(
    store: DynStore,
) {
    let w = world(&store, "Acme").await;
    let first = assign(&store, w.org.id, &w.text, "u1", "Pune")
        .await
        .expect("first");
    assert_eq!(
        (first.version, first.source, first.is_deleted),
        (0, Source::OpenApi, false)
    );
    assert_eq!(first.executor, app_executor());
    let mut again = assign_command(&w.text, "u1", "Mumbai");
    again.source = Source::V2Api;
    let second = store
        .assign(w.org.id, &again, &Recorder::none())
        .await
        .expect("second");
    assert_eq!(
        (second.entity_id.clone(), second.id, second.version),
        (first.entity_id.clone(), first.id, 1)
    );
    assert_eq!(
        (second.value.clone(), second.source),
        (TagValue::String("Mumbai".into()), Source::V2Api)
    );
    assert_eq!(second.ctime, first.ctime);
    let history = store
        .assignment_history(w.org.id, &first.entity_id)
        .await
        .expect("history");
    let changes: Vec<_> = history
        .iter()
        .map(|h| {
            (
                h.version,
                h.old_value.clone(),
                h.new_value.clone(),
                h.source,
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (0, None, Some("Pune".into()), Source::OpenApi),
            (1, Some("Pune".into()), Some("Mumbai".into()), Source::V2Api),
        ]
    );
    assert!(history
        .iter()
        .all(|h| h.executor == app_executor() && h.assignment_id == first.id));
}

pub async fn removing_soft_deletes_and_a_later_assign_revives_the_same_row(store: DynStore) {
    let w = world(&store, "Acme").await;
    let first = assign(&store, w.org.id, &w.flag, "u1", "True")
        .await
        .expect("assigned");
    let removed = remove(&store, w.org.id, &w.flag, "u1")
        .await
        .expect("removed")
        .expect("there was a live assignment");
    assert!(removed.is_deleted);
    assert_eq!(removed.version, 1);
    assert!(store
        .list_user_assignments(w.org.id, &user("u1"))
        .await
        .expect("list")
        .is_empty());
    let nothing = remove(&store, w.org.id, &w.flag, "u1")
        .await
        .expect("removing again is a no-op");
    assert_eq!(nothing, None);
    let revived = assign(&store, w.org.id, &w.flag, "u1", "True")
        .await
        .expect("again");
    assert_eq!(
        (
            revived.entity_id.clone(),
            revived.version,
            revived.is_deleted
        ),
        (first.entity_id.clone(), 2, false)
    );
    let history = store
        .assignment_history(w.org.id, &first.entity_id)
        .await
        .expect("history");
    let values: Vec<_> = history
        .iter()
        .map(|h| (h.old_value.clone(), h.new_value.clone()))
        .collect();
    assert_eq!(
        values,
        vec![
            (None, Some("True".into())),
            (Some("True".into()), None),
            (None, Some("True".into()))
        ]
    );
}

pub async fn concurrent_reassignments_of_one_pair_lose_no_update(store: DynStore) {
    let w = world(&store, "Acme").await;
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let store = store.clone();
            let command = assign_command(&w.number, "u1", &i.to_string());
            let org = w.org.id;
            tokio::spawn(async move { store.assign(org, &command, &Recorder::none()).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task ran").expect("assignment accepted");
    }
    let live = store
        .list_user_assignments(w.org.id, &user("u1"))
        .await
        .expect("listed");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].version, 99);
    let history = store
        .assignment_history(w.org.id, &live[0].entity_id)
        .await
        .expect("history");
    assert_eq!(history.len(), 100);
    let versions: Vec<i64> = history.iter().map(|h| h.version).collect();
    assert_eq!(versions, (0..100).collect::<Vec<_>>());
}

pub async fn concurrent_assignments_to_distinct_users_all_succeed(store: DynStore) {
    let w = world(&store, "Acme").await;
    for i in 0..200 {
        store
            .create_user(w.org.id, &user(&format!("c{i}")), &Recorder::none())
            .await
            .expect("user");
    }
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            let command = assign_command(&w.flag, &format!("c{i}"), "True");
            let org = w.org.id;
            tokio::spawn(async move { store.assign(org, &command, &Recorder::none()).await })
        })
        .collect();
    for task in tasks {
        let a = task.await.expect("task ran").expect("assignment accepted");
        assert_eq!(a.version, 0);
    }
    for i in [0, 99, 199] {
        let listed = store
            .list_user_assignments(w.org.id, &user(&format!("c{i}")))
            .await
            .expect("listed");
        assert_eq!(listed.len(), 1);
    }
}

pub async fn a_batch_applies_its_valid_items_and_refuses_the_others_one_by_one(store: DynStore) {
    let w = world(&store, "Acme").await;
    let other = world(&store, "Other").await;
    store
        .create_user(w.org.id, &user("u2"), &Recorder::none())
        .await
        .expect("user");
    let mut foreign = assign_command(&other.flag, "u1", "True");
    foreign.source = Source::OpenApi;
    let batch = vec![
        assign_command(&w.number, "u1", "12.5"),
        assign_command(&w.number, "u2", "not a number"),
        assign_command(&w.flag, "ghost", "True"),
        foreign,
        assign_command(&w.text, "u2", "Pune"),
        assign_command(&w.number, "u1", "13"),
    ];
    let results = store
        .assign_batch(w.org.id, &batch, &Recorder::none())
        .await
        .expect("batch ran");
    let kinds: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(a) => format!("ok v{}", a.version),
            Err(e) => format!("{e:?}")
                .split('(')
                .next()
                .unwrap_or_default()
                .to_owned(),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "ok v0",
            "InvalidValue",
            "UserNotFound",
            "GroupNotFound",
            "ok v0",
            "ok v1"
        ]
    );
    let u1 = store
        .list_user_assignments(w.org.id, &user("u1"))
        .await
        .expect("listed");
    assert_eq!(
        u1[0].value,
        TagValue::Number(13.0),
        "later items see earlier ones"
    );
    let theirs = store
        .list_user_assignments(other.org.id, &user("u1"))
        .await
        .expect("listed");
    assert!(
        theirs.is_empty(),
        "another organization's group was not touched"
    );
}
