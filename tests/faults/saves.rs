//! Saving storage when the handler is slow or broken: a call during a slow save, handlers
//! that never respond, and a wake whose storage cannot be handed back.

use std::time::{Duration, Instant};

use libtest_mimic::Trial;
use serde_json::json;
use torpor::model::{EventKind, Status};
use torpor::runtime::RuntimeError;

use crate::common::alive;
use crate::named_trials;
use crate::support::{call, count_events, faulty, key, next_event, ok, start};

pub fn trials() -> Vec<Trial> {
    named_trials![
        call_waits_for_slow_save,
        hung_call_times_out,
        timed_out_call_stops_sandbox,
        hung_save_keeps_sandbox_and_retries,
        wake_push_failure_keeps_saved_storage,
    ]
}

async fn call_waits_for_slow_save() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(
        dir.path(),
        &faulty("f", &[], "storage_read_timeout = \"10s\""),
    )
    .await;
    let x = key("f", "x");
    ok(&runtime, &x, "increment", "").await;
    ok(&runtime, &x, "increment", "").await;
    // The faults call's own checkpoint takes the one fast read; the hibernation's read is slow.
    ok(
        &runtime,
        &x,
        "faults",
        r#"{"read_delay_ms": 3000, "read_skip": 1}"#,
    )
    .await;
    let (_, mut events) = runtime.subscribe();

    let hibernation = tokio::spawn({
        let runtime = runtime.clone();
        let x = x.clone();
        async move { runtime.hibernate(&x, false).await }
    });
    next_event(&mut events, &x, "hibernating", Duration::from_secs(5)).await;
    let started = Instant::now();
    let counted = ok(&runtime, &x, "increment", "").await;
    let waited = started.elapsed();

    assert_eq!(
        counted,
        json!({ "count": 3 }),
        "no increment lost across the slow save"
    );
    assert!(
        waited >= Duration::from_secs(2),
        "the call waited for the save ({waited:?})"
    );
    assert_eq!(
        hibernation.await.unwrap().unwrap().status,
        Status::Hibernated
    );
    next_event(&mut events, &x, "woke", Duration::from_secs(5)).await;
    assert_eq!(runtime.get(&x).await.unwrap().generation, 2);
    runtime.shutdown().await;
}

async fn hung_call_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), &faulty("f", &[], "call_timeout = \"500ms\"")).await;
    let stuck = key("f", "stuck");
    let other = key("f", "other");
    ok(&runtime, &stuck, "increment", "").await;
    ok(&runtime, &other, "increment", "").await;

    let hung = tokio::spawn({
        let runtime = runtime.clone();
        let stuck = stuck.clone();
        async move { call(&runtime, &stuck, "hang", "").await }
    });
    let started = Instant::now();
    assert_eq!(
        ok(&runtime, &other, "increment", "").await,
        json!({ "count": 2 })
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "another object waited for the hung call"
    );

    let err = hung.await.unwrap().expect_err("a hung call must time out");
    assert!(matches!(err, RuntimeError::CallTimeout { .. }), "{err}");
    assert_eq!(err.http_status(), 504);
    assert!(err.to_string().contains("timed out after 500ms"), "{err}");
    assert_eq!(
        ok(&runtime, &stuck, "increment", "").await,
        json!({ "count": 2 }),
        "the object still serves"
    );
    runtime.shutdown().await;
}

async fn timed_out_call_stops_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), &faulty("f", &[], "call_timeout = \"500ms\"")).await;
    let x = key("f", "x");
    ok(&runtime, &x, "set", "{\"value\": \"saved\"}").await;
    let pid = runtime.get(&x).await.unwrap().sandbox.unwrap().pid.unwrap();

    let err = call(
        &runtime,
        &x,
        "slow_set",
        "{\"ms\": 1500, \"value\": \"late\"}",
    )
    .await
    .expect_err("the call outlives its timeout");
    assert!(matches!(err, RuntimeError::CallTimeout { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("its sandbox was stopped and the call's changes discarded"),
        "{err}"
    );
    assert!(!alive(pid), "the timed-out call's sandbox was stopped");

    // The next call starts a new sandbox from the checkpoint; the timed-out call's write
    // lands nowhere, neither now nor after it would have finished.
    assert_eq!(ok(&runtime, &x, "get", "").await["value"], "saved");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(ok(&runtime, &x, "get", "").await["value"], "saved");
    runtime.hibernate(&x, false).await.unwrap();
    assert_eq!(ok(&runtime, &x, "get", "").await["value"], "saved");
    runtime.shutdown().await;
}

async fn hung_save_keeps_sandbox_and_retries() {
    let dir = tempfile::tempdir().unwrap();
    let settings = "storage_read_timeout = \"300ms\"\nhibernate_retry = \"200ms\"\nhibernate_retry_max = \"400ms\"";
    let runtime = start(dir.path(), &faulty("f", &[], settings)).await;
    let x = key("f", "x");
    let other = key("f", "other");
    ok(&runtime, &x, "increment", "{\"by\": 5}").await;
    ok(
        &runtime,
        &x,
        "faults",
        r#"{"read_hang": true, "read_skip": 1}"#,
    )
    .await;
    let pid = runtime.get(&x).await.unwrap().sandbox.unwrap().pid.unwrap();
    let (_, mut events) = runtime.subscribe();

    let err = runtime
        .hibernate(&x, false)
        .await
        .expect_err("a hung snapshot cannot hibernate");
    assert!(matches!(err, RuntimeError::HibernateFailed { .. }), "{err}");
    assert!(err.to_string().contains("timed out after 300ms"), "{err}");
    let record = runtime.get(&x).await.unwrap();
    assert_eq!(record.status, Status::Failed);
    assert!(
        record
            .last_error
            .as_deref()
            .unwrap()
            .contains("will be retried"),
        "{record:?}"
    );
    assert!(alive(pid), "the sandbox keeps running with unsaved state");

    next_event(&mut events, &x, "hibernate_failed", Duration::from_secs(5)).await;
    next_event(&mut events, &x, "hibernate_failed", Duration::from_secs(5)).await;
    let started = Instant::now();
    ok(&runtime, &other, "increment", "").await;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "other objects wait for nothing"
    );

    // The faults call clears the fault before its own checkpoint, which then succeeds.
    ok(&runtime, &x, "faults", "{}").await;
    let record = runtime.get(&x).await.unwrap();
    assert_eq!(
        record.status,
        Status::Active,
        "a good checkpoint clears the failure"
    );
    assert!(record.last_error.is_none());
    runtime.hibernate(&x, false).await.unwrap();
    assert!(!alive(pid));
    assert_eq!(runtime.get(&x).await.unwrap().storage.unwrap()["count"], 5);
    assert!(
        count_events(&mut events, &x, |k| matches!(
            k,
            EventKind::Hibernated { .. }
        )) >= 1
    );
    runtime.shutdown().await;
}

async fn wake_push_failure_keeps_saved_storage() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(
        dir.path(),
        &faulty("f", &[("FAULT_STORAGE_WRITE_FAIL", "1")], ""),
    )
    .await;
    let x = key("f", "x");
    ok(&runtime, &x, "increment", "{\"by\": 9}").await;
    runtime.hibernate(&x, false).await.unwrap();

    let err = call(&runtime, &x, "increment", "")
        .await
        .expect_err("a wake that cannot restore storage fails");
    assert!(matches!(err, RuntimeError::WakeFailed { .. }), "{err}");
    assert!(
        err.to_string().contains("cannot restore its saved storage"),
        "{err}"
    );
    let record = runtime.get(&x).await.unwrap();
    assert_eq!(record.status, Status::Failed);
    assert!(
        record.sandbox.is_none(),
        "the sandbox with empty storage was stopped"
    );
    assert_eq!(
        record.storage.unwrap()["count"],
        9,
        "the saved storage is untouched"
    );
    runtime.shutdown().await;
}
