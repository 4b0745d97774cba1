//! v5 request parsing: the caller (token + `X-APP-ID`), JSON bodies and query strings. Every
//! refusal answers in the v5 envelope; a parameter of the wrong type or missing is 40001 with
//! the parameter named.

use super::error::V5Error;
use crate::body::{parse_query, read_json, BodyError};
use crate::limits::AuthSubject;
use crate::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tagd_core::secrets::sha256_hex;
use tagd_core::timefmt::now_unix;
use tagd_core::{AppRef, CorpId, Error, Executor, ExecutorKind, ExternalId, OrgId};

/// The authenticated app a v5 request acts for.
#[derive(Debug, Clone)]
pub struct V5Caller {
    pub org: OrgId,
    pub corp_id: CorpId,
    pub app: AppRef,
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
            id: self.app.0,
            name: self.app_external_id.to_string(),
        }
    }
}

impl FromRequestParts<AppState> for V5Caller {
    type Rejection = V5Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, V5Error> {
        match parts.extensions.get::<V5Caller>() {
            Some(caller) => Ok(caller.clone()),
            None => authenticate(parts, state).await,
        }
    }
}

/// The token and `X-APP-ID` of a request, checked.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<V5Caller, V5Error> {
    let token = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(V5Error::Unauthorized)?;
    let hash = sha256_hex(token);
    let key = state.cache_keyer.key(hash.as_bytes());
    let record = match state.token_cache.get(&key) {
        Some(record) => record,
        None => {
            // A lookup that finds nothing counts against the address like a wrong password.
            // It is cheap (no argon2), so it takes no slot up front: many clients of one
            // address whose cached tokens expire together must not refuse each other.
            let address = [AuthSubject::address(crate::gate::client_ip(parts, state))];
            state
                .auth_throttle
                .check(&address)
                .map_err(V5Error::RateLimited)?;
            let seen = state.token_cache.generation();
            let Some(record) = state.store.find_token(&hash).await?.filter(|t| !t.revoked) else {
                state.auth_throttle.failed(&address);
                return Err(V5Error::Unauthorized);
            };
            // Not stored when a revocation came while it was read.
            state
                .token_cache
                .put_unless_forgotten(key, record.clone(), seen);
            record
        }
    };
    // Checked on every request, cached or not: an expired token never passes.
    if record.expires_at <= now_unix() {
        return Err(V5Error::Unauthorized);
    }
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
        app: record.app,
        app_external_id: record.app_external_id,
    })
}

impl From<BodyError> for V5Error {
    fn from(e: BodyError) -> Self {
        if e.too_large {
            return V5Error::TooLarge;
        }
        V5Error::Domain(Error::InvalidParameter {
            field: e.field,
            message: e.message,
        })
    }
}

/// A JSON body (`Content-Type: application/json`), parsed into `T`.
pub struct V5Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for V5Json<T> {
    type Rejection = V5Error;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, V5Error> {
        Ok(V5Json(read_json(request, state).await?))
    }
}

/// Query-string parameters, parsed into `T`.
pub struct V5Query<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for V5Query<T> {
    type Rejection = V5Error;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, V5Error> {
        Ok(V5Query(parse_query(parts.uri.query())?))
    }
}
