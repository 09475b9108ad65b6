//! The HTTP API of a real `torpor --serve`, with real handler processes and a real SQLite
//! file in a temporary directory.

mod common;

use std::time::Duration;

use common::{Server, alive, eventually, test_config};
use futures::StreamExt;
use serde_json::{Value, json};

#[tokio::test]
async fn counter_survives_hibernation_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None).await;
    for expected in 1..=3 {
        let (status, body) = server.call("counter", "alice", "increment", "").await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({ "count": expected }));
    }

    let (status, record) = server.post("/v1/objects/counter/alice/hibernate", "").await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["status"], "hibernated");
    let (_, record) = server.get("/v1/objects/counter/alice").await;
    assert_eq!(record["status"], "hibernated");
    assert_eq!(record["storage"], json!({ "count": 3 }));
    assert!(record.get("sandbox").is_none(), "{record}");

    let (_, body) = server.call("counter", "alice", "increment", "").await;
    assert_eq!(body, json!({ "count": 4 }));

    let server = server.restart(libc::SIGTERM).await;
    let (_, record) = server.get("/v1/objects/counter/alice").await;
    assert_eq!(
        record["status"], "hibernated",
        "graceful shutdown hibernates: {record}"
    );
    let (_, body) = server.call("counter", "alice", "increment", "").await;
    assert_eq!(body, json!({ "count": 5 }));
}

#[tokio::test]
async fn killed_server_leaves_no_sandbox_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None).await;
    for _ in 0..3 {
        server
            .call("counter", "k", "increment", "{\"by\": 2}")
            .await;
    }
    let (_, record) = server.get("/v1/objects/counter/k").await;
    let pid = record["sandbox"]["pid"]
        .as_u64()
        .expect("active object has a pid") as u32;
    assert!(alive(pid));

    let server = server.restart(libc::SIGKILL).await;
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)).await,
        "old sandbox {pid} still runs"
    );
    let (_, record) = server.get("/v1/objects/counter/k").await;
    assert_eq!(record["status"], "hibernated", "{record}");
    let (_, body) = server.call("counter", "k", "increment", "").await;
    assert_eq!(body, json!({ "count": 7 }));
}

#[tokio::test]
async fn bad_names_get_4xx_naming_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None).await;
    server.call("counter", "x", "increment", "").await;

    let cases = [
        ("/v1/objects/counter/a%20b/call/get", 400, "a b"),
        ("/v1/objects/counter/a%2Fb/call/get", 400, "a/b"),
        ("/v1/objects/counter/a%3Fb/call/get", 400, "a?b"),
        ("/v1/objects/counter/a%23b/call/get", 400, "a#b"),
        ("/v1/objects/Counter/a/call/get", 400, "Counter"),
        ("/v1/objects/nope/a/call/get", 404, "nope"),
        ("/v1/objects/counter/x/call/__storage", 400, "__storage"),
        ("/v1/objects/counter/x/call/__health", 400, "__health"),
        ("/v1/objects/counter/x/call/a.b%2F..", 400, "a.b/.."),
    ];
    for (path, status, named) in cases {
        let (got, body) = server.post(path, "{\"count\": 1000}").await;
        assert_eq!(got, status, "{path}: {body}");
        let text = body.to_string();
        assert!(
            text.contains(named),
            "{path}: {named:?} not named in {text}"
        );
    }
    // HTTP clients resolve dot segments before sending, so these go out on a raw socket.
    for id in ["%2E%2E", "%2e", ".."] {
        let answer = raw_post(server.port, &format!("/v1/objects/counter/{id}/call/get"));
        assert!(answer.starts_with("HTTP/1.1 400"), "{id}: {answer}");
        assert!(answer.contains("invalid object id"), "{id}: {answer}");
    }
    let long = "x".repeat(300);
    let (status, body) = server.call("counter", &long, "get", "").await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("300 bytes"),
        "{body}"
    );

    let (_, record) = server.get("/v1/objects/counter/x").await;
    assert_eq!(
        record["storage"],
        json!({ "count": 1 }),
        "reserved method changed storage"
    );
}

/// Sends a bodiless POST exactly as written and returns the raw response.
fn raw_post(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", common::TOKEN
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[tokio::test]
async fn lookalike_keys_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        test_config("[classes.a-b]\nbuiltin = \"counter\"\n[classes.a]\nbuiltin = \"counter\"\n");
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;
    for (id, expected) in [("ü-ñ", 1), ("a+b", 1), ("ü-ñ", 2)] {
        let (status, body) = server.call("counter", id, "increment", "").await;
        assert_eq!(status, 200, "{id}: {body}");
        assert_eq!(body["count"], expected, "{id}");
    }
    server.call("a-b", "c", "increment", "{\"by\": 10}").await;
    let (_, body) = server.call("a", "b-c", "get", "").await;
    assert_eq!(body, json!({ "count": 0 }));
    let (_, ab) = server.get("/v1/objects/a-b/c").await;
    let (_, a) = server.get("/v1/objects/a/b-c").await;
    assert_ne!(ab["sandbox"]["name"], a["sandbox"]["name"]);
    assert_ne!(ab["sandbox"]["pid"], a["sandbox"]["pid"]);
}

#[tokio::test]
async fn oversized_body_is_413_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config("[limits]\nmax_request_bytes = 1024\n");
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;
    let big = format!("{{\"key\": \"k\", \"value\": \"{}\"}}", "v".repeat(2000));
    let (status, body) = server.call("kv", "big", "put", &big).await;
    assert_eq!(status, 413, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("1024"), "{message}");
    let (status, _) = server.get("/v1/objects/kv/big").await;
    assert_eq!(status, 404, "a rejected call must not create the object");
}

#[tokio::test]
async fn listing_filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), Some(&test_config(""))).await;
    for i in 0..5 {
        server
            .call("counter", &format!("c{i}"), "increment", "")
            .await;
    }
    server.call("kv", "k0", "list", "").await;
    server.post("/v1/objects/counter/c0/hibernate", "").await;

    let (_, page) = server.get("/v1/objects?class=counter&limit=2").await;
    let ids: Vec<&str> = page["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c0", "c1"]);
    assert_eq!(page["next"], "counter/c1");
    let (_, page) = server
        .get("/v1/objects?class=counter&limit=10&after=counter/c1")
        .await;
    assert_eq!(page["objects"].as_array().unwrap().len(), 3);
    assert!(page.get("next").is_none());

    let (_, page) = server.get("/v1/objects?status=hibernated").await;
    let hibernated: Vec<&str> = page["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(hibernated, ["c0"]);

    let (status, body) = server.get("/v1/objects?limit=5000").await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("1000"),
        "{body}"
    );
    let (status, body) = server.get("/v1/objects?status=sleeping").await;
    assert_eq!(status, 400);
    assert!(body.to_string().contains("sleeping"));
    let (_, stats) = server.get("/v1/stats").await;
    assert_eq!(stats["objects"]["active"], 5);
    assert_eq!(stats["objects"]["hibernated"], 1);
    let (_, classes) = server.get("/v1/classes").await;
    assert_eq!(classes[0]["name"], "counter");
    assert_eq!(classes[0]["handler"], "builtin:counter");
}

#[tokio::test]
async fn delete_stops_sandbox_and_forgets_storage() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None).await;
    let (_, classes) = server.get("/v1/classes").await;
    let notes = classes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "notes")
        .unwrap();
    assert_eq!(notes["handler"], "python3 -c <embedded notes.py>");
    server
        .call("kv", "gone", "put", "{\"key\":\"a\",\"value\":1}")
        .await;
    let (_, record) = server.get("/v1/objects/kv/gone").await;
    let pid = record["sandbox"]["pid"].as_u64().unwrap() as u32;
    let sandbox_dir = server
        .data_dir
        .join("sandboxes")
        .join(record["sandbox"]["name"].as_str().unwrap());
    assert!(sandbox_dir.exists());

    let response = server
        .http
        .delete(server.url("/v1/objects/kv/gone"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(eventually(Duration::from_secs(5), || !alive(pid)).await);
    assert!(!sandbox_dir.exists(), "sandbox folder left behind");
    let (status, _) = server.get("/v1/objects/kv/gone").await;
    assert_eq!(status, 404);
    let (_, body) = server.call("kv", "gone", "list", "").await;
    assert_eq!(body, json!({ "keys": [] }), "a new object starts empty");
}

#[tokio::test]
async fn idle_timeout_change_hibernates_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None).await;
    server.call("counter", "idle", "increment", "").await;
    let response = server
        .http
        .put(server.url("/v1/objects/counter/idle/idle-timeout"))
        .json(&json!({ "idle_timeout_ms": 300 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let record: Value = response.json().await.unwrap();
    assert_eq!(record["idle_timeout_ms"], 300);
    assert_eq!(record["idle_timeout_overridden"], true);

    let mut hibernated = false;
    for _ in 0..100 {
        let (_, record) = server.get("/v1/objects/counter/idle").await;
        if record["status"] == "hibernated" {
            hibernated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(
        hibernated,
        "object did not hibernate after its 300 ms idle timeout"
    );

    let response = server
        .http
        .put(server.url("/v1/objects/counter/idle/idle-timeout"))
        .json(&json!({ "idle_timeout_ms": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("5ms"),
        "{body}"
    );
}

#[tokio::test]
async fn event_stream_reports_wake_call_and_hibernation() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None).await;
    let client = torpor::api::Client::new(&server.url(""), Some(common::TOKEN)).unwrap();
    let events = client.events(None).await.unwrap();
    let mut events = std::pin::pin!(events);
    server.call("counter", "seen", "increment", "").await;
    server.post("/v1/objects/counter/seen/hibernate", "").await;

    let mut names = Vec::new();
    while names.last().map(String::as_str) != Some("hibernated") {
        let item = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("event within 5 s");
        let torpor::api::client::StreamItem::Event { event, .. } = item.unwrap().unwrap() else {
            continue;
        };
        assert_eq!(
            (event.class.as_str(), event.id.as_str()),
            ("counter", "seen")
        );
        names.push(event.kind.name().to_owned());
    }
    assert_eq!(
        names,
        [
            "created",
            "waking",
            "woke",
            "call",
            "hibernating",
            "hibernated"
        ]
    );
}

#[tokio::test]
async fn second_server_on_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = Server::start(&data, None).await;
    let output = std::process::Command::new(common::bin())
        .args([
            "--serve",
            "--listen",
            &format!("127.0.0.1:{}", common::free_port()),
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is in use by another torpor process"),
        "{stderr}"
    );
}

#[tokio::test]
async fn cli_subcommands_talk_to_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None).await;
    let run = |args: &[&str]| {
        std::process::Command::new(common::bin())
            .args(args)
            .env("TORPOR_SERVER", server.url(""))
            .env("TORPOR_TOKEN", common::TOKEN)
            .output()
            .unwrap()
    };
    let output = run(&["call", "counter", "cli", "increment", "{\"by\": 41}"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "{\"count\":41}"
    );

    let output = run(&["ls"]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("counter") && l.contains("cli") && l.contains("active")),
        "{table}"
    );

    let output = run(&["hibernate", "counter", "cli"]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "counter/cli hibernated"
    );
    let output = run(&["show", "counter", "cli"]);
    let record: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(record["storage"], json!({ "count": 41 }));

    let output = run(&["call", "counter", "cli", "increment", "{oops"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not valid JSON"));
    let output = run(&["call", "counter", "cli", "__storage"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("reserved"),
        "{output:?}"
    );
}
