//! The measurements, one function each. Every figure is taken in this process against a
//! server child process on the same machine.

use std::time::{Duration, Instant};

use futures::StreamExt;

use super::load::{self, Measured, Target, percentile};
use super::server::BenchServer;
use crate::api::client::StreamItem;
use crate::model::{EventKind, ObjectKey};

fn key(class: &str, id: &str) -> ObjectKey {
    #[allow(clippy::expect_used)]
    ObjectKey::parse(class, id).expect("benchmark names are valid")
}

fn call_path(key: &ObjectKey, method: &str) -> String {
    format!("/v1/objects/{}/{}/call/{method}", key.class, key.id)
}

/// Latency of one connection calling one object, through torpor and straight to its handler.
pub async fn warm_latency(
    server: &BenchServer,
    method: &str,
    count: usize,
) -> anyhow::Result<(Measured, Measured)> {
    let object = key("counter", &format!("warm-{method}"));
    let handler = server.handler_address(&object).await?;
    let through = Target {
        address: server.address,
        path: call_path(&object, method),
    };
    let direct = Target {
        address: handler,
        path: format!("/{method}"),
    };
    // Warm both paths' connections and caches before measuring.
    load::sequential(&through, count / 10 + 1, b"").await?;
    load::sequential(&direct, count / 10 + 1, b"").await?;
    Ok((
        load::sequential(&through, count, b"").await?,
        load::sequential(&direct, count, b"").await?,
    ))
}

/// Throughput of `connections` connections over `objects` objects, through torpor and straight
/// to their handlers.
pub async fn throughput(
    server: &BenchServer,
    objects: usize,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(Measured, Measured)> {
    let mut through = Vec::new();
    let mut direct = Vec::new();
    for n in 0..objects {
        let object = key("counter", &format!("load-{n}"));
        direct.push(Target {
            address: server.handler_address(&object).await?,
            path: "/increment".into(),
        });
        through.push(Target {
            address: server.address,
            path: call_path(&object, "increment"),
        });
    }
    let through = load::run(&through, connections, duration, b"").await;
    let direct = load::run(&direct, connections, duration, b"").await;
    Ok((through, direct))
}

/// Time from calling a hibernated object to its first response, `count` times.
pub async fn wake_latency(
    server: &BenchServer,
    class: &str,
    count: usize,
) -> anyhow::Result<Vec<Duration>> {
    let object = key(class, "waking");
    let target = Target {
        address: server.address,
        path: call_path(&object, "get"),
    };
    let mut samples = Vec::with_capacity(count);
    server.client.wake(&object).await?;
    for _ in 0..count {
        server.client.hibernate(&object, false).await?;
        let measured = load::sequential(&target, 1, b"").await?;
        samples.extend(measured.latencies);
    }
    Ok(samples)
}

/// Time from calling an object in the warm tier (hibernated, sandbox frozen) to its response.
pub async fn warm_wake_latency(
    server: &BenchServer,
    count: usize,
) -> anyhow::Result<Vec<Duration>> {
    let object = key("warm", "thawing");
    let target = Target {
        address: server.address,
        path: call_path(&object, "get"),
    };
    let mut samples = Vec::with_capacity(count);
    server
        .client
        .call(&object, "increment", bytes::Bytes::new())
        .await?;
    for _ in 0..count {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !server.client.show(&object).await?.warm {
            if Instant::now() > deadline {
                anyhow::bail!("{object} did not enter the warm tier");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        samples.extend(load::sequential(&target, 1, b"").await?.latencies);
    }
    Ok(samples)
}

/// Time from the first call to an object that never existed to its response.
pub async fn first_call_latency(
    server: &BenchServer,
    class: &str,
    count: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(count);
    for n in 0..count {
        let target = Target {
            address: server.address,
            path: call_path(&key(class, &format!("new-{n}")), "increment"),
        };
        samples.extend(load::sequential(&target, 1, b"").await?.latencies);
    }
    Ok(samples)
}

/// How late idle objects hibernate: the `hibernating` event's time minus the end of the last
/// call plus the idle timeout (300 ms for the `lazy` class), both by the server's clock.
pub async fn hibernation_lateness(
    server: &BenchServer,
    objects: usize,
) -> anyhow::Result<Vec<Duration>> {
    let idle = chrono::Duration::milliseconds(300);
    let mut events = std::pin::pin!(server.client.events(None).await?);
    for n in 0..objects {
        let object = key("lazy", &format!("idle-{n}"));
        server
            .client
            .call(&object, "increment", bytes::Bytes::new())
            .await?;
        // Spread the deadlines so they do not all fall at once.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let mut calls = std::collections::HashMap::new();
    let mut lateness = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while lateness.len() < objects && Instant::now() < deadline {
        let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(5), events.next()).await
        else {
            break;
        };
        let StreamItem::Event { event, .. } = item? else {
            continue;
        };
        if event.class != "lazy" {
            continue;
        }
        match event.kind {
            EventKind::Call { .. } => {
                calls.insert(event.id.clone(), event.at);
            }
            EventKind::Hibernating => {
                if let Some(ended) = calls.remove(&event.id) {
                    let late = event.at - (ended + idle);
                    lateness.push(late.to_std().unwrap_or(Duration::ZERO));
                }
            }
            _ => {}
        }
    }
    Ok(lateness)
}

/// Creates `objects` objects, hibernates them all, then calls them all at once; returns the
/// time until every call answered, and how many failed.
pub async fn stampede(server: &BenchServer, objects: usize) -> anyhow::Result<(Duration, usize)> {
    let keys: Vec<ObjectKey> = (0..objects)
        .map(|n| key("counter", &format!("herd-{n}")))
        .collect();
    let client = &server.client;
    futures::stream::iter(
        keys.iter()
            .map(|k| client.call(k, "increment", bytes::Bytes::new())),
    )
    .buffer_unordered(32)
    .collect::<Vec<_>>()
    .await;
    futures::stream::iter(keys.iter().map(|k| client.hibernate(k, false)))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let started = Instant::now();
    let calls = keys.iter().map(|k| {
        let target = Target {
            address: server.address,
            path: call_path(k, "get"),
        };
        tokio::spawn(async move { load::sequential(&target, 1, b"").await })
    });
    let results = futures::future::join_all(calls).await;
    let elapsed = started.elapsed();
    let failed = results
        .iter()
        .filter(|r| !matches!(r, Ok(Ok(m)) if m.errors == 0 && m.latencies.len() == 1))
        .count();
    Ok((elapsed, failed))
}

/// Time to list a page of 100, at the start and in the middle of a large store.
pub async fn listing(
    server: &BenchServer,
    objects: usize,
    repeats: usize,
) -> anyhow::Result<(f64, f64)> {
    let middle = format!("counter/scale-{:06}", objects / 2);
    let mut first = Vec::new();
    let mut inner = Vec::new();
    for _ in 0..repeats {
        let started = Instant::now();
        server.client.list(None, None, 100, None).await?;
        first.push(started.elapsed());
        let started = Instant::now();
        server
            .client
            .list(Some("counter"), Some("hibernated"), 100, Some(&middle))
            .await?;
        inner.push(started.elapsed());
    }
    Ok((percentile(&first, 50.0), percentile(&inner, 50.0)))
}
