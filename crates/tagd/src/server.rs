//! Serving: bind, serve, and on SIGTERM or Ctrl-C stop accepting, finish in-flight requests,
//! and return so the process exits 0.

use std::net::SocketAddr;
use std::sync::Arc;
use tagd_core::Store;
use tagd_http::{AppState, HttpConfig};
use tokio::net::TcpListener;

/// Serves until `shutdown` completes, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn Store>,
    config: HttpConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_split(listener, None, store, config, shutdown).await
}

/// Serves the dialects on `listener` and, when `admin` is given, the admin API on it alone
/// (`--admin-listen`); both stop together when `shutdown` completes.
pub async fn serve_split(
    listener: TcpListener,
    admin: Option<TcpListener>,
    store: Arc<dyn Store>,
    config: HttpConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let purgers = [
        tokio::spawn(purge_idempotency_keys(store.clone())),
        tokio::spawn(purge_expired_tokens(store.clone())),
        tokio::spawn(sweep_expired_assignments(store.clone())),
    ];
    let settings = config.delivery_settings();
    let state = AppState::new(store.clone(), config);
    state.index.start();
    let _delivery = tagd_events::start(
        store,
        Arc::new(render_event),
        settings,
        (state.index.commits(), state.deliveries.clone()),
    )?;
    // The lease owner of this process: unique across servers and restarts.
    let owner = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let announcer = tokio::spawn(
        state
            .index
            .clone()
            .announce_segment_moves(owner, state.deliveries.clone()),
    );
    let served = match admin {
        None => {
            let app = tagd_http::app(state);
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
        Some(admin_listener) => {
            let (public, admin) = tagd_http::app_split(state);
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let stopped_too = stopped.clone();
            let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
                let _ = rx.wait_for(|stop| *stop).await;
            };
            let signal = tokio::spawn(async move {
                shutdown.await;
                let _ = stop.send(true);
            });
            let public = axum::serve(
                listener,
                public.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(until(stopped));
            let admin = axum::serve(
                admin_listener,
                admin.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(until(stopped_too));
            let (public, admin) = tokio::join!(public, admin);
            signal.abort();
            public.and(admin)
        }
    };
    for purger in purgers {
        purger.abort();
    }
    announcer.abort();
    served
}

/// An entry of the change feed as the event webhooks and NATS receive (the shape of
/// `GET /api/v5/changes`).
fn render_event(
    corp_id: &tagd_core::CorpId,
    entry: &tagd_core::log::LogEntry,
    page: &tagd_core::history::FeedPage,
) -> tagd_events::Rendered {
    let event = tagd_http::v5::events::event(corp_id, entry, page);
    tagd_events::Rendered {
        id: event.id().to_owned(),
        kind: event.kind(),
        body: serde_json::to_vec(&event).unwrap_or_default().into(),
    }
}

/// How often idempotency keys past their 24 hours and expired tokens are deleted.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Runs `purge` every [`PURGE_EVERY`], logging what it deleted as `what`.
async fn purge_periodically<F, Fut>(what: &'static str, purge: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = tagd_core::Result<u64>>,
{
    let mut every = tokio::time::interval(PURGE_EVERY);
    loop {
        every.tick().await;
        match purge().await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, what, "expired rows deleted"),
            Err(e) => tracing::warn!(cause = %e, what, "could not purge expired rows"),
        }
    }
}

async fn purge_expired_tokens(store: Arc<dyn Store>) {
    purge_periodically("tokens", || {
        store.purge_expired_tokens(tagd_core::timefmt::now_unix())
    })
    .await;
}

async fn purge_idempotency_keys(store: Arc<dyn Store>) {
    purge_periodically("idempotency keys", || {
        store.purge_idempotency_keys(tagd_core::idempotency::RETENTION_SECS)
    })
    .await;
}

/// How often the expiry sweep looks for assignments whose expiry has passed. Reads leave
/// them out from the instant they expire; the sweep only records each expiry in the log
/// (`tag.expired`), well within the 60 seconds API.md §11 allows.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Expiries one sweep transaction records: short enough that the row locks it holds never
/// keep a write waiting long.
const SWEEP_BATCH: usize = 2_000;

/// Records expiries as they come due, a batch per transaction, until none is left.
async fn sweep_expired_assignments(store: Arc<dyn Store>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        // One round: from the start of what is due, step by step, until nothing is left.
        let (mut recorded, mut after) = (0, None);
        loop {
            let now = tagd_core::timefmt::now_unix();
            match store.expire_due(now, after, SWEEP_BATCH).await {
                Ok(step) => {
                    recorded += step.recorded;
                    match step.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
                Err(e) => {
                    tracing::warn!(cause = %e, "the expiry sweep failed; it runs again shortly");
                    break;
                }
            }
        }
        if recorded > 0 {
            tracing::info!(recorded, "expired assignments recorded");
        }
    }
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: draining in-flight requests"),
        () = terminate => tracing::info!("SIGTERM: draining in-flight requests"),
    }
}
