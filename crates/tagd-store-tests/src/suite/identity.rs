use super::*;
use tagd_core::secrets::sha256_hex;

pub async fn an_organization_gets_a_32_hex_corp_id_and_is_found_by_it(store: DynStore) {
    let org = store.create_org("Acme").await.expect("created");
    assert!(ExternalId::parse("corp_id", org.corp_id.as_str()).is_ok());
    assert_eq!(org.name, "Acme");
    let found = store
        .find_org_by_corp_id(&org.corp_id)
        .await
        .expect("query");
    assert_eq!(found.as_ref(), Some(&org));
    assert_eq!(store.get_org(org.id).await.expect("by id"), org);
    let other = CorpId::generate();
    assert_eq!(
        store.find_org_by_corp_id(&other).await.expect("query"),
        None
    );
    assert!(matches!(
        store.get_org(OrgId(org.id.0 + 1000)).await,
        Err(Error::OrgNotFound)
    ));
}

pub async fn creating_the_same_user_twice_is_idempotent(store: DynStore) {
    let org = store.create_org("Acme").await.expect("created");
    let (first, created) = store
        .create_user(org.id, &user("564663098"), &Recorder::none())
        .await
        .expect("first");
    assert!(created);
    let (second, created_again) = store
        .create_user(org.id, &user("564663098"), &Recorder::none())
        .await
        .expect("again");
    assert!(!created_again);
    assert_eq!(first, second);
    let found = store
        .find_user(org.id, &user("564663098"))
        .await
        .expect("query");
    assert_eq!(found, Some(first));
    assert_eq!(
        store
            .find_user(org.id, &user("nobody"))
            .await
            .expect("query"),
        None
    );
    let missing_org = store
        .create_user(OrgId(org.id.0 + 1000), &user("x"), &Recorder::none())
        .await;
    assert!(
        matches!(missing_org, Err(Error::OrgNotFound)),
        "{missing_org:?}"
    );
}

pub async fn apps_credentials_and_tokens_are_found_by_their_public_keys_only(store: DynStore) {
    let org = store.create_org("Acme").await.expect("created");
    let app = store
        .create_app(org.id, "crm", &sha256_hex("secret"))
        .await
        .expect("app");
    assert_eq!(app.secret_hash, sha256_hex("secret"));
    assert_eq!(
        store.find_app(&app.app_id).await.expect("query"),
        Some(app.clone())
    );
    assert_eq!(
        store
            .find_app(&ExternalId::generate())
            .await
            .expect("query"),
        None
    );

    let cred = store
        .create_basic_credential(org.id, "sant.p_123", "$argon2id$stub")
        .await
        .expect("cred");
    assert_eq!(
        store
            .find_basic_credential("sant.p_123")
            .await
            .expect("query"),
        Some(cred)
    );
    assert_eq!(
        store
            .find_basic_credential("SANT.P_123")
            .await
            .expect("query"),
        None
    );

    store
        .create_token(org.id, app.id, &sha256_hex("tok"), 4_000_000_000)
        .await
        .expect("token");
    let token = store
        .find_token(&sha256_hex("tok"))
        .await
        .expect("query")
        .expect("found");
    assert_eq!(
        (token.org_id, token.app, token.expires_at, token.revoked),
        (org.id, app.id, 4_000_000_000, false)
    );
    assert_eq!(
        store.find_token(&sha256_hex("other")).await.expect("query"),
        None
    );
}

pub async fn a_basic_credential_user_name_is_unique_across_the_server(store: DynStore) {
    let a = store.create_org("A").await.expect("a");
    let b = store.create_org("B").await.expect("b");
    store
        .create_basic_credential(a.id, "shared", "h")
        .await
        .expect("first");
    let again = store.create_basic_credential(b.id, "shared", "h").await;
    assert!(matches!(again, Err(Error::Duplicate(_))), "{again:?}");
}

pub async fn the_admin_token_hash_is_stored_once(store: DynStore) {
    assert_eq!(store.admin_token_hash().await.expect("query"), None);
    assert!(store.init_admin_token_hash("h1").await.expect("first"));
    assert!(!store.init_admin_token_hash("h2").await.expect("second"));
    assert_eq!(
        store.admin_token_hash().await.expect("query").as_deref(),
        Some("h1")
    );
}

pub async fn revoking_tokens_marks_only_that_apps_tokens_in_that_organization(store: DynStore) {
    let a = store.create_org("A").await.expect("a");
    let b = store.create_org("B").await.expect("b");
    let crm = store.create_app(a.id, "crm", "h1").await.expect("crm");
    let pos = store.create_app(a.id, "pos", "h2").await.expect("pos");
    for (org, app, token) in [
        (a.id, crm.id, "t1"),
        (a.id, crm.id, "t2"),
        (a.id, pos.id, "t3"),
    ] {
        store
            .create_token(org, app, &sha256_hex(token), 4_000_000_000)
            .await
            .expect("token");
    }
    let revoked = |token: &'static str| {
        let store = store.clone();
        async move {
            store
                .find_token(&sha256_hex(token))
                .await
                .expect("query")
                .expect("found")
                .revoked
        }
    };
    // Scoped by organization: B cannot revoke A's app's tokens by its id.
    assert_eq!(store.revoke_tokens(b.id, crm.id).await.expect("revoke"), 0);
    assert!(!revoked("t1").await);
    assert_eq!(store.revoke_tokens(a.id, crm.id).await.expect("revoke"), 2);
    assert!(revoked("t1").await && revoked("t2").await);
    assert!(!revoked("t3").await, "another app's token");
    assert_eq!(store.revoke_tokens(a.id, crm.id).await.expect("again"), 0);
}
