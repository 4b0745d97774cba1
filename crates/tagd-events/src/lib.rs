//! Change events delivered (API.md §12): every change-log entry of every organization, as
//! an event, to the organization's webhook endpoints (signed as Standard Webhooks says) and,
//! when configured, to NATS JetStream.
//!
//! Events are read from the change log, which is written in the same transaction as the
//! change: nothing is sent for a rolled-back write, and nothing committed is missed. Each
//! destination keeps its position in the database and moves it only after delivery, so a
//! crash (kill -9) at any point leads to a repeat with the same event id, never a loss.
//! Leases on those positions make one server at a time deliver each.

pub mod nats;
pub mod signature;
pub mod webhook;

mod guard;

use std::sync::Arc;
use tagd_core::history::FeedPage;
use tagd_core::log::LogEntry;
use tagd_core::webhooks::{DeliveryCounters, DeliverySettings};
use tagd_core::{CorpId, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One event, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// 32 hex characters, the same at every delivery of the entry.
    pub id: String,
    /// `tag.assigned`, …
    pub kind: &'static str,
    /// The event as JSON.
    pub body: bytes::Bytes,
}

/// Turns an entry of a change-feed page into its event (the HTTP layer owns the shape).
pub type Renderer = Arc<dyn Fn(&CorpId, &LogEntry, &FeedPage) -> Rendered + Send + Sync>;

/// What every delivery task shares.
pub(crate) struct Context {
    pub store: Arc<dyn Store>,
    pub render: Renderer,
    pub settings: DeliverySettings,
    /// Names this process in leases.
    pub owner: String,
    /// Changes when this server commits a write: delivery wakes at once instead of at its
    /// next poll.
    pub commits: watch::Receiver<u64>,
    pub counters: Arc<DeliveryCounters>,
}

/// The running delivery tasks; dropping it stops them.
pub struct Delivery {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Connections to the database of the delivery runtime (PostgreSQL): each endpoint's worker
/// uses up to three at once (a page read ahead, a save in the background, a lease renewal).
/// Made and driven on that runtime: through the request runtime's pool, every round trip of
/// a worker waited for that busy runtime to notice the answer (docs/BENCHMARKS.md, W10).
const EVENT_CONNECTIONS: u32 = 8;

/// Starts delivering: webhooks always (organizations without endpoints cost one query a
/// second), NATS when `settings.nats_url` is set.
///
/// Delivery runs on a thread of its own (a single-threaded runtime), not among the request
/// tasks: a delivery waits for a receiver several times per event, and among thousands of
/// request tasks each of those waits queued behind them, so under a full write load webhooks
/// fell to a third of the write rate (docs/BENCHMARKS.md, W10). On its own thread the
/// operating system shares the cores between requests and delivery.
pub fn start(
    store: Arc<dyn Store>,
    render: Renderer,
    settings: DeliverySettings,
    (commits, counters): (watch::Receiver<u64>, Arc<DeliveryCounters>),
) -> std::io::Result<Delivery> {
    let owner = format!("{}-{:08x}", std::process::id(), rand_u32());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tagd-events")
        .enable_all()
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("tagd-events".into())
        .spawn(move || {
            runtime.block_on(async move {
                let context = Arc::new(Context {
                    store: store.with_own_connections("events", EVENT_CONNECTIONS),
                    render,
                    settings,
                    owner,
                    commits,
                    counters,
                });
                let mut tasks: Vec<JoinHandle<()>> =
                    vec![tokio::spawn(webhook::supervise(context.clone()))];
                if let Some(url) = context.settings.nats_url.clone() {
                    tasks.push(tokio::spawn(nats::publish(context, url)));
                }
                let _ = stopped.await;
                for task in &tasks {
                    task.abort();
                }
            });
        })?;
    Ok(Delivery { stop: Some(stop) })
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() as u32
}

pub(crate) fn lease(owner: &str) -> tagd_core::webhooks::Lease<'_> {
    tagd_core::webhooks::Lease::from_now(owner)
}

/// Waits for this server's next commit, or `poll` at most (other servers' commits are
/// only seen by looking).
pub(crate) async fn next_commit(commits: &mut watch::Receiver<u64>, poll: std::time::Duration) {
    tokio::select! {
        changed = commits.changed() => {
            if changed.is_err() {
                tokio::time::sleep(poll).await;
            }
        }
        () = tokio::time::sleep(poll) => {}
    }
}
