//! A corpus of malformed input: each case gets a 4xx JSON error in its dialect's shape,
//! writes nothing, and the server keeps serving.

use super::{tags_of, v5_world};
use crate::helpers::TestApp;
use crate::v2::V2Org;
use serde_json::Value;

crate::on_both_backends!(every_malformed_input_gets_a_4xx_json_error_and_writes_nothing);

const GROUP_CREATE: &str = "/api/v5/entity/tags/group/create";
const ASSIGN: &str = "/api/v5/entity/user/tags/assign";

struct Case {
    name: &'static str,
    method: reqwest::Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn post(name: &'static str, path: &str, body: impl Into<Vec<u8>>) -> Case {
    Case {
        name,
        method: reqwest::Method::POST,
        path: path.to_owned(),
        content_type: Some("application/json"),
        body: body.into(),
    }
}

fn get(name: &'static str, path: String) -> Case {
    Case {
        name,
        method: reqwest::Method::GET,
        path,
        content_type: None,
        body: Vec::new(),
    }
}

fn v5_cases(corp: &str, group: &str) -> Vec<Case> {
    let valid_group = |name: &str| {
        format!(
            r#"{{"name":"{name}","variable_name":"v","description":"","attribute":"define","category":"c","corp_id":"{corp}"}}"#
        )
    };
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let list =
        |query: &str| format!("/api/v5/entity/tags/group/list?corp_id={corp}&category=c&{query}");
    let assign = |value: &str| {
        format!(
            r#"{{"corp_id":"{corp}","tags_group_id":"{group}","user_id":"u1","value":{value}}}"#
        )
    };
    let mut invalid_utf8 = valid_group("x").into_bytes();
    invalid_utf8.splice(9..10, [0xff, 0xfe]);
    vec![
        post("invalid UTF-8", GROUP_CREATE, invalid_utf8),
        post("NUL in a name", GROUP_CREATE, valid_group("a\\u0000b")),
        post("raw NUL byte", GROUP_CREATE, valid_group("a\0b")),
        post(
            "huge number",
            "/api/v5/entity/tags/group/update",
            format!(
                r#"{{"entity_id":"{group}","corp_id":"{corp}","name":"n","variable_name":"v","description":"","attribute":"number","category":"c","version":1e400}}"#
            ),
        ),
        get("huge number in a query", list("start_index=1e400&step=10")),
        get(
            "start_index beyond i64",
            list("start_index=99999999999999999999&step=10"),
        ),
        post("NaN literal", ASSIGN, assign("NaN")),
        post("NaN value", ASSIGN, assign("\"NaN\"")),
        post("infinite value", ASSIGN, assign("\"Infinity\"")),
        post("overflowing value", ASSIGN, assign("\"1e999\"")),
        post("deeply nested JSON", GROUP_CREATE, nested),
        post(
            "duplicate keys",
            GROUP_CREATE,
            format!(
                r#"{{"name":"a","name":"b","variable_name":"v","description":"","attribute":"define","category":"c","corp_id":"{corp}"}}"#
            ),
        ),
        post(
            "number as string",
            "/api/v5/entity/tags/group/update",
            format!(
                r#"{{"entity_id":"{group}","corp_id":"{corp}","name":"n","variable_name":"v","description":"","attribute":"number","category":"c","version":"0"}}"#
            ),
        ),
        post(
            "string as number",
            GROUP_CREATE,
            format!(
                r#"{{"name":5,"variable_name":"v","description":"","attribute":"define","category":"c","corp_id":"{corp}"}}"#
            ),
        ),
        post("value as number", ASSIGN, assign("5")),
        get("step as text", list("start_index=0&step=ten")),
        post(
            "10 MB string",
            GROUP_CREATE,
            valid_group(&"x".repeat(10 * 1024 * 1024)),
        ),
        Case {
            content_type: None,
            ..post("missing content type", GROUP_CREATE, valid_group("x"))
        },
        Case {
            content_type: Some("text/plain"),
            ..post("wrong content type", GROUP_CREATE, valid_group("x"))
        },
        post("empty body", GROUP_CREATE, ""),
        post("JSON null", GROUP_CREATE, "null"),
        post(
            "tags_group_id of the wrong shape",
            ASSIGN,
            format!(
                r#"{{"corp_id":"{corp}","tags_group_id":"../../etc","user_id":"u1","value":"1"}}"#
            ),
        ),
        post(
            "user id of the wrong shape",
            ASSIGN,
            format!(
                r#"{{"corp_id":"{corp}","tags_group_id":"{group}","user_id":"a b","value":"1"}}"#
            ),
        ),
    ]
}

fn v2_cases() -> Vec<Case> {
    let entries = vec!["{}"; 100_000].join(",");
    vec![
        post(
            "100,000-entry array",
            "/v2/customers/42/changeLabels",
            format!(r#"{{"add":[{entries}]}}"#),
        ),
        post(
            "invalid UTF-8",
            "/v2/customers/42/changeLabels",
            b"{\"add\":[{\"labelName\":\"\xff\"}]}".to_vec(),
        ),
        post(
            "NUL in a label",
            "/v2/customers/42/changeLabels",
            r#"{"add":[{"labelName":"a\u0000b"}]}"#,
        ),
        post(
            "deeply nested",
            "/v2/customers/42/changeLabels",
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
        ),
        post(
            "10 MB string",
            "/v2/customers/42/changeLabels",
            format!(
                r#"{{"add":[{{"labelName":"{}"}}]}}"#,
                "x".repeat(10 * 1024 * 1024)
            ),
        ),
        post(
            "duplicate keys",
            "/v2/customers/42/changeLabels",
            r#"{"add":[],"add":[{"labelName":"VIP"}]}"#,
        ),
        post(
            "string as array",
            "/v2/customers/42/changeLabels",
            r#"{"add":"VIP"}"#,
        ),
        Case {
            content_type: None,
            ..post(
                "missing content type",
                "/v2/customers/42/changeLabels",
                r#"{"add":[]}"#,
            )
        },
        post(
            "customer id of the wrong shape",
            "/v2/customers/4x2/changeLabels",
            r#"{"add":[]}"#,
        ),
        post(
            "customer id beyond u64",
            "/v2/customers/99999999999999999999999/changeLabels",
            r#"{"add":[]}"#,
        ),
        get(
            "customer id of the wrong shape",
            "/v2/customers/-1/labels".into(),
        ),
        get(
            "limit of the wrong shape",
            "/v2/customers/labels/search?q=VIP&limit=1e3".into(),
        ),
    ]
}

async fn send(
    app: &TestApp,
    case: &Case,
    auth: (&str, &str),
    app_id: Option<&str>,
) -> (u16, Value) {
    let mut request = app
        .client
        .request(case.method.clone(), app.url(&case.path))
        .header(auth.0, auth.1);
    if let Some(app_id) = app_id {
        request = request.header("X-APP-ID", app_id);
    }
    if let Some(content_type) = case.content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.body(case.body.clone()).send().await.expect("sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn every_malformed_input_gets_a_4xx_json_error_and_writes_nothing(app: &TestApp) {
    let (org, group) = v5_world(app, "Acme").await;
    let groups = format!(
        "/api/v5/entity/tags/group/list?corp_id={}&category=c&start_index=0&step=100",
        org.corp_id
    );
    let before = (org.get(&groups).await.1, tags_of(&org, "u1").await);
    let bearer = format!("Bearer {}", org.token);
    for case in v5_cases(&org.corp_id, &group) {
        let (status, body) = send(app, &case, ("Authorization", &bearer), Some(&org.app_id)).await;
        assert!(
            (400..500).contains(&status),
            "{}: {status} {body}",
            case.name
        );
        assert!(
            body["code"].as_u64().is_some_and(|c| c >= 40000),
            "{}: {body}",
            case.name
        );
        assert_eq!(body["data"], Value::Null, "{}", case.name);
    }
    assert_eq!(
        (org.get(&groups).await.1, tags_of(&org, "u1").await),
        before,
        "nothing written"
    );

    let v2 = V2Org::create(app, "Other", "loyalty", "pw").await;
    v2.customers(app, &["42"]).await;
    v2.labels(&["VIP"]).await;
    for case in v2_cases() {
        let (status, body) = send(app, &case, ("Authorization", &v2.authorization), None).await;
        assert!(
            (400..500).contains(&status),
            "{}: {status} {body}",
            case.name
        );
        assert_eq!(body["errors"][0]["status"], false, "{}: {body}", case.name);
        assert_eq!(
            body["errors"][0]["code"].as_u64(),
            Some(u64::from(status)),
            "{}",
            case.name
        );
    }
    assert!(v2.carried("42").await.is_empty(), "nothing written");
    assert_eq!(app.get("/healthz").await.status(), 200, "still serving");
}
