//! v2 Basic authentication. An argon2 verification costs tens of milliseconds, so a
//! successful one is remembered for a short time, keyed by an HMAC of the whole header under
//! a per-process key (never the password itself). A failed one is never remembered, and every
//! failure, whatever part of the credential is wrong, gets the same 401.
//!
//! A verification first takes a failure slot of the client address and of the user name
//! ([`crate::limits::AuthThrottle`]) and runs on the password verifier threads
//! ([`crate::verify`]); a remembered success needs neither, so a credential that already
//! works keeps working from an address that is being throttled.

use super::error::V2Error;
use crate::cache::TtlCache;
use crate::limits::AuthSubject;
use crate::verify::VerifyError;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use std::sync::OnceLock;
use tagd_core::secrets::{decode_basic_header, hash_password};
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

/// Successful verifications, by HMAC of the Authorization header.
pub type BasicAuthCache = TtlCache<V2Caller>;

impl crate::cache::Partitioned for V2Caller {
    fn partition(&self) -> i64 {
        self.org.0
    }
}

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
    let key = state.cache_keyer.key(header.as_bytes());
    let address = crate::gate::client_ip(parts, state);
    state
        .basic_auth_cache
        .get_or_try_insert(key, || verify(header, address, state))
        .await
}

/// An argon2 verification of the header's credential, counted by the throttle.
async fn verify(
    header: &str,
    address: std::net::IpAddr,
    state: &AppState,
) -> Result<V2Caller, V2Error> {
    let mut subjects = vec![AuthSubject::address(address)];
    let decoded = decode_basic_header(header);
    if let Some((username, _)) = &decoded {
        // Bounded: the key of a map an attacker fills.
        subjects.push(AuthSubject::User(username.chars().take(128).collect()));
    }
    let attempt = state
        .auth_throttle
        .begin(subjects)
        .map_err(V2Error::RateLimited)?;
    let (username, password) = decoded.ok_or(V2Error::Unauthorized)?;
    let credential = match state.store.find_basic_credential(&username).await {
        Ok(credential) => credential,
        Err(e) => {
            attempt.succeeded(); // the database failed, not the credential
            return Err(e.into());
        }
    };
    let stored = credential
        .as_ref()
        .map_or_else(|| dummy_hash().to_owned(), |c| c.password_hash.clone());
    let verified = match state.verifier.verify(password, stored).await {
        Ok(verified) => verified,
        Err(VerifyError::Saturated) => {
            attempt.succeeded(); // the server was busy: not a failure of this credential
            return Err(V2Error::RateLimited(1));
        }
    };
    let credential = credential
        .filter(|_| verified)
        .ok_or(V2Error::Unauthorized)?;
    attempt.succeeded();
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
