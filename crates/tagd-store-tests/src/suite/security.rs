//! Operator operations (revocation of every kind of secret, disabling an organization), the
//! cap on tag groups, and label search by prefix: the store side of issues 10 and 20.

use super::*;
use tagd_core::labels::LabelChange;
use tagd_core::secrets::sha256_hex;

async fn give_labels(store: &DynStore, org: OrgId, user_id: &str, labels: &[&str]) {
    store
        .create_user(org, &user(user_id), &Recorder::none())
        .await
        .expect("user");
    let change = LabelChange {
        expiry: Default::default(),
        add: labels
            .iter()
            .map(|n| LabelName::parse_optional(n).expect("valid").expect("named"))
            .collect(),
        remove: Vec::new(),
    };
    let warnings = store
        .change_labels(
            org,
            &user(user_id),
            &change,
            &v2_executor(),
            &Recorder::none(),
        )
        .await
        .expect("labels set");
    assert!(warnings.is_empty(), "{warnings:?}");
}

/// (customer, label) pairs a search answers, in order.
async fn search(store: &DynStore, org: OrgId, prefix: &str) -> Vec<(String, String)> {
    store
        .label_holders(org, prefix, None, 0, 1000)
        .await
        .expect("search")
        .into_iter()
        .map(|a| (a.user_id.to_string(), a.group_name.to_string()))
        .collect()
}

pub async fn label_search_matches_names_by_prefix_ignoring_case_with_wildcards_taken_literally(
    store: DynStore,
) {
    let org = store.create_org("Acme").await.expect("org").id;
    for (name, variable) in [
        ("Premium", "premium"),
        ("Premium Gold", "premium_gold"),
        ("Goldfish", "goldfish"),
        ("100% loyal", "loyal"),
        ("100x loyal", "loyal_x"),
        ("a_b", "a_b"),
        ("axb", "axb"),
        ("Été", "ete"),
    ] {
        label_group(&store, org, name, variable).await;
    }
    give_labels(&store, org, "1", &["Premium", "Premium Gold"]).await;
    give_labels(&store, org, "2", &["Goldfish", "Premium Gold"]).await;
    give_labels(&store, org, "3", &["100x loyal", "axb"]).await;
    give_labels(&store, org, "4", &["100% loyal", "a_b", "Été"]).await;

    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(u, l)| ((*u).to_owned(), (*l).to_owned()))
            .collect()
    };
    assert_eq!(
        search(&store, org, "prem").await,
        pairs(&[
            ("1", "Premium"),
            ("1", "Premium Gold"),
            ("2", "Premium Gold")
        ]),
        "each customer once per matching label, customers in order"
    );
    assert_eq!(
        search(&store, org, "PREMIUM G").await,
        pairs(&[("1", "Premium Gold"), ("2", "Premium Gold")])
    );
    assert_eq!(
        search(&store, org, "Gold").await,
        pairs(&[("2", "Goldfish")]),
        "a prefix, not a substring: Premium Gold does not start with Gold"
    );
    assert_eq!(
        search(&store, org, "100%").await,
        pairs(&[("4", "100% loyal")])
    );
    assert_eq!(search(&store, org, "a_").await, pairs(&[("4", "a_b")]));
    assert_eq!(search(&store, org, "%").await, pairs(&[]));
    assert_eq!(search(&store, org, "_").await, pairs(&[]));
    assert_eq!(search(&store, org, "éT").await, pairs(&[("4", "Été")]));
    assert_eq!(
        store.count_label_holders(org, "prem").await.expect("count"),
        2
    );
    assert_eq!(store.count_label_holders(org, "1").await.expect("count"), 2);

    let other = store.create_org("Other").await.expect("org").id;
    assert!(search(&store, other, "prem").await.is_empty());
    assert_eq!(
        store.count_label_holders(other, "p").await.expect("count"),
        0
    );
}

pub async fn label_search_pages_by_customer_key_without_repeating_a_customer(store: DynStore) {
    let org = store.create_org("Acme").await.expect("org").id;
    label_group(&store, org, "Premium", "premium").await;
    label_group(&store, org, "Premium Gold", "premium_gold").await;
    let mut expected = Vec::new();
    for n in 1..=25 {
        let id = n.to_string();
        let labels: &[&str] = if n % 3 == 0 {
            &["Premium", "Premium Gold"]
        } else if n % 3 == 1 {
            &["Premium"]
        } else {
            // Registered without a label: walked past, never returned.
            store
                .create_user(org, &user(&id), &Recorder::none())
                .await
                .expect("user");
            continue;
        };
        give_labels(&store, org, &id, labels).await;
        expected.push(id);
    }
    let mut seen = Vec::new();
    let mut after: Option<UserId> = None;
    loop {
        let page = store
            .label_holders(org, "PREM", after.as_ref(), 0, 4)
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.user_id.clone());
        let mut ids: Vec<String> = page.iter().map(|a| a.user_id.to_string()).collect();
        ids.dedup();
        assert!(
            ids.len() <= 4,
            "a page holds at most its limit of customers"
        );
        seen.extend(ids);
    }
    assert_eq!(seen, expected, "every holder once, in numeric order");
    assert_eq!(
        store.count_label_holders(org, "prem").await.expect("count"),
        expected.len() as i64
    );
}

pub async fn the_tag_group_cap_holds_under_concurrent_creates(store: DynStore) {
    let org = store.create_org("Acme").await.expect("org").id;
    store
        .set_org_max_tag_groups(org, Some(5))
        .await
        .expect("cap set");
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                create_group(
                    &store,
                    org,
                    &fields(&format!("G{i}"), &format!("g{i}"), Attribute::Define, "c"),
                )
                .await
            })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(group) => created.push(group.name.to_string()),
            Err(Error::TagGroupLimit { max }) => assert_eq!(max, 5),
            Err(e) => panic!("unexpected refusal: {e:?}"),
        }
    }
    assert_eq!(created.len(), 5);
    assert_eq!(store.org_counts(org).await.expect("counts").tag_groups, 5);

    let batch = [
        fields(&created[0], "again0", Attribute::Define, "label"),
        fields("New", "new", Attribute::Define, "label"),
    ];
    let answers = store
        .create_tag_groups(org, &batch, &app_executor(), &Recorder::none())
        .await
        .expect("batch answered item by item");
    assert!(matches!(&answers[0], Err(Error::Duplicate(what)) if what == "name"));
    assert!(matches!(&answers[1], Err(Error::TagGroupLimit { max: 5 })));

    store
        .set_org_max_tag_groups(org, None)
        .await
        .expect("back to the default");
    store.set_default_max_tag_groups(6);
    let sixth = store
        .create_tag_groups(org, &batch[1..], &app_executor(), &Recorder::none())
        .await
        .expect("batch");
    assert!(
        sixth[0].is_ok(),
        "the default cap of 6 has room for one more"
    );
    let other = store.create_org("Other").await.expect("org").id;
    assert!(
        create_group(&store, other, &fields("G0", "g0", Attribute::Define, "c"))
            .await
            .is_ok(),
        "another organization's count is its own"
    );
}

pub async fn rotating_deleting_and_disabling_take_every_secret_back(store: DynStore) {
    let org = store.create_org("Acme").await.expect("org");
    let other = store.create_org("Other").await.expect("org");
    let app = store
        .create_app(org.id, "crm", &sha256_hex("old secret"))
        .await
        .expect("app");
    store
        .create_token(org.id, app.id, &sha256_hex("t1"), 4_000_000_000)
        .await
        .expect("token");

    assert!(
        matches!(
            store
                .rotate_app_secret(other.id, app.id, &sha256_hex("x"))
                .await,
            Err(Error::AppNotFound)
        ),
        "another organization cannot rotate it"
    );
    assert_eq!(
        store
            .find_org_app(other.id, &app.app_id)
            .await
            .expect("query"),
        None
    );
    let issue = |secret: &'static str, token: &'static str| {
        let store = store.clone();
        let (org, app) = (org.id, app.id);
        async move {
            store
                .issue_token(
                    org,
                    app,
                    &sha256_hex(secret),
                    &sha256_hex(token),
                    4_000_000_000,
                )
                .await
                .expect("issue")
        }
    };
    assert!(
        issue("old secret", "t0").await,
        "issued while the secret holds"
    );
    let rotated = store
        .rotate_app_secret(org.id, app.id, &sha256_hex("new secret"))
        .await
        .expect("rotated");
    assert!(
        !issue("old secret", "late").await,
        "a request that checked the old secret before the rotation gets no token after it"
    );
    assert_eq!(
        store.find_token(&sha256_hex("late")).await.expect("query"),
        None
    );
    assert_eq!(rotated.secret_hash, sha256_hex("new secret"));
    let token = store.find_token(&sha256_hex("t1")).await.expect("query");
    assert!(
        token.is_some_and(|t| t.revoked),
        "rotation revokes issued tokens"
    );

    store
        .create_basic_credential(org.id, "loyalty", "$argon2id$old")
        .await
        .expect("credential");
    assert!(matches!(
        store.set_basic_password(other.id, "loyalty", "$x").await,
        Err(Error::CredentialNotFound)
    ));
    assert!(matches!(
        store.delete_basic_credential(other.id, "loyalty").await,
        Err(Error::CredentialNotFound)
    ));
    let changed = store
        .set_basic_password(org.id, "loyalty", "$argon2id$new")
        .await
        .expect("changed");
    assert_eq!(changed.password_hash, "$argon2id$new");
    let listed = store.list_basic_credentials(org.id).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert!(store
        .list_basic_credentials(other.id)
        .await
        .expect("list")
        .is_empty());

    store
        .create_token(org.id, app.id, &sha256_hex("t2"), 4_000_000_000)
        .await
        .expect("token");
    let disabled = store
        .set_org_disabled(org.id, true)
        .await
        .expect("disabled");
    assert!(disabled.disabled);
    assert!(!issue("new secret", "while disabled").await);
    assert_eq!(store.find_app(&app.app_id).await.expect("query"), None);
    assert_eq!(
        store.find_token(&sha256_hex("t2")).await.expect("query"),
        None
    );
    assert_eq!(
        store.find_basic_credential("loyalty").await.expect("query"),
        None
    );
    assert!(
        store
            .find_org_app(org.id, &app.app_id)
            .await
            .expect("query")
            .is_some(),
        "the operator still sees it"
    );
    store
        .set_org_disabled(org.id, false)
        .await
        .expect("enabled");
    assert!(store
        .find_token(&sha256_hex("t2"))
        .await
        .expect("query")
        .is_some());
    assert!(store
        .find_basic_credential("loyalty")
        .await
        .expect("query")
        .is_some());

    assert!(matches!(
        store.delete_app(other.id, app.id).await,
        Err(Error::AppNotFound)
    ));
    store.delete_app(org.id, app.id).await.expect("deleted");
    assert_eq!(store.find_app(&app.app_id).await.expect("query"), None);
    assert_eq!(
        store.find_token(&sha256_hex("t2")).await.expect("query"),
        None
    );
    assert!(store.list_apps(org.id).await.expect("list").is_empty());
    store
        .delete_basic_credential(org.id, "loyalty")
        .await
        .expect("deleted");
    assert_eq!(
        store.find_basic_credential("loyalty").await.expect("query"),
        None
    );
}

pub async fn expired_tokens_are_purged_and_live_ones_kept(store: DynStore) {
    let org = store.create_org("Acme").await.expect("org");
    let app = store
        .create_app(org.id, "crm", &sha256_hex("s"))
        .await
        .expect("app");
    for (token, expires) in [("old", 1_000), ("older", 500), ("live", 4_000_000_000)] {
        store
            .create_token(org.id, app.id, &sha256_hex(token), expires)
            .await
            .expect("token");
    }
    assert_eq!(store.purge_expired_tokens(2_000).await.expect("purged"), 2);
    assert_eq!(
        store.find_token(&sha256_hex("old")).await.expect("query"),
        None
    );
    assert!(store
        .find_token(&sha256_hex("live"))
        .await
        .expect("query")
        .is_some());
    assert_eq!(store.purge_expired_tokens(2_000).await.expect("purged"), 0);
}

pub async fn organizations_are_listed_with_counts_of_what_they_hold(store: DynStore) {
    let w = world(&store, "Acme").await;
    let other = store.create_org("Other").await.expect("org");
    assign(&store, w.org.id, &w.flag, "u1", "True")
        .await
        .expect("assigned");
    let listed = store.list_orgs().await.expect("list");
    assert_eq!(
        listed.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
        vec!["Acme", "Other"]
    );
    let counts = store.org_counts(w.org.id).await.expect("counts");
    assert_eq!(
        (counts.users, counts.tag_groups, counts.live_assignments),
        (1, 3, 1)
    );
    assert_eq!(
        store.org_counts(other.id).await.expect("counts"),
        OrgCounts::default()
    );
    let capped = store
        .set_org_max_tag_groups(other.id, Some(7))
        .await
        .expect("capped");
    assert_eq!(capped.max_tag_groups, Some(7));
    let per_org = store.tag_groups_per_org().await.expect("per org");
    assert_eq!(per_org, vec![(w.org.corp_id.clone(), 3)]);
}
