//! Idempotency keys (API.md §5a): a write sent again with the same `Idempotency-Key` and the
//! same body, in the same organization within 24 hours, gets the first response again, byte
//! for byte, and has no second effect.
//!
//! How the pieces meet: the HTTP gate *claims* the key before the handler runs (a row with no
//! response yet, leased for a while) and puts the claim in a task-local [`RequestScope`]. The handler
//! registers how its response is rendered from the store's result ([`set_renderer`]). The
//! store, just before it commits a write, renders the response and writes it into the claimed
//! row *in the same transaction* ([`render_for_commit`]), so the effect and the record of it
//! commit together or not at all. A response that comes with no effect (a refusal) is saved
//! by the gate afterwards.

use crate::error::{Error, Result};
use crate::ids::OrgId;
use sha2::{Digest, Sha256};
use std::any::Any;
use std::sync::{Arc, Mutex};

/// How long a key is remembered.
pub const RETENTION_SECS: i64 = 24 * 60 * 60;
/// How long past the request timeout a claim without a response still blocks others, before
/// it is taken as abandoned (its process died).
pub const LEASE_MARGIN_SECS: i64 = 15;
/// Longest key, in characters.
pub const MAX_KEY_CHARS: usize = 255;

/// A parsed `Idempotency-Key`: 1–255 printable ASCII characters.
pub fn parse_key(raw: &str) -> Result<String> {
    let printable = raw.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if raw.is_empty() || raw.len() > MAX_KEY_CHARS || !printable {
        return Err(Error::invalid(
            "Idempotency-Key",
            "must be 1 to 255 printable ASCII characters",
        ));
    }
    Ok(raw.to_owned())
}

/// What makes two requests "the same": method, path with query, and body.
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update(b"\n");
    hash.update(path_and_query.as_bytes());
    hash.update(b"\n");
    hash.update(body);
    hex::encode(hash.finalize())
}

/// A response as it was first sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// A key claimed for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub org: OrgId,
    pub key: String,
    pub fingerprint: String,
    /// How long the claim blocks the key without a response: longer than the request may run.
    pub lease_secs: i64,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// New (or abandoned and taken over): run the request.
    Fresh,
    /// Done before: send this again.
    Replay(StoredResponse),
    /// Used with another request: 422.
    Mismatch,
    /// The first request is still running (or died, until its lease ends): 409.
    InFlight { retry_after_secs: i64 },
}

type Renderer = Box<dyn Fn(&dyn Any) -> Option<StoredResponse> + Send + Sync>;

struct Pending {
    claim: Option<Claim>,
    renderer: Option<Renderer>,
    recorded: bool,
    /// The request's write has started to commit: from here it cannot be rolled back, so a
    /// deadline must wait for its real outcome instead of answering "rolled back".
    committing: bool,
}

tokio::task_local! {
    static PENDING: Arc<Mutex<Pending>>;
}

/// What a gated request's writes report back to the gate while it runs.
#[derive(Clone)]
pub struct RequestScope {
    pending: Arc<Mutex<Pending>>,
}

impl RequestScope {
    /// A scope for one request, with its claimed key if it has one.
    pub fn new(claim: Option<Claim>) -> Self {
        RequestScope {
            pending: Arc::new(Mutex::new(Pending {
                claim,
                renderer: None,
                recorded: false,
                committing: false,
            })),
        }
    }

    /// Runs the request inside this scope.
    pub async fn run<F: std::future::Future>(&self, request: F) -> F::Output {
        PENDING.scope(self.pending.clone(), request).await
    }

    /// A write recorded the response with its effect.
    pub fn recorded(&self) -> bool {
        self.pending.lock().map(|p| p.recorded).unwrap_or(false)
    }

    /// A write of the request has begun to commit.
    pub fn committing(&self) -> bool {
        self.pending.lock().map(|p| p.committing).unwrap_or(false)
    }
}

/// Registers how the current request's response is rendered from a write's result of type
/// `T`. Without an active claim it does nothing.
pub fn set_renderer<T: Any>(render: impl Fn(&T) -> StoredResponse + Send + Sync + 'static) {
    let _ = PENDING.try_with(|pending| {
        if let Ok(mut p) = pending.lock() {
            p.renderer = Some(Box::new(move |value: &dyn Any| {
                value.downcast_ref::<T>().map(&render)
            }));
        }
    });
}

/// For the store, just before it commits a write: the claim and the response to record in
/// the same transaction, when a claim is active and the result is what the handler expects.
pub fn render_for_commit(value: &dyn Any) -> Option<(Claim, StoredResponse)> {
    PENDING
        .try_with(|pending| {
            let p = pending.lock().ok()?;
            let claim = p.claim.clone()?;
            let response = p.renderer.as_ref()?(value)?;
            Some((claim, response))
        })
        .ok()
        .flatten()
}

/// For the store, just before it commits: past this point the write cannot be undone.
pub fn mark_committing() {
    let _ = PENDING.try_with(|pending| {
        if let Ok(mut p) = pending.lock() {
            p.committing = true;
        }
    });
}

/// For the store, once its commit returned (committed or failed): a later write of the same
/// request has not begun to commit.
pub fn mark_commit_done() {
    let _ = PENDING.try_with(|pending| {
        if let Ok(mut p) = pending.lock() {
            p.committing = false;
        }
    });
}

/// For the store, once that transaction committed.
pub fn mark_recorded() {
    let _ = PENDING.try_with(|pending| {
        if let Ok(mut p) = pending.lock() {
            p.recorded = true;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_one_to_255_printable_ascii_characters() {
        assert!(parse_key("order-42:retry").is_ok());
        assert!(parse_key(&"k".repeat(255)).is_ok());
        assert!(parse_key("").is_err());
        assert!(parse_key(&"k".repeat(256)).is_err());
        assert!(parse_key("tab\there").is_err());
        assert!(parse_key("clé").is_err());
    }

    #[test]
    fn the_fingerprint_changes_with_method_path_or_body() {
        let base = fingerprint("POST", "/a", b"{}");
        assert_eq!(base, fingerprint("POST", "/a", b"{}"));
        assert_ne!(base, fingerprint("PUT", "/a", b"{}"));
        assert_ne!(base, fingerprint("POST", "/b", b"{}"));
        assert_ne!(base, fingerprint("POST", "/a", b"{ }"));
    }

    #[tokio::test]
    async fn a_renderer_is_used_only_inside_a_scope_and_for_its_own_type() {
        set_renderer(|n: &i64| StoredResponse {
            status: 200,
            content_type: "text/plain".into(),
            body: n.to_string(),
        });
        assert!(
            render_for_commit(&1_i64).is_none(),
            "no claim, nothing to record"
        );
        let claim = Claim {
            org: OrgId(1),
            key: "k".into(),
            fingerprint: "f".into(),
            lease_secs: 45,
        };
        let scope = RequestScope::new(Some(claim));
        let rendered = scope
            .run(async {
                set_renderer(|n: &i64| StoredResponse {
                    status: 200,
                    content_type: "text/plain".into(),
                    body: n.to_string(),
                });
                assert!(render_for_commit(&"other type").is_none());
                let rendered = render_for_commit(&7_i64).map(|(_, r)| r.body);
                mark_recorded();
                rendered
            })
            .await;
        assert_eq!((rendered.as_deref(), scope.recorded()), (Some("7"), true));
    }
}
