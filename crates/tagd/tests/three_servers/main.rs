//! Three `tagd serve` processes over one PostgreSQL schema, driven round-robin (issue 17,
//! item 2): a write taken by one server reads back on the others at its `X-Tagd-Version`
//! (API.md §3.6); an `Idempotency-Key` holds across servers (§3.3); a revoked token is refused
//! everywhere within the token cache time (§2.1); rate limits are per server (§3.4); each
//! expiry is recorded once (§4.14) and each webhook event delivered once, in order
//! (EVENTS.md §3); and a server killed with SIGKILL loses no acknowledged write while another
//! takes its webhook over.
//!
//! The tests run only when `TAGD_TEST_POSTGRES_URL` is set (each prints a note and returns
//! otherwise), one at a time: three servers at once are plenty for two cores and for
//! PostgreSQL's connections (up to 24 a server, docs/OPERATIONS.md).

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::client::V5Org;
use support::process::TagdProcess;
use tagd_store_tests::harness::{self, Fixture};

#[path = "../support/mod.rs"]
mod support;

mod background;
mod crash;
mod limits;
mod writes;

const ASSIGN: &str = "/api/v5/entity/user/tags/assign";

/// One trio at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Three servers over one fresh schema (`servers[i]` answers at `orgs[i]` of [`Trio::org`]).
struct Trio {
    servers: Vec<TagdProcess>,
    fixture: Fixture,
    client: reqwest::Client,
    _logs: Logs,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

/// The servers' logs; shown when the test fails.
struct Logs(tempfile::TempDir);

impl Drop for Logs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for i in 0..3 {
            let path = self.0.path().join(format!("server{i}.log"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            eprintln!("--- last lines of server {i}'s log:\n{}", tail.join("\n"));
        }
    }
}

impl Trio {
    /// Starts three servers with `flags` on a new schema; `None` without PostgreSQL.
    async fn start(flags: &[&str]) -> Option<Trio> {
        let serial = SERIAL.lock().await;
        let fixture = harness::postgres().await?;
        let logs = Logs(tempfile::tempdir().expect("temp dir"));
        let mut servers = Vec::new();
        for i in 0..3 {
            let log = logs.0.path().join(format!("server{i}.log"));
            servers.push(TagdProcess::start(&fixture.url, flags, Some(&log)).await);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(40))
            .build()
            .expect("HTTP client");
        Some(Trio {
            servers,
            fixture,
            client,
            _logs: logs,
            _serial: serial,
        })
    }

    /// A new organization (made through server 0) as each server sees it.
    async fn org(&self, name: &str) -> Vec<V5Org> {
        let org = self.servers[0]
            .admin(self.client.clone())
            .v5_org(name)
            .await;
        self.servers.iter().map(|s| org.at(&s.address)).collect()
    }

    /// POSTs `body` as `org`, with `Idempotency-Key: key` when given.
    async fn post(&self, org: &V5Org, path: &str, body: &Value, key: Option<&str>) -> Answer {
        try_post(&self.client, org, path, body, key)
            .await
            .expect("request answered")
    }

    /// GET as `org`, headers kept.
    async fn get(&self, org: &V5Org, path_with_query: &str) -> Answer {
        let request = self
            .client
            .get(org.url(path_with_query))
            .bearer_auth(&org.token)
            .header("X-APP-ID", &org.app_id);
        Answer::read(request.send().await.expect("request sent"))
            .await
            .expect("answer read")
    }

    /// SIGTERM to every server still running (each must exit 0), then the schema is dropped.
    async fn stop(self) {
        for server in self.servers {
            let status = server.terminate().await;
            assert!(status.success(), "SIGTERM drains and exits 0: {status}");
        }
        self.fixture.cleanup().await;
    }
}

/// [`Trio::post`] to a server that may be gone.
async fn try_post(
    client: &reqwest::Client,
    org: &V5Org,
    path: &str,
    body: &Value,
    key: Option<&str>,
) -> reqwest::Result<Answer> {
    let mut request = client
        .post(org.url(path))
        .bearer_auth(&org.token)
        .header("X-APP-ID", &org.app_id)
        .json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    Answer::read(request.send().await?).await
}

/// A v5 answer with the headers the tests read.
struct Answer {
    status: u16,
    body: Value,
    headers: HeaderMap,
}

impl Answer {
    async fn read(response: reqwest::Response) -> reqwest::Result<Answer> {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            status,
            body,
            headers,
        })
    }

    /// Answered 200 with code 0.
    fn ok(&self) -> bool {
        self.status == 200 && self.body["code"] == 0
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `X-Tagd-Version`: the version the write committed.
    fn version(&self) -> i64 {
        self.header("x-tagd-version")
            .expect("a successful write answers X-Tagd-Version")
            .parse()
            .expect("an integer version")
    }
}

/// The body of an assign of `value` in `group` to `user`.
fn assign_body(org: &V5Org, group: &str, user: &str, value: &str) -> Value {
    json!({"corp_id": org.corp_id, "tags_group_id": group, "user_id": user, "value": value})
}

/// Creates a webhook endpoint at `url` for every event type through `org`'s server:
/// (webhook id, secret, its starting position: it gets the events after that version).
async fn create_endpoint(trio: &Trio, org: &V5Org, url: &str) -> (String, String, i64) {
    let hook = json!({"corp_id": org.corp_id, "url": url, "event_types": []});
    let created = trio.post(org, "/api/v5/webhooks/create", &hook, None).await;
    assert!(created.ok(), "{}", created.body);
    let id = created.body["data"]["webhook_id"].as_str().expect("id");
    let secret = created.body["data"]["secret"].as_str().expect("secret");
    let list = format!("/api/v5/webhooks/list?corp_id={}", org.corp_id);
    let (status, listed) = org.get(&list).await;
    assert_eq!(status, 200, "{listed}");
    let start = listed["data"]["rows"][0]["delivered_version"]
        .as_i64()
        .expect("delivered_version");
    (id.to_owned(), secret.to_owned(), start)
}

/// Polls `done` every 100 ms until it answers `Some`, or panics with `what` after `within`.
async fn eventually<T, F, Fut>(within: Duration, what: &str, mut done: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = done().await {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
