//! The runtime's side of the handler contract: health, storage and method calls.
//!
//! Each activation talks to its handler over one HTTP/1.1 connection of its own. Requests to
//! one object are serialised by its turn anyway, and a single connection suits handlers that
//! serve one connection at a time (Python's `HTTPServer`, for one): a second connection
//! opened while the first is idle would wait unanswered. A request that did not finish (timed
//! out, cancelled, failed) leaves the connection in an unknown state, so it is dropped and the
//! next request opens a new one.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, Response, StatusCode, body::Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::sandbox::Sandbox;

/// First pause between health probes that were refused; doubles up to [`MAX_PROBE_PAUSE`].
const FIRST_PROBE_PAUSE: Duration = Duration::from_millis(1);
const MAX_PROBE_PAUSE: Duration = Duration::from_millis(50);
/// Most of an error response's body quoted in messages.
const ERROR_BODY_BYTES: usize = 4096;

/// The response header in which a handler may report its storage after a call: `unchanged`,
/// or the storage as JSON. It spares the checkpoint a `GET /__storage`; it is never passed on
/// to the caller.
pub const STORAGE_HEADER: &str = "torpor-storage";

/// What a handler said about its storage after a call.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageHint {
    /// Nothing: the runtime reads the storage with `GET /__storage`.
    None,
    Unchanged,
    /// The storage after the call, checked to be JSON.
    Snapshot(Bytes),
}

/// A handler's response to a method call, passed to the caller as it is.
#[derive(Debug, Clone)]
pub struct HandlerReply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
    pub storage: StorageHint,
    /// The `torpor-alarm` header, unparsed; several values are joined with ", ". It is
    /// never passed on to the caller.
    pub alarm: Option<Bytes>,
}

/// The reason a method call got no response.
#[derive(Debug)]
pub enum CallFailure {
    /// The connection was refused: the request never reached the handler, so retrying it
    /// cannot apply it twice.
    NotSent(String),
    Timeout,
    TooLarge,
    Failed(String),
}

/// The reason a storage snapshot could not be read.
#[derive(Debug)]
pub enum StorageFailure {
    TooLarge,
    Failed(String),
}

/// The open connection and whether its last exchange finished.
struct Connection {
    sender: SendRequest<Full<Bytes>>,
    idle: bool,
}

/// The connection of one activation to its handler.
pub struct Channel {
    address: SocketAddr,
    connection: Mutex<Option<Connection>>,
}

impl Channel {
    pub fn new(address: SocketAddr) -> Self {
        Self {
            address,
            connection: Mutex::new(None),
        }
    }

    async fn connect(&self) -> Result<Connection, CallFailure> {
        let stream = TcpStream::connect(self.address)
            .await
            .map_err(|e| CallFailure::NotSent(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| CallFailure::NotSent(e.to_string()))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection { sender, idle: true })
    }

    /// Sends one request and reads at most `max_bytes` of the response body.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
        max_bytes: usize,
    ) -> Result<(Response<()>, Bytes), CallFailure> {
        let mut slot = self.connection.lock().await;
        // Keep the connection only if its last exchange finished and it is still open.
        if let Some(connection) = slot.as_mut()
            && (!connection.idle || connection.sender.ready().await.is_err())
        {
            *slot = None;
        }
        if slot.is_none() {
            *slot = Some(self.connect().await?);
        }
        let Some(connection) = slot.as_mut() else {
            return Err(CallFailure::NotSent("no connection".into()));
        };
        connection.idle = false;
        let response = connection
            .sender
            .send_request(request)
            .await
            .map_err(|e| CallFailure::Failed(describe(&e)))?;
        let (parts, body) = response.into_parts();
        let body = read_limited(body, max_bytes).await?;
        connection.idle = true;
        Ok((Response::from_parts(parts, ()), body))
    }

    /// Waits until `GET /__health` returns 200. A handler on an inherited socket queues the
    /// probe until it accepts, so no pause is needed; one that binds its own port is probed
    /// again after a short, growing pause while the port refuses connections.
    pub async fn wait_healthy(&self, sandbox: &Sandbox) -> Result<(), String> {
        let mut pause = FIRST_PROBE_PAUSE;
        loop {
            let probe = self.exchange(get("/__health"), ERROR_BODY_BYTES);
            let outcome = tokio::select! {
                exit = sandbox.wait_exit() => {
                    return Err(format!("handler exited before it became healthy ({})", exit.detail));
                }
                outcome = probe => outcome,
            };
            match outcome {
                Ok((response, _)) if response.status() == StatusCode::OK => return Ok(()),
                Ok((response, _)) => {
                    tracing::debug!(sandbox = %sandbox.name, status = %response.status(), "health probe not ready")
                }
                Err(failure) => {
                    tracing::trace!(sandbox = %sandbox.name, ?failure, "health probe failed")
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PROBE_PAUSE);
        }
    }

    /// `GET /__storage`: the handler's storage, checked to be JSON and at most `max_bytes`.
    pub async fn read_storage(
        &self,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Bytes, StorageFailure> {
        let work = async {
            let (response, body) = self.exchange(get("/__storage"), max_bytes).await.map_err(
                |failure| match failure {
                    CallFailure::TooLarge => StorageFailure::TooLarge,
                    CallFailure::NotSent(reason) | CallFailure::Failed(reason) => {
                        StorageFailure::Failed(reason)
                    }
                    CallFailure::Timeout => StorageFailure::Failed("timed out".into()),
                },
            )?;
            if !response.status().is_success() {
                return Err(StorageFailure::Failed(format!(
                    "GET /__storage answered {}: {}",
                    response.status(),
                    preview(&body)
                )));
            }
            if let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
                return Err(StorageFailure::Failed(format!(
                    "GET /__storage returned invalid JSON: {err}"
                )));
            }
            Ok(body)
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| {
            StorageFailure::Failed(format!(
                "GET /__storage timed out after {}",
                humantime::format_duration(timeout)
            ))
        })?
    }

    /// `POST /__storage`: hands the saved storage to a waking handler.
    pub async fn write_storage(&self, storage: Bytes, timeout: Duration) -> Result<(), String> {
        let request = post("/__storage", storage, Some("application/json"));
        let work = async {
            let (response, body) = self.exchange(request, ERROR_BODY_BYTES).await.map_err(
                |failure| match failure {
                    CallFailure::NotSent(reason) | CallFailure::Failed(reason) => reason,
                    CallFailure::TooLarge => "its answer was too large".into(),
                    CallFailure::Timeout => "timed out".into(),
                },
            )?;
            if response.status().is_success() {
                return Ok(());
            }
            Err(format!(
                "POST /__storage answered {}: {}",
                response.status(),
                preview(&body)
            ))
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| {
            format!(
                "POST /__storage timed out after {}",
                humantime::format_duration(timeout)
            )
        })?
    }

    /// `POST /{method}` with the caller's body.
    pub async fn call(
        &self,
        method: &str,
        body: Bytes,
        content_type: Option<&str>,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<HandlerReply, CallFailure> {
        let request = post(
            &format!("/{method}"),
            body,
            Some(content_type.unwrap_or("application/json")),
        );
        let (response, body) = tokio::time::timeout(timeout, self.exchange(request, max_bytes))
            .await
            .map_err(|_| CallFailure::Timeout)??;
        let content_type = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let storage = match response.headers().get(STORAGE_HEADER).map(|v| v.as_bytes()) {
            None => StorageHint::None,
            Some(b"unchanged") => StorageHint::Unchanged,
            Some(json) if serde_json::from_slice::<serde::de::IgnoredAny>(json).is_ok() => {
                StorageHint::Snapshot(Bytes::copy_from_slice(json))
            }
            Some(_) => StorageHint::None,
        };
        let mut alarms = response
            .headers()
            .get_all(crate::model::alarm::ALARM_HEADER)
            .iter()
            .map(|value| value.as_bytes());
        let alarm = alarms.next().map(|first| {
            let mut joined = first.to_vec();
            for more in alarms {
                joined.extend_from_slice(b", ");
                joined.extend_from_slice(more);
            }
            Bytes::from(joined)
        });
        Ok(HandlerReply {
            status: response.status().as_u16(),
            content_type,
            body,
            storage,
            alarm,
        })
    }
}

fn get(path: &str) -> Request<Full<Bytes>> {
    request(Method::GET, path, Bytes::new(), None)
}

fn post(path: &str, body: Bytes, content_type: Option<&str>) -> Request<Full<Bytes>> {
    request(Method::POST, path, body, content_type)
}

fn request(
    method: Method,
    path: &str,
    body: Bytes,
    content_type: Option<&str>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "sandbox");
    if let Some(content_type) = content_type {
        builder = builder.header(hyper::header::CONTENT_TYPE, content_type);
    }
    // The path is a validated method name and the headers are fixed, so building cannot fail.
    builder
        .body(Full::new(body))
        .unwrap_or_else(|_| Request::new(Full::new(Bytes::new())))
}

async fn read_limited(body: Incoming, max_bytes: usize) -> Result<Bytes, CallFailure> {
    match Limited::new(body, max_bytes).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(CallFailure::TooLarge),
        Err(err) => Err(CallFailure::Failed(err.to_string())),
    }
}

/// hyper's error with its causes, which hold the useful part ("connection reset").
fn describe(err: &hyper::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Returns the start of a body or header, at most 200 bytes, for messages.
pub fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    if body.len() > 200 {
        format!("{text}…")
    } else {
        text
    }
}
