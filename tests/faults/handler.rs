//! A handler that misbehaves on request, for the failure scenarios: slow or never healthy,
//! slow, failing or hanging storage reads, failing storage writes, and methods that sleep,
//! hang, crash, or return huge bodies. It serves the same contract as any handler.
//!
//! Start-up faults come from the environment: `FAULT_HEALTH_DELAY_MS`, `FAULT_NEVER_HEALTHY`,
//! `FAULT_STORAGE_WRITE_FAIL`, `FAULT_IGNORE_SIGTERM`, and `FAULT_DEFAULT_SIGTERM`, which
//! installs no SIGTERM handler, so SIGTERM has its default action. Storage-read faults can
//! also be switched on later with the `faults` method.
//!
//! Alarms: `set_alarm {"header"}` responds with that `torpor-alarm` header, and the `alarm`
//! method records each successful delivery in storage under `alarms`. Its faults also come
//! from the environment. They count attempts, and record when each arrived, in files in the
//! working folder, which outlives the sandbox:
//! - `FAULT_ALARM_FAIL=N` responds 500 to the first N attempts;
//! - `FAULT_ALARM_CRASH=N` exits during the first N;
//! - `FAULT_ALARM_HANG_MS=M` makes the first `FAULT_ALARM_HANG_TIMES` attempts (default 1)
//!   take M ms;
//! - `FAULT_ALARM_HEADER=VALUE` adds that `torpor-alarm` header to every response.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::Mutex;

#[derive(Default)]
struct Faults {
    read_delay_ms: AtomicU64,
    /// Reads served normally before `read_delay_ms`, `read_fail` or `read_hang` apply.
    read_skip: AtomicU64,
    read_fail: AtomicBool,
    read_hang: AtomicBool,
}

struct Handler {
    storage: Mutex<Value>,
    faults: Faults,
    healthy_at: Option<Instant>,
    write_fail: bool,
}

type Shared = Arc<Handler>;

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

fn env_ms(name: &str) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn serve() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let _ = std::fs::write("handler.pid", std::process::id().to_string());
    let healthy_at = if env_flag("FAULT_NEVER_HEALTHY") {
        None
    } else {
        Some(Instant::now() + Duration::from_millis(env_ms("FAULT_HEALTH_DELAY_MS")))
    };
    let handler = Arc::new(Handler {
        storage: Mutex::new(json!({})),
        faults: Faults::default(),
        healthy_at,
        write_fail: env_flag("FAULT_STORAGE_WRITE_FAIL"),
    });
    let app = Router::new()
        .route("/__health", get(health))
        .route("/__storage", get(read_storage).post(write_storage))
        .route("/{method}", post(call))
        .layer(DefaultBodyLimit::disable())
        .with_state(handler);
    let listener = match std::env::var("TORPOR_LISTEN") {
        Ok(address) => tokio::net::TcpListener::bind(address).await.unwrap(),
        Err(_) => panic!("TORPOR_LISTEN is not set"),
    };
    if env_flag("FAULT_DEFAULT_SIGTERM") {
        axum::serve(listener, app).await.unwrap();
        return;
    }
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        loop {
            term.recv().await;
            if !env_flag("FAULT_IGNORE_SIGTERM") {
                return;
            }
            eprintln!("faulty handler: ignoring SIGTERM");
        }
    };
    if env_flag("FAULT_ONE_CONNECTION") {
        serve_one_connection_at_a_time(listener, app, stop).await;
        return;
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .unwrap();
}

/// Serves each connection to its end before accepting the next, as single-threaded servers
/// such as Python's `HTTPServer` do.
async fn serve_one_connection_at_a_time(
    listener: tokio::net::TcpListener,
    app: Router,
    stop: impl std::future::Future<Output = ()>,
) {
    let serve = async {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        }
    };
    tokio::select! {
        _ = serve => {}
        _ = stop => {}
    }
}

async fn health(State(handler): State<Shared>) -> StatusCode {
    match handler.healthy_at {
        Some(at) if Instant::now() >= at => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn read_storage(State(handler): State<Shared>) -> Response {
    let faults = &handler.faults;
    let skipped = faults
        .read_skip
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if !skipped {
        if faults.read_hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if faults.read_fail.load(Ordering::SeqCst) {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage read fails on purpose",
            )
                .into_response();
        }
        let delay = faults.read_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }
    let storage = handler.storage.lock().await.clone();
    json_response(StatusCode::OK, &storage)
}

async fn write_storage(State(handler): State<Shared>, body: Bytes) -> Response {
    if handler.write_fail {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage write fails on purpose",
        )
            .into_response();
    }
    match serde_json::from_slice(&body) {
        Ok(value) => {
            *handler.storage.lock().await = value;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => (
            StatusCode::BAD_REQUEST,
            format!("storage is not JSON: {err}"),
        )
            .into_response(),
    }
}

/// Reports an attempt's outcome: `{"ok": true}` or `{"ok": false, "error": "..."}`.
fn attempt(result: std::io::Result<()>) -> Response {
    let value = match result {
        Ok(()) => json!({ "ok": true }),
        Err(err) => json!({ "ok": false, "error": err.to_string() }),
    };
    json_response(StatusCode::OK, &value)
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn number(body: &Value, field: &str) -> u64 {
    body.get(field).and_then(Value::as_u64).unwrap_or(0)
}

async fn call(State(handler): State<Shared>, Path(method): Path<String>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match method.as_str() {
        "increment" => {
            let mut storage = handler.storage.lock().await;
            let by = body.get("by").and_then(Value::as_i64).unwrap_or(1);
            let count = storage.get("count").and_then(Value::as_i64).unwrap_or(0) + by;
            storage["count"] = json!(count);
            json_response(StatusCode::OK, &json!({ "count": count }))
        }
        "get" => json_response(StatusCode::OK, &handler.storage.lock().await.clone()),
        "set" => {
            handler.storage.lock().await["value"] = body["value"].clone();
            json_response(StatusCode::OK, &json!({ "ok": true }))
        }
        "slow_set" => {
            tokio::time::sleep(Duration::from_millis(number(&body, "ms"))).await;
            handler.storage.lock().await["value"] = body["value"].clone();
            json_response(StatusCode::OK, &json!({ "ok": true }))
        }
        "sleep" => {
            tokio::time::sleep(Duration::from_millis(number(&body, "ms"))).await;
            json_response(StatusCode::OK, &json!({ "slept_ms": number(&body, "ms") }))
        }
        "hang" => std::future::pending().await,
        "crash" => std::process::exit(70),
        "raise" => {
            // SAFETY: raise(3) with a signal number from the test.
            unsafe { libc::raise(number(&body, "signal") as i32) };
            json_response(StatusCode::OK, &json!({ "survived": true }))
        }
        "big" => (StatusCode::OK, "x".repeat(number(&body, "bytes") as usize)).into_response(),
        "fill" => {
            let bytes = number(&body, "bytes") as usize;
            handler.storage.lock().await["blob"] = json!("x".repeat(bytes));
            json_response(StatusCode::OK, &json!({ "bytes": bytes }))
        }
        "faults" => {
            let faults = &handler.faults;
            faults
                .read_delay_ms
                .store(number(&body, "read_delay_ms"), Ordering::SeqCst);
            faults
                .read_skip
                .store(number(&body, "read_skip"), Ordering::SeqCst);
            faults
                .read_fail
                .store(body["read_fail"] == json!(true), Ordering::SeqCst);
            faults
                .read_hang
                .store(body["read_hang"] == json!(true), Ordering::SeqCst);
            json_response(StatusCode::OK, &json!({ "ok": true }))
        }
        "pid" => json_response(StatusCode::OK, &json!({ "pid": std::process::id() })),
        "set_alarm" => {
            let mut storage = handler.storage.lock().await;
            let touched = storage.get("touched").and_then(Value::as_u64).unwrap_or(0);
            storage["touched"] = json!(touched + 1);
            let mut response = json_response(StatusCode::OK, &json!({ "ok": true }));
            let header = body["header"].as_str().unwrap_or_default();
            if let Ok(value) = axum::http::HeaderValue::from_str(header) {
                response.headers_mut().insert("torpor-alarm", value);
            }
            response
        }
        "alarm" => alarm(&handler, body).await,
        "status" => {
            let code = number(&body, "code") as u16;
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT);
            (status, "status on request").into_response()
        }
        // Attempts a sandbox must not succeed at; each reports what happened.
        "write" => attempt(std::fs::write(
            body["path"].as_str().unwrap_or(""),
            b"written by a sandbox",
        )),
        "read" => attempt(std::fs::read(body["path"].as_str().unwrap_or("")).map(|_| ())),
        "connect" => {
            let address = format!("127.0.0.1:{}", number(&body, "port"));
            attempt(
                std::net::TcpStream::connect_timeout(
                    &address.parse().unwrap(),
                    Duration::from_secs(2),
                )
                .map(|_| ()),
            )
        }
        "signal" => {
            // SAFETY: kill(2) with a pid from the test; the sandbox should not be allowed to.
            let sent = unsafe { libc::kill(number(&body, "pid") as i32, libc::SIGTERM) } == 0;
            attempt(if sent {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            })
        }
        "environ" => {
            let vars: serde_json::Map<String, Value> =
                std::env::vars().map(|(k, v)| (k, json!(v))).collect();
            // SAFETY: getuid has no preconditions.
            let uid = unsafe { libc::getuid() };
            json_response(StatusCode::OK, &json!({ "vars": vars, "uid": uid }))
        }
        "spawn" => {
            let mut spawned = 0;
            let mut error = Value::Null;
            let seconds = match number(&body, "seconds") {
                0 => 289,
                seconds => seconds,
            };
            for _ in 0..number(&body, "count") {
                match std::process::Command::new("sleep")
                    .arg(seconds.to_string())
                    .spawn()
                {
                    Ok(child) => {
                        std::mem::forget(child);
                        spawned += 1;
                    }
                    Err(err) => {
                        error = json!(err.to_string());
                        break;
                    }
                }
            }
            json_response(
                StatusCode::OK,
                &json!({ "spawned": spawned, "error": error }),
            )
        }
        "log" => {
            eprintln!("{}", body["line"].as_str().unwrap_or_default());
            json_response(StatusCode::OK, &json!({ "ok": true }))
        }
        "allocate" => {
            let mut blocks = Vec::new();
            for _ in 0..number(&body, "mb") {
                blocks.push(vec![7u8; 1024 * 1024]);
            }
            json_response(StatusCode::OK, &json!({ "allocated_mb": blocks.len() }))
        }
        other => json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": format!("unknown method {other:?}") }),
        ),
    }
}

/// Counts this attempt in the working folder and returns its number, from 1.
fn count_alarm_attempt() -> u64 {
    let attempts = std::fs::read_to_string("alarm-attempts")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    let _ = std::fs::write("alarm-attempts", attempts.to_string());
    attempts
}

/// Appends the time an attempt arrived, in Unix milliseconds, to a file in the working
/// folder, so tests can measure the pauses between attempts where the handler sees them.
fn record_attempt_time(received_at_ms: u64) {
    use std::io::Write;
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("alarm-attempt-times")
    {
        let _ = writeln!(file, "{received_at_ms}");
    }
}

/// Serves the `alarm` method: fails, crashes or hangs as the environment requests, else
/// records the delivery (its body and when it arrived) in storage.
async fn alarm(handler: &Handler, body: Value) -> Response {
    let received_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;

    let attempt = count_alarm_attempt();
    record_attempt_time(received_at_ms);
    if attempt <= env_ms("FAULT_ALARM_CRASH") {
        std::process::exit(70);
    }
    if attempt <= env_ms("FAULT_ALARM_FAIL") {
        return (StatusCode::INTERNAL_SERVER_ERROR, "alarm fails on purpose").into_response();
    }
    let hang_times = std::env::var("FAULT_ALARM_HANG_TIMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    if attempt <= hang_times {
        tokio::time::sleep(Duration::from_millis(env_ms("FAULT_ALARM_HANG_MS"))).await;
    }

    let mut storage = handler.storage.lock().await;
    let mut delivery = body;
    delivery["received_at_ms"] = json!(received_at_ms);
    match storage.get_mut("alarms").and_then(Value::as_array_mut) {
        Some(alarms) => alarms.push(delivery),
        None => storage["alarms"] = json!([delivery]),
    }

    let mut response = json_response(StatusCode::OK, &json!({ "ok": true }));
    if let Ok(header) = std::env::var("FAULT_ALARM_HEADER") {
        let value = axum::http::HeaderValue::from_str(&header).unwrap();
        response.headers_mut().insert("torpor-alarm", value);
    }
    response
}
