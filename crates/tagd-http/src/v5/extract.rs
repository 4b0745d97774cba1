//! v5 request parsing: the caller (token + `X-APP-ID`), JSON bodies and query strings. Every
//! refusal answers in the v5 envelope; a parameter of the wrong type or missing is 40001 with
//! the parameter named.

use super::error::V5Error;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tagd_core::secrets::sha256_hex;
use tagd_core::timefmt::now_unix;
use tagd_core::{CorpId, Error, Executor, ExecutorKind, ExternalId, OrgId};

/// The authenticated app a v5 request acts for.
#[derive(Debug, Clone)]
pub struct V5Caller {
    pub org: OrgId,
    pub corp_id: CorpId,
    pub app_id: i64,
    pub app_external_id: ExternalId,
}

impl V5Caller {
    /// The request's `corp_id` must be the organization of the token's app (40301 otherwise);
    /// the answer is the same whether or not that other organization exists.
    pub fn check_corp_id(&self, raw: &str) -> Result<OrgId, V5Error> {
        let corp_id = CorpId::parse("corp_id", raw)?;
        if corp_id == self.corp_id {
            Ok(self.org)
        } else {
            Err(V5Error::Forbidden("corp_id"))
        }
    }

    pub fn executor(&self) -> Executor {
        Executor {
            kind: ExecutorKind::App,
            id: self.app_id,
            name: self.app_external_id.to_string(),
        }
    }
}

impl FromRequestParts<AppState> for V5Caller {
    type Rejection = V5Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, V5Error> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(V5Error::Unauthorized)?;
        let record = state
            .store
            .find_token(&sha256_hex(token))
            .await?
            .filter(|t| !t.revoked && t.expires_at > now_unix())
            .ok_or(V5Error::Unauthorized)?;
        let app_header = parts
            .headers
            .get("x-app-id")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        if app_header != Some(record.app_external_id.as_str()) {
            return Err(V5Error::Forbidden("X-APP-ID"));
        }
        Ok(V5Caller {
            org: record.org_id,
            corp_id: record.corp_id,
            app_id: record.app_id,
            app_external_id: record.app_external_id,
        })
    }
}

/// Turns a deserialization failure into 40001 naming the parameter.
fn parameter_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> V5Error {
    let path = e.path().to_string();
    let inner = e.inner().to_string();
    let field = if path == "." {
        // `missing field `name``: the name is between the backticks.
        inner.split('`').nth(1).unwrap_or("body").to_owned()
    } else {
        path
    };
    let message = inner.split(" at line ").next().unwrap_or(&inner).to_owned();
    V5Error::Domain(Error::InvalidParameter { field, message })
}

/// A JSON body (`Content-Type: application/json`), parsed into `T`.
pub struct V5Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for V5Json<T> {
    type Rejection = V5Error;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, V5Error> {
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if !is_json {
            return Err(V5Error::invalid("Content-Type", "must be application/json"));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| V5Error::invalid("body", "could not be read"))?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(parameter_error)?;
        deserializer
            .end()
            .map_err(|_| V5Error::invalid("body", "trailing characters after the JSON value"))?;
        Ok(V5Json(value))
    }
}

/// Query-string parameters, parsed into `T`.
pub struct V5Query<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for V5Query<T> {
    type Rejection = V5Error;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, V5Error> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(V5Query)
            .map_err(parameter_error)
    }
}
