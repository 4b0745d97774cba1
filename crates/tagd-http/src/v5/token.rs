//! `POST /api/v5/auth/token`: an app's id and secret buy a bearer token.

use super::error::{success, V5Error, V5ErrorBody, V5Result};
use super::extract::V5Json;
use super::views::Envelope;
use crate::gate::send;
use crate::limits::AuthSubject;
use crate::AppState;
use axum::extract::State;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use tagd_core::secrets::{generate_secret, matches_sha256, sha256_hex};
use tagd_core::timefmt::now_unix;
use tagd_core::ExternalId;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    #[schema(value_type = crate::schemas::ExternalId, inline)]
    app_id: String,
    app_secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenData {
    /// Send as `Authorization: Bearer <access_token>` with `X-APP-ID: <app_id>`.
    access_token: String,
    /// Seconds until the token expires.
    expires_in: i64,
}

/// Issue an access token. An unknown app and a wrong secret get the same 40101.
#[utoipa::path(post, path = "/api/v5/auth/token", tag = "v5",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "A new token", body = Envelope<TokenData>),
        (status = 400, description = "40001: missing or malformed parameter", body = V5ErrorBody),
        (status = 401, description = "40101: unknown app or wrong secret", body = V5ErrorBody),
        (status = 429, description = "42901: too many failed attempts from this address or for this app, or the organization's rate limit", body = V5ErrorBody),
        (status = 500, description = "50001: internal error", body = V5ErrorBody)))]
pub(super) async fn issue_token(
    State(state): State<AppState>,
    parts: Parts,
    V5Json(request): V5Json<TokenRequest>,
) -> V5Result {
    // Failures count per address and per app id; a check is one SHA-256 (no argon2), so it
    // takes no slot up front and concurrent good requests never refuse each other.
    let subjects = [
        AuthSubject::address(crate::gate::client_ip(&parts, &state)),
        AuthSubject::App(request.app_id.chars().take(64).collect()),
    ];
    state
        .auth_throttle
        .check(&subjects)
        .map_err(V5Error::RateLimited)?;
    let refused = || {
        state.auth_throttle.failed(&subjects);
        V5Error::Unauthorized
    };
    let app_id = ExternalId::parse("app_id", &request.app_id).map_err(|_| refused())?;
    let app = state.store.find_app(&app_id).await?;
    // Compare against a dummy hash when the app is unknown, so both cases cost the same.
    let expected = app
        .as_ref()
        .map_or(sha256_hex("no such app"), |a| a.secret_hash.clone());
    let secret_ok = matches_sha256(&request.app_secret, &expected);
    let app = app.filter(|_| secret_ok).ok_or_else(refused)?;
    // Issuing tokens is work the organization asked for: it counts against its rate limit.
    let decision = state.rate_limiter.check(app.org_id);
    if !decision.allowed {
        return Err(V5Error::RateLimited(decision.retry_after_secs));
    }
    let token = generate_secret();
    let ttl = state.config.token_ttl_secs;
    let issued = state
        .store
        .issue_token(
            app.org_id,
            app.id,
            &app.secret_hash,
            &sha256_hex(&token),
            now_unix() + ttl,
        )
        .await?;
    if !issued {
        // The secret was rotated, the app deleted or its organization disabled meanwhile.
        return Err(V5Error::Unauthorized);
    }
    Ok(send(&success(TokenData {
        access_token: token,
        expires_in: ttl,
    })))
}
