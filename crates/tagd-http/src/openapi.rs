//! The parts of the OpenAPI document that no single route owns: title, security schemes.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::OpenApi;
use utoipa::Modify;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "tagd",
        description = "Customer labels and typed tags: the v2 customer-labels and v5 tag-group APIs over one model."
    ),
    modifiers(&SecuritySchemes)
)]
struct BaseDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "v2_basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "v5_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

pub(crate) fn base() -> OpenApi {
    <BaseDoc as utoipa::OpenApi>::openapi()
}

/// The three families of operations the document describes, told apart by path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V5,
    V2,
    Admin,
}

impl Family {
    fn of(path: &str) -> Option<Family> {
        if path.starts_with("/api/v5/") {
            Some(Family::V5)
        } else if path.starts_with("/v2/") {
            Some(Family::V2)
        } else if path.starts_with("/admin/") {
            Some(Family::Admin)
        } else {
            None
        }
    }

    fn error_schema(self) -> &'static str {
        match self {
            Family::V5 => "V5ErrorBody",
            Family::V2 => "V2ErrorBody",
            Family::Admin => "AdminErrorBody",
        }
    }

    fn security_scheme(self) -> &'static str {
        match self {
            Family::V5 => "v5_token",
            Family::V2 => "v2_basic",
            Family::Admin => "admin_token",
        }
    }
}

/// What every operation of a family shares, added to each (an operation lists only its own
/// answers): its security scheme, v5's `X-APP-ID` header, and the answers of the gate and of
/// the admin guard (see `gate.rs`), so the document lists every status a client can see.
pub(crate) fn add_gate_responses(openapi: &mut OpenApi) {
    use utoipa::openapi::{ContentBuilder, HttpMethod, Ref, ResponseBuilder};
    let error = |schema: &str, description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            )
            .build()
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        let Some(family) = Family::of(path) else {
            continue;
        };
        // The token endpoint is how a v5 caller gets in: no token, no gate.
        let gated = family != Family::Admin && path != "/api/v5/auth/token";
        for (method, operation) in [
            (HttpMethod::Get, item.get.as_mut()),
            (HttpMethod::Post, item.post.as_mut()),
            (HttpMethod::Put, item.put.as_mut()),
            (HttpMethod::Delete, item.delete.as_mut()),
        ] {
            let Some(operation) = operation else { continue };
            if gated || family == Family::Admin {
                require(
                    operation,
                    family.security_scheme(),
                    gated && family == Family::V5,
                );
            }
            let responses = &mut operation.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(family.error_schema(), description).into());
            };
            // `add` keeps the first answer given a status: v5's 400 before the body's, an admin
            // body's before the path's.
            match family {
                Family::V5 if gated => {
                    add("400", "40001: missing or malformed parameter");
                    add("401", "40101: missing, unknown or expired token");
                    add("403", "40301: corp_id or X-APP-ID does not match the token");
                    add("500", "50001: internal error");
                }
                Family::V2 => {
                    add("401", "Bad or missing credentials");
                    add("500", "Internal error");
                }
                Family::Admin => {
                    add("401", "Missing or wrong admin token");
                    add(
                        "429",
                        "Too many failed admin logins from this address (Retry-After)",
                    );
                    add("500", "Internal error");
                    add("503", "The database is unavailable or busy");
                }
                Family::V5 => {}
            }
            if matches!(method, HttpMethod::Post | HttpMethod::Put) {
                add("400", "Malformed body");
                add("413", "Request body over 1 MiB");
            }
            if family == Family::Admin {
                add("400", "Malformed id in the path");
            }
            if gated {
                add(
                    "429",
                    "Rate limit exceeded (Retry-After, RateLimit and RateLimit-Policy headers)",
                );
                add("503", "The request took too long and was rolled back");
                if method == HttpMethod::Post {
                    add(
                        "409",
                        "A request with the same Idempotency-Key is still in flight",
                    );
                    add("422", "Idempotency-Key reused with a different request");
                }
            }
            if gated && method == HttpMethod::Post {
                add_version_header(responses);
            }
        }
    }
}

/// `X-Tagd-Version` on the successful answers of a write (API.md §9).
fn add_version_header(
    responses: &mut std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::Response>,
    >,
) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    use utoipa::openapi::RefOr;
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if !status.starts_with('2') {
            continue;
        }
        let schema = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(0));
        let header = HeaderBuilder::new()
            .schema(schema)
            .description(Some(
                "The organization's version after the write (the change log's; API.md §9)",
            ))
            .build();
        response.headers.insert("X-Tagd-Version".to_owned(), header);
    }
}

/// The operation requires `scheme` (unless it states its own security), and with `app_header`
/// the `X-APP-ID` header too, after its own parameters.
fn require(operation: &mut utoipa::openapi::path::Operation, scheme: &str, app_header: bool) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::security::SecurityRequirement;
    use utoipa::openapi::Required;
    operation
        .security
        .get_or_insert_with(|| vec![SecurityRequirement::new(scheme, Vec::<String>::new())]);
    if !app_header {
        return;
    }
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    if !parameters.iter().any(|p| p.name == "X-APP-ID") {
        parameters.push(
            ParameterBuilder::new()
                .name("X-APP-ID")
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some("The app the token belongs to"))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        );
    }
}

#[cfg(test)]
mod name_patterns {
    /// Every pattern that describes a name refuses the characters the core refuses, so a
    /// client (or a fuzzer) reading the document never sends a "valid" name that gets 400.
    #[test]
    fn every_name_pattern_refuses_the_invisible_characters() {
        let document = serde_json::to_string(&crate::openapi_document()).expect("serializable");
        let document: serde_json::Value = serde_json::from_str(&document).expect("JSON");
        let mut patterns = Vec::new();
        collect_patterns(&document, &mut patterns);
        // Names of groups, labels, categories, organizations and apps (a Basic user name, the
        // one pattern that also refuses `:`, is not a name in this sense).
        let names: Vec<&String> = patterns
            .iter()
            .filter(|p| p.contains("\\x7f-\\x9f") && !p.contains("\\s:"))
            .collect();
        assert!(names.len() >= 10, "{} name patterns found", names.len());
        for pattern in names {
            assert!(
                pattern.contains(tagd_core::names::INVISIBLE_CLASS),
                "{pattern} lets invisible characters through"
            );
        }
    }

    fn collect_patterns(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("pattern", serde_json::Value::String(p)) => out.push(p.clone()),
                        _ => collect_patterns(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect_patterns(v, out)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod unique_operation_ids {
    /// Client generators name methods after operationIds: two alike make them rename or fail,
    /// and `openapi-spec-validator` rejects the document.
    #[test]
    fn every_operation_has_its_own_operation_id() {
        let document = serde_json::to_value(crate::openapi_document()).expect("serializable");
        let mut seen = std::collections::BTreeMap::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let Some(id) = operation.get("operationId").and_then(|v| v.as_str()) else {
                    continue;
                };
                if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
                    panic!("operationId {id} used by {other} and {method} {path}");
                }
            }
        }
        assert!(seen.len() > 30, "{} operations", seen.len());
    }
}

#[cfg(test)]
mod limits {
    use serde_json::Value;

    fn document() -> Value {
        let text = serde_json::to_string(&crate::openapi_document()).expect("serializable");
        serde_json::from_str(&text).expect("JSON")
    }

    fn parameter_maximum(document: &Value, path: &str, name: &str) -> Option<i64> {
        document["paths"][path]["get"]["parameters"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == name)?["schema"]["maximum"]
            .as_f64()
            .map(|m| m as i64)
    }

    /// utoipa takes only literals for bounds, so each bound the document states is held to
    /// the constant the handler enforces.
    #[test]
    fn the_documented_limits_are_the_enforced_ones() {
        let document = document();
        let schemas = &document["components"]["schemas"];
        let max_items =
            |schema: &str, field: &str| schemas[schema]["properties"][field]["maxItems"].as_u64();
        assert_eq!(
            max_items("BatchAssign", "items"),
            u64::try_from(crate::v5::batch::MAX_BATCH_ITEMS).ok()
        );
        assert_eq!(
            max_items("CreateLabels", "orgLabels"),
            u64::try_from(crate::v2::catalog::MAX_LABELS_PER_REQUEST).ok()
        );
        assert_eq!(
            parameter_maximum(&document, "/api/v5/entity/tags/group/list", "step"),
            Some(crate::v5::groups::MAX_STEP)
        );
        assert_eq!(
            parameter_maximum(&document, "/v2/customers/labels/search", "limit"),
            Some(crate::v2::search::MAX_PAGE)
        );
    }
}
