//! The server behind `torpor --serve`: routes, body limits, and shutdown on SIGTERM or SIGINT
//! that hands over to the runtime's graceful shutdown.

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use tokio_util::sync::CancellationToken;

use super::{routes, sse};
use crate::runtime::Runtime;

#[derive(Clone)]
pub struct AppState {
    pub runtime: Runtime,
    /// Cancelled at shutdown, which ends every event stream so the server can stop.
    pub stopping: CancellationToken,
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.runtime.config().limits.max_request_bytes;
    Router::new()
        .route("/v1/health", get(routes::health))
        .route("/v1/classes", get(routes::classes))
        .route("/v1/events", get(sse::events))
        .route("/v1/objects", get(routes::list))
        .route(
            "/v1/objects/{class}/{id}",
            get(routes::show).delete(routes::delete),
        )
        .route("/v1/objects/{class}/{id}/call/{method}", post(routes::call))
        .route(
            "/v1/objects/{class}/{id}/hibernate",
            post(routes::hibernate),
        )
        .route("/v1/objects/{class}/{id}/wake", post(routes::wake))
        .route(
            "/v1/objects/{class}/{id}/idle-timeout",
            put(routes::set_idle_timeout),
        )
        .route("/v1/objects/{class}/{id}/logs", get(routes::logs))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Serves the API until SIGTERM or SIGINT, then shuts the runtime down gracefully.
pub async fn serve(runtime: Runtime, options: ServeOptions) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, data_dir = %runtime.data_dir().display(), "serving the torpor API");
    eprintln!(
        "torpor: serving on http://{address} (data directory {})",
        runtime.data_dir().display()
    );

    let stopping = CancellationToken::new();
    let app = router(AppState {
        runtime: runtime.clone(),
        stopping: stopping.clone(),
    });
    let server = axum::serve(listener, app).with_graceful_shutdown({
        let stopping = stopping.clone();
        async move { stopping.cancelled().await }
    });
    let server = tokio::spawn(async move { server.await });

    let signal = stop_signal().await;
    tracing::info!(signal, "shutting down");
    stopping.cancel();
    runtime.shutdown().await;
    // Requests still open after the runtime shut down were answered with errors already.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), server).await;
    tracing::info!("shut down");
    Ok(())
}

async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
