//! v2 Basic authentication. An argon2 verification costs tens of milliseconds, so a
//! successful one is remembered for a short time, keyed by the SHA-256 of the whole header
//! (never the password itself). A failed one is never remembered, and every failure, whatever
//! part of the credential is wrong, gets the same 401.

use super::error::V2Error;
use crate::cache::TtlCache;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use tagd_core::secrets::{decode_basic_header, hash_password, verify_password};
use tagd_core::{Executor, ExecutorKind, OrgId};

/// The Basic credential a v2 request acts for.
#[derive(Debug, Clone)]
pub struct V2Caller {
    pub org: OrgId,
    pub credential_id: i64,
    pub username: String,
}

impl V2Caller {
    pub fn executor(&self) -> Executor {
        Executor {
            kind: ExecutorKind::Credential,
            id: self.credential_id,
            name: self.username.clone(),
        }
    }
}

/// Successful verifications, by SHA-256 of the Authorization header.
pub type BasicAuthCache = TtlCache<V2Caller>;

/// A hash to verify against when the user name is unknown, so that answer costs the same.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password(b"tagd-no-such-user").unwrap_or_default())
}

impl FromRequestParts<AppState> for V2Caller {
    type Rejection = V2Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, V2Error> {
        match parts.extensions.get::<V2Caller>() {
            Some(caller) => Ok(caller.clone()),
            None => authenticate(parts, state).await,
        }
    }
}

/// The Basic credential of a request, verified (or found in the cache).
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<V2Caller, V2Error> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(V2Error::Unauthorized)?;
    let key: [u8; 32] = Sha256::digest(header.as_bytes()).into();
    state
        .basic_auth_cache
        .get_or_try_insert(key, || verify(header, state))
        .await
}

/// An argon2 verification of the header's credential.
async fn verify(header: &str, state: &AppState) -> Result<V2Caller, V2Error> {
    let (username, password) = decode_basic_header(header).ok_or(V2Error::Unauthorized)?;
    let credential = state.store.find_basic_credential(&username).await?;
    let stored = credential
        .as_ref()
        .map_or_else(|| dummy_hash().to_owned(), |c| c.password_hash.clone());
    // argon2 is CPU-bound for tens of milliseconds: keep it off the async workers.
    let verified = tokio::task::spawn_blocking(move || verify_password(&password, &stored))
        .await
        .unwrap_or(false);
    let credential = credential
        .filter(|_| verified)
        .ok_or(V2Error::Unauthorized)?;
    Ok(V2Caller {
        org: credential.org_id,
        credential_id: credential.id,
        username: credential.username,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_cache_remembers_nothing() {
        let cache = BasicAuthCache::new(std::time::Duration::ZERO);
        let caller = V2Caller {
            org: OrgId(1),
            credential_id: 1,
            username: "u".into(),
        };
        cache.put([0; 32], caller);
        assert!(cache.get(&[0; 32]).is_none());
    }
}
