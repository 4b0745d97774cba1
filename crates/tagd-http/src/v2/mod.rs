//! The v2 customer-labels dialect (API.md §3): Basic auth, changeLabels, customer labels,
//! the organization's label catalog and label search.

mod auth;
pub(crate) mod catalog;
mod customers;
mod error;
pub(crate) mod search;

pub use auth::{BasicAuthCache, V2Caller};
pub use error::{V2Error, V2ErrorBody};

use crate::body::{read_json, BodyError};
use crate::gate::{gate, Dialect};
use crate::AppState;
use axum::extract::{FromRequest, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tagd_core::{OrgId, UserId};
use utoipa_axum::router::OpenApiRouter;

/// The v2 dialect at the gate.
pub struct V2;

impl Dialect for V2 {
    type Caller = V2Caller;
    type Error = V2Error;

    async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<V2Caller, V2Error> {
        auth::authenticate(parts, state).await
    }

    fn org(caller: &V2Caller) -> OrgId {
        caller.org
    }
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    customers::routes()
        .merge(catalog::routes())
        .merge(search::routes())
        .route_layer(axum::middleware::from_fn(gate::<V2>))
}

/// A JSON body whose refusals answer in the v2 error shape.
pub struct V2Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for V2Json<T> {
    type Rejection = V2Error;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, V2Error> {
        read_json(request, state)
            .await
            .map(V2Json)
            .map_err(V2Error::from)
    }
}

/// A v2 `userId` path segment: a non-negative integer naming the user whose `user_id` is its
/// decimal string (API.md §1).
pub(crate) fn parse_customer_id(raw: &str) -> Result<(u64, UserId), V2Error> {
    let number: u64 = raw.parse().map_err(|_| {
        V2Error::from(BodyError {
            field: "userId".into(),
            message: "must be a non-negative integer".into(),
            too_large: false,
        })
    })?;
    let user_id = UserId::parse(&number.to_string())?;
    Ok((number, user_id))
}

/// A user id as v2 shows it: a JSON number when it is one, else the string.
pub(crate) fn customer_id_json(user_id: &UserId) -> Value {
    user_id
        .as_str()
        .parse::<u64>()
        .map_or_else(|_| Value::String(user_id.to_string()), Value::from)
}
