//! The runtime's side of the handler contract: health, storage and method calls over one
//! shared HTTP client, so connections to a sandbox are reused from call to call.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::StatusCode;

use crate::sandbox::Sandbox;

/// First pause between health probes that were refused; doubles up to [`MAX_PROBE_PAUSE`].
const FIRST_PROBE_PAUSE: Duration = Duration::from_millis(1);
const MAX_PROBE_PAUSE: Duration = Duration::from_millis(50);

/// A handler's response to a method call, passed to the caller as it is.
#[derive(Debug, Clone)]
pub struct HandlerReply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
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

#[derive(Clone)]
pub struct HandlerClient {
    http: reqwest::Client,
}

impl HandlerClient {
    pub fn new() -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            // Handlers are on loopback; a proxy from the environment must never see calls.
            .no_proxy()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(8)
            .build()?;
        Ok(Self { http })
    }

    /// Waits until `GET /__health` returns 200. A handler on an inherited socket queues the
    /// probe until it accepts, so no pause is needed; one that binds its own port is probed
    /// again after a short, growing pause while the port refuses connections.
    pub async fn wait_healthy(&self, sandbox: &Sandbox) -> Result<(), String> {
        let url = format!("http://{}/__health", sandbox.address);
        let mut pause = FIRST_PROBE_PAUSE;
        loop {
            let probe = self.http.get(&url).send();
            let outcome = tokio::select! {
                exit = sandbox.wait_exit() => {
                    return Err(format!("handler exited before it became healthy ({})", exit.detail));
                }
                outcome = probe => outcome,
            };
            match outcome {
                Ok(response) if response.status() == StatusCode::OK => return Ok(()),
                Ok(response) => {
                    tracing::debug!(sandbox = %sandbox.name, status = %response.status(), "health probe not ready")
                }
                Err(err) => {
                    tracing::trace!(sandbox = %sandbox.name, error = %err, "health probe failed")
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PROBE_PAUSE);
        }
    }

    /// `GET /__storage`: the handler's storage, checked to be JSON and at most `max_bytes`.
    pub async fn read_storage(
        &self,
        address: SocketAddr,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Bytes, StorageFailure> {
        let url = format!("http://{address}/__storage");
        let work = async {
            let response = self
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| StorageFailure::Failed(describe(&e)))?;
            let status = response.status();
            let body =
                read_limited(response, max_bytes)
                    .await
                    .map_err(|failure| match failure {
                        CallFailure::TooLarge => StorageFailure::TooLarge,
                        other => StorageFailure::Failed(format!("{other:?}")),
                    })?;
            if !status.is_success() {
                return Err(StorageFailure::Failed(format!(
                    "GET /__storage answered {status}: {}",
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
    pub async fn write_storage(
        &self,
        address: SocketAddr,
        storage: Bytes,
        timeout: Duration,
    ) -> Result<(), String> {
        let url = format!("http://{address}/__storage");
        let work = async {
            let response = self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(storage)
                .send()
                .await
                .map_err(|e| describe(&e))?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let body = response.bytes().await.unwrap_or_default();
            Err(format!(
                "POST /__storage answered {status}: {}",
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
        address: SocketAddr,
        method: &str,
        body: Bytes,
        content_type: Option<&str>,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<HandlerReply, CallFailure> {
        let url = format!("http://{address}/{method}");
        let work = async {
            let response = self
                .http
                .post(&url)
                .header("content-type", content_type.unwrap_or("application/json"))
                .body(body)
                .send()
                .await
                .map_err(|e| {
                    if e.is_connect() {
                        CallFailure::NotSent(describe(&e))
                    } else {
                        CallFailure::Failed(describe(&e))
                    }
                })?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = read_limited(response, max_bytes).await?;
            Ok(HandlerReply {
                status,
                content_type,
                body,
            })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| CallFailure::Timeout)?
    }
}

/// The reason a storage snapshot could not be read.
#[derive(Debug)]
pub enum StorageFailure {
    TooLarge,
    Failed(String),
}

async fn read_limited(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<Bytes, CallFailure> {
    if response
        .content_length()
        .is_some_and(|len| len > max_bytes as u64)
    {
        return Err(CallFailure::TooLarge);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| CallFailure::Failed(describe(&e)))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(CallFailure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// reqwest's error with its causes, which hold the useful part ("connection refused").
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    if body.len() > 200 {
        format!("{text}…")
    } else {
        text
    }
}
