//! The server behind `torpor --serve`: routes, body limits, and shutdown on SIGTERM or SIGINT
//! that hands over to the runtime's graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post, put};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::RequestBodyTimeoutLayer;

use super::auth::{self, AuthSetup, Tokens};
use super::{alarms, listen, routes, sse};
use crate::runtime::Runtime;

#[derive(Clone)]
pub struct AppState {
    pub runtime: Runtime,
    /// Cancelled at shutdown, which ends every event stream so the server can stop.
    pub stopping: CancellationToken,
    /// `None` when authentication is off.
    pub tokens: Option<Arc<Tokens>>,
    /// One permit per open event stream, up to `limits.max_event_subscribers`.
    pub subscribers: Arc<Semaphore>,
}

impl AppState {
    pub fn new(runtime: Runtime, tokens: Option<Arc<Tokens>>) -> Self {
        let subscribers = Arc::new(Semaphore::new(
            runtime.config().limits.max_event_subscribers,
        ));
        Self {
            runtime,
            stopping: CancellationToken::new(),
            tokens,
            subscribers,
        }
    }
}

pub struct ServeOptions {
    pub auth: AuthSetup,
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.runtime.config().limits.max_request_bytes;
    Router::new()
        .route("/v1/health", get(routes::health))
        .route("/v1/stats", get(routes::stats))
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
        .route(
            "/v1/objects/{class}/{id}/alarm",
            put(alarms::set).delete(alarms::clear),
        )
        .route("/v1/alarms", get(alarms::list))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::check_length,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), auth::require))
        .with_state(state)
}

/// Binds the API's address; done before the runtime starts, so a busy port fails fast.
pub async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}

/// Serves the API until SIGTERM or SIGINT, then shuts the runtime down gracefully.
pub async fn serve(
    runtime: Runtime,
    listener: TcpListener,
    options: ServeOptions,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    let auth = options.auth;
    tracing::info!(%address, data_dir = %runtime.data_dir().display(), "serving the torpor API");
    eprintln!(
        "torpor: serving on http://{address} (data directory {}); {}",
        runtime.data_dir().display(),
        auth.notice
    );
    for warning in runtime.isolation_warnings() {
        eprintln!("torpor: warning: sandbox isolation: {warning}");
    }

    let max_connections = runtime.config().limits.max_connections;
    let state = AppState::new(runtime.clone(), auth.tokens);
    let stopping = state.stopping.clone();
    let app = router(state).layer(RequestBodyTimeoutLayer::new(listen::BODY_READ_TIMEOUT));
    let server = tokio::spawn(listen::accept_loop(
        listener,
        app,
        stopping.clone(),
        max_connections,
    ));

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
