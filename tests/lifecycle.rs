//! The object lifecycle through the runtime's Rust API: one activation per wake, turn-based
//! calls, idle deadlines, dead sandboxes and restarts, with real handler processes and a real
//! SQLite file.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{alive, eventually, runtime, test_config};
use serde_json::{Value, json};
use torpor::model::{EventKind, MethodName, ObjectKey, Status};
use torpor::runtime::{CallRequest, Runtime, RuntimeError};

fn key(class: &str, id: &str) -> ObjectKey {
    ObjectKey::parse(class, id).unwrap()
}

async fn call(
    runtime: &Runtime,
    key: &ObjectKey,
    method: &str,
    body: &str,
) -> Result<Value, RuntimeError> {
    let request = CallRequest {
        method: MethodName::parse(method).unwrap(),
        body: Bytes::from(body.to_owned()),
        content_type: None,
    };
    let reply = runtime.call(key, request).await?;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    Ok(serde_json::from_slice(&reply.body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_start_one_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(dir.path(), &test_config("")).await;
    let k = key("counter", "crowd");
    call(&runtime, &k, "increment", "").await.unwrap();
    runtime.hibernate(&k, false).await.unwrap();
    let (_, mut events) = runtime.subscribe();

    let calls = (0..50).map(|_| {
        let runtime = runtime.clone();
        let k = k.clone();
        tokio::spawn(async move { call(&runtime, &k, "increment", "").await })
    });
    let results = futures::future::join_all(calls).await;
    let mut counts: Vec<i64> = results
        .into_iter()
        .map(|r| r.unwrap().unwrap()["count"].as_i64().unwrap())
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        (2..=51).collect::<Vec<_>>(),
        "every call applied exactly once, in turn"
    );

    let mut wakes = 0;
    while let Ok(event) = events.try_recv() {
        if matches!(event.kind, EventKind::Woke { .. }) {
            wakes += 1;
        }
    }
    assert_eq!(wakes, 1, "one wake for fifty callers");
    let record = runtime.get(&k).await.unwrap();
    assert_eq!(record.generation, 2);
    assert_eq!(record.storage, Some(json!({ "count": 51 })));
    runtime.shutdown().await;
}

#[tokio::test]
async fn hibernate_then_call_restores_storage() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(dir.path(), &test_config("")).await;
    let k = key("kv", "shelf");
    call(
        &runtime,
        &k,
        "put",
        r#"{"key":"book","value":{"pages":320}}"#,
    )
    .await
    .unwrap();
    let record = runtime.hibernate(&k, false).await.unwrap();
    assert_eq!(record.status, Status::Hibernated);
    assert!(record.sandbox.is_none());
    let got = call(&runtime, &k, "get", r#"{"key":"book"}"#)
        .await
        .unwrap();
    assert_eq!(got, json!({ "key": "book", "value": { "pages": 320 } }));
    runtime.shutdown().await;
}

#[tokio::test]
async fn idle_object_hibernates_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(
        dir.path(),
        &test_config("[classes.quick]\nbuiltin = \"counter\"\nidle_timeout = \"400ms\"\n"),
    )
    .await;
    let k = key("quick", "q");
    call(&runtime, &k, "increment", "").await.unwrap();
    let call_ended = Instant::now();
    let record = runtime.get(&k).await.unwrap();
    let hibernate_at = record
        .hibernate_at
        .expect("an active object has a deadline");
    let left = (hibernate_at - chrono::Utc::now()).num_milliseconds();
    assert!((300..=400).contains(&left), "deadline {left} ms away");

    let (_, mut events) = runtime.subscribe();
    let hibernated_at = loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap();
        if matches!(event.kind, EventKind::Hibernated { .. }) {
            break Instant::now();
        }
    };
    let idle = hibernated_at - call_ended;
    assert!(
        idle >= Duration::from_millis(400),
        "hibernated after only {idle:?} idle"
    );
    assert_eq!(runtime.get(&k).await.unwrap().status, Status::Hibernated);
    runtime.shutdown().await;
}

#[tokio::test]
async fn idle_clock_restarts_after_each_call() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(
        dir.path(),
        &test_config("[classes.quick]\nbuiltin = \"counter\"\nidle_timeout = \"600ms\"\n"),
    )
    .await;
    let k = key("quick", "busy");
    for _ in 0..6 {
        call(&runtime, &k, "increment", "").await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let record = runtime.get(&k).await.unwrap();
    assert_eq!(
        record.status,
        Status::Active,
        "calls 200 ms apart keep a 600 ms idle timeout from firing"
    );
    assert_eq!(record.generation, 1);
    runtime.shutdown().await;
}

#[tokio::test]
async fn dead_sandbox_is_replaced_on_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(dir.path(), &test_config("")).await;
    let k = key("counter", "fragile");
    call(&runtime, &k, "increment", "{\"by\": 7}")
        .await
        .unwrap();
    let pid = runtime.get(&k).await.unwrap().sandbox.unwrap().pid.unwrap();
    // SAFETY: kill(2) on the sandbox this test's runtime started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert!(eventually(Duration::from_secs(5), || !alive(pid)).await);

    let got = call(&runtime, &k, "increment", "").await.unwrap();
    assert_eq!(
        got,
        json!({ "count": 8 }),
        "woke again from the last checkpoint"
    );
    let record = runtime.get(&k).await.unwrap();
    assert_eq!(record.status, Status::Active);
    assert_ne!(record.sandbox.unwrap().pid.unwrap(), pid);
    runtime.shutdown().await;
}

#[tokio::test]
async fn runtime_restart_restores_storage() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("counter", "durable");
    {
        let runtime = runtime(dir.path(), &test_config("")).await;
        call(&runtime, &k, "increment", "{\"by\": 5}")
            .await
            .unwrap();
        runtime.shutdown().await;
    }
    let runtime = runtime(dir.path(), &test_config("")).await;
    assert_eq!(runtime.get(&k).await.unwrap().status, Status::Hibernated);
    assert_eq!(
        call(&runtime, &k, "increment", "").await.unwrap(),
        json!({ "count": 6 })
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn handler_that_cannot_start_fails_with_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(
        "[classes.broken]\ncommand = [\"/nonexistent/handler\"]\n[classes.crashing]\ncommand = [\"sh\", \"-c\", \"echo boom >&2; exit 3\"]\n",
    );
    let runtime = runtime(dir.path(), &config).await;

    let err = call(&runtime, &key("broken", "b"), "go", "")
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::WakeFailed { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/handler"), "{err}");

    let err = call(&runtime, &key("crashing", "c"), "go", "")
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("exit status 3"), "{message}");
    assert!(
        message.contains("boom"),
        "the log tail explains the failure: {message}"
    );
    let record = runtime.get(&key("crashing", "c")).await.unwrap();
    assert_eq!(record.status, Status::Failed);
    assert!(record.last_error.unwrap().contains("exit status 3"));

    let err = call(
        &runtime,
        &key("counter", "x"),
        "increment",
        &"x".repeat(2 * 1024 * 1024),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RuntimeError::BodyTooLarge { .. }), "{err}");
    runtime.shutdown().await;
}

#[tokio::test]
async fn unknown_class_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(dir.path(), &test_config("")).await;
    let err = call(&runtime, &key("ghost", "g"), "boo", "")
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 404);
    assert!(err.to_string().contains("\"ghost\""), "{err}");
    assert!(err.to_string().contains("counter, kv"), "{err}");
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hibernation_has_one_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(dir.path(), &test_config("")).await;
    let k = key("counter", "stamped");
    call(&runtime, &k, "increment", "").await.unwrap();
    let (_, mut events) = runtime.subscribe();

    let first = runtime.hibernate(&k, false).await.unwrap();
    let again = runtime.hibernate(&k, true).await.unwrap();
    let stored = runtime.get(&k).await.unwrap();
    let at = first.last_hibernate_at.expect("hibernation is stamped");
    assert_eq!(again.last_hibernate_at, Some(at));
    assert_eq!(stored.last_hibernate_at, Some(at));

    let event = loop {
        let event = events.recv().await.unwrap();
        if matches!(event.kind, EventKind::Hibernated { .. }) {
            break event;
        }
    };
    assert_eq!(event.at, at, "the event and the record disagree");
    runtime.shutdown().await;
}
