//! Admin handlers: each parses, calls one operator operation, and answers 201 with JSON.

use super::{AdminError, AdminErrorBody, AdminJson, Operator, OrgAppPath, OrgGroupPath, OrgPath};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tagd_core::operator;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Created<T> = Result<(StatusCode, Json<T>), AdminError>;

#[derive(Deserialize, ToSchema)]
pub struct NewOrg {
    /// 1–255 characters.
    #[schema(value_type = crate::schemas::Name, inline)]
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct OrgCreated {
    /// The organization's 32-hex id, used as `corp_id` in v5 calls.
    corp_id: String,
    name: String,
}

#[utoipa::path(post, path = "/admin/v1/orgs", tag = "admin",
    request_body = NewOrg,
    responses(
        (status = 201, description = "Organization created", body = OrgCreated),
        (status = 400, description = "Invalid body", body = AdminErrorBody)))]
pub(super) async fn create_org(
    _: Operator,
    State(state): State<AppState>,
    AdminJson(body): AdminJson<NewOrg>,
) -> Created<OrgCreated> {
    let org = operator::create_org(state.store.as_ref(), &body.name).await?;
    let answer = OrgCreated {
        corp_id: org.corp_id.to_string(),
        name: org.name,
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

#[derive(Deserialize, ToSchema)]
pub struct NewApp {
    /// 1–255 characters.
    #[schema(value_type = crate::schemas::Name, inline)]
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct AppCreated {
    app_id: String,
    /// Shown once: only its hash is stored.
    app_secret: String,
    corp_id: String,
    name: String,
}

#[utoipa::path(post, path = "/admin/v1/orgs/{corp_id}/apps", tag = "admin",
    params(OrgPath),
    request_body = NewApp,
    responses(
        (status = 201, description = "App created; the secret is shown once", body = AppCreated),
        (status = 400, description = "Invalid body or corp_id", body = AdminErrorBody),
        (status = 404, description = "No such organization", body = AdminErrorBody)))]
pub(super) async fn create_app(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgPath { corp_id }): Path<OrgPath>,
    AdminJson(body): AdminJson<NewApp>,
) -> Created<AppCreated> {
    let (app, secret) = operator::create_app(state.store.as_ref(), &corp_id, &body.name).await?;
    let answer = AppCreated {
        app_id: app.app_id.to_string(),
        app_secret: secret,
        corp_id,
        name: app.name,
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

/// Either `username` and `password`, or `authorization`: the `Basic ...` header value a client
/// already sends (its password may then be any bytes).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum NewCredential {
    Password {
        /// 1–128 characters, no colon or white space; unique across the server.
        #[schema(pattern = r"^[^\s:\x00-\x1f\x7f-\x9f]{1,128}$")]
        username: String,
        /// 1–1,024 bytes; stored as an argon2id hash.
        #[schema(min_length = 1, max_length = 1024)]
        password: String,
    },
    Header {
        /// `Basic <base64 of user:password>`.
        #[schema(pattern = r"^[Bb][Aa][Ss][Ii][Cc] +[A-Za-z0-9+/]+=*$")]
        authorization: String,
    },
}

#[derive(Serialize, ToSchema)]
pub struct CredentialCreated {
    username: String,
    corp_id: String,
}

#[utoipa::path(post, path = "/admin/v1/orgs/{corp_id}/basic-credentials", tag = "admin",
    params(OrgPath),
    request_body = NewCredential,
    responses(
        (status = 201, description = "Basic credential created", body = CredentialCreated),
        (status = 400, description = "Invalid body or corp_id", body = AdminErrorBody),
        (status = 404, description = "No such organization", body = AdminErrorBody),
        (status = 409, description = "User name already taken", body = AdminErrorBody)))]
pub(super) async fn create_basic_credential(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgPath { corp_id }): Path<OrgPath>,
    AdminJson(body): AdminJson<NewCredential>,
) -> Created<CredentialCreated> {
    let store = state.store.as_ref();
    let cred = match body {
        NewCredential::Password { username, password } => {
            operator::create_basic_credential(store, &corp_id, &username, password.as_bytes())
                .await?
        }
        NewCredential::Header { authorization } => {
            operator::create_basic_credential_from_header(store, &corp_id, &authorization).await?
        }
    };
    let answer = CredentialCreated {
        username: cred.username,
        corp_id,
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

#[derive(Deserialize, ToSchema)]
pub struct NewUser {
    /// 1–64 characters from `[A-Za-z0-9_.:@-]`.
    #[schema(value_type = crate::schemas::UserId, inline)]
    user_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserCreated {
    user_id: String,
    corp_id: String,
    /// False when the user was already registered (the call is idempotent).
    created: bool,
}

#[utoipa::path(post, path = "/admin/v1/orgs/{corp_id}/users", tag = "admin", operation_id = "admin_create_user",
    params(OrgPath),
    request_body = NewUser,
    responses(
        (status = 201, description = "User registered (or already was)", body = UserCreated),
        (status = 400, description = "Invalid body or corp_id", body = AdminErrorBody),
        (status = 404, description = "No such organization", body = AdminErrorBody)))]
pub(super) async fn create_user(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgPath { corp_id }): Path<OrgPath>,
    AdminJson(body): AdminJson<NewUser>,
) -> Created<UserCreated> {
    let (user, created) =
        operator::create_user(state.store.as_ref(), &corp_id, &body.user_id).await?;
    let answer = UserCreated {
        user_id: user.user_id.to_string(),
        corp_id,
        created,
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

#[derive(Deserialize, ToSchema)]
pub struct GroupLock {
    /// True locks the group's definition and activation; false unlocks.
    locked: bool,
}

#[derive(Serialize, ToSchema)]
pub struct GroupLockState {
    entity_id: String,
    locked: bool,
}

#[utoipa::path(post, path = "/admin/v1/orgs/{corp_id}/tag-groups/{entity_id}/lock", tag = "admin",
    params(OrgGroupPath),
    request_body = GroupLock,
    responses(
        (status = 200, description = "The group's lock state", body = GroupLockState),
        (status = 400, description = "Invalid body or id", body = AdminErrorBody),
        (status = 404, description = "No such organization or tag group", body = AdminErrorBody)))]
pub(super) async fn lock_group(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgGroupPath { corp_id, entity_id }): Path<OrgGroupPath>,
    AdminJson(body): AdminJson<GroupLock>,
) -> Result<Json<GroupLockState>, AdminError> {
    let group =
        operator::set_group_locked(state.store.as_ref(), &corp_id, &entity_id, body.locked).await?;
    Ok(Json(GroupLockState {
        entity_id: group.entity_id.to_string(),
        locked: group.is_locked,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct TokensRevoked {
    app_id: String,
    /// How many tokens were live and are now revoked.
    revoked: u64,
}

#[utoipa::path(post, path = "/admin/v1/orgs/{corp_id}/apps/{app_id}/revoke-tokens", tag = "admin",
    params(OrgAppPath),
    responses(
        (status = 200, description = "Every token of the app is revoked; this server stops accepting them at once, other tagd processes within their token cache time", body = TokensRevoked),
        (status = 400, description = "Invalid id", body = AdminErrorBody),
        (status = 404, description = "No such organization, or no such app in it", body = AdminErrorBody)))]
pub(super) async fn revoke_tokens(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgAppPath { corp_id, app_id }): Path<OrgAppPath>,
) -> Result<Json<TokensRevoked>, AdminError> {
    let revoked = operator::revoke_app_tokens(state.store.as_ref(), &corp_id, &app_id).await?;
    // This server's cache forgets every token; the next use of each is checked again.
    state.token_cache.clear();
    Ok(Json(TokensRevoked { app_id, revoked }))
}

/// This file's endpoints, with their OpenAPI operations.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_org))
        .routes(routes!(create_app))
        .routes(routes!(revoke_tokens))
        .routes(routes!(create_basic_credential))
        .routes(routes!(create_user))
        .routes(routes!(lock_group))
}
