//! A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records every delivery
//! and answers the statuses a test plans (200 unless told), and a signature check written
//! from the Standard Webhooks text, independent of tagd's own.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub webhook_id: String,
    pub timestamp: String,
    pub signature: String,
    pub raw: Vec<u8>,
    pub body: Value,
    /// What the receiver answered.
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    /// Statuses to answer next, in order; 200 when empty.
    planned: Mutex<VecDeque<u16>>,
    /// Answer every request with this status from now on (while set).
    always: Mutex<Option<u16>>,
    delay: Mutex<Duration>,
}

#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Inner>,
    pub url: String,
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, raw: Bytes) -> StatusCode {
    let delay = *inner.delay.lock().expect("lock");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let status = match *inner.always.lock().expect("lock") {
        Some(status) => status,
        None => inner
            .planned
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or(200),
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    inner.received.lock().expect("lock").push(Received {
        webhook_id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw: raw.to_vec(),
        status,
    });
    StatusCode::from_u16(status).expect("a status")
}

impl Receiver {
    /// Listens on a free port of 127.0.0.1 (at `/hook`) until the test ends.
    pub async fn start() -> Receiver {
        Self::start_on(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        )
        .await
    }

    pub async fn start_on(listener: tokio::net::TcpListener) -> Receiver {
        let inner = Arc::new(Inner::default());
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { inner, url }
    }

    /// Answers these statuses to the next requests, then 200 again.
    pub fn plan(&self, statuses: &[u16]) {
        self.inner.planned.lock().expect("lock").extend(statuses);
    }

    /// Answers `status` to every request until called with `None`.
    pub fn always(&self, status: Option<u16>) {
        *self.inner.always.lock().expect("lock") = status;
    }

    pub fn delay(&self, delay: Duration) {
        *self.inner.delay.lock().expect("lock") = delay;
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().expect("lock").clone()
    }

    /// The events answered 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// Waits until `done` holds for what was received, or panics after `within`.
    pub async fn wait_until(&self, within: Duration, done: impl Fn(&[Received]) -> bool) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let received = self.received();
            if done(&received) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the receiver did not get what was expected within {within:?}; it got {} \
                 requests: {:#?}",
                received.len(),
                received
                    .iter()
                    .map(|r| (&r.body["type"], &r.body["version"], r.status))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Is `signature` (a `webhook-signature` header) a valid signature of the delivery by
/// `secret`? Written from the Standard Webhooks text: the key is the base64 after `whsec_`,
/// the content `{id}.{timestamp}.{body}`, HMAC-SHA256, base64, `v1,` prefix, signatures
/// separated by spaces.
pub fn signed_by(secret: &str, delivery: &Received) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("a base64 secret");
    let mut content = format!("{}.{}.", delivery.webhook_id, delivery.timestamp).into_bytes();
    content.extend_from_slice(&delivery.raw);
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(&content);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    delivery
        .signature
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}
