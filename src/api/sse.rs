//! `GET /v1/events`: lifecycle events as server-sent events. A new subscriber first gets the
//! recent history (or only what follows `Last-Event-ID` / `?since=`), then live events. One
//! that falls behind gets a `lagged` event and should list objects again.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt, stream};
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::server::AppState;
use crate::model::Event;

#[derive(Debug, Deserialize)]
pub struct EventParams {
    since: Option<u64>,
}

fn to_sse(event: &Event) -> SseEvent {
    SseEvent::default()
        .id(event.seq.to_string())
        .event(event.kind.name())
        .json_data(event)
        .unwrap_or_else(|_| {
            SseEvent::default()
                .event("error")
                .data("cannot encode event")
        })
}

pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<EventParams>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let since = params.since.or_else(|| {
        headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    });
    let (history, live) = state.runtime.subscribe();
    let history: Vec<_> = history
        .into_iter()
        .filter(|e| since.is_none_or(|s| e.seq > s))
        .collect();
    let newest = history.last().map(|e| e.seq).or(since).unwrap_or(0);
    let history = stream::iter(history.into_iter().map(|e| Ok(to_sse(&e))));
    let live = BroadcastStream::new(live).filter_map(move |item| async move {
        match item {
            Ok(event) if event.seq > newest => Some(Ok(to_sse(&event))),
            Ok(_) => None,
            Err(BroadcastStreamRecvError::Lagged(missed)) => Some(Ok(SseEvent::default()
                .event("lagged")
                .data(format!("{{\"missed\":{missed}}}")))),
        }
    });
    let stopping = state.stopping.clone();
    let stream = history
        .chain(live)
        .take_until(async move { stopping.cancelled().await });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
