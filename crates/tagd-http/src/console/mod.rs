//! The operator console (`/console`, API.md §14): server-rendered pages (askama templates,
//! checked at compile time) with htmx for the live segment count, on the admin address.
//!
//! Sign-in takes the admin token, through the same failed-login throttle as the admin API;
//! then a session cookie (HttpOnly, SameSite=Strict, path `/console`) and a CSRF token that
//! every form carries and every POST checks. Every action calls the operations the admin and
//! v5 APIs call (`tagd_core::operator`, the store, the index): the console has no rules of
//! its own. Errors are shown in words next to the form that caused them.

mod builder;
mod groups;
mod org;
mod orgs;
mod segments;
pub(crate) mod session;
mod users;
mod webhooks;

pub use session::Sessions;

use crate::admin::AdminError;
use crate::limits::AuthSubject;
use crate::AppState;
use askama::Template;
use axum::extract::{Form, FromRequestParts, State};
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use session::{Session, COOKIE, LIFETIME};
use tagd_core::secrets::matches_sha256;

const HTMX: &str = include_str!("../../static/htmx.min.js");
const CSS: &str = include_str!("../../static/console.css");

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/static/htmx.min.js", get(htmx))
        .route("/console/static/console.css", get(css))
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .merge(orgs::routes())
        .merge(org::routes())
        .merge(groups::routes())
        .merge(users::routes())
        .merge(segments::routes())
        .merge(webhooks::routes())
        .layer(axum::middleware::map_response(harden))
}

/// Console pages are never cached, framed, or allowed to run script from elsewhere.
async fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A signed-in operator: the request carries a live session's cookie. Without one, pages
/// send the browser to the sign-in page (htmx requests through `HX-Redirect`).
pub(crate) struct Signed {
    id: String,
    session: Session,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let found = cookie(&parts.headers, COOKIE).and_then(|id| {
            state
                .console
                .find(&id)
                .map(|session| Signed { id, session })
        });
        found.ok_or_else(|| {
            if parts.headers.contains_key("hx-request") {
                let mut response = StatusCode::UNAUTHORIZED.into_response();
                response
                    .headers_mut()
                    .insert("hx-redirect", HeaderValue::from_static("/console/sign-in"));
                response
            } else {
                Redirect::to("/console/sign-in").into_response()
            }
        })
    }
}

impl Signed {
    pub(crate) fn csrf(&self) -> &str {
        &self.session.csrf
    }

    /// Keeps a secret to show on this session's next page.
    pub(crate) fn flash(&self, state: &AppState, flash: session::Flash) {
        state.console.set_flash(&self.id, flash);
    }

    /// What an action left for the page at `path`, if anything.
    pub(crate) fn take_flash(&self, state: &AppState, path: &str) -> Option<session::Flash> {
        state.console.take_flash(&self.id, path)
    }

    /// The refusal of a POST whose form does not carry this session's CSRF token (a form
    /// posted from another site, or from a page of an ended session); `None` when it does.
    pub(crate) fn refuses(&self, sent: &str) -> Option<Response> {
        if tagd_core::secrets::constant_time_eq(sent, &self.session.csrf) {
            return None;
        }
        Some(message(
            StatusCode::FORBIDDEN,
            "Form refused",
            "This form is out of date or did not come from this console (its CSRF token \
             does not match your session). Reload the page and try again.",
            "/console/orgs",
            Some(self),
        ))
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A page rendered, or a plain 500 when a template fails (it is checked at compile time;
/// a failure here is a bug).
pub(crate) fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "console page failed").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage<'a> {
    signed_in: bool,
    csrf: &'a str,
    heading: &'a str,
    message: &'a str,
    back: &'a str,
}

/// A page that says what went wrong, in words, with a way back.
pub(crate) fn message(
    status: StatusCode,
    heading: &str,
    text: &str,
    back: &str,
    signed: Option<&Signed>,
) -> Response {
    page(
        status,
        &MessagePage {
            signed_in: signed.is_some(),
            csrf: signed.map_or("", Signed::csrf),
            heading,
            message: text,
            back,
        },
    )
}

/// What an operation refused, as the admin API words it, for a page.
pub(crate) fn refusal(error: impl Into<AdminError>) -> (StatusCode, String) {
    let (status, _, text) = error.into().classify();
    (status, text)
}

/// A failed operation as a page of its own (for actions without a form to show it beside).
pub(crate) fn failed(error: impl Into<AdminError>, back: &str, signed: &Signed) -> Response {
    let (status, text) = refusal(error);
    message(status, "That did not work", &text, back, Some(signed))
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// A form posted by a signed-in operator, its CSRF token checked before anything else is
/// read: a console POST cannot skip the check, since this is the only way to read its form.
pub(crate) struct Posted<T> {
    pub signed: Signed,
    pub form: T,
}

/// The fields of a form that has none but its CSRF token.
pub(crate) type NoFields = serde::de::IgnoredAny;

impl<T: serde::de::DeserializeOwned + Send> axum::extract::FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state).await?;
        let Ok(bytes) = axum::body::to_bytes(body, crate::gate::MAX_BODY_BYTES).await else {
            let text = "The form is larger than 1 MiB.";
            return Err(message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form refused",
                text,
                "/console/orgs",
                Some(&signed),
            ));
        };
        let sent: CsrfOnly = serde_urlencoded::from_bytes(&bytes).unwrap_or(CsrfOnly {
            csrf: String::new(),
        });
        if let Some(refused) = signed.refuses(&sent.csrf) {
            return Err(refused);
        }
        match serde_urlencoded::from_bytes(&bytes) {
            Ok(form) => Ok(Posted { signed, form }),
            Err(e) => {
                let text = format!("The form is incomplete: {e}.");
                Err(message(
                    StatusCode::BAD_REQUEST,
                    "Form refused",
                    &text,
                    "/console/orgs",
                    Some(&signed),
                ))
            }
        }
    }
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Redirect {
    let signed = cookie(&headers, COOKIE).and_then(|id| state.console.find(&id));
    Redirect::to(if signed.is_some() {
        "/console/orgs"
    } else {
        "/console/sign-in"
    })
}

async fn htmx() -> impl IntoResponse {
    static_file("text/javascript; charset=utf-8", HTMX)
}

async fn css() -> impl IntoResponse {
    static_file("text/css; charset=utf-8", CSS)
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    signed_in: bool,
    csrf: String,
    error: Option<String>,
}

async fn sign_in_page() -> Response {
    let form = SignInPage {
        signed_in: false,
        csrf: String::new(),
        error: None,
    };
    page(StatusCode::OK, &form)
}

/// The client's address, as the admin API's throttle sees it.
struct ClientIp(std::net::IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(crate::gate::client_ip(parts, state)))
    }
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    token: String,
}

/// Whether the browser says the request came from another site (`Sec-Fetch-Site`, or an
/// `Origin` that is not this host): such a sign-in is refused before it counts as a failed
/// login, so a page elsewhere cannot lock the operator out by posting wrong tokens.
fn cross_site(headers: &HeaderMap) -> bool {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = header("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, h)| h) != Some(host),
        _ => false,
    }
}

/// Checks the admin token as the admin API does (the same throttle of failed logins per
/// address); on success opens a session and sets its cookie.
async fn sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let address = [AuthSubject::address(ip)];
    let refused = |status, error: &str| {
        let form = SignInPage {
            signed_in: false,
            csrf: String::new(),
            error: Some(error.to_owned()),
        };
        page(status, &form)
    };
    if cross_site(&headers) {
        return refused(
            StatusCode::FORBIDDEN,
            "Sign in from this console's own page: this form came from another site.",
        );
    }
    if let Err(retry_after) = state.auth_throttle.check(&address) {
        return refused(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many failed sign-ins from this address: try again in {retry_after} s."),
        );
    }
    if !matches_sha256(form.token.trim(), &state.config.admin_token_hash) {
        state.auth_throttle.failed(&address);
        return refused(
            StatusCode::UNAUTHORIZED,
            "That is not this server's admin token.",
        );
    }
    let (id, _) = state.console.open();
    let cookie = format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}",
        LIFETIME.as_secs()
    );
    let mut response = Redirect::to("/console/orgs").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn sign_out(State(state): State<AppState>, posted: Posted<NoFields>) -> Response {
    let signed = posted.signed;
    state.console.close(&signed.id);
    let mut response = Redirect::to("/console/sign-in").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "tagd_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    response
}
