//! Two organizations: every v5 endpoint called as B but naming A's things is refused, A's data
//! is unchanged, and the refusals say nothing about whether A's things exist.

use super::*;
use crate::helpers::TestApp;

crate::on_both_backends!(
    every_v5_call_from_another_org_naming_a_s_things_is_refused_and_a_is_unchanged,
    refusals_for_another_orgs_ids_are_identical_to_those_for_ids_that_do_not_exist,
    the_same_user_id_and_group_names_in_two_orgs_are_separate,
);

/// One call of each v5 endpoint (but the token one), naming `corp_id`, `group` and `user`.
fn every_endpoint(corp_id: &str, group: &str, user: &str) -> Vec<(&'static str, Option<Value>)> {
    let mut group_fields = json!({"entity_id": group, "corp_id": corp_id, "name": "taken over",
        "variable_name": "taken_over", "description": "", "attribute": "define",
        "category": "cat"});
    let create = group_fields.clone();
    group_fields["version"] = json!(0);
    let by_ref = json!({"entity_id": group, "corp_id": corp_id});
    let tag = json!({"corp_id": corp_id, "tags_group_id": group, "user_id": user,
        "value": "False"});
    vec![
        (
            USER_CREATE,
            Some(json!({"corp_id": corp_id, "user_id": "intruder"})),
        ),
        (GROUP_CREATE, Some(create)),
        (GROUP_UPDATE, Some(group_fields)),
        (GROUP_DEACTIVATE, Some(by_ref.clone())),
        (GROUP_ACTIVATE, Some(by_ref)),
        (TAG_ASSIGN, Some(tag.clone())),
        (TAG_REMOVE, Some(tag)),
        (GROUP_LIST, None),
        (TAG_LIST, None),
    ]
}

/// Sends one call of `every_endpoint` as `caller`.
async fn send(
    caller: &V5Org,
    path: &str,
    body: &Option<Value>,
    corp_id: &str,
    user: &str,
) -> V5Answer {
    match (body, path) {
        (Some(body), _) => caller.post(path, body).await,
        (None, GROUP_LIST) => {
            caller
                .get(&format!(
                    "{GROUP_LIST}?corp_id={corp_id}&category=cat&start_index=0&step=100"
                ))
                .await
        }
        (None, _) => {
            caller
                .get(&format!("{TAG_LIST}?corp_id={corp_id}&user_id={user}"))
                .await
        }
    }
}

/// Orgs A and B with users, groups and tags: (a, b, A's two groups, B's group).
async fn two_orgs(app: &TestApp) -> (V5Org, V5Org, Vec<String>, String) {
    let a = app.v5_org("A").await;
    let b = app.v5_org("B").await;
    for user in ["a1", "a2", "only-in-a"] {
        a.create_user(user).await;
    }
    let a_groups = vec![
        a.create_group("vip", "vip", "define", "cat").await,
        a.create_group("spend", "spend", "number", "cat").await,
    ];
    a.assign(&a_groups[0], "a1", "True").await;
    a.assign(&a_groups[1], "a1", "12.5").await;
    a.assign(&a_groups[0], "a2", "False").await;
    b.create_user("b1").await;
    let b_group = b.create_group("b vip", "b_vip", "define", "cat").await;
    b.assign(&b_group, "b1", "True").await;
    (a, b, a_groups, b_group)
}

async fn a_view(a: &V5Org) -> Value {
    let mut view = snapshot(a, &["cat"], &["a1", "a2", "only-in-a"]).await;
    let intruder = a
        .get(&format!(
            "{TAG_LIST}?corp_id={}&user_id=intruder",
            a.corp_id
        ))
        .await;
    view.as_array_mut().expect("array").push(json!(intruder));
    view
}

/// B calling with A's token, app id or corp_id mixed in: (how, caller, corp_id it names).
fn forbidden_callers(a: &V5Org, b: &V5Org) -> Vec<(&'static str, V5Org, String)> {
    [
        ("B's token and app id, A's corp_id", b, b, a),
        ("B's token, A's app id, A's corp_id", b, a, a),
        ("B's token, A's app id, B's corp_id", b, a, b),
        ("A's token, B's app id, A's corp_id", a, b, a),
        ("A's token, B's app id, B's corp_id", a, b, b),
    ]
    .into_iter()
    .map(|(how, token, app, corp)| {
        let caller = b.with_auth(&token.token, &app.app_id);
        (how, caller, corp.corp_id.clone())
    })
    .collect()
}

async fn every_v5_call_from_another_org_naming_a_s_things_is_refused_and_a_is_unchanged(
    app: &TestApp,
) {
    let (a, b, a_groups, b_group) = two_orgs(app).await;
    let before = a_view(&a).await;
    let b_before = snapshot(&b, &["cat"], &["b1"]).await;
    let forbidden_callers = forbidden_callers(&a, &b);
    let mut probes = 0;
    for (how, caller, corp_id) in &forbidden_callers {
        for group in &a_groups {
            for (path, body) in every_endpoint(corp_id, group, "a1") {
                let answer = send(caller, path, &body, corp_id, "a1").await;
                assert_eq!(
                    (answer.0, &answer.1["code"]),
                    (403, &json!(40301)),
                    "{how}: {path}"
                );
                refused(&answer, 403, 40301);
                probes += 1;
            }
        }
    }
    // B's own credentials and corp_id, A's group: not found.
    for group in &a_groups {
        for (path, body) in every_endpoint(&b.corp_id, group, "b1") {
            if matches!(path, USER_CREATE | GROUP_CREATE | GROUP_LIST | TAG_LIST) {
                continue;
            }
            let answer = send(&b, path, &body, &b.corp_id, "b1").await;
            assert_eq!(answer.1["code"], json!(40401), "{path}: {}", answer.1);
            refused(&answer, 404, 40401);
            probes += 1;
        }
    }
    // B's own credentials, B's group, a user registered only in A: not found.
    for user in ["only-in-a", "a2"] {
        for (path, body) in every_endpoint(&b.corp_id, &b_group, user) {
            if matches!(path, TAG_ASSIGN | TAG_REMOVE | TAG_LIST) {
                let answer = send(&b, path, &body, &b.corp_id, user).await;
                assert_eq!(answer.1["code"], json!(40402), "{path}: {}", answer.1);
                refused(&answer, 404, 40402);
                probes += 1;
            }
        }
    }
    assert_eq!(probes, 5 * 2 * 9 + 2 * 5 + 2 * 3);
    let after = a_view(&a).await;
    assert_eq!(after, before, "A's data is unchanged");
    assert_eq!(after.to_string(), before.to_string());
    assert_eq!(after[4][0], json!(404));
    assert_eq!(
        after[4][1]["code"],
        json!(40402),
        "no user `intruder` was made in A"
    );
    assert_eq!(snapshot(&b, &["cat"], &["b1"]).await, b_before);
}

/// Sends B's call of `path` under B's corp_id naming the real (group, user), then naming the
/// invented one: the answers are the same 404 refusal with `code`.
async fn refused_as_if_invented(
    b: &V5Org,
    path: &str,
    real: (&str, &str),
    invented: (&str, &str),
    code: u32,
) {
    let mut answers = Vec::new();
    for (group, user) in [real, invented] {
        let (_, body) = every_endpoint(&b.corp_id, group, user)
            .into_iter()
            .find(|(p, _)| *p == path)
            .expect("same endpoint");
        answers.push(send(b, path, &body, &b.corp_id, user).await);
    }
    refused(&answers[0], 404, code);
    assert_eq!(answers[0], answers[1], "{path}");
}

async fn refusals_for_another_orgs_ids_are_identical_to_those_for_ids_that_do_not_exist(
    app: &TestApp,
) {
    let (a, b, a_groups, b_group) = two_orgs(app).await;
    let before = a_view(&a).await;
    let nowhere = unknown_id();
    // A's group named under B's corp_id answers as a group that never existed.
    for (path, _) in every_endpoint(&b.corp_id, &a_groups[0], "b1") {
        if !matches!(path, USER_CREATE | GROUP_CREATE | GROUP_LIST | TAG_LIST) {
            let real = (a_groups[0].as_str(), "b1");
            refused_as_if_invented(&b, path, real, (&nowhere, "b1"), 40401).await;
        }
    }
    // A's user under B's corp_id answers as a user that never existed.
    for (path, _) in every_endpoint(&b.corp_id, &b_group, "only-in-a") {
        if matches!(path, TAG_ASSIGN | TAG_REMOVE | TAG_LIST) {
            let real = (b_group.as_str(), "only-in-a");
            refused_as_if_invented(&b, path, real, (&b_group, "never-was"), 40402).await;
        }
    }
    // A's corp_id answers as an organization that does not exist.
    let no_org = unknown_id();
    let real_calls = every_endpoint(&a.corp_id, &a_groups[0], "a1");
    let invented_calls = every_endpoint(&no_org, &a_groups[0], "a1");
    for ((path, real_body), (_, invented_body)) in real_calls.iter().zip(&invented_calls) {
        let real = send(&b, path, real_body, &a.corp_id, "a1").await;
        let invented = send(&b, path, invented_body, &no_org, "a1").await;
        refused(&real, 403, 40301);
        assert_eq!(real, invented, "{path}");
        assert!(
            !real.1.to_string().contains(&a.corp_id),
            "{path}: {}",
            real.1
        );
    }
    assert_eq!(a_view(&a).await, before);
}

async fn the_same_user_id_and_group_names_in_two_orgs_are_separate(app: &TestApp) {
    let (a, b, a_groups, _) = two_orgs(app).await;
    let before = a_view(&a).await;
    // B may use A's user id and A's group names: they are B's own.
    b.create_user("a1").await;
    let b_vip = b.create_group("vip", "vip", "define", "cat").await;
    assert_ne!(b_vip, a_groups[0]);
    b.assign(&b_vip, "a1", "False").await;
    let remove = json!({"corp_id": b.corp_id, "tags_group_id": b_vip, "user_id": "a1"});
    success(
        &b.post(
            GROUP_DEACTIVATE,
            &json!({"entity_id": b_vip, "corp_id": b.corp_id}),
        )
        .await,
    );
    success(&b.post(TAG_REMOVE, &remove).await);
    b.assign(
        &b.create_group("spend", "spend", "number", "cat").await,
        "a1",
        "1",
    )
    .await;

    assert_eq!(a_view(&a).await, before, "A's data is unchanged");
    let b_tags = b.user_tags("a1").await;
    assert_eq!(b_tags["total"], json!(1));
    assert_eq!(b_tags["rows"][0]["corp_id"], b.corp_id);
    assert_eq!(b_tags["rows"][0]["executor_id"], b.app_id);
    let b_groups = b.groups("cat").await;
    assert_eq!(b_groups["total"], json!(3));
    assert!(b_groups["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .all(|r| r["corp_id"] == b.corp_id
            && !a_groups.contains(&r["entity_id"].as_str().expect("id").to_owned())));
}
