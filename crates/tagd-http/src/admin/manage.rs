//! Admin handlers of API.md §13: reading organizations, apps and credentials (never a
//! secret), rotating and deleting them, disabling organizations and setting their cap on tag
//! groups. Each change also empties this server's caches of the credentials it affects, so
//! it takes effect here at once; other tagd processes follow within their cache times.

use super::{
    AdminError, AdminErrorBody, AdminJson, Operator, OrgAppPath, OrgCredentialPath, OrgPath,
};
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use tagd_core::timefmt::format_unix;
use tagd_core::{operator, App, BasicCredential, Organization};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Answer<T> = Result<Json<T>, AdminError>;

#[derive(Serialize, ToSchema)]
pub struct OrgView {
    corp_id: String,
    name: String,
    /// `YYYY-MM-DD HH:MM:SS` UTC.
    ctime: String,
    /// While true, every credential of the organization is refused; its data is kept.
    disabled: bool,
    /// Its own cap on tag groups; null when it takes the server's default.
    max_tag_groups: Option<i64>,
}

impl From<Organization> for OrgView {
    fn from(org: Organization) -> Self {
        OrgView {
            corp_id: org.corp_id.to_string(),
            name: org.name,
            ctime: format_unix(org.ctime),
            disabled: org.disabled,
            max_tag_groups: org.max_tag_groups,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OrgCountsView {
    users: i64,
    /// Not deleted, labels included.
    tag_groups: i64,
    live_assignments: i64,
    apps: i64,
    basic_credentials: i64,
}

#[derive(Serialize, ToSchema)]
pub struct OrgDetail {
    #[serde(flatten)]
    org: OrgView,
    counts: OrgCountsView,
}

#[utoipa::path(get, path = "/admin/v1/orgs", tag = "admin", operation_id = "admin_list_orgs",
    responses((status = 200, description = "Every organization, oldest first", body = Vec<OrgView>)))]
pub(super) async fn list_orgs(_: Operator, State(state): State<AppState>) -> Answer<Vec<OrgView>> {
    let orgs = state.store.list_orgs().await?;
    Ok(Json(orgs.into_iter().map(OrgView::from).collect()))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{corp_id}", tag = "admin", operation_id = "admin_get_org",
    params(OrgPath),
    responses(
        (status = 200, description = "The organization and what it holds", body = OrgDetail),
        (status = 404, description = "No such organization", body = AdminErrorBody)))]
pub(super) async fn get_org(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgPath { corp_id }): Path<OrgPath>,
) -> Answer<OrgDetail> {
    let (org, counts) = operator::describe_org(state.store.as_ref(), &corp_id).await?;
    Ok(Json(OrgDetail {
        org: org.into(),
        counts: OrgCountsView {
            users: counts.users,
            tag_groups: counts.tag_groups,
            live_assignments: counts.live_assignments,
            apps: counts.apps,
            basic_credentials: counts.basic_credentials,
        },
    }))
}

async fn set_disabled(state: &AppState, corp_id: &str, disabled: bool) -> Answer<OrgView> {
    let org = operator::set_org_disabled(state.store.as_ref(), corp_id, disabled).await?;
    state.forget_credentials_of(org.id);
    Ok(Json(org.into()))
}

#[utoipa::path(post, path = "/admin/v1/orgs/{corp_id}/disable", tag = "admin", operation_id = "admin_disable_org",
    params(OrgPath),
    responses(
        (status = 200, description = "Disabled: every credential of the organization is refused (at once on this server), its data kept", body = OrgView),
        (status = 404, description = "No such organization", body = AdminErrorBody)))]
pub(super) async fn disable_org(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgPath { corp_id }): Path<OrgPath>,
) -> Answer<OrgView> {
    set_disabled(&state, &corp_id, true).await
}

#[utoipa::path(post, path = "/admin/v1/orgs/{corp_id}/enable", tag = "admin", operation_id = "admin_enable_org",
    params(OrgPath),
    responses(
        (status = 200, description = "Enabled again", body = OrgView),
        (status = 404, description = "No such organization", body = AdminErrorBody)))]
pub(super) async fn enable_org(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgPath { corp_id }): Path<OrgPath>,
) -> Answer<OrgView> {
    set_disabled(&state, &corp_id, false).await
}

#[derive(Serialize, ToSchema)]
pub struct LimitsView {
    /// The cap in force on tag groups (labels included).
    max_tag_groups: i64,
    /// True when it is the server's `--max-tag-groups-per-org`.
    is_default: bool,
    /// Tag groups the organization has now.
    tag_groups: i64,
}

impl From<operator::TagGroupLimits> for LimitsView {
    fn from(l: operator::TagGroupLimits) -> Self {
        LimitsView {
            max_tag_groups: l.max_tag_groups,
            is_default: l.is_default,
            tag_groups: l.tag_groups,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewLimits {
    /// 0–1,000,000, or null to take the server's default again. Lowering it below what the
    /// organization has deletes nothing; it stops new tag groups.
    #[schema(minimum = 0, maximum = 1_000_000)]
    #[serde(default, deserialize_with = "crate::body::optional_integer")]
    max_tag_groups: Option<i64>,
}

#[utoipa::path(get, path = "/admin/v1/orgs/{corp_id}/limits", tag = "admin", operation_id = "admin_get_limits",
    params(OrgPath),
    responses(
        (status = 200, description = "The cap on tag groups and the count", body = LimitsView),
        (status = 404, description = "No such organization", body = AdminErrorBody)))]
pub(super) async fn get_limits(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgPath { corp_id }): Path<OrgPath>,
) -> Answer<LimitsView> {
    Ok(Json(
        operator::limits(state.store.as_ref(), &corp_id)
            .await?
            .into(),
    ))
}

#[utoipa::path(put, path = "/admin/v1/orgs/{corp_id}/limits", tag = "admin", operation_id = "admin_set_limits",
    params(OrgPath),
    request_body = NewLimits,
    responses(
        (status = 200, description = "The cap in force", body = LimitsView),
        (status = 400, description = "Out of range", body = AdminErrorBody),
        (status = 404, description = "No such organization", body = AdminErrorBody)))]
pub(super) async fn set_limits(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgPath { corp_id }): Path<OrgPath>,
    AdminJson(body): AdminJson<NewLimits>,
) -> Answer<LimitsView> {
    let limits = operator::set_limits(state.store.as_ref(), &corp_id, body.max_tag_groups).await?;
    Ok(Json(limits.into()))
}

#[derive(Serialize, ToSchema)]
pub struct AppView {
    app_id: String,
    name: String,
    ctime: String,
}

impl From<App> for AppView {
    fn from(app: App) -> Self {
        AppView {
            app_id: app.app_id.to_string(),
            name: app.name,
            ctime: format_unix(app.ctime),
        }
    }
}

#[utoipa::path(get, path = "/admin/v1/orgs/{corp_id}/apps", tag = "admin", operation_id = "admin_list_apps",
    params(OrgPath),
    responses(
        (status = 200, description = "The organization's apps, without secrets", body = Vec<AppView>),
        (status = 404, description = "No such organization", body = AdminErrorBody)))]
pub(super) async fn list_apps(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgPath { corp_id }): Path<OrgPath>,
) -> Answer<Vec<AppView>> {
    let apps = operator::list_apps(state.store.as_ref(), &corp_id).await?;
    Ok(Json(apps.into_iter().map(AppView::from).collect()))
}

#[derive(Serialize, ToSchema)]
pub struct SecretRotated {
    app_id: String,
    /// Shown once: only its hash is stored. The old secret and every token issued with it
    /// stopped working.
    app_secret: String,
    corp_id: String,
    name: String,
}

/// Forgets this server's cached tokens of one app.
fn forget_app_tokens(state: &AppState, app: &App) {
    let (org, id) = (app.org_id, app.id);
    state
        .token_cache
        .forget_where(|t| t.org_id == org && t.app == id);
}

#[utoipa::path(post, path = "/admin/v1/orgs/{corp_id}/apps/{app_id}/rotate-secret", tag = "admin",
    operation_id = "admin_rotate_app_secret",
    params(OrgAppPath),
    responses(
        (status = 200, description = "The new secret, shown once", body = SecretRotated),
        (status = 404, description = "No such organization, or no such app in it", body = AdminErrorBody)))]
pub(super) async fn rotate_secret(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgAppPath { corp_id, app_id }): Path<OrgAppPath>,
) -> Answer<SecretRotated> {
    let (app, secret) =
        operator::rotate_app_secret(state.store.as_ref(), &corp_id, &app_id).await?;
    forget_app_tokens(&state, &app);
    Ok(Json(SecretRotated {
        app_id: app.app_id.to_string(),
        app_secret: secret,
        corp_id,
        name: app.name,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Deleted {
    /// What was deleted: an app id or a user name.
    deleted: String,
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{corp_id}/apps/{app_id}", tag = "admin", operation_id = "admin_delete_app",
    params(OrgAppPath),
    responses(
        (status = 200, description = "The app and its tokens are gone", body = Deleted),
        (status = 404, description = "No such organization, or no such app in it", body = AdminErrorBody)))]
pub(super) async fn delete_app(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgAppPath { corp_id, app_id }): Path<OrgAppPath>,
) -> Answer<Deleted> {
    let app = operator::delete_app(state.store.as_ref(), &corp_id, &app_id).await?;
    forget_app_tokens(&state, &app);
    Ok(Json(Deleted { deleted: app_id }))
}

#[derive(Serialize, ToSchema)]
pub struct CredentialView {
    username: String,
    ctime: String,
}

impl From<BasicCredential> for CredentialView {
    fn from(c: BasicCredential) -> Self {
        CredentialView {
            username: c.username,
            ctime: format_unix(c.ctime),
        }
    }
}

#[utoipa::path(get, path = "/admin/v1/orgs/{corp_id}/basic-credentials", tag = "admin",
    operation_id = "admin_list_basic_credentials",
    params(OrgPath),
    responses(
        (status = 200, description = "The organization's Basic credentials, without passwords", body = Vec<CredentialView>),
        (status = 404, description = "No such organization", body = AdminErrorBody)))]
pub(super) async fn list_credentials(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgPath { corp_id }): Path<OrgPath>,
) -> Answer<Vec<CredentialView>> {
    let credentials = operator::list_basic_credentials(state.store.as_ref(), &corp_id).await?;
    Ok(Json(
        credentials.into_iter().map(CredentialView::from).collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct NewPassword {
    /// 1–1,024 bytes; stored as an argon2id hash.
    #[schema(min_length = 1, max_length = 1024)]
    password: String,
}

#[utoipa::path(post, path = "/admin/v1/orgs/{corp_id}/basic-credentials/{username}/password", tag = "admin",
    operation_id = "admin_set_basic_password",
    params(OrgCredentialPath),
    request_body = NewPassword,
    responses(
        (status = 200, description = "The password is replaced; the old one is refused from now on", body = CredentialView),
        (status = 400, description = "Invalid password", body = AdminErrorBody),
        (status = 404, description = "No such organization, or no such credential in it", body = AdminErrorBody)))]
pub(super) async fn set_password(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgCredentialPath { corp_id, username }): Path<OrgCredentialPath>,
    AdminJson(body): AdminJson<NewPassword>,
) -> Answer<CredentialView> {
    let credential = operator::set_basic_password(
        state.store.as_ref(),
        &corp_id,
        &username,
        body.password.as_bytes(),
    )
    .await?;
    state.basic_auth_cache.forget_partition(credential.org_id.0);
    Ok(Json(credential.into()))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{corp_id}/basic-credentials/{username}", tag = "admin",
    operation_id = "admin_delete_basic_credential",
    params(OrgCredentialPath),
    responses(
        (status = 200, description = "The credential is gone", body = Deleted),
        (status = 404, description = "No such organization, or no such credential in it", body = AdminErrorBody)))]
pub(super) async fn delete_credential(
    _: Operator,
    State(state): State<AppState>,
    Path(OrgCredentialPath { corp_id, username }): Path<OrgCredentialPath>,
) -> Answer<Deleted> {
    let org = operator::org_by_corp_id(state.store.as_ref(), &corp_id).await?;
    operator::delete_basic_credential(state.store.as_ref(), &corp_id, &username).await?;
    state.basic_auth_cache.forget_partition(org.id.0);
    Ok(Json(Deleted { deleted: username }))
}

/// This file's endpoints, with their OpenAPI operations.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orgs))
        .routes(routes!(get_org))
        .routes(routes!(disable_org))
        .routes(routes!(enable_org))
        .routes(routes!(get_limits, set_limits))
        .routes(routes!(list_apps))
        .routes(routes!(rotate_secret))
        .routes(routes!(delete_app))
        .routes(routes!(list_credentials))
        .routes(routes!(set_password))
        .routes(routes!(delete_credential))
}
