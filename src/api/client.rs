//! A client for the torpor API, used by the command-line subcommands and the console's
//! remote mode.

mod alarms;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

use super::types::{ClassInfo, ErrorBody, Health, IdleTimeoutBody, ObjectPage, Stats};
use crate::model::{Event, ObjectKey, ObjectRecord};

/// Why a request to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach torpor at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server answered with an error body.
    #[error("{message} (HTTP {status}, {code})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("unexpected answer from {url}: {reason}")]
    Decode { url: String, reason: String },
}

/// A handler's answer to a call made through the API.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
    /// Round trip as the client measured it.
    pub duration: Duration,
}

/// Where a stream of events stands.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// An event and its stream position, to resume after with `events(Some(position))`.
    Event { event: Box<Event>, position: String },
    /// The subscriber fell behind and missed events; list objects again.
    Lagged,
}

/// Objects a listing requests per page, unless the server allows fewer.
const PREFERRED_PAGE_SIZE: usize = 1000;
/// The page size used when the server rejects the preferred one and does not say its limit.
const FALLBACK_PAGE_SIZE: usize = 100;

#[derive(Clone)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
    /// Added to the message of a 401, to say where the token came from and what to set.
    unauthorized_hint: Option<Arc<str>>,
    /// The page size listings use: the preferred one until the server rejects it.
    page_size: Arc<AtomicUsize>,
}

impl Client {
    /// `base` is the server's address, e.g. `http://127.0.0.1:7070`; `token` is sent as a
    /// bearer token with every request.
    pub fn new(base: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let base =
            Url::parse(base).map_err(|e| anyhow::anyhow!("invalid server URL {base:?}: {e}"))?;
        if base.scheme() != "http" {
            anyhow::bail!(
                "invalid server URL {:?}: only http:// is supported",
                base.as_str()
            );
        }
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| {
                    anyhow::anyhow!("the API token contains characters a header cannot carry")
                })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .default_headers(headers)
            .build()?;
        Ok(Self {
            base,
            http,
            unauthorized_hint: None,
            page_size: Arc::new(AtomicUsize::new(PREFERRED_PAGE_SIZE)),
        })
    }

    /// Sets a sentence added to the message of every 401 response, such as the token's
    /// origin and what to set instead.
    pub fn with_unauthorized_hint(mut self, hint: String) -> Self {
        self.unauthorized_hint = Some(hint.into());
        self
    }

    /// Builds the error for an error answer, adding the 401 hint where there is one.
    fn api_error(&self, status: u16, code: String, message: String) -> ClientError {
        let message = match (&self.unauthorized_hint, status) {
            (Some(hint), 401) => format!("{message}; {hint}"),
            _ => message,
        };
        ClientError::Api {
            status,
            code,
            message,
        }
    }

    pub fn base(&self) -> &str {
        self.base.as_str()
    }

    /// `/v1/…` with each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.clear().push("v1").extend(segments);
        }
        url
    }

    fn object_url(&self, key: &ObjectKey, rest: &[&str]) -> Url {
        let mut segments = vec!["objects", key.class.as_str(), key.id.as_str()];
        segments.extend_from_slice(rest);
        self.url(&segments)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<reqwest::Response, ClientError> {
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: url.to_string(),
            reason: error_chain(&e),
        })?;
        if response.status().is_client_error() || response.status().is_server_error() {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            return Err(match serde_json::from_str::<ErrorBody>(&text) {
                Ok(body) => self.api_error(status, body.error.code, body.error.message),
                Err(_) => self.api_error(status, "http_error".into(), text),
            });
        }
        Ok(response)
    }

    async fn json<T: DeserializeOwned>(&self, method: Method, url: Url) -> Result<T, ClientError> {
        let response = self
            .send(self.http.request(method, url.clone()), &url)
            .await?;
        response.json().await.map_err(|e| ClientError::Decode {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    pub async fn health(&self) -> Result<Health, ClientError> {
        self.json(Method::GET, self.url(&["health"])).await
    }

    pub async fn classes(&self) -> Result<Vec<ClassInfo>, ClientError> {
        self.json(Method::GET, self.url(&["classes"])).await
    }

    pub async fn stats(&self) -> Result<Stats, ClientError> {
        self.json(Method::GET, self.url(&["stats"])).await
    }

    /// One page; `after` is the previous page's `next`.
    pub async fn list(
        &self,
        class: Option<&str>,
        status: Option<&str>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<ObjectPage, ClientError> {
        let mut url = self.url(&["objects"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &limit.to_string());
            if let Some(class) = class {
                query.append_pair("class", class);
            }
            if let Some(status) = status {
                query.append_pair("status", status);
            }
            if let Some(after) = after {
                query.append_pair("after", after);
            }
        }
        self.json(Method::GET, url).await
    }

    /// Every object of `class` and `status` (all when `None`), following `next` from page
    /// to page. A server whose `limits.max_page_size` is below the preferred page size
    /// rejects the first page with `invalid_limit`, so the listing then continues with the
    /// server's limit, read from `GET /v1/stats`.
    pub async fn list_all(
        &self,
        class: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<ObjectRecord>, ClientError> {
        let mut objects = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let size = self.page_size.load(Ordering::Relaxed);
            let page = match self.list(class, status, size, after.as_deref()).await {
                Err(ClientError::Api { code, .. }) if code == "invalid_limit" && size > 1 => {
                    let limit = self.server_page_size().await?;
                    if limit >= size {
                        // The server rejected a size it claims to allow; do not loop.
                        return Err(ClientError::Decode {
                            url: self.url(&["objects"]).to_string(),
                            reason: format!(
                                "the server rejected limit {size} but allows up to {limit}"
                            ),
                        });
                    }
                    self.page_size.store(limit, Ordering::Relaxed);
                    continue;
                }
                result => result?,
            };
            objects.extend(page.objects);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(objects),
            }
        }
    }

    /// Returns the largest page the server returns, as `GET /v1/stats` reports it. A server
    /// that does not report it gets a smaller page size than the preferred one.
    async fn server_page_size(&self) -> Result<usize, ClientError> {
        let stats = self.stats().await?;
        let size = stats
            .max_page_size
            .unwrap_or(FALLBACK_PAGE_SIZE.min(self.page_size.load(Ordering::Relaxed) / 2));
        Ok(size.max(1))
    }

    pub async fn show(&self, key: &ObjectKey) -> Result<ObjectRecord, ClientError> {
        self.json(Method::GET, self.object_url(key, &[])).await
    }

    pub async fn call(
        &self,
        key: &ObjectKey,
        method: &str,
        body: Bytes,
    ) -> Result<CallOutcome, ClientError> {
        let url = self.object_url(key, &["call", method]);
        let started = std::time::Instant::now();
        let request = self
            .http
            .post(url.clone())
            .header("content-type", "application/json")
            .body(body);
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: url.to_string(),
            reason: error_chain(&e),
        })?;
        let status = response.status();
        let is_runtime_error = response.headers().get("x-torpor-generation").is_none();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(|e| ClientError::Decode {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        // Handler answers carry the generation header; errors from the runtime itself do not.
        if is_runtime_error
            && status != StatusCode::OK
            && let Ok(error) = serde_json::from_slice::<ErrorBody>(&body)
        {
            return Err(self.api_error(status.as_u16(), error.error.code, error.error.message));
        }
        Ok(CallOutcome {
            status: status.as_u16(),
            content_type,
            body,
            duration: started.elapsed(),
        })
    }

    pub async fn hibernate(
        &self,
        key: &ObjectKey,
        force: bool,
    ) -> Result<ObjectRecord, ClientError> {
        let mut url = self.object_url(key, &["hibernate"]);
        if force {
            url.query_pairs_mut().append_pair("force", "true");
        }
        self.json(Method::POST, url).await
    }

    pub async fn wake(&self, key: &ObjectKey) -> Result<ObjectRecord, ClientError> {
        self.json(Method::POST, self.object_url(key, &["wake"]))
            .await
    }

    pub async fn delete(&self, key: &ObjectKey) -> Result<(), ClientError> {
        let url = self.object_url(key, &[]);
        self.send(self.http.delete(url.clone()), &url)
            .await
            .map(|_| ())
    }

    pub async fn set_idle_timeout(
        &self,
        key: &ObjectKey,
        idle_timeout_ms: Option<u64>,
    ) -> Result<ObjectRecord, ClientError> {
        let url = self.object_url(key, &["idle-timeout"]);
        let request = self
            .http
            .put(url.clone())
            .json(&IdleTimeoutBody { idle_timeout_ms });
        let response = self.send(request, &url).await?;
        response.json().await.map_err(|e| ClientError::Decode {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    pub async fn logs(&self, key: &ObjectKey, bytes: usize) -> Result<String, ClientError> {
        let mut url = self.object_url(key, &["logs"]);
        url.query_pairs_mut()
            .append_pair("bytes", &bytes.to_string());
        let response = self.send(self.http.get(url.clone()), &url).await?;
        response.text().await.map_err(|e| ClientError::Decode {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    /// Subscribes to the event stream, starting after `since` when given. The stream ends
    /// when the connection drops.
    pub async fn events(
        &self,
        since: Option<&str>,
    ) -> Result<impl Stream<Item = Result<StreamItem, ClientError>> + use<>, ClientError> {
        let mut url = self.url(&["events"]);
        if let Some(since) = since {
            url.query_pairs_mut().append_pair("since", since);
        }
        let response = self.send(self.http.get(url.clone()), &url).await?;
        let source = url.to_string();
        Ok(response.bytes_stream().eventsource().filter_map(move |item| {
            let source = source.clone();
            async move {
                match item {
                    Ok(message) if message.event == "lagged" => Some(Ok(StreamItem::Lagged)),
                    Ok(message) => match serde_json::from_str::<Event>(&message.data) {
                        Ok(event) => Some(Ok(StreamItem::Event {
                            event: Box::new(event),
                            position: message.id,
                        })),
                        Err(err) => {
                            tracing::warn!(event = %message.event, error = %err, "skipping an event this client cannot read");
                            None
                        }
                    },
                    Err(err) => Some(Err(ClientError::Unreachable { url: source, reason: err.to_string() })),
                }
            }
        }))
    }
}

fn error_chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
