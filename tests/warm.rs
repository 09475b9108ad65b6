//! The warm tier: an idle object's sandbox frozen after its storage is saved, thawed by the
//! next call, and stopped once the class's `warm_for` runs out, with real processes.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{alive, eventually, runtime, test_config};
use serde_json::{Value, json};
use torpor::model::{EventKind, MethodName, ObjectKey, Status};
use torpor::runtime::Runtime;

fn key(class: &str, id: &str) -> ObjectKey {
    ObjectKey::parse(class, id).unwrap()
}

async fn call(runtime: &Runtime, key: &ObjectKey, method: &str) -> Value {
    let request = torpor::runtime::CallRequest {
        method: MethodName::parse(method).unwrap(),
        body: Bytes::new(),
        content_type: None,
    };
    let reply = runtime.call(key, request).await.unwrap();
    serde_json::from_slice(&reply.body).unwrap()
}

/// Waits until the object has hibernated into the warm tier.
async fn until_warm(runtime: &Runtime, key: &ObjectKey) {
    for _ in 0..200 {
        if runtime.get(key).await.unwrap().warm {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{key} never entered the warm tier");
}

/// The state letter of a process from /proc (R, S, T for stopped, …).
fn process_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')')
        .next()
        .unwrap_or("")
        .trim_start()
        .chars()
        .next()
        .unwrap_or('?')
}

#[tokio::test]
async fn idle_object_freezes_then_thaws_on_call() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(
        "[classes.quick]\nbuiltin = \"counter\"\nidle_timeout = \"200ms\"\nwarm_for = \"1m\"\n",
    );
    let runtime = runtime(dir.path(), &config).await;
    let k = key("quick", "w");
    assert_eq!(call(&runtime, &k, "increment").await, json!({ "count": 1 }));
    let pid = runtime.get(&k).await.unwrap().sandbox.unwrap().pid.unwrap();
    let (_, mut events) = runtime.subscribe();

    until_warm(&runtime, &k).await;
    let record = runtime.get(&k).await.unwrap();
    assert_eq!(record.status, Status::Hibernated);
    assert_eq!(
        record.storage,
        Some(json!({ "count": 1 })),
        "storage is saved before freezing"
    );
    assert!(record.sandbox.is_none());
    assert!(alive(pid), "the frozen sandbox still exists");
    assert_eq!(
        process_state(pid),
        'T',
        "the sandbox is stopped by a signal, not running"
    );

    assert_eq!(call(&runtime, &k, "increment").await, json!({ "count": 2 }));
    let record = runtime.get(&k).await.unwrap();
    assert_eq!(record.status, Status::Active);
    assert!(!record.warm);
    assert_eq!(
        record.sandbox.unwrap().pid,
        Some(pid),
        "the same process serves again"
    );
    assert_eq!(record.generation, 1, "a thaw continues the same activation");
    let mut thawed = false;
    while let Ok(event) = events.try_recv() {
        thawed |= matches!(event.kind, EventKind::Woke { warm: true, .. });
    }
    assert!(thawed, "the wake is reported as one from the warm tier");
    runtime.shutdown().await;
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)).await,
        "shutdown stops warm sandboxes"
    );
}

#[tokio::test]
async fn warm_sandbox_stops_when_warm_for_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(
        "[classes.quick]\nbuiltin = \"counter\"\nidle_timeout = \"100ms\"\nwarm_for = \"300ms\"\n",
    );
    let runtime = runtime(dir.path(), &config).await;
    let k = key("quick", "cold");
    call(&runtime, &k, "increment").await;
    let pid = runtime.get(&k).await.unwrap().sandbox.unwrap().pid.unwrap();
    until_warm(&runtime, &k).await;
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)).await,
        "the warm sandbox outlived warm_for"
    );
    assert!(!runtime.get(&k).await.unwrap().warm);
    assert_eq!(
        call(&runtime, &k, "get").await,
        json!({ "count": 1 }),
        "a cold wake restores the storage"
    );
    assert_eq!(runtime.get(&k).await.unwrap().generation, 2);
    runtime.shutdown().await;
}

#[tokio::test]
async fn warm_tier_is_bounded_and_optional() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(
        "[limits]\nmax_warm_objects = 1\n[classes.quick]\nbuiltin = \"counter\"\nidle_timeout = \"100ms\"\nwarm_for = \"1m\"\n\
         [classes.never]\nbuiltin = \"counter\"\nidle_timeout = \"100ms\"\nwarm_for = \"0s\"\n",
    );
    let runtime = runtime(dir.path(), &config).await;
    let first = key("quick", "a");
    let second = key("quick", "b");
    let cold = key("never", "c");
    for k in [&first, &second, &cold] {
        call(&runtime, k, "increment").await;
    }
    let pids: Vec<u32> =
        futures::future::join_all([&first, &second, &cold].map(|k| runtime.get(k)))
            .await
            .into_iter()
            .map(|r| r.unwrap().sandbox.unwrap().pid.unwrap())
            .collect();
    let hibernated = eventually(Duration::from_secs(5), || {
        pids.iter()
            .filter(|pid| !alive(**pid) || process_state(**pid) == 'T')
            .count()
            == 3
    })
    .await;
    assert!(hibernated, "all three hibernated");
    let frozen = pids.iter().filter(|pid| alive(**pid)).count();
    assert_eq!(
        frozen, 1,
        "one warm place: one sandbox frozen, the others stopped"
    );
    assert!(!alive(pids[2]), "warm_for = 0 stops the sandbox at once");
    runtime.shutdown().await;
}
