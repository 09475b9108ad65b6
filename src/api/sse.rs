//! `GET /v1/events`: lifecycle events as server-sent events. A new subscriber first gets the
//! recent history (or only what follows `Last-Event-ID` / `?since=`), then live events. One
//! that falls behind gets a `lagged` event and should list objects again.
//!
//! Event ids are `EPOCH:SEQ`. The epoch changes when the server restarts, and a position from
//! another epoch replays the whole history, because sequence numbers of different runs do
//! not compare. A position that is neither an id nor a bare sequence number is rejected.

use std::convert::Infallible;
use std::time::Duration;

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt, stream};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::error::ApiError;
use super::params::Params;
use super::server::AppState;
use crate::model::Event;

fn to_sse(epoch: u64, event: &Event) -> SseEvent {
    SseEvent::default()
        .id(format!("{epoch}:{}", event.seq))
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
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let epoch = state.runtime.event_epoch();
    let params = Params::parse(query.as_deref(), &["since"])?;
    let position = params.text("since").map(str::to_owned).or_else(|| {
        headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let since = match position.as_deref() {
        Some(position) => sequence_after(position, epoch)?,
        None => None,
    };
    let limit = state.runtime.config().limits.max_event_subscribers;
    let permit = Arc::clone(&state.subscribers).try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_subscribers",
            format!("{limit} event streams are open, the limit (limits.max_event_subscribers); try again later"),
        )
    })?;
    let (history, live) = state.runtime.subscribe();
    let history: Vec<_> = history
        .into_iter()
        .filter(|e| since.is_none_or(|s| e.seq > s))
        .collect();
    let newest = history.last().map(|e| e.seq).or(since).unwrap_or(0);
    let history = stream::iter(history.into_iter().map(move |e| Ok(to_sse(epoch, &e))));
    let live = BroadcastStream::new(live).filter_map(move |item| async move {
        match item {
            Ok(event) if event.seq > newest => Some(Ok(to_sse(epoch, &event))),
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
    // The permit lives as long as the stream, so a closed stream frees its place.
    let stream = stream.map(move |item| {
        let _held = &permit;
        item
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Returns the sequence number to resume after, or `None` when `position` belongs to another
/// epoch. A bare number is taken as this epoch's.
fn sequence_after(position: &str, epoch: u64) -> Result<Option<u64>, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_since",
            format!(
                "event position {position:?} is not an event id (EPOCH:SEQ, as in the id field of \
                 an event) or a sequence number"
            ),
        )
    };
    let (from, seq) = match position.split_once(':') {
        Some((from, seq)) => (Some(from.parse::<u64>().map_err(|_| invalid())?), seq),
        None => (None, position),
    };
    let seq = seq.parse::<u64>().map_err(|_| invalid())?;
    Ok(match from {
        Some(from) if from != epoch => None,
        _ => Some(seq),
    })
}

#[cfg(test)]
mod tests {
    use super::sequence_after;

    #[test]
    fn positions_from_other_runs_replay_everything() {
        assert_eq!(sequence_after("7:41", 7).unwrap(), Some(41));
        assert_eq!(sequence_after("6:41", 7).unwrap(), None);
        assert_eq!(sequence_after("41", 7).unwrap(), Some(41));
    }

    #[test]
    fn invalid_positions_are_rejected() {
        for position in ["junk", "", "7:", ":41", "7:x", "x:41", "-1"] {
            assert!(sequence_after(position, 7).is_err(), "{position:?}");
        }
    }
}
