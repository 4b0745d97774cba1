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
    let purger = tokio::spawn(purge_idempotency_keys(store.clone()));
    let app = tagd_http::app(AppState::new(store, config));
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    purger.abort();
    served
}

/// How often idempotency keys past their 24 hours are deleted.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

async fn purge_idempotency_keys(store: Arc<dyn Store>) {
    let mut every = tokio::time::interval(PURGE_EVERY);
    loop {
        every.tick().await;
        match store
            .purge_idempotency_keys(tagd_core::idempotency::RETENTION_SECS)
            .await
        {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired idempotency keys deleted"),
            Err(e) => tracing::warn!(cause = %e, "could not purge idempotency keys"),
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
