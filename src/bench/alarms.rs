//! Alarm lateness: alarms on `session` objects, spread over one second, and how long after
//! its scheduled time each delivery was sent, by the server's clock (the `late_ms` of each
//! `alarm_delivered` event). On hibernated objects each delivery waits for a cold wake; on
//! active ones only for the scheduler and the object's turn.

use std::time::{Duration, Instant};

use futures::StreamExt;

use super::server::BenchServer;
use crate::api::client::StreamItem;
use crate::api::types::AlarmBody;
use crate::model::{EventKind, ObjectKey, now_ms};

/// Requests sent at once while preparing the objects.
const PREPARING: usize = 32;

fn key(prefix: &str, n: usize) -> anyhow::Result<ObjectKey> {
    Ok(ObjectKey::parse("session", &format!("{prefix}-{n}"))?)
}

/// Opens `objects` sessions, hibernates them unless `active`, sets their alarms a little
/// ahead and spread over one second, and returns each delivery's lateness.
pub async fn alarm_lateness(
    server: &BenchServer,
    objects: usize,
    active: bool,
) -> anyhow::Result<Vec<Duration>> {
    let client = &server.client;
    let prefix = if active { "active" } else { "expiring" };
    let keys = (0..objects)
        .map(|n| key(prefix, n))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opened = futures::stream::iter(keys.iter().map(|k| {
        let body = bytes::Bytes::from_static(br#"{"ttl_ms": 600000}"#);
        client.call(k, "open", body)
    }))
    .buffer_unordered(PREPARING)
    .collect::<Vec<_>>()
    .await;
    opened.into_iter().collect::<Result<Vec<_>, _>>()?;
    if !active {
        let hibernated = futures::stream::iter(keys.iter().map(|k| client.hibernate(k, false)))
            .buffer_unordered(PREPARING)
            .collect::<Vec<_>>()
            .await;
        hibernated.into_iter().collect::<Result<Vec<_>, _>>()?;
    }

    let mut events = std::pin::pin!(client.events(None).await?);
    // Far enough ahead that every alarm is set before the first falls due.
    let first = now_ms() + 2000 + objects as i64 * 5;
    let set = futures::stream::iter(keys.iter().enumerate().map(|(n, k)| {
        let body = AlarmBody {
            at_ms: Some((first + (n * 1000 / objects.max(1)) as i64) as u64),
            ..AlarmBody::default()
        };
        async move { client.set_alarm(k, &body).await }
    }))
    .buffer_unordered(PREPARING)
    .collect::<Vec<_>>()
    .await;
    set.into_iter().collect::<Result<Vec<_>, _>>()?;

    let mut lateness = Vec::with_capacity(objects);
    let deadline = Instant::now() + Duration::from_secs(60);
    while lateness.len() < objects && Instant::now() < deadline {
        let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(10), events.next()).await
        else {
            break;
        };
        let StreamItem::Event { event, .. } = item? else {
            continue;
        };
        if event.class != "session" || !event.id.starts_with(prefix) {
            continue;
        }
        match event.kind {
            EventKind::AlarmDelivered { late_ms, .. } => {
                lateness.push(Duration::from_secs_f64(late_ms.max(0.0) / 1000.0));
            }
            EventKind::AlarmFailed { error, .. } => {
                anyhow::bail!("an alarm delivery failed: {error}");
            }
            _ => {}
        }
    }
    // The deliveries left every object active; stopped again so the measurements after
    // this one start without these sandboxes.
    let stopped = futures::stream::iter(keys.iter().map(|k| client.hibernate(k, false)))
        .buffer_unordered(PREPARING)
        .collect::<Vec<_>>()
        .await;
    stopped.into_iter().collect::<Result<Vec<_>, _>>()?;
    if lateness.len() < objects {
        anyhow::bail!(
            "{} of {objects} alarms were delivered within a minute",
            lateness.len()
        );
    }
    Ok(lateness)
}
