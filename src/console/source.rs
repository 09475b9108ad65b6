//! The console's data source: a runtime embedded in this process, or a server
//! reached over the API. Both give the same operations and the same stream of events.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::api::Client;
use crate::api::client::{ClientError, StreamItem};
use crate::api::types::AlarmBody;
use crate::model::alarm::{AlarmRequest, AlarmTime};
use crate::model::{Event, MethodName, ObjectKey, ObjectRecord};
use crate::runtime::{CallRequest, Runtime};
use crate::store::ListQuery;

/// Objects fetched per page while listing everything.
const PAGE: usize = 1000;
/// Pause before reconnecting to a server that went away.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub enum Source {
    Embedded(Runtime),
    Remote(Client),
}

/// An update the feed sends the console.
#[derive(Debug, Clone)]
pub enum Feed {
    Event(Box<Event>),
    /// A fresh full listing, after connecting or falling behind.
    Snapshot(Vec<ObjectRecord>),
    /// The server cannot be reached; the feed keeps trying.
    Disconnected(String),
}

/// A call's response as the console shows it.
#[derive(Debug, Clone)]
pub struct CallResult {
    pub status: u16,
    pub body: Bytes,
    pub duration: Duration,
}

impl Source {
    /// Describes where the runtime is, for the header.
    pub fn describe(&self) -> String {
        match self {
            Source::Embedded(runtime) => format!("embedded · {}", runtime.data_dir().display()),
            Source::Remote(client) => format!("remote · {}", client.base().trim_end_matches('/')),
        }
    }

    pub async fn list_all(&self) -> anyhow::Result<Vec<ObjectRecord>> {
        match self {
            Source::Embedded(runtime) => {
                let mut objects = Vec::new();
                let mut query = ListQuery {
                    limit: PAGE,
                    ..ListQuery::default()
                };
                loop {
                    let page = runtime.list(&query).await?;
                    objects.extend(page.objects);
                    match page.next.and_then(|next| {
                        next.split_once('/')
                            .and_then(|(c, i)| ObjectKey::parse(c, i).ok())
                    }) {
                        Some(after) => query.after = Some(after),
                        None => return Ok(objects),
                    }
                }
            }
            Source::Remote(client) => Ok(client.list_all(None, None).await?),
        }
    }

    pub async fn show(&self, key: &ObjectKey) -> anyhow::Result<ObjectRecord> {
        match self {
            Source::Embedded(runtime) => Ok(runtime.get(key).await?),
            Source::Remote(client) => Ok(client.show(key).await?),
        }
    }

    pub async fn call(
        &self,
        key: &ObjectKey,
        method: &str,
        body: Bytes,
    ) -> anyhow::Result<CallResult> {
        match self {
            Source::Embedded(runtime) => {
                let request = CallRequest {
                    method: MethodName::parse(method)?,
                    body,
                    content_type: None,
                };
                let reply = runtime.call(key, request).await?;
                Ok(CallResult {
                    status: reply.status,
                    body: reply.body,
                    duration: reply.duration,
                })
            }
            Source::Remote(client) => {
                let outcome = client.call(key, method, body).await?;
                Ok(CallResult {
                    status: outcome.status,
                    body: outcome.body,
                    duration: outcome.duration,
                })
            }
        }
    }

    pub async fn hibernate(&self, key: &ObjectKey, force: bool) -> anyhow::Result<ObjectRecord> {
        match self {
            Source::Embedded(runtime) => Ok(runtime.hibernate(key, force).await?),
            Source::Remote(client) => Ok(client.hibernate(key, force).await?),
        }
    }

    pub async fn delete(&self, key: &ObjectKey) -> anyhow::Result<()> {
        match self {
            Source::Embedded(runtime) => Ok(runtime.delete(key).await?),
            Source::Remote(client) => Ok(client.delete(key).await?),
        }
    }

    pub async fn set_idle_timeout(
        &self,
        key: &ObjectKey,
        timeout: Option<Duration>,
    ) -> anyhow::Result<ObjectRecord> {
        match self {
            Source::Embedded(runtime) => Ok(runtime.set_idle_timeout(key, timeout).await?),
            Source::Remote(client) => Ok(client
                .set_idle_timeout(key, timeout.map(|t| t.as_millis() as u64))
                .await?),
        }
    }

    pub async fn set_alarm(
        &self,
        key: &ObjectKey,
        request: AlarmRequest,
    ) -> anyhow::Result<ObjectRecord> {
        match self {
            Source::Embedded(runtime) => Ok(runtime.set_alarm(key, request).await?),
            Source::Remote(client) => {
                let mut body = AlarmBody {
                    every_ms: request.every_ms,
                    ..AlarmBody::default()
                };
                match request.time {
                    AlarmTime::In(ms) => body.in_ms = Some(ms),
                    AlarmTime::At(ms) => body.at_ms = Some(ms.max(0) as u64),
                }
                Ok(client.set_alarm(key, &body).await?)
            }
        }
    }

    pub async fn clear_alarm(&self, key: &ObjectKey) -> anyhow::Result<()> {
        match self {
            Source::Embedded(runtime) => Ok(runtime.clear_alarm(key).await?),
            Source::Remote(client) => Ok(client.clear_alarm(key).await?),
        }
    }

    pub async fn logs(&self, key: &ObjectKey, max_bytes: usize) -> anyhow::Result<String> {
        match self {
            Source::Embedded(runtime) => Ok(runtime.logs(key, max_bytes).await?),
            Source::Remote(client) => Ok(client.logs(key, max_bytes).await?),
        }
    }

    /// Returns the names of the configured classes.
    pub async fn classes(&self) -> anyhow::Result<Vec<String>> {
        match self {
            Source::Embedded(runtime) => Ok(runtime
                .config()
                .classes
                .keys()
                .map(|c| c.to_string())
                .collect()),
            Source::Remote(client) => Ok(client
                .classes()
                .await?
                .into_iter()
                .map(|c| c.name)
                .collect()),
        }
    }

    pub async fn wake(&self, key: &ObjectKey) -> anyhow::Result<ObjectRecord> {
        match self {
            Source::Embedded(runtime) => Ok(runtime.wake(key).await?),
            Source::Remote(client) => Ok(client.wake(key).await?),
        }
    }

    /// Feeds the console until `feed` closes: a snapshot, then events; for a remote source,
    /// a new snapshot after every reconnect.
    pub async fn run_feed(self, feed: mpsc::UnboundedSender<Feed>) {
        match self {
            Source::Embedded(runtime) => {
                let (history, mut live) = runtime.subscribe();
                let source = Source::Embedded(runtime);
                if let Ok(objects) = source.list_all().await {
                    let _ = feed.send(Feed::Snapshot(objects));
                }
                for event in history {
                    let _ = feed.send(Feed::Event(Box::new(event)));
                }
                loop {
                    match live.recv().await {
                        Ok(event) => {
                            if feed.send(Feed::Event(Box::new(event))).is_err() {
                                return;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            if let Ok(objects) = source.list_all().await {
                                let _ = feed.send(Feed::Snapshot(objects));
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
            Source::Remote(client) => remote_feed(client, feed).await,
        }
    }
}

async fn remote_feed(client: Client, feed: mpsc::UnboundedSender<Feed>) {
    let mut position: Option<String> = None;
    loop {
        let result: Result<(), ClientError> = async {
            let mut events = std::pin::pin!(client.events(position.as_deref()).await?);
            let objects = client.list_all(None, None).await?;
            if feed.send(Feed::Snapshot(objects)).is_err() {
                return Ok(());
            }
            while let Some(item) = events.next().await {
                match item? {
                    StreamItem::Event {
                        event,
                        position: at,
                    } => {
                        position = Some(at);
                        if feed.send(Feed::Event(event)).is_err() {
                            return Ok(());
                        }
                    }
                    StreamItem::Lagged => {
                        let objects = client.list_all(None, None).await?;
                        let _ = feed.send(Feed::Snapshot(objects));
                    }
                }
            }
            Err(ClientError::Unreachable {
                url: client.base().to_owned(),
                reason: "the event stream ended".into(),
            })
        }
        .await;
        if feed.is_closed() {
            return;
        }
        let reason = result
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "disconnected".into());
        if feed.send(Feed::Disconnected(reason)).is_err() {
            return;
        }
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}
