//! `/openapi.json` documents every v5 path with each status its handler can answer.

use crate::helpers::TestApp;
use serde_json::Value;

crate::on_both_backends!(openapi_json_lists_every_v5_path_with_each_documented_error_status);

async fn openapi_json_lists_every_v5_path_with_each_documented_error_status(app: &TestApp) {
    let doc: Value = app.get("/openapi.json").await.json().await.expect("JSON");
    let expected: [(&str, &str, &[&str]); 10] = [
        ("/api/v5/auth/token", "post", &["200", "400", "401"]),
        ("/api/v5/user/create", "post", &["200", "400", "401", "403"]),
        (
            "/api/v5/entity/tags/group/create",
            "post",
            &["200", "400", "401", "403", "409"],
        ),
        (
            "/api/v5/entity/tags/group/list",
            "get",
            &["200", "400", "401", "403"],
        ),
        (
            "/api/v5/entity/tags/group/update",
            "post",
            &["200", "400", "401", "403", "404", "409"],
        ),
        (
            "/api/v5/entity/tags/group/deactivate",
            "post",
            &["200", "400", "401", "403", "404", "409"],
        ),
        (
            "/api/v5/entity/tags/group/activate",
            "post",
            &["200", "400", "401", "403", "404", "409"],
        ),
        (
            "/api/v5/entity/user/tags/assign",
            "post",
            &["200", "400", "401", "403", "404", "409"],
        ),
        (
            "/api/v5/entity/user/tags/list",
            "get",
            &["200", "400", "401", "403", "404"],
        ),
        (
            "/api/v5/entity/user/tags/remove",
            "post",
            &["200", "400", "401", "403", "404"],
        ),
    ];
    for (path, method, statuses) in expected {
        let operation = &doc["paths"][path][method];
        assert!(
            operation.is_object(),
            "{method} {path} is missing from /openapi.json"
        );
        let responses = operation["responses"].as_object().expect("responses");
        for status in statuses {
            assert!(
                responses.contains_key(*status),
                "{method} {path} lacks {status}"
            );
        }
        assert!(responses.contains_key("500"), "{method} {path} lacks 500");
        if path != "/api/v5/auth/token" {
            assert!(
                operation["security"].to_string().contains("v5_token"),
                "{method} {path} needs the v5 token"
            );
            let parameters = operation["parameters"].to_string();
            assert!(
                parameters.contains("X-APP-ID"),
                "{method} {path}: {parameters}"
            );
        }
    }
    assert!(doc["components"]["securitySchemes"]["v5_token"].is_object());
    assert!(
        doc["paths"]["/admin/v1/orgs/{corp_id}/tag-groups/{entity_id}/lock"]["post"].is_object()
    );
}
