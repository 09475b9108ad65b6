//! Alarms through a real `torpor --serve`: the built-in `session` class expiring by alarm,
//! the alarm routes and the command line, the reserved `alarm` method, and a thousand
//! alarms due in the same second while ordinary calls go on.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, TOKEN, test_config};
use futures::StreamExt;
use serde_json::{Value, json};

const READ_TOKEN: &str = "read-only-token-0123456789";

/// Returns a time about three years ahead, in RFC 3339 to the second: later than every other
/// alarm in these tests and within the 10-year limit.
fn far_ahead() -> String {
    (chrono::Utc::now() + chrono::Duration::days(1000))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The built-in session class, hibernating soon after its calls.
const SESSION: &str = r#"
[classes.session]
builtin = "session"
idle_timeout = "500ms"
warm_for = "0s"
"#;

async fn send(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = server.http.request(method, server.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn put_alarm(server: &Server, class: &str, id: &str, body: Value) -> (u16, Value) {
    let path = format!("/v1/objects/{class}/{id}/alarm");
    send(server, reqwest::Method::PUT, &path, Some(body)).await
}

async fn session_state(server: &Server, id: &str) -> Value {
    let (status, record) = server.get(&format!("/v1/objects/session/{id}")).await;
    assert_eq!(status, 200, "{record}");
    record["storage"]["state"].clone()
}

/// Polls until the session's saved state is `state`.
async fn wait_for_state(server: &Server, id: &str, state: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while session_state(server, id).await != state {
        if Instant::now() > deadline {
            let (_, record) = server.get(&format!("/v1/objects/session/{id}")).await;
            panic!(
                "session/{id} never became {state}: {record}\n{}",
                server.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn alarm_wakes_hibernated_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), Some(&test_config(SESSION))).await;
    let (status, body) = server
        .call(
            "session",
            "s1",
            "open",
            r#"{"ttl_ms": 1500, "data": {"user": "ann"}}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, record) = server.get("/v1/objects/session/s1").await;
    let alarm = &record["alarm"];
    assert_eq!(alarm["attempt"], 1, "{record}");
    assert!(alarm["at"].is_string(), "{record}");
    assert!(alarm["next_attempt_at"].is_string(), "{record}");
    assert!(alarm.get("every_ms").is_none(), "{record}");

    let (status, record) = server.post("/v1/objects/session/s1/hibernate", "").await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["status"], "hibernated");
    wait_for_state(&server, "s1", "expired", Duration::from_secs(10)).await;

    let (_, record) = server.get("/v1/objects/session/s1").await;
    assert_eq!(record["storage"]["data"], Value::Null, "{record}");
    assert!(record.get("alarm").is_none(), "{record}");
    assert!(
        record["generation"].as_u64().unwrap() >= 2,
        "woken again: {record}"
    );
    let (status, body) = server.call("session", "s1", "touch", "").await;
    assert_eq!(status, 409, "an expired session cannot be touched: {body}");
}

#[tokio::test]
async fn clearing_alarm_stops_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), Some(&test_config(SESSION))).await;
    for id in ["by-api", "by-handler"] {
        let (status, body) = server
            .call("session", id, "open", r#"{"ttl_ms": 1000}"#)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = send(
        &server,
        reqwest::Method::DELETE,
        "/v1/objects/session/by-api/alarm",
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = server.call("session", "by-handler", "close", "").await;
    assert_eq!(status, 200, "{body}");
    for id in ["by-api", "by-handler"] {
        let (_, record) = server.get(&format!("/v1/objects/session/{id}")).await;
        assert!(record.get("alarm").is_none(), "{record}");
    }
    let (_, pending) = server.get("/v1/alarms").await;
    assert_eq!(pending["alarms"], json!([]), "{pending}");

    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        session_state(&server, "by-api").await,
        "open",
        "never expired"
    );
    assert_eq!(session_state(&server, "by-handler").await, "closed");
    let log = server.log();
    assert!(!log.contains("delivered"), "{log}");
}

#[tokio::test]
async fn reserved_alarm_method_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), Some(&test_config(SESSION))).await;
    let (status, body) = server
        .call("session", "s", "open", r#"{"ttl_ms": 60000}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.call("session", "s", "alarm", "{}").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "reserved_method", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"alarm\""), "{message}");
    assert!(message.contains("torpor-alarm"), "{message}");
    assert_eq!(session_state(&server, "s").await, "open", "nothing expired");

    let output = Command::new(common::bin())
        .args(["call", "session", "s", "alarm", "--server", &server.url("")])
        .env("TORPOR_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("reserved"), "{stderr}");
}

/// Starts a server that also takes `READ_TOKEN`, with a client for each token.
async fn start_with_read_token(data: &Path) -> (Server, reqwest::Client) {
    let config = data.with_extension("toml");
    std::fs::write(&config, test_config(SESSION)).unwrap();
    let vars = [("TORPOR_READ_TOKEN", READ_TOKEN)];
    let server = Server::start_with_env(data, Some(config), common::free_port(), &vars).await;

    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {READ_TOKEN}");
    headers.insert(reqwest::header::AUTHORIZATION, bearer.parse().unwrap());
    let reader = reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()
        .unwrap();
    (server, reader)
}

#[tokio::test]
async fn alarm_api_sets_lists_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    let (server, reader) = start_with_read_token(&dir.path().join("data")).await;
    for id in ["a", "b", "c", "d"] {
        let (status, body) = server.call("session", id, "get", "").await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(server.call("counter", "z", "increment", "").await.0, 200);

    let (status, record) = put_alarm(&server, "session", "a", json!({"in_ms": 600_000})).await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["alarm"]["attempt"], 1);
    let far = far_ahead();
    let (status, record) = put_alarm(
        &server,
        "session",
        "b",
        json!({"at": far, "every_ms": 3_600_000}),
    )
    .await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["alarm"]["at"], far);
    assert_eq!(record["alarm"]["every_ms"], 3_600_000);
    put_alarm(&server, "session", "c", json!({"in_ms": 300_000})).await;
    put_alarm(&server, "counter", "z", json!({"in_ms": 100_000})).await;
    // Replacing keeps one alarm per object.
    put_alarm(&server, "session", "d", json!({"in_ms": 1})).await;
    let (status, _) = put_alarm(&server, "session", "d", json!({"in_ms": 400_000})).await;
    assert_eq!(status, 200);

    let (status, page) = server.get("/v1/alarms").await;
    assert_eq!(status, 200, "{page}");
    let order: Vec<&str> = page["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["z", "c", "d", "a", "b"], "soonest first: {page}");
    assert_eq!(page["alarms"][0]["class"], "counter");
    assert_eq!(page["alarms"][0]["status"], "active");

    let mut ids = Vec::new();
    let mut path = "/v1/alarms?class=session&limit=2".to_owned();
    loop {
        let (status, page) = server.get(&path).await;
        assert_eq!(status, 200, "{page}");
        assert!(page["alarms"].as_array().unwrap().len() <= 2, "{page}");
        ids.extend(
            page["alarms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_owned()),
        );
        let Some(next) = page["next"].as_str() else {
            break;
        };
        path = format!(
            "/v1/alarms?class=session&limit=2&after={}",
            url_encode(next)
        );
    }
    assert_eq!(ids, ["c", "d", "a", "b"]);

    let bad_bodies = [
        (json!({}), "none of"),
        (
            json!({"in_ms": 1000, "at": "2030-01-01T00:00:00Z"}),
            "give only one",
        ),
        (
            json!({"in_ms": 1000, "every_ms": 99}),
            "every_ms 99 is below",
        ),
        (json!({"at": "noon"}), "\"noon\" is not an RFC 3339 time"),
        (
            json!({"in_ms": 1000, "every": 5}),
            "unknown field \"every\"",
        ),
        (json!({"at_ms": 9_000_000_000_000_u64}), "10 years"),
    ];
    for (body, expected) in bad_bodies {
        let (status, answer) = put_alarm(&server, "session", "a", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
    }
    let (status, answer) = put_alarm(&server, "session", "ghost", json!({"in_ms": 1000})).await;
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = server.get("/v1/alarms?after=12").await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_cursor");
    let (_, record) = server.get("/v1/objects/session/a").await;
    assert_eq!(record["alarm"]["attempt"], 1, "rejections changed nothing");

    // The read-only token lists but may not set or clear.
    let url = server.url("/v1/objects/session/a/alarm");
    let rejected = reader
        .put(&url)
        .json(&json!({"in_ms": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status().as_u16(), 403);
    let rejected = reader.delete(&url).send().await.unwrap();
    assert_eq!(rejected.status().as_u16(), 403);
    let listed = reader.get(server.url("/v1/alarms")).send().await.unwrap();
    assert_eq!(listed.status().as_u16(), 200);

    // Clearing twice is fine; deleting the object removes its alarm, and the alarm does not
    // bring it back.
    for _ in 0..2 {
        let (status, _) = send(
            &server,
            reqwest::Method::DELETE,
            "/v1/objects/session/c/alarm",
            None,
        )
        .await;
        assert_eq!(status, 204);
    }
    put_alarm(&server, "session", "d", json!({"in_ms": 300})).await;
    let (status, _) = send(
        &server,
        reqwest::Method::DELETE,
        "/v1/objects/session/d",
        None,
    )
    .await;
    assert_eq!(status, 204);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (status, _) = server.get("/v1/objects/session/d").await;
    assert_eq!(status, 404, "a deleted object's alarm does not recreate it");
    let (_, page) = server.get("/v1/alarms").await;
    let left: Vec<&str> = page["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["z", "a", "b"]);
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn torpor(server: &Server, args: &[&str]) -> std::process::Output {
    Command::new(common::bin())
        .args(args)
        .args(["--server", &server.url("")])
        .env("TORPOR_TOKEN", TOKEN)
        .env_remove("TORPOR_READ_TOKEN")
        .env_remove("TORPOR_DATA_DIR")
        .output()
        .unwrap()
}

#[tokio::test]
async fn alarm_cli_sets_lists_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), Some(&test_config(SESSION))).await;
    for id in ["a", "b"] {
        assert_eq!(server.call("session", id, "get", "").await.0, 200);
    }
    let output = torpor(
        &server,
        &[
            "alarm", "set", "session", "a", "--in", "5m", "--every", "1h",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("session/a alarm at "), "{stdout}");
    assert!(stdout.contains("every 3600000 ms"), "{stdout}");
    let far = far_ahead();
    let output = torpor(&server, &["alarm", "set", "session", "b", "--at", &far]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let output = torpor(&server, &["alarms", "--json"]);
    assert!(output.status.success());
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed[0]["id"], "a", "{listed}");
    assert_eq!(listed[0]["every_ms"], 3_600_000);
    assert_eq!(listed[1]["at"], far);
    let output = torpor(&server, &["alarms", "--class", "session"]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.lines().next().unwrap().contains("DUE IN"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");

    let output = torpor(
        &server,
        &[
            "alarm", "set", "session", "a", "--in", "1s", "--every", "10ms",
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("every_ms 10 is below"), "{stderr}");
    let output = torpor(&server, &["alarm", "set", "session", "a"]);
    assert!(!output.status.success(), "--in or --at is required");

    let output = torpor(&server, &["alarm", "clear", "session", "a"]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "session/a alarm cleared"
    );
    let output = torpor(&server, &["alarms", "--json"]);
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

/// Returns how many alarms are pending, up to 1000.
async fn pending_alarms(server: &Server) -> usize {
    let (status, page) = server.get("/v1/alarms?limit=1000").await;
    assert_eq!(status, 200, "{page}");
    page["alarms"].as_array().unwrap().len()
}

#[tokio::test]
async fn thousand_alarms_due_together_all_arrive() {
    const OBJECTS: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Open sessions already past their expiry, hibernated, straight into a fresh store.
    let storage = br#"{"state":"open","data":null,"ttl_ms":1000,"expires_at_ms":0}"#;
    torpor::store::SqliteStore::seed_hibernated(
        &data.join("torpor.db"),
        "session",
        "s-",
        OBJECTS,
        storage,
    )
    .unwrap();
    let server = Server::start(&data, Some(&test_config(SESSION))).await;
    assert_eq!(
        server.call("counter", "ordinary", "increment", "").await.0,
        200
    );

    let due = torpor::model::now_ms() + 8000;
    let puts = (0..OBJECTS).map(|n| {
        let server = &server;
        async move {
            put_alarm(
                server,
                "session",
                &format!("s-{n:06}"),
                json!({"at_ms": due}),
            )
            .await
        }
    });
    let statuses: Vec<(u16, Value)> = futures::stream::iter(puts)
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|(status, _)| *status == 200),
        "{:?}",
        statuses[0]
    );
    assert_eq!(pending_alarms(&server).await, OBJECTS);

    // Ordinary calls keep going while the alarms are delivered: each succeeds, and some
    // complete while alarms are still pending.
    while torpor::model::now_ms() < due {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let mut answered_while_pending = 0;
    let mut n = 0;
    loop {
        let (status, body) = server.call("counter", "ordinary", "increment", "").await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = server.call("kv", &format!("new-{n}"), "list", "").await;
        assert_eq!(status, 200, "{body}");
        n += 1;
        let pending = pending_alarms(&server).await;
        if pending == 0 {
            break;
        }
        answered_while_pending += 1;
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{pending} alarms still pending after 5 minutes\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{OBJECTS} alarms delivered in {:?}; {answered_while_pending} rounds of ordinary calls \
         answered meanwhile",
        started.elapsed()
    );
    assert!(
        answered_while_pending > 0,
        "ordinary calls were answered while alarms were pending"
    );

    let states = futures::stream::iter(0..OBJECTS)
        .map(|n| {
            let server = &server;
            async move { session_state(server, &format!("s-{n:06}")).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<Value>>()
        .await;
    let expired = states.iter().filter(|state| *state == "expired").count();
    assert_eq!(expired, OBJECTS, "every session expired by its alarm");
    let log = server.log();
    assert!(
        !log.lines()
            .any(|line| line.contains("alarm for") && line.contains("failed")),
        "no delivery failed:\n{log}"
    );
}
