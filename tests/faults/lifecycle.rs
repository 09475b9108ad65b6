//! Activations, deadlines and dead sandboxes: stale instances, sandboxes killed behind the
//! runtime's back, stampedes, long calls, the idle clock, handlers that never become healthy
//! and restarts after SIGKILL.

use std::time::{Duration, Instant};

use libtest_mimic::Trial;
use serde_json::json;
use torpor::model::{EventKind, Status};
use torpor::runtime::RuntimeError;

use crate::common::{Server, alive, eventually, test_config};
use crate::named_trials;
use crate::support::{
    call, count_events, faulty, key, next_event, ok, processes_running, running_sandboxes, start,
    started_sandboxes,
};

pub fn trials() -> Vec<Trial> {
    named_trials![
        stale_instance_never_overwrites,
        killed_sandbox_is_replaced,
        crash_mid_call_falls_back_to_checkpoint,
        stampede_wakes_once,
        long_call_outlives_idle_timeout,
        idle_clock_starts_at_last_call,
        never_healthy_fails_within_wake_timeout,
        restart_after_kill_hibernates_active,
        late_caller_shares_failing_wake,
        active_objects_are_bounded,
        missing_objects_leave_nothing_in_memory,
    ]
}

async fn stale_instance_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let classes = faulty("slow", &[("FAULT_IGNORE_SIGTERM", "1")], "");
    let runtime = start(dir.path(), &classes).await;
    let x = key("slow", "x");
    ok(&runtime, &x, "set", r#"{"value": "first"}"#).await;
    let old_pid = runtime.get(&x).await.unwrap().sandbox.unwrap().pid.unwrap();

    let long = tokio::spawn({
        let runtime = runtime.clone();
        let x = x.clone();
        async move {
            call(
                &runtime,
                &x,
                "slow_set",
                r#"{"ms": 1500, "value": "stale"}"#,
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let record = runtime.hibernate(&x, true).await.unwrap();
    assert_eq!(record.status, Status::Hibernated);
    assert_eq!(
        record.storage.as_ref().unwrap()["value"],
        "first",
        "the aborted call's write is not saved"
    );
    assert!(
        !alive(old_pid),
        "the old instance is stopped before hibernation returns"
    );
    ok(&runtime, &x, "set", r#"{"value": "fresh"}"#).await;

    let aborted = long.await.unwrap();
    let err =
        aborted.expect_err("the call cut short by a forced hibernation must not be acknowledged");
    assert!(matches!(err, RuntimeError::Aborted { .. }), "{err}");
    tokio::time::sleep(Duration::from_millis(1600)).await;

    let record = runtime.get(&x).await.unwrap();
    assert_eq!(record.storage.as_ref().unwrap()["value"], "fresh");
    assert_eq!(record.generation, 2);
    runtime.hibernate(&x, false).await.unwrap();
    assert_eq!(ok(&runtime, &x, "get", "").await["value"], "fresh");
    runtime.shutdown().await;
}

async fn killed_sandbox_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), &faulty("f", &[], "")).await;
    let x = key("f", "x");
    for _ in 0..3 {
        ok(&runtime, &x, "increment", "").await;
    }
    let pid = runtime.get(&x).await.unwrap().sandbox.unwrap().pid.unwrap();
    // SAFETY: kill(2) on a sandbox this test's runtime started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };

    let mut noticed = false;
    for _ in 0..250 {
        if runtime.get(&x).await.unwrap().status == Status::Hibernated {
            noticed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(noticed, "an exit with no call running is noticed");
    let record = runtime.get(&x).await.unwrap();
    assert!(
        record
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("exited unexpectedly"),
        "{record:?}"
    );

    assert_eq!(
        ok(&runtime, &x, "increment", "").await,
        json!({ "count": 4 })
    );
    let record = runtime.get(&x).await.unwrap();
    assert_eq!(record.status, Status::Active);
    assert!(
        record.last_error.is_none(),
        "a successful wake clears the error"
    );
    runtime.shutdown().await;
}

async fn crash_mid_call_falls_back_to_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), &faulty("f", &[], "")).await;
    let x = key("f", "x");
    ok(&runtime, &x, "increment", "{\"by\": 10}").await;
    let err = call(&runtime, &x, "crash", "").await.unwrap_err();
    assert!(matches!(err, RuntimeError::SandboxFailed { .. }), "{err}");
    assert!(err.to_string().contains("exit status 70"), "{err}");
    assert_eq!(
        ok(&runtime, &x, "increment", "").await,
        json!({ "count": 11 })
    );
    runtime.shutdown().await;
}

async fn stampede_wakes_once() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(
        dir.path(),
        &faulty("slow", &[("FAULT_HEALTH_DELAY_MS", "1000")], ""),
    )
    .await;
    let x = key("slow", "x");
    runtime.wake(&x).await.unwrap();
    runtime.hibernate(&x, false).await.unwrap();
    let (_, mut events) = runtime.subscribe();

    let calls = (0..50).map(|_| {
        let runtime = runtime.clone();
        let x = x.clone();
        tokio::spawn(async move {
            ok(&runtime, &x, "increment", "").await["count"]
                .as_i64()
                .unwrap()
        })
    });
    let mut counts: Vec<i64> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    counts.sort();
    assert_eq!(counts, (1..=50).collect::<Vec<_>>());
    assert_eq!(
        count_events(&mut events, &x, |k| matches!(k, EventKind::Waking)),
        1,
        "one sandbox started"
    );
    assert_eq!(started_sandboxes(dir.path(), "slow"), 1);
    let record = runtime.get(&x).await.unwrap();
    assert_eq!(record.storage.unwrap()["count"], 50);
    assert_eq!(record.generation, 2);
    runtime.shutdown().await;
}

async fn long_call_outlives_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(
        dir.path(),
        &faulty("f", &[], "idle_timeout = \"1s\"\ncall_timeout = \"10s\""),
    )
    .await;
    let x = key("f", "x");
    let long = tokio::spawn({
        let runtime = runtime.clone();
        let x = x.clone();
        async move { ok(&runtime, &x, "sleep", r#"{"ms": 5000}"#).await }
    });
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(4800) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(record) = runtime.get(&x).await {
            assert!(
                matches!(record.status, Status::Active | Status::Waking),
                "{:?} after {:?} with a call in flight",
                record.status,
                started.elapsed()
            );
        }
    }
    assert_eq!(long.await.unwrap(), json!({ "slept_ms": 5000 }));
    let (_, mut events) = runtime.subscribe();
    next_event(&mut events, &x, "hibernated", Duration::from_secs(5)).await;
    runtime.shutdown().await;
}

async fn idle_clock_starts_at_last_call() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), &faulty("f", &[], "idle_timeout = \"1s\"")).await;
    let x = key("f", "x");
    let (_, mut events) = runtime.subscribe();
    ok(&runtime, &x, "increment", "").await;
    next_event(&mut events, &x, "hibernated", Duration::from_secs(5)).await;

    ok(&runtime, &x, "sleep", r#"{"ms": 300}"#).await;
    let call_ended = Instant::now();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        runtime.get(&x).await.unwrap().status,
        Status::Active,
        "hibernated before a full idle timeout"
    );
    next_event(&mut events, &x, "hibernated", Duration::from_secs(5)).await;
    let idle = call_ended.elapsed();
    assert!(
        idle >= Duration::from_secs(1),
        "hibernated {idle:?} after the call ended"
    );
    runtime.shutdown().await;
}

async fn never_healthy_fails_within_wake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let classes = faulty(
        "sick",
        &[("FAULT_NEVER_HEALTHY", "1")],
        "wake_timeout = \"1s\"",
    );
    let runtime = start(dir.path(), &classes).await;
    let x = key("sick", "x");
    let calls = (0..5).map(|_| {
        let runtime = runtime.clone();
        let x = x.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            (call(&runtime, &x, "increment", "").await, started.elapsed())
        })
    });
    for result in futures::future::join_all(calls).await {
        let (result, waited) = result.unwrap();
        let err = result.expect_err("a handler that never becomes healthy cannot serve");
        assert_eq!(err.http_status(), 504, "{err}");
        assert!(err.to_string().contains("wake timeout of 1s"), "{err}");
        assert!(
            waited < Duration::from_secs(4),
            "callers queued on one wake share its failure; waited {waited:?}"
        );
    }
    let record = runtime.get(&x).await.unwrap();
    assert_eq!(record.status, Status::Failed);
    assert!(record.last_error.unwrap().contains("GET /__health"));
    assert!(
        started_sandboxes(dir.path(), "sick") > 0,
        "the handler never started"
    );
    let running = running_sandboxes(dir.path(), "sick");
    assert!(
        running.is_empty(),
        "half-started sandboxes {running:?} still run"
    );
    runtime.shutdown().await;
}

async fn restart_after_kill_hibernates_active() {
    let dir = tempfile::tempdir().unwrap();
    let exe = crate::support::handler_program();
    // The handler leaves a grandchild in its process group, which outlives the handler's
    // PR_SET_PDEATHSIG and must be found through the pid file at the next start.
    let config = test_config(&format!(
        "{}\n[classes.forking]\ncommand = [\"sh\", \"-c\", \"sleep 317 & echo $! > grandchild.pid; exec {}\"]\nenv = {{ FAULTY_HANDLER = \"1\" }}\n",
        faulty("f", &[], ""),
        exe.display()
    ));
    let data = dir.path().join("data");
    let server = Server::start(&data, Some(&config)).await;
    let mut pids = Vec::new();
    for (class, id, by) in [("f", "a", 1), ("f", "b", 2), ("forking", "c", 3)] {
        let (status, body) = server
            .call(class, id, "increment", &format!("{{\"by\": {by}}}"))
            .await;
        assert_eq!(status, 200, "{body}");
        let (_, record) = server.get(&format!("/v1/objects/{class}/{id}")).await;
        pids.push(record["sandbox"]["pid"].as_u64().unwrap() as u32);
    }
    assert!(
        std::fs::read_dir(data.join("sandboxes"))
            .unwrap()
            .flatten()
            .any(|e| e.path().join("work/grandchild.pid").exists()),
        "the forking handler started its grandchild"
    );
    assert!(!processes_running(&["sleep", "317"]).is_empty());

    let server = server.restart(libc::SIGKILL).await;
    for pid in pids {
        assert!(
            eventually(Duration::from_secs(5), || !alive(pid)).await,
            "sandbox {pid} outlived the runtime"
        );
    }
    assert!(
        eventually(Duration::from_secs(5), || processes_running(&[
            "sleep", "317"
        ])
        .is_empty())
        .await,
        "the grandchild outlived the runtime"
    );
    for (class, id, by) in [("f", "a", 1), ("f", "b", 2), ("forking", "c", 3)] {
        let (_, record) = server.get(&format!("/v1/objects/{class}/{id}")).await;
        assert_eq!(record["status"], "hibernated", "{record}");
        assert_eq!(record["storage"]["count"], by, "{record}");
        let (_, body) = server.call(class, id, "increment", "").await;
        assert_eq!(body["count"], by + 1);
    }
}

async fn late_caller_shares_failing_wake() {
    let dir = tempfile::tempdir().unwrap();
    let classes = faulty(
        "sick",
        &[("FAULT_NEVER_HEALTHY", "1")],
        "wake_timeout = \"1s\"",
    );
    let runtime = start(dir.path(), &classes).await;
    let x = key("sick", "x");
    let first = tokio::spawn({
        let runtime = runtime.clone();
        let x = x.clone();
        async move { call(&runtime, &x, "increment", "").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let late = call(&runtime, &x, "increment", "").await;
    let waited = started.elapsed();
    assert!(first.await.unwrap().is_err());
    let err = late.expect_err("the late caller shares the failed wake");
    assert!(err.to_string().contains("wake timeout of 1s"), "{err}");
    assert!(
        waited < Duration::from_millis(1500),
        "the late caller waited {waited:?}, more than one wake"
    );
    assert_eq!(
        runtime.get(&x).await.unwrap().generation,
        1,
        "one wake was tried"
    );
    runtime.shutdown().await;
}

async fn active_objects_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let classes = format!("[limits]\nmax_active_objects = 2\n{}", faulty("f", &[], ""));
    let runtime = start(dir.path(), &classes).await;
    ok(&runtime, &key("f", "a"), "increment", "").await;
    ok(&runtime, &key("f", "b"), "increment", "").await;
    let err = call(&runtime, &key("f", "c"), "increment", "")
        .await
        .expect_err("a third active object");
    assert_eq!(err.http_status(), 503, "{err}");
    assert!(
        err.to_string().contains("limits.max_active_objects"),
        "{err}"
    );
    runtime.hibernate(&key("f", "a"), false).await.unwrap();
    assert_eq!(
        ok(&runtime, &key("f", "c"), "increment", "").await,
        json!({ "count": 1 })
    );
    runtime.shutdown().await;
}

async fn missing_objects_leave_nothing_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), &faulty("f", &[], "")).await;
    for i in 0..300 {
        let ghost = key("f", &format!("ghost-{i}"));
        assert!(matches!(
            runtime.delete(&ghost).await,
            Err(RuntimeError::NotFound(_))
        ));
        let timeout = Some(Duration::from_secs(5));
        assert!(matches!(
            runtime.set_idle_timeout(&ghost, timeout).await,
            Err(RuntimeError::NotFound(_))
        ));
        assert!(runtime.hibernate(&ghost, false).await.is_err());
    }
    assert_eq!(runtime.resident_objects(), 0);
    runtime.shutdown().await;
}
