//! Alarms under failure. They fall due while the server is down, outlive reconfiguration and
//! restarts, and are set by a call just before a hibernation or a SIGKILL. Deliveries fail,
//! crash or hang, handlers stall a recurring alarm, and `torpor-alarm` headers are invalid.
//! The faulty handler records every successful delivery in its storage under `alarms`.

use std::time::{Duration, Instant};

use libtest_mimic::Trial;
use serde_json::{Value, json};
use torpor::model::alarm::{AlarmRequest, AlarmTime};
use torpor::model::{EventKind, now_ms};

use crate::common::{Server, test_config};
use crate::named_trials;
use crate::support::{call, faulty, key, next_event, ok, start};

pub fn trials() -> Vec<Trial> {
    named_trials![
        alarm_due_while_down_fires_once_after_restart,
        reconfiguring_keeps_pending_alarms,
        alarm_clears_without_its_class,
        recurring_alarm_keeps_period_across_restarts,
        failed_alarm_delivery_is_retried_with_backoff,
        crashed_or_hung_alarm_delivery_is_retried,
        alarm_attempts_run_out,
        invalid_delivery_header_fails_attempt,
        stalled_recurring_alarm_coalesces_missed_ticks,
        busy_object_delays_no_other_alarm,
        alarm_set_by_call_survives_hibernation_and_kill,
        alarm_interrupted_by_crash_is_delivered_again,
        relaxed_durability_still_commits_alarms,
        invalid_alarm_headers_change_nothing,
    ]
}

async fn put(server: &Server, path: &str, body: Value) -> (u16, Value) {
    let response = server
        .http
        .put(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The deliveries the faulty handler recorded in the object's saved storage.
async fn deliveries(server: &Server, class: &str, id: &str) -> Vec<Value> {
    let (status, record) = server.get(&format!("/v1/objects/{class}/{id}")).await;
    assert_eq!(status, 200, "{record}");
    record["storage"]["alarms"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits until the object's storage contains at least `count` deliveries; returns them.
async fn wait_for_deliveries(
    server: &Server,
    class: &str,
    id: &str,
    count: usize,
    timeout: Duration,
) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = deliveries(server, class, id).await;
        if seen.len() >= count {
            return seen;
        }
        if Instant::now() > deadline {
            panic!(
                "{class}/{id}: {} of {count} deliveries within {timeout:?}: {seen:?}\n{}",
                seen.len(),
                server.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn scheduled_ms(delivery: &Value) -> i64 {
    delivery["scheduled_at_ms"].as_i64().unwrap()
}

async fn alarm_due_while_down_fires_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&faulty("f", &[], ""));
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;
    assert_eq!(server.call("f", "x", "get", "").await.0, 200);
    let (status, record) = put(&server, "/v1/objects/f/x/alarm", json!({"in_ms": 3000})).await;
    assert_eq!(status, 200, "{record}");
    let at = chrono::DateTime::parse_from_rfc3339(record["alarm"]["at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();

    let mut server = server;
    server.stop(libc::SIGTERM);
    while now_ms() < at + 1000 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let data = server.data_dir.clone();
    let config_path = server.config.clone();
    drop(server);
    let server = Server::start_with(&data, config_path).await;

    let seen = wait_for_deliveries(&server, "f", "x", 1, Duration::from_secs(15)).await;
    assert_eq!(scheduled_ms(&seen[0]), at, "{seen:?}");
    assert_eq!(seen[0]["attempt"], 1);
    assert!(
        seen[0]["received_at_ms"].as_i64().unwrap() >= at + 1000,
        "delivered late, after the restart: {seen:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        deliveries(&server, "f", "x").await.len(),
        1,
        "fired exactly once"
    );
    let (_, record) = server.get("/v1/objects/f/x").await;
    assert!(record.get("alarm").is_none(), "{record}");
    let (_, pending) = server.get("/v1/alarms").await;
    assert_eq!(pending["alarms"], json!([]), "{pending}");
}

async fn reconfiguring_keeps_pending_alarms() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&faulty("f", &[], ""));
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;
    for id in ["x", "y"] {
        assert_eq!(server.call("f", id, "get", "").await.0, 200);
    }
    put(&server, "/v1/objects/f/x/alarm", json!({"in_ms": 1500})).await;
    put(&server, "/v1/objects/f/y/alarm", json!({"in_ms": 4000})).await;

    let (status, record) = put(
        &server,
        "/v1/objects/f/x/idle-timeout",
        json!({"idle_timeout_ms": 200}),
    )
    .await;
    assert_eq!(status, 200, "{record}");
    assert!(record["alarm"].is_object(), "{record}");
    wait_for_deliveries(&server, "f", "x", 1, Duration::from_secs(10)).await;

    // New class settings need a restart; y's alarm is still ahead.
    let changed = test_config(&faulty(
        "f",
        &[],
        "idle_timeout = \"1s\"\ncall_timeout = \"20s\"\nalarm_retry = \"300ms\"",
    ));
    std::fs::write(server.config.as_ref().unwrap(), changed).unwrap();
    let server = server.restart(libc::SIGTERM).await;
    let (_, classes) = server.get("/v1/classes").await;
    let f = classes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "f")
        .unwrap()
        .clone();
    assert_eq!(f["call_timeout_ms"], 20_000, "the new settings apply: {f}");
    let (_, record) = server.get("/v1/objects/f/y").await;
    assert!(record["alarm"].is_object(), "{record}");
    wait_for_deliveries(&server, "f", "y", 1, Duration::from_secs(10)).await;
}

async fn alarm_clears_without_its_class() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&faulty("f", &[], ""));
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;
    for id in ["x", "y"] {
        assert_eq!(server.call("f", id, "get", "").await.0, 200);
        put(
            &server,
            &format!("/v1/objects/f/{id}/alarm"),
            json!({"in_ms": 3_600_000}),
        )
        .await;
    }

    // The class leaves the configuration; its objects and alarms stay in the store.
    std::fs::write(server.config.as_ref().unwrap(), test_config("")).unwrap();
    let server = server.restart(libc::SIGTERM).await;
    let (_, pending) = server.get("/v1/alarms").await;
    assert_eq!(pending["alarms"].as_array().unwrap().len(), 2, "{pending}");
    let (status, record) = server.get("/v1/objects/f/x").await;
    assert_eq!(status, 200, "shown without its class: {record}");
    assert!(record["alarm"].is_object(), "{record}");

    let delete = |path: String| server.http.delete(server.url(&path)).send();
    let response = delete("/v1/objects/f/x/alarm".into()).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let response = delete("/v1/objects/f/y".into()).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let (_, pending) = server.get("/v1/alarms").await;
    assert_eq!(pending["alarms"], json!([]), "{pending}");
    let (status, record) = server.get("/v1/objects/f/x").await;
    assert_eq!(status, 200, "{record}");
    assert!(record.get("alarm").is_none(), "{record}");

    // Objects that are not stored still get the error that lists the classes.
    let (status, body) = server.get("/v1/objects/f/never").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "unknown_class", "{body}");
    let response = delete("/v1/objects/f/never/alarm".into()).await.unwrap();
    assert_eq!(response.status(), 404);
}

async fn recurring_alarm_keeps_period_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&faulty("f", &[], ""));
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;
    assert_eq!(server.call("f", "p", "get", "").await.0, 200);
    let (status, record) = put(
        &server,
        "/v1/objects/f/p/alarm",
        json!({"in_ms": 500, "every_ms": 1000}),
    )
    .await;
    assert_eq!(status, 200, "{record}");
    let anchor = chrono::DateTime::parse_from_rfc3339(record["alarm"]["at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();

    let seen = wait_for_deliveries(&server, "f", "p", 2, Duration::from_secs(10)).await;
    let server = server.restart(libc::SIGTERM).await;
    let seen =
        wait_for_deliveries(&server, "f", "p", seen.len() + 2, Duration::from_secs(10)).await;
    let server = server.restart(libc::SIGKILL).await;
    let seen =
        wait_for_deliveries(&server, "f", "p", seen.len() + 2, Duration::from_secs(10)).await;

    let mut previous = i64::MIN;
    for delivery in &seen {
        let at = scheduled_ms(delivery);
        assert_eq!(
            (at - anchor) % 1000,
            0,
            "ticks stay on the schedule: {seen:?}"
        );
        assert!(at > previous, "each tick is delivered once: {seen:?}");
        assert_eq!(delivery["every_ms"], 1000);
        previous = at;
    }
    let (_, record) = server.get("/v1/objects/f/p").await;
    assert_eq!(record["alarm"]["every_ms"], 1000, "{record}");
}

async fn failed_alarm_delivery_is_retried_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let classes = faulty(
        "f",
        &[("FAULT_ALARM_FAIL", "2")],
        "alarm_retry = \"200ms\"\nalarm_retry_max = \"1s\"",
    );
    let runtime = start(dir.path(), &classes).await;
    let x = key("f", "x");
    ok(&runtime, &x, "get", "").await;
    let (_, mut events) = runtime.subscribe();
    let request = AlarmRequest {
        time: AlarmTime::In(100),
        every_ms: None,
    };
    runtime.set_alarm(&x, request).await.unwrap();

    for expected in 1..=2 {
        let event = next_event(&mut events, &x, "alarm_failed", Duration::from_secs(10)).await;
        let EventKind::AlarmFailed {
            attempt,
            error,
            retry_at,
            next_at,
            ..
        } = &event.kind
        else {
            unreachable!()
        };
        assert_eq!(*attempt, expected);
        assert!(error.contains("HTTP 500"), "{error}");
        assert!(retry_at.is_some(), "attempt {expected} is retried");
        assert!(next_at.is_none());
        let alarm = runtime.get(&x).await.unwrap().alarm.expect("still pending");
        assert_eq!(alarm.attempt, expected + 1);
        assert!(alarm.last_error.unwrap().contains("HTTP 500"));
    }
    let event = next_event(&mut events, &x, "alarm_delivered", Duration::from_secs(10)).await;
    let EventKind::AlarmDelivered { attempt, .. } = event.kind else {
        unreachable!()
    };
    assert_eq!(attempt, 3);
    // The pauses as the handler saw them: an event is emitted after its attempt's failure is
    // committed, so the time between events also counts how long each commit took.
    let times = attempt_times(dir.path(), "f");
    assert_eq!(times.len(), 3, "{times:?}");
    assert!(times[1] - times[0] >= 200, "first pause: {times:?}");
    assert!(times[2] - times[1] >= 400, "the pause doubles: {times:?}");
    let record = runtime.get(&x).await.unwrap();
    assert!(record.alarm.is_none(), "{record:?}");
    let stored = record.storage.unwrap();
    assert_eq!(stored["alarms"].as_array().unwrap().len(), 1, "{stored}");
    assert_eq!(stored["alarms"][0]["attempt"], 3);
    runtime.shutdown().await;
}

async fn crashed_or_hung_alarm_delivery_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let mut classes = faulty(
        "crashing",
        &[("FAULT_ALARM_CRASH", "1")],
        "alarm_retry = \"100ms\"",
    );
    classes += &faulty(
        "hanging",
        &[("FAULT_ALARM_HANG_MS", "5000")],
        "alarm_retry = \"100ms\"\ncall_timeout = \"500ms\"",
    );
    let runtime = start(dir.path(), &classes).await;
    let (_, mut events) = runtime.subscribe();
    for (class, cause) in [("crashing", "exited"), ("hanging", "timed out")] {
        let x = key(class, "x");
        ok(&runtime, &x, "get", "").await;
        let request = AlarmRequest {
            time: AlarmTime::In(0),
            every_ms: None,
        };
        runtime.set_alarm(&x, request).await.unwrap();
        let event = next_event(&mut events, &x, "alarm_failed", Duration::from_secs(10)).await;
        let EventKind::AlarmFailed { error, attempt, .. } = &event.kind else {
            unreachable!()
        };
        assert_eq!(*attempt, 1);
        assert!(error.contains(cause), "{class}: {error}");
        let event = next_event(&mut events, &x, "alarm_delivered", Duration::from_secs(10)).await;
        let EventKind::AlarmDelivered { attempt, .. } = event.kind else {
            unreachable!()
        };
        assert_eq!(attempt, 2, "{class}");
        let record = runtime.get(&x).await.unwrap();
        assert!(record.alarm.is_none(), "{class}: {record:?}");
        let alarms = &record.storage.unwrap()["alarms"];
        assert_eq!(
            alarms.as_array().map(Vec::len),
            Some(1),
            "{class}: {alarms}"
        );
    }
    runtime.shutdown().await;
}

async fn alarm_attempts_run_out() {
    let dir = tempfile::tempdir().unwrap();
    let classes = faulty(
        "f",
        &[("FAULT_ALARM_FAIL", "1000")],
        "alarm_retry = \"100ms\"\nalarm_max_attempts = 3",
    );
    let runtime = start(dir.path(), &classes).await;
    let (_, mut events) = runtime.subscribe();
    let once = key("f", "once");
    let every = key("f", "every");
    for (object, every_ms) in [(&once, None), (&every, Some(60_000))] {
        ok(&runtime, object, "get", "").await;
        let request = AlarmRequest {
            time: AlarmTime::In(0),
            every_ms,
        };
        runtime.set_alarm(object, request).await.unwrap();
    }
    // The two objects' events interleave; keep each one's third failure.
    let mut failures = std::collections::HashMap::new();
    let mut last = vec![None, None];
    tokio::time::timeout(Duration::from_secs(15), async {
        while last.iter().any(Option::is_none) {
            let event = events.recv().await.unwrap();
            if !matches!(event.kind, EventKind::AlarmFailed { .. }) {
                continue;
            }
            let count = failures.entry(event.id.clone()).or_insert(0);
            *count += 1;
            if *count == 3 {
                last[usize::from(event.id == "every")] = Some(event.kind);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("three failures of each alarm; saw {failures:?}"));
    let last: Vec<EventKind> = last.into_iter().flatten().collect();
    let EventKind::AlarmFailed {
        attempt,
        retry_at: None,
        next_at: None,
        ..
    } = &last[0]
    else {
        panic!("the one-shot alarm is dropped: {:?}", last[0])
    };
    assert_eq!(*attempt, 3);
    let record = runtime.get(&once).await.unwrap();
    assert!(record.alarm.is_none(), "{record:?}");
    let error = record.last_error.unwrap_or_default();
    assert!(error.contains("dropped after 3 failed attempts"), "{error}");
    assert!(error.contains("HTTP 500"), "{error}");

    let EventKind::AlarmFailed {
        retry_at: None,
        next_at: Some(next_at),
        scheduled_at,
        ..
    } = &last[1]
    else {
        panic!("the recurring alarm moves on: {:?}", last[1])
    };
    assert_eq!((*next_at - *scheduled_at).num_milliseconds() % 60_000, 0);
    let alarm = runtime
        .get(&every)
        .await
        .unwrap()
        .alarm
        .expect("still pending");
    assert_eq!(alarm.attempt, 1);
    assert_eq!(alarm.at, *next_at);
    assert!(alarm.last_error.unwrap().contains("HTTP 500"));
    runtime.shutdown().await;
}

async fn invalid_delivery_header_fails_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let classes = faulty(
        "f",
        &[("FAULT_ALARM_HEADER", "soon")],
        "alarm_retry = \"100ms\"\nalarm_max_attempts = 2",
    );
    let runtime = start(dir.path(), &classes).await;
    let (_, mut events) = runtime.subscribe();
    let object = key("f", "x");
    ok(&runtime, &object, "get", "").await;
    let request = AlarmRequest {
        time: AlarmTime::In(0),
        every_ms: None,
    };
    runtime.set_alarm(&object, request).await.unwrap();

    let mut errors = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), async {
        while errors.len() < 2 {
            if let EventKind::AlarmFailed { error, .. } = events.recv().await.unwrap().kind {
                errors.push(error);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("two failed attempts; saw {errors:?}"));
    let consequence =
        "the delivery's changes were discarded with its sandbox, and it counts as a failed attempt";
    for error in &errors {
        assert!(error.contains("\"soon\""), "{error}");
        assert!(error.contains(consequence), "{error}");
    }

    let record = runtime.get(&object).await.unwrap();
    assert!(record.alarm.is_none(), "dropped: {record:?}");
    let last_error = record.last_error.clone().unwrap_or_default();
    assert!(
        last_error.contains("dropped after 2 failed attempts"),
        "{last_error}"
    );
    let storage = record.storage.unwrap_or_default();
    assert!(
        storage.get("alarms").is_none(),
        "no failed delivery's change was saved: {storage}"
    );
    runtime.shutdown().await;
}

async fn busy_object_delays_no_other_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let mut classes = faulty("f", &[], "call_timeout = \"30s\"");
    classes += "\n[limits]\nmax_alarm_deliveries = 1\n";
    let runtime = start(dir.path(), &classes).await;
    let (_, mut events) = runtime.subscribe();
    let busy = key("f", "busy");
    let free = key("f", "free");
    for (object, in_ms) in [(&busy, 500), (&free, 1000)] {
        ok(&runtime, object, "get", "").await;
        let request = AlarmRequest {
            time: AlarmTime::In(in_ms),
            every_ms: None,
        };
        runtime.set_alarm(object, request).await.unwrap();
    }

    // The busy object's alarm falls due during a 4 s call. Only one delivery runs at a time,
    // yet the other object's alarm must not wait for that call.
    let sleeper = tokio::spawn({
        let runtime = runtime.clone();
        let busy = busy.clone();
        async move { call(&runtime, &busy, "sleep", r#"{"ms": 4000}"#).await }
    });
    let mut delivered = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), async {
        while delivered.len() < 2 {
            let event = events.recv().await.unwrap();
            if let EventKind::AlarmDelivered { .. } = event.kind {
                delivered.push((event.id.clone(), sleeper.is_finished()));
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("both alarms delivered; saw {delivered:?}"));
    assert_eq!(
        delivered[0],
        ("free".to_owned(), false),
        "the free object's alarm arrived during the busy object's call"
    );
    assert_eq!(
        delivered[1].0, "busy",
        "then the busy object's, after its call"
    );
    assert!(sleeper.await.unwrap().is_ok());
    runtime.shutdown().await;
}

async fn stalled_recurring_alarm_coalesces_missed_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let mut classes = faulty(
        "hangs",
        &[("FAULT_ALARM_HANG_MS", "10000")],
        "call_timeout = \"30s\"",
    );
    classes += &faulty("busy", &[], "call_timeout = \"30s\"");
    let runtime = start(dir.path(), &classes).await;
    let hung = key("hangs", "x");
    let busy = key("busy", "x");
    for object in [&hung, &busy] {
        ok(&runtime, object, "get", "").await;
        let request = AlarmRequest {
            time: AlarmTime::In(200),
            every_ms: Some(1000),
        };
        runtime.set_alarm(object, request).await.unwrap();
    }
    let started = now_ms();

    // The busy object's ticks queue behind a 5 s call that keeps its turn.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let busy_from = now_ms();
    ok(&runtime, &busy, "sleep", r#"{"ms": 5000}"#).await;
    let busy_until = now_ms();

    // The first delivery to the hung object returns after 10 s; then 3 s more of ticks.
    while now_ms() < started + 13_500 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = |object| {
        let runtime = runtime.clone();
        async move {
            let stored = runtime.get(object).await.unwrap().storage.unwrap();
            let seen: Vec<Value> = stored["alarms"].as_array().cloned().unwrap_or_default();
            seen.iter().map(scheduled_ms).collect::<Vec<i64>>()
        }
    };

    let seen = delivered(&hung).await;
    assert!(!seen.is_empty(), "{seen:?}");
    let first = seen[0];
    let later = &seen[1..];
    assert!(
        later.iter().all(|at| *at >= first + 10_000),
        "the nine ticks missed during the stall are not replayed: {seen:?}"
    );
    assert!(
        (1..=5).contains(&later.len()),
        "one delivery per tick after the stall, no burst: {seen:?}"
    );

    let seen = delivered(&busy).await;
    let during = seen
        .iter()
        .filter(|at| (busy_from..busy_until).contains(*at))
        .count();
    assert!(
        during <= 1,
        "ticks missed behind the long call coalesce into one delivery: {seen:?} \
         (busy {busy_from}..{busy_until})"
    );
    assert!(
        seen.iter().any(|at| *at >= busy_until),
        "the alarm keeps ticking after the call: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|pair| pair[0] < pair[1]),
        "each tick is delivered once: {seen:?}"
    );
    runtime.shutdown().await;
}

async fn alarm_set_by_call_survives_hibernation_and_kill() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&faulty("f", &[], ""));
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;

    let header = json!({"header": "{\"in_ms\": 1500}"}).to_string();
    let (status, body) = server.call("f", "napping", "set_alarm", &header).await;
    assert_eq!(status, 200, "{body}");
    let (status, record) = server.post("/v1/objects/f/napping/hibernate", "").await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["status"], "hibernated");
    assert!(record["alarm"].is_object(), "{record}");
    wait_for_deliveries(&server, "f", "napping", 1, Duration::from_secs(10)).await;
    let (_, record) = server.get("/v1/objects/f/napping").await;
    assert_eq!(record["status"], "active", "the alarm woke it: {record}");

    let header = json!({"header": "{\"in_ms\": 2000}"}).to_string();
    let (status, body) = server.call("f", "killed", "set_alarm", &header).await;
    assert_eq!(status, 200, "{body}");
    let server = server.restart(libc::SIGKILL).await;
    let (_, pending) = server.get("/v1/alarms").await;
    assert_eq!(pending["alarms"][0]["id"], "killed", "{pending}");
    let seen = wait_for_deliveries(&server, "f", "killed", 1, Duration::from_secs(10)).await;
    assert_eq!(seen.len(), 1);
}

/// Returns how many deliveries the faulty handlers of `class` under `data` were sent, from
/// the count they keep in their working folders.
fn attempts_sent(data: &std::path::Path, class: &str) -> u64 {
    std::fs::read_dir(data.join("sandboxes"))
        .unwrap()
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{class}."))
        })
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("work/alarm-attempts")).ok())
        .filter_map(|text| text.trim().parse::<u64>().ok())
        .sum()
}

/// Returns when each attempt reached the faulty handlers of `class` under `data`, in Unix
/// milliseconds, from the times they record in their working folders.
fn attempt_times(data: &std::path::Path, class: &str) -> Vec<u64> {
    let mut times: Vec<u64> = std::fs::read_dir(data.join("sandboxes"))
        .unwrap()
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{class}."))
        })
        .filter_map(|entry| {
            std::fs::read_to_string(entry.path().join("work/alarm-attempt-times")).ok()
        })
        .flat_map(|text| {
            text.lines()
                .filter_map(|line| line.parse().ok())
                .collect::<Vec<u64>>()
        })
        .collect();
    times.sort_unstable();
    times
}

async fn alarm_interrupted_by_crash_is_delivered_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = test_config(&faulty("f", &[("FAULT_ALARM_HANG_MS", "3000")], ""));
    let server = Server::start(&data, Some(&config)).await;
    assert_eq!(server.call("f", "x", "get", "").await.0, 200);
    put(&server, "/v1/objects/f/x/alarm", json!({"in_ms": 0})).await;
    let sent =
        crate::common::eventually(Duration::from_secs(10), || attempts_sent(&data, "f") == 1).await;
    assert!(sent, "the first delivery reached the handler");

    // The server dies while the handler is still processing the delivery.
    let server = server.restart(libc::SIGKILL).await;
    let seen = wait_for_deliveries(&server, "f", "x", 1, Duration::from_secs(15)).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        attempts_sent(&data, "f"),
        2,
        "delivered again after the restart"
    );
    let (_, record) = server.get("/v1/objects/f/x").await;
    assert!(record.get("alarm").is_none(), "{record}");
}

async fn relaxed_durability_still_commits_alarms() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&faulty("f", &[], "")).replace(
        "[runtime]",
        "[runtime]\ndurability = \"hibernate-only-unsafe\"",
    );
    let data = dir.path().join("data");
    let server = Server::start(&data, Some(&config)).await;
    let header = json!({"header": "{\"in_ms\": 2000}"}).to_string();
    let (status, body) = server.call("f", "x", "set_alarm", &header).await;
    assert_eq!(status, 200, "{body}");

    let server = server.restart(libc::SIGKILL).await;
    let (_, record) = server.get("/v1/objects/f/x").await;
    assert!(
        record["alarm"].is_object(),
        "the alarm was committed: {record}"
    );
    assert!(
        record["storage"].get("touched").is_none(),
        "storage was not, as the mode says: {record}"
    );
    // A delivery is checkpointed even in this mode: the alarm leaves the store only with
    // the delivery's effect, so a crash right after it loses neither.
    let seen = wait_for_deliveries(&server, "f", "x", 1, Duration::from_secs(10)).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (_, record) = server.get("/v1/objects/f/x").await;
    assert!(record.get("alarm").is_none(), "{record}");
    assert_eq!(attempts_sent(&data, "f"), 1);

    let server = server.restart(libc::SIGKILL).await;
    let (_, record) = server.get("/v1/objects/f/x").await;
    assert_eq!(
        record["storage"]["alarms"].as_array().map(Vec::len),
        Some(1),
        "the delivery's effect survived the crash: {record}"
    );
    assert!(record.get("alarm").is_none(), "{record}");
}

async fn invalid_alarm_headers_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&faulty("f", &[], ""));
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;
    let valid = json!({"header": "{\"in_ms\": 3600000}"}).to_string();
    assert_eq!(server.call("f", "x", "set_alarm", &valid).await.0, 200);
    let (_, before) = server.get("/v1/objects/f/x").await;
    assert!(before["alarm"].is_object(), "{before}");

    let eleven_years = 11 * 365 * 86_400_000_u64;
    let cases = [
        ("soon", "not `clear` or JSON"),
        ("{\"every_ms\": 1000}", "none of"),
        ("{\"in_ms\": 1000, \"every_ms\": 5}", "every_ms 5 is below"),
        ("{\"in_ms\": -5}", "not a whole number"),
        ("{\"in_ms\": 1, \"at_ms\": 2}", "in_ms and at_ms"),
        ("{\"in_ms\": 1000, \"when\": 1}", "unknown field \"when\""),
        (&*format!("{{\"in_ms\": {eleven_years}}}"), "10 years"),
    ];
    for (header, reason) in cases {
        let body = json!({ "header": header }).to_string();
        let (status, answer) = server.call("f", "x", "set_alarm", &body).await;
        assert_eq!(status, 502, "{header}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_alarm", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("{header:?}")), "{message}");
        assert!(message.contains(reason), "{header}: {message}");
        assert!(message.contains("The rule:"), "{message}");
        let (_, after) = server.get("/v1/objects/f/x").await;
        assert_eq!(
            after["alarm"], before["alarm"],
            "{header}: the alarm is unchanged"
        );
        assert_eq!(
            after["storage"]["touched"], 1,
            "{header}: the call's changes were discarded"
        );
    }
}
