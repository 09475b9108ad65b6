//! The built-in demo classes, served by this binary as `torpor object-host NAME`.
//!
//! Each is a plain handler under the object handler contract: `GET /__health`,
//! `GET /__storage`, `POST /__storage` and `POST /{method}`. It listens on the socket passed as
//! `TORPOR_LISTEN_FD`, or else binds `TORPOR_LISTEN` (default `0.0.0.0:9333`, the port a
//! container handler uses).

mod counter;
mod kv;
mod session;

use std::os::fd::FromRawFd;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// The names `builtin = "…"` accepts.
pub const BUILTIN_CLASSES: &[&str] = &["counter", "kv", "session"];

/// A built-in class: how it answers a method call, and what storage it accepts.
pub trait BuiltinClass: Send + Sync + 'static {
    /// Storage of a new object.
    fn initial(&self) -> Value;
    /// Checks storage pushed on wake; the error says what shape was expected.
    fn check_storage(&self, storage: &Value) -> Result<(), String>;
    /// Runs `method` with the request body against the storage.
    fn call(&self, storage: &mut Value, method: &str, body: &[u8]) -> (StatusCode, Value);
    /// Whether `method` may change storage.
    fn changes_storage(&self, method: &str) -> bool;
    /// Runs `method` like [`BuiltinClass::call`], and returns the `torpor-alarm` header to
    /// send with the response, if any.
    fn call_with_alarm(
        &self,
        storage: &mut Value,
        method: &str,
        body: &[u8],
    ) -> (StatusCode, Value, Option<String>) {
        let (status, value) = self.call(storage, method, body);
        (status, value, None)
    }
}

/// Largest storage sent back in the `torpor-storage` header; larger storage is left for the
/// runtime to read with `GET /__storage`.
const MAX_STORAGE_HEADER_BYTES: usize = 64 * 1024;

fn class_by_name(name: &str) -> Option<Arc<dyn BuiltinClass>> {
    match name {
        "counter" => Some(Arc::new(counter::Counter)),
        "kv" => Some(Arc::new(kv::Kv)),
        "session" => Some(Arc::new(session::Session)),
        _ => None,
    }
}

struct Host {
    class: Arc<dyn BuiltinClass>,
    storage: Mutex<Value>,
}

type Shared = Arc<Host>;

/// Serves the built-in class `name` until SIGTERM or SIGINT.
pub fn serve(name: &str) -> anyhow::Result<()> {
    let class = class_by_name(name).with_context(|| {
        format!(
            "{name:?} is not a built-in class; the built-in classes are {}",
            BUILTIN_CLASSES.join(", ")
        )
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(class))
}

async fn run(class: Arc<dyn BuiltinClass>) -> anyhow::Result<()> {
    let listener = listener().await?;
    let host = Arc::new(Host {
        storage: Mutex::new(class.initial()),
        class,
    });
    let app = Router::new()
        .route("/__health", get(|| async { "ok" }))
        .route("/__storage", get(read_storage).post(write_storage))
        .route("/{method}", post(call))
        // The runtime bounds what it sends (limits.max_request_bytes and
        // limits.max_storage_bytes); a second, smaller limit here would fail large wakes.
        .layer(DefaultBodyLimit::disable())
        .with_state(host);
    axum::serve(listener, app)
        .with_graceful_shutdown(stop_signal())
        .await?;
    Ok(())
}

async fn listener() -> anyhow::Result<tokio::net::TcpListener> {
    if let Ok(fd) = std::env::var("TORPOR_LISTEN_FD") {
        let fd: i32 = fd
            .parse()
            .with_context(|| format!("TORPOR_LISTEN_FD={fd:?} is not a descriptor number"))?;
        // SAFETY: the runtime passes a listening TCP socket on this descriptor and nothing
        // else in this process owns it.
        let std_listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        std_listener.set_nonblocking(true)?;
        return Ok(tokio::net::TcpListener::from_std(std_listener)?);
    }
    let address = std::env::var("TORPOR_LISTEN").unwrap_or_else(|_| "0.0.0.0:9333".into());
    tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}

async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn lock(host: &Host) -> std::sync::MutexGuard<'_, Value> {
    host.storage
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn read_storage(State(host): State<Shared>) -> Response {
    json_response(StatusCode::OK, &lock(&host))
}

async fn write_storage(State(host): State<Shared>, body: Bytes) -> Response {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(err) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({ "error": format!("storage is not JSON: {err}") }),
            );
        }
    };
    if let Err(err) = host.class.check_storage(&value) {
        return json_response(StatusCode::BAD_REQUEST, &json!({ "error": err }));
    }
    *lock(&host) = value;
    StatusCode::NO_CONTENT.into_response()
}

async fn call(State(host): State<Shared>, Path(method): Path<String>, body: Bytes) -> Response {
    let mut storage = lock(&host);
    let (status, value, alarm) = host.class.call_with_alarm(&mut storage, &method, &body);
    let mut response = json_response(status, &value);
    if let Some(value) = alarm.and_then(|text| axum::http::HeaderValue::from_str(&text).ok()) {
        response
            .headers_mut()
            .insert(crate::model::alarm::ALARM_HEADER, value);
    }
    // Saves the runtime a GET /__storage after the call: "unchanged", or the storage itself.
    let hint = if host.class.changes_storage(&method) {
        Some(storage.to_string()).filter(|text| text.len() <= MAX_STORAGE_HEADER_BYTES)
    } else {
        Some("unchanged".to_owned())
    };
    if let Some(value) = hint.and_then(|text| axum::http::HeaderValue::from_str(&text).ok()) {
        response
            .headers_mut()
            .insert(crate::runtime::handler::STORAGE_HEADER, value);
    }
    response
}

/// Parses an optional JSON request body; an empty body is `null`.
fn body_json(body: &[u8]) -> Result<Value, (StatusCode, Value)> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|err| {
        (
            StatusCode::BAD_REQUEST,
            json!({ "error": format!("request body is not JSON: {err}") }),
        )
    })
}

fn unknown_method(class: &str, method: &str, methods: &str) -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({ "error": format!("unknown method {method:?}; {class} has {methods}") }),
    )
}
