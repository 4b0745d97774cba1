use super::*;
use tagd_core::bulk::{
    ExportRow, ExportUser, GroupRef, ImportAssignment, ImportOutcome, ImportReport, ImportRow,
    Refusal,
};

fn by_id(group: &TagGroup) -> GroupRef {
    GroupRef::Id(group.entity_id.clone())
}

fn by_variable(group: &TagGroup) -> GroupRef {
    GroupRef::VariableName(group.variable_name.clone())
}

fn by_both(group: &TagGroup) -> GroupRef {
    GroupRef::Both(group.entity_id.clone(), group.variable_name.clone())
}

fn set(user_id: &str, group: GroupRef, value: &str) -> ImportRow {
    ImportRow {
        user_id: user(user_id),
        assignment: Some(ImportAssignment {
            group,
            raw_value: value.into(),
        }),
    }
}

fn register(user_id: &str) -> ImportRow {
    ImportRow {
        user_id: user(user_id),
        assignment: None,
    }
}

async fn import(store: &DynStore, org: OrgId, rows: &[ImportRow]) -> ImportReport {
    store
        .import_batch(org, rows, &Executor::operator())
        .await
        .expect("the batch ran")
}

/// (applied, unchanged, refused)
fn counts(report: &ImportReport) -> (usize, usize, usize) {
    let count = |f: fn(&ImportOutcome) -> bool| report.outcomes.iter().filter(|o| f(o)).count();
    (
        count(|o| *o == ImportOutcome::Applied),
        count(|o| *o == ImportOutcome::Unchanged),
        count(|o| matches!(o, ImportOutcome::Refused(_))),
    )
}

/// Every live assignment and every user without one, paging `page` rows at a time.
async fn export_all(store: &DynStore, org: OrgId, page: i64) -> (Vec<ExportRow>, Vec<ExportUser>) {
    let mut rows = Vec::new();
    loop {
        let after = rows.last().map(|r: &ExportRow| r.key);
        let next = store
            .export_assignments(org, after, page)
            .await
            .expect("export page");
        let done = next.len() < usize::try_from(page).expect("positive");
        rows.extend(next);
        if done {
            break;
        }
    }
    let mut users = Vec::new();
    loop {
        let after = users.last().map(|u: &ExportUser| u.key);
        let next = store
            .export_users_without_assignments(org, after, page)
            .await
            .expect("export page");
        let done = next.len() < usize::try_from(page).expect("positive");
        users.extend(next);
        if done {
            break;
        }
    }
    (rows, users)
}

/// Every live assignment of the organization with its history.
async fn state(store: &DynStore, org: OrgId) -> Vec<(ExportRow, Vec<HistoryEntry>)> {
    let (rows, _) = export_all(store, org, 1000).await;
    let mut out = Vec::new();
    for row in rows {
        let history = exported_history(store, org, &row).await;
        out.push((row, history));
    }
    out
}

pub async fn an_import_registers_users_and_sets_values_with_source_import(store: DynStore) {
    let w = world(&store, "Acme").await;
    let rows = [
        register("n1"),
        set("n2", by_id(&w.flag), "true"),
        set("n2", by_variable(&w.number), "12.5"),
        set("u1", by_both(&w.text), "Pune"),
        register("u1"),
        register("n1"),
    ];
    let report = import(&store, w.org.id, &rows).await;
    use ImportOutcome::*;
    assert_eq!(
        report.outcomes,
        vec![Applied, Applied, Applied, Applied, Unchanged, Unchanged]
    );
    assert_eq!(report.users_created, 2, "n1 and n2; u1 was registered");
    assert!(registered(&store, w.org.id, "n1").await.is_some());
    let n2 = store
        .list_user_assignments(w.org.id, &user("n2"))
        .await
        .expect("n2 was registered");
    let values: Vec<_> = n2.iter().map(|a| a.value.clone()).collect();
    assert_eq!(values, vec![TagValue::Define(true), TagValue::Number(12.5)]);
    for a in &n2 {
        assert_eq!(
            (a.version, a.source, a.is_deleted),
            (0, Source::Import, false)
        );
        assert_eq!(a.executor, Executor::operator());
        let history = store
            .assignment_history(w.org.id, &a.entity_id)
            .await
            .expect("history");
        assert_eq!(history.len(), 1);
        assert_eq!(
            (
                history[0].version,
                history[0].old_value.clone(),
                history[0].source
            ),
            (0, None, Source::Import)
        );
        assert_eq!(history[0].new_value, Some(a.value.to_text()));
        assert_eq!(history[0].executor, Executor::operator());
    }
}

pub async fn importing_the_same_rows_again_changes_nothing(store: DynStore) {
    let w = world(&store, "Acme").await;
    let by_api = assign(&store, w.org.id, &w.text, "u1", "Pune")
        .await
        .expect("assigned through v5");
    let rows: Vec<ImportRow> = (0..40)
        .flat_map(|i| {
            let u = format!("c{i}");
            [
                register(&u),
                set(&u, by_id(&w.flag), if i % 2 == 0 { "True" } else { "0" }),
                set(&u, by_variable(&w.number), &format!("{}.25", i * 7)),
                set(&u, by_both(&w.text), &format!("city {i}")),
            ]
        })
        .chain([set("u1", by_variable(&w.text), "Pune")])
        .collect();
    let first = import(&store, w.org.id, &rows).await;
    assert_eq!(counts(&first), (160, 1, 0), "u1's Pune was already live");
    assert_eq!(first.users_created, 40);
    let before = state(&store, w.org.id).await;
    assert_eq!(before.len(), 121);

    let second = import(&store, w.org.id, &rows).await;
    assert_eq!(counts(&second), (0, rows.len(), 0));
    assert_eq!(second.users_created, 0);
    assert_eq!(
        state(&store, w.org.id).await,
        before,
        "no version, value, source or history entry changed"
    );
    let u1 = store
        .list_user_assignments(w.org.id, &user("u1"))
        .await
        .expect("listed");
    assert_eq!(
        (u1[0].version, u1[0].source, u1[0].executor.clone()),
        (0, Source::OpenApi, app_executor()),
        "an equal value leaves the v5 write alone"
    );
    assert_eq!(u1[0].entity_id, by_api.entity_id);
}

pub async fn refused_rows_carry_their_reason_and_the_others_load(store: DynStore) {
    let w = world(&store, "Acme").await;
    let old = create_group(
        &store,
        w.org.id,
        &fields("Old", "old", Attribute::Number, "follow_up"),
    )
    .await
    .expect("group");
    set_active(&store, w.org.id, &old, false)
        .await
        .expect("deactivated");
    let rows = [
        set("g1", by_id(&w.flag), "True"),
        set("r1", GroupRef::Id(ExternalId::generate()), "True"),
        set(
            "r2",
            GroupRef::VariableName(VariableName::parse("nope").expect("valid")),
            "1",
        ),
        set("r3", by_id(&old), "1"),
        set("r4", by_variable(&w.number), "lots"),
        set(
            "r5",
            GroupRef::Both(w.flag.entity_id.clone(), w.number.variable_name.clone()),
            "True",
        ),
        set("g2", by_variable(&w.text), ""),
        set("g1", by_variable(&w.flag), "maybe"),
    ];
    let report = import(&store, w.org.id, &rows).await;
    let codes: Vec<&str> = report
        .outcomes
        .iter()
        .map(|o| match o {
            ImportOutcome::Refused(r) => r.code(),
            ImportOutcome::Applied => "applied",
            ImportOutcome::Unchanged => "unchanged",
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            "applied",
            "group_not_found",
            "group_not_found",
            "group_inactive",
            "invalid_value",
            "group_mismatch",
            "applied",
            "invalid_value"
        ]
    );
    assert!(matches!(
        &report.outcomes[4],
        ImportOutcome::Refused(Refusal::InvalidValue(why)) if why.contains("number")
    ));
    assert_eq!(report.users_created, 2, "only the users of loaded rows");
    for refused in ["r1", "r2", "r3", "r4", "r5"] {
        assert_eq!(
            registered(&store, w.org.id, refused).await,
            None,
            "a refused row registers nobody"
        );
    }
    let g1 = store
        .list_user_assignments(w.org.id, &user("g1"))
        .await
        .expect("g1 registered");
    assert_eq!(g1.len(), 1);
    assert_eq!(
        g1[0].value,
        TagValue::Define(true),
        "the refused row left it"
    );
    let g2 = store
        .list_user_assignments(w.org.id, &user("g2"))
        .await
        .expect("g2 registered");
    assert_eq!(g2[0].value, TagValue::String(String::new()));
}

pub async fn rows_of_one_pair_apply_in_order_each_with_its_history_entry(store: DynStore) {
    let w = world(&store, "Acme").await;
    assign(&store, w.org.id, &w.number, "u1", "1")
        .await
        .expect("assigned");
    let flag = assign(&store, w.org.id, &w.flag, "u1", "True")
        .await
        .expect("assigned");
    remove(&store, w.org.id, &w.flag, "u1")
        .await
        .expect("removed");
    let rows = [
        set("u1", by_id(&w.number), "2"),
        set("u1", by_id(&w.number), "2.0"),
        set("u1", by_variable(&w.number), "3"),
        set("u1", by_id(&w.flag), "TRUE"),
        set("n9", by_id(&w.text), "a"),
        set("n9", by_id(&w.text), "b"),
    ];
    let report = import(&store, w.org.id, &rows).await;
    use ImportOutcome::*;
    assert_eq!(
        report.outcomes,
        vec![Applied, Unchanged, Applied, Applied, Applied, Applied]
    );
    let changes = |history: Vec<HistoryEntry>| -> Vec<_> {
        history
            .into_iter()
            .map(|h| (h.version, h.old_value, h.new_value, h.source))
            .collect()
    };
    let u1 = store
        .list_user_assignments(w.org.id, &user("u1"))
        .await
        .expect("listed");
    let number = u1
        .iter()
        .find(|a| a.group_id == w.number.id)
        .expect("number");
    assert_eq!(
        (number.version, number.value.clone()),
        (2, TagValue::Number(3.0))
    );
    let history = store
        .assignment_history(w.org.id, &number.entity_id)
        .await
        .expect("history");
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        changes(history),
        vec![
            (0, None, s("1"), Source::OpenApi),
            (1, s("1"), s("2"), Source::Import),
            (2, s("2"), s("3"), Source::Import),
        ]
    );
    let revived = u1.iter().find(|a| a.group_id == w.flag.id).expect("flag");
    assert_eq!(
        (revived.entity_id.clone(), revived.version, revived.source),
        (flag.entity_id.clone(), 2, Source::Import),
        "a removed assignment is revived in place"
    );
    let history = store
        .assignment_history(w.org.id, &flag.entity_id)
        .await
        .expect("history");
    assert_eq!(
        changes(history),
        vec![
            (0, None, s("True"), Source::OpenApi),
            (1, s("True"), None, Source::OpenApi),
            (2, None, s("True"), Source::Import),
        ]
    );
    let n9 = store
        .list_user_assignments(w.org.id, &user("n9"))
        .await
        .expect("listed");
    assert_eq!(
        (n9.len(), n9[0].version, n9[0].value.clone()),
        (1, 1, TagValue::String("b".into()))
    );
    let history = store
        .assignment_history(w.org.id, &n9[0].entity_id)
        .await
        .expect("history");
    assert_eq!(
        changes(history),
        vec![
            (0, None, s("a"), Source::Import),
            (1, s("a"), s("b"), Source::Import),
        ]
    );
}

pub async fn an_import_into_one_organization_never_touches_another(store: DynStore) {
    let a = world(&store, "A").await;
    let b = world(&store, "B").await;
    assign(&store, b.org.id, &b.flag, "u1", "False")
        .await
        .expect("B's own assignment");
    let b_before = state(&store, b.org.id).await;
    let rows = [
        set("u1", by_id(&b.flag), "True"),
        set("u1", by_both(&b.number), "5"),
        set("u1", by_variable(&a.flag), "True"),
        register("only_in_a"),
    ];
    let report = import(&store, a.org.id, &rows).await;
    use ImportOutcome::*;
    assert_eq!(
        report.outcomes,
        vec![
            Refused(Refusal::GroupNotFound),
            Refused(Refusal::GroupNotFound),
            Applied,
            Applied
        ],
        "B's group ids do not exist in A; `vip` names A's own group"
    );
    assert_eq!(registered(&store, b.org.id, "only_in_a").await, None);
    assert_eq!(state(&store, b.org.id).await, b_before, "B is unchanged");

    let (a_rows, a_users) = export_all(&store, a.org.id, 2).await;
    let a_groups = [&a.flag, &a.number, &a.text].map(|g| g.entity_id.clone());
    assert_eq!(a_rows.len(), 1);
    assert!(a_rows.iter().all(|r| a_groups.contains(&r.tags_group_id)));
    assert_eq!(
        a_users
            .iter()
            .map(|u| u.user_id.as_str())
            .collect::<Vec<_>>(),
        vec!["only_in_a"]
    );
    let (b_rows, b_users) = export_all(&store, b.org.id, 2).await;
    assert_eq!(b_rows.len(), 1);
    assert_eq!(b_rows[0].tags_group_id, b.flag.entity_id);
    assert!(b_users.is_empty());
}

pub async fn export_pages_by_key_through_live_assignments_then_bare_users(store: DynStore) {
    let w = world(&store, "Acme").await;
    let mut rows: Vec<ImportRow> = (1..=5)
        .map(|i| set(&format!("e{i}"), by_id(&w.flag), "True"))
        .collect();
    rows.push(set("e2", by_id(&w.text), "Pune, \"Maharashtra\"\nIndia"));
    rows.push(register("bare1"));
    let report = import(&store, w.org.id, &rows).await;
    assert_eq!(counts(&report), (7, 0, 0));
    remove(&store, w.org.id, &w.flag, "e3")
        .await
        .expect("removed");
    for page in [1, 2, 5, 1000] {
        let (exported, bare) = export_all(&store, w.org.id, page).await;
        let keys: Vec<i64> = exported.iter().map(|r| r.key).collect();
        assert!(keys.windows(2).all(|k| k[0] < k[1]), "key order");
        let listed: Vec<(&str, &str)> = exported
            .iter()
            .map(|r| (r.user_id.as_str(), r.variable_name.as_str()))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("e1", "vip"),
                ("e2", "vip"),
                ("e2", "city"),
                ("e4", "vip"),
                ("e5", "vip"),
            ],
            "new assignments of a batch are keyed in (user, group) order; page size {page}"
        );
        let e1 = &exported[0];
        assert_eq!(
            (
                e1.attribute,
                e1.value.clone(),
                e1.version,
                e1.source,
                e1.tags_group_id.clone()
            ),
            (
                Attribute::Define,
                TagValue::Define(true),
                0,
                Source::Import,
                w.flag.entity_id.clone()
            )
        );
        assert!(e1.mtime > 0);
        assert_eq!(
            exported[2].value,
            TagValue::String("Pune, \"Maharashtra\"\nIndia".into())
        );
        let bare: Vec<&str> = bare.iter().map(|u| u.user_id.as_str()).collect();
        assert_eq!(
            bare,
            vec!["u1", "bare1", "e3"],
            "users of a batch are registered in user_id order; page size {page}"
        );
    }
}

pub async fn concurrent_imports_of_the_same_rows_write_each_change_once(store: DynStore) {
    let w = world(&store, "Acme").await;
    let users: Vec<String> = (0..300).map(|i| format!("p{i}")).collect();
    let registered: Vec<ImportRow> = users.iter().map(|u| register(u)).collect();
    import(&store, w.org.id, &registered).await;
    let rows: Vec<ImportRow> = users
        .iter()
        .enumerate()
        .flat_map(|(i, u)| {
            [
                set(u, by_id(&w.flag), "True"),
                set(u, by_id(&w.number), &i.to_string()),
            ]
        })
        .collect();
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            let rows = rows.clone();
            let org = w.org.id;
            tokio::spawn(async move { store.import_batch(org, &rows, &Executor::operator()).await })
        })
        .collect();
    let mut total = (0, 0, 0);
    for task in tasks {
        let report = task.await.expect("task ran").expect("batch ran");
        let (applied, unchanged, refused) = counts(&report);
        total = (total.0 + applied, total.1 + unchanged, total.2 + refused);
    }
    assert_eq!(
        total,
        (600, 600, 0),
        "each row applied by exactly one import"
    );
    for (row, history) in state(&store, w.org.id).await {
        assert_eq!(row.version, 0, "{row:?}");
        assert_eq!(history.len(), 1, "{row:?}");
    }
}

pub async fn a_large_import_of_new_users_reads_back_exactly_with_awkward_values(store: DynStore) {
    // Large enough for PostgreSQL's `COPY` path (tagd-sql `pairs::COPY_FROM`), with strings
    // that its text format must escape and numbers that must survive as text.
    let w = world(&store, "Acme").await;
    let strings = [
        "tab\there",
        "line\nbreak",
        "back\\slash",
        "\\N",
        "cr\rlf",
        "Pune ✓",
        "",
    ];
    let numbers = ["0.1", "-0.5", "12345678901.25", "0.0000001", "1e21", "7"];
    let mut rows = Vec::new();
    for i in 0..200 {
        let c = format!("bulk{i}");
        rows.push(set(
            &c,
            by_id(&w.flag),
            if i % 2 == 0 { "true" } else { "false" },
        ));
        rows.push(set(&c, by_id(&w.number), numbers[i % numbers.len()]));
        rows.push(set(&c, by_id(&w.text), strings[i % strings.len()]));
    }
    let log_before = whole_log(&store, w.org.id, 10_000).await.len();
    let report = import(&store, w.org.id, &rows).await;
    assert_eq!(counts(&report), (600, 0, 0));
    assert_eq!(report.users_created, 200);
    for i in [0usize, 1, 2, 3, 4, 5, 6, 7, 199] {
        let listed = store
            .list_user_assignments(w.org.id, &user(&format!("bulk{i}")))
            .await
            .expect("listed");
        let values: Vec<TagValue> = listed.iter().map(|a| a.value.clone()).collect();
        let number = TagValue::parse(Attribute::Number, numbers[i % numbers.len()]);
        let expected = vec![
            TagValue::Define(i % 2 == 0),
            number.expect("a valid number"),
            TagValue::String(strings[i % strings.len()].into()),
        ];
        assert_eq!(values, expected, "bulk{i} reads back as written");
        for a in &listed {
            let history = store
                .assignment_history(w.org.id, &a.entity_id)
                .await
                .expect("history");
            assert_eq!(history.len(), 1);
            assert_eq!(history[0].new_value, Some(a.value.to_text()));
            assert_eq!((a.version, a.source), (0, Source::Import));
        }
    }
    let log = whole_log(&store, w.org.id, 10_000).await;
    let added = &log[log_before..];
    assert_eq!(added.len(), 800, "200 users created and 600 values set");
    assert!(
        added.windows(2).all(|p| p[0].version < p[1].version),
        "versions rise"
    );
    let again = import(&store, w.org.id, &rows).await;
    assert_eq!(
        counts(&again),
        (0, 600, 0),
        "the same rows again change nothing"
    );
}
