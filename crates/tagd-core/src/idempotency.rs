//! Idempotency keys (API.md §5a): a write sent again with the same `Idempotency-Key` and the
//! same body, in the same organization within 24 hours, gets the first reply again, byte for
//! byte, and has no second effect.
//!
//! How the pieces meet: the front end *claims* the key before the request runs (a row with no
//! reply yet, leased for a while). The write then takes a [`Recorder`] as an argument: the
//! claim, and how the reply is rendered from the write's own result type. Just before it
//! commits, the store renders the reply and writes it into the claimed row *in the same
//! transaction*, so the effect and the record of it commit together or not at all; the
//! compiler checks that the renderer takes what the write returns. A reply that comes with no
//! effect (a refusal) is saved by the front end afterwards.
//!
//! Core knows nothing of the protocol: a [`Reply`] is three opaque fields the front end chose
//! and reads back.

use crate::error::{Error, Result};
use crate::ids::OrgId;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;

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

/// A reply as the front end first sent it, kept verbatim. Core and the store never look
/// inside: `code` and `format` mean what the front end says (for HTTP, the status and the
/// content type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub format: String,
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
    Replay(Reply),
    /// Used with another request: 422.
    Mismatch,
    /// The first request is still running (or died, until its lease ends): 409.
    InFlight { retry_after_secs: i64 },
}

/// How far one request's writes have got, shared between the request and whoever waits on
/// it (its deadline).
#[derive(Debug, Default)]
pub struct WriteProgress {
    /// [`IDLE`], [`COMMITTING`] or [`ABANDONED`]: one atomic, so a deadline that gives the
    /// request up and a write queued elsewhere that starts it cannot both win.
    state: AtomicU8,
    /// A write committed the request's reply with its effect.
    recorded: AtomicBool,
    /// The organization's version after the write committed (0: it committed no change).
    version: AtomicI64,
}

/// No write of the request is committing.
const IDLE: u8 = 0;
/// A write has begun to commit and not returned: it cannot be rolled back any more, so a
/// deadline must wait for its real outcome instead of answering "rolled back".
const COMMITTING: u8 = 1;
/// The deadline gave the request up as rolled back: no write of it may begin any more.
const ABANDONED: u8 = 2;

impl WriteProgress {
    pub fn committing(&self) -> bool {
        self.state.load(Ordering::SeqCst) == COMMITTING
    }

    /// For the deadline: gives the request up, unless a write of it is committing (then
    /// `false`, and its outcome must be awaited). Once given up, [`Recorder::begin_commit`]
    /// refuses, so a write still queued never runs.
    pub fn abandon(&self) -> bool {
        match self
            .state
            .compare_exchange(IDLE, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => true,
            Err(now) => now == ABANDONED,
        }
    }

    pub fn recorded(&self) -> bool {
        self.recorded.load(Ordering::SeqCst)
    }

    /// The change-log version the request's write committed, if it changed anything.
    pub fn version(&self) -> Option<i64> {
        Some(self.version.load(Ordering::SeqCst)).filter(|v| *v > 0)
    }
}

/// Renders a write's result as the reply the front end sends.
type Render<T> = Box<dyn Fn(&T) -> Reply + Send + Sync>;

/// What one write records with its effect: the request's claimed key (if any) and how its
/// reply is rendered from the write's result `T`. Passed to every write a request makes;
/// [`Recorder::none`] for writes outside a request (import, operator, tests).
pub struct Recorder<T> {
    claim: Option<Claim>,
    render: Option<Render<T>>,
    progress: Option<Arc<WriteProgress>>,
}

impl<T> Recorder<T> {
    /// Records nothing and reports no progress.
    pub fn none() -> Self {
        Recorder {
            claim: None,
            render: None,
            progress: None,
        }
    }

    /// Reports progress to `progress` and, when `claim` is set, records the reply `render`
    /// makes of the write's result.
    pub fn new(
        claim: Option<Claim>,
        progress: Arc<WriteProgress>,
        render: impl Fn(&T) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Recorder {
            claim,
            render: Some(Box::new(render)),
            progress: Some(progress),
        }
    }

    /// The reply to `value`, as sent and as recorded (`None` without a renderer).
    pub fn reply(&self, value: &T) -> Option<Reply> {
        self.render.as_ref().map(|render| render(value))
    }

    /// For the store, just before it commits: the claim and the reply to record in the same
    /// transaction, when a key is claimed.
    pub fn to_record(&self, value: &T) -> Option<(&Claim, Reply)> {
        Some((self.claim.as_ref()?, self.reply(value)?))
    }

    /// For the store: the write is about to commit (`true`), or its commit returned (`false`).
    pub fn committing(&self, now: bool) {
        if let Some(progress) = &self.progress {
            let (from, to) = if now {
                (IDLE, COMMITTING)
            } else {
                (COMMITTING, IDLE)
            };
            let _ = progress
                .state
                .compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// For a store that runs the write away from its request (a coalesced write): starts
    /// committing, unless the request was given up meanwhile (`false`: do not run it).
    pub fn begin_commit(&self) -> bool {
        match &self.progress {
            Some(progress) => progress
                .state
                .compare_exchange(IDLE, COMMITTING, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok(),
            None => true,
        }
    }

    /// For the request whose write was queued and is no longer awaited: gives it up, unless
    /// it has begun.
    pub fn abandon(&self) {
        if let Some(progress) = &self.progress {
            progress.abandon();
        }
    }

    /// The same progress without the claim or the renderer, to be moved to wherever the write
    /// runs; `None` when a key is claimed (its reply must be rendered and recorded with the
    /// effect, which only this recorder can do).
    pub fn detach<U>(&self) -> Option<Recorder<U>> {
        if self.claim.is_some() {
            return None;
        }
        Some(Recorder {
            claim: None,
            render: None,
            progress: self.progress.clone(),
        })
    }

    /// For the store, once the transaction that recorded the reply committed.
    pub fn recorded(&self) {
        if let Some(progress) = &self.progress {
            progress.recorded.store(true, Ordering::SeqCst);
        }
    }

    /// The write committed change-log entries up to `version`.
    pub fn committed_version(&self, version: i64) {
        if let Some(progress) = &self.progress {
            progress.version.fetch_max(version, Ordering::SeqCst);
        }
    }
}

/// Idempotency keys: the store's contract.
#[async_trait::async_trait]
pub trait IdempotencyKeys: Send + Sync {
    /// Claims a key for one request (see [`crate::idempotency`]): new, a replay, a mismatch,
    /// or still in flight. Keys older than 24 hours count as new; claims without a response
    /// whose lease ran out count as abandoned and are taken over.
    async fn claim_idempotency_key(&self, claim: &Claim) -> Result<ClaimOutcome>;
    /// Records the response of a claimed request that wrote nothing (a refusal), unless one
    /// was recorded with its effect.
    async fn save_idempotent_response(&self, claim: &Claim, response: &Reply) -> Result<()>;
    /// Releases a claim that has no response (the request was cut short), so a retry runs.
    async fn release_idempotency_key(&self, claim: &Claim) -> Result<()>;
    /// Deletes keys created more than `older_than_secs` ago (24 hours in service); returns
    /// how many.
    async fn purge_idempotency_keys(&self, older_than_secs: i64) -> Result<u64>;
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

    fn reply(n: &i64) -> Reply {
        Reply {
            code: 200,
            format: "text/plain".into(),
            body: n.to_string(),
        }
    }

    #[test]
    fn a_recorder_records_only_with_a_claim_and_reports_progress() {
        let progress = Arc::new(WriteProgress::default());
        let unclaimed = Recorder::new(None, progress.clone(), reply);
        assert_eq!(unclaimed.reply(&7).map(|r| r.body).as_deref(), Some("7"));
        assert!(
            unclaimed.to_record(&7).is_none(),
            "no claim, nothing to record"
        );
        let claim = Claim {
            org: OrgId(1),
            key: "k".into(),
            fingerprint: "f".into(),
            lease_secs: 45,
        };
        let claimed = Recorder::new(Some(claim.clone()), progress.clone(), reply);
        let (recorded_claim, recorded) = claimed.to_record(&7).expect("a claim records");
        assert_eq!((recorded_claim, recorded.body.as_str()), (&claim, "7"));
        claimed.committing(true);
        assert!(progress.committing() && !progress.recorded());
        claimed.committing(false);
        claimed.recorded();
        assert!(!progress.committing() && progress.recorded());
        let none = Recorder::<i64>::none();
        none.committing(true);
        assert!(none.reply(&1).is_none() && !progress.committing());
    }

    #[test]
    fn a_given_up_request_never_begins_and_a_begun_one_cannot_be_given_up() {
        let given_up = Arc::new(WriteProgress::default());
        let queued = Recorder::<i64>::new(None, given_up.clone(), reply)
            .detach::<()>()
            .expect("no claim: detachable");
        assert!(given_up.abandon(), "nothing committing: given up");
        assert!(!queued.begin_commit(), "a given-up write must not run");
        assert!(given_up.abandon(), "giving up twice still says given up");

        let begun = Arc::new(WriteProgress::default());
        let running = Recorder::<i64>::new(None, begun.clone(), reply)
            .detach::<()>()
            .expect("no claim: detachable");
        assert!(running.begin_commit());
        assert!(!begun.abandon(), "a committing write is waited for");
        running.committing(false);
        assert!(begun.abandon(), "finished and idle again: may be given up");
    }

    #[test]
    fn a_recorder_with_a_claim_does_not_detach() {
        let claim = Claim {
            org: OrgId(1),
            key: "k".into(),
            fingerprint: "f".into(),
            lease_secs: 45,
        };
        let progress = Arc::new(WriteProgress::default());
        let claimed = Recorder::new(Some(claim), progress, reply);
        assert!(claimed.detach::<()>().is_none());
    }
}
