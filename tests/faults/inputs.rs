//! Hostile and oversized input: ids that break naive code, huge storage, huge responses, and
//! reserved method names.

use std::io::{Read, Write};

use libtest_mimic::Trial;
use serde_json::json;

use crate::common::{Server, test_config};
use crate::named_trials;
use crate::support::faulty;

pub fn trials() -> Vec<Trial> {
    named_trials![
        hostile_ids_stay_separate_or_rejected,
        huge_storage_survives_limit_fails_loudly,
        huge_response_is_rejected,
        reserved_methods_rejected,
        invalid_handler_statuses_become_502,
        one_connection_handler_never_stalls,
        stalled_request_is_closed,
    ]
}

/// Sends a request exactly as written, bypassing client-side path normalisation, and
/// returns the status code and the body.
fn raw(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        crate::common::TOKEN,
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

async fn hostile_ids_stay_separate_or_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        test_config("[classes.a-b]\nbuiltin = \"counter\"\n[classes.a]\nbuiltin = \"counter\"\n");
    let data = dir.path().join("data");
    let server = Server::start(&data, Some(&config)).await;
    let long = "x".repeat(300);
    // (id as sent in the path, whether it is accepted, how the error names it)
    let cases: Vec<(&str, bool, String)> = vec![
        ("a%20b", false, "\"a b\"".into()),
        ("a+b", true, String::new()),
        ("a%2Bb", true, String::new()),
        ("a%2Fb", false, "\"a/b\"".into()),
        ("a%3Fb", false, "\"a?b\"".into()),
        ("a%23b", false, "\"a#b\"".into()),
        ("..", false, "\"..\"".into()),
        ("%2E%2E", false, "\"..\"".into()),
        ("%C3%BC-%C3%B1", true, String::new()),
        (&long, false, "300 bytes".into()),
        ("a%00b", false, "\"a\\0b\"".into()),
    ];
    for (id, accepted, named) in &cases {
        let (status, body) = raw(
            server.port,
            "POST",
            &format!("/v1/objects/counter/{id}/call/increment"),
            "",
        );
        if *accepted {
            assert_eq!(status, 200, "{id}: {body}");
        } else {
            assert_eq!(status, 400, "{id}: {body}");
            let error: serde_json::Value = serde_json::from_str(&body).unwrap();
            let message = error["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(named.as_str()),
                "{id}: {named} not named in {message}"
            );
        }
    }
    let (status, _) = raw(
        server.port,
        "POST",
        "/v1/objects/counter//call/increment",
        "",
    );
    assert!(
        (400..500).contains(&status),
        "an empty id gets a 4xx, not {status}"
    );

    // "a+b" sent raw and percent-encoded is one object: two increments.
    let (_, record) = server.get("/v1/objects/counter/a+b").await;
    assert_eq!(record["storage"], json!({ "count": 2 }), "{record}");
    let (_, record) = server.get("/v1/objects/counter/%C3%BC-%C3%B1").await;
    assert_eq!(record["id"], "ü-ñ");
    assert_eq!(record["storage"], json!({ "count": 1 }));

    server.call("a-b", "c", "increment", "{\"by\": 10}").await;
    server.call("a", "b-c", "increment", "{\"by\": 20}").await;
    let (_, ab) = server.get("/v1/objects/a-b/c").await;
    let (_, a) = server.get("/v1/objects/a/b-c").await;
    assert_eq!(ab["storage"]["count"], 10);
    assert_eq!(a["storage"]["count"], 20);
    assert_ne!(ab["sandbox"]["name"], a["sandbox"]["name"]);

    // Nothing was created outside the data directory, and every sandbox folder is CLASS.N.
    let mut outside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    outside.sort();
    assert_eq!(outside, ["data", "data.log", "data.toml"]);
    for entry in std::fs::read_dir(data.join("sandboxes")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let (class, oid) = name
            .split_once('.')
            .unwrap_or_else(|| panic!("sandbox folder {name:?}"));
        assert!(["counter", "a", "a-b"].contains(&class), "{name}");
        assert!(oid.parse::<u64>().is_ok(), "{name}");
    }
}

async fn huge_storage_survives_limit_fails_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let limits = "[limits]\nmax_request_bytes = 1024\nmax_storage_bytes = 12000000\n";
    let config = test_config(&format!("{limits}{}", faulty("f", &[], "")));
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;
    for bytes in [1_000_000, 10_000_000] {
        let (status, body) = server
            .call("f", "big", "fill", &format!("{{\"bytes\": {bytes}}}"))
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, record) = server.post("/v1/objects/f/big/hibernate", "").await;
        assert_eq!(status, 200, "{record}");
        let (_, stored) = server.call("f", "big", "get", "").await;
        assert_eq!(
            stored["blob"].as_str().unwrap().len(),
            bytes,
            "storage of {bytes} bytes survived a wake"
        );
    }

    let (status, body) = server
        .call("f", "big", "fill", "{\"bytes\": 13000000}")
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "storage_too_large");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("12000000"), "{message}");
    let (_, stored) = server.call("f", "big", "get", "").await;
    assert_eq!(
        stored["blob"].as_str().unwrap().len(),
        10_000_000,
        "the last saved storage stays intact"
    );
}

async fn huge_response_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&format!(
        "[limits]\nmax_response_bytes = 100000\n{}",
        faulty("f", &[], "")
    ));
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;
    let (status, body) = server.call("f", "x", "big", "{\"bytes\": 99000}").await;
    assert_eq!(status, 200);
    assert_eq!(body.as_str().map(str::len), Some(99000));
    let (status, body) = server.call("f", "x", "big", "{\"bytes\": 5000000}").await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("100000"),
        "{body}"
    );
    let (status, _) = server.call("f", "x", "increment", "").await;
    assert_eq!(status, 200, "the object still serves");
}

async fn reserved_methods_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None).await;
    server
        .call("counter", "x", "increment", "{\"by\": 3}")
        .await;
    for method in [
        "__storage",
        "__health",
        "__alarm",
        "__",
        "__STORAGE",
        "%5F%5Fstorage",
        "_storage",
        "%2E%2E%2F__storage",
    ] {
        let (status, body) = raw(
            server.port,
            "POST",
            &format!("/v1/objects/counter/x/call/{method}"),
            "{\"count\": 1000}",
        );
        assert_eq!(status, 400, "{method}: {body}");
    }
    let (status, body) = raw(
        server.port,
        "GET",
        "/v1/objects/counter/x/call/__storage",
        "",
    );
    assert!((400..500).contains(&status), "{body}");
    let (_, record) = server.get("/v1/objects/counter/x").await;
    assert_eq!(
        record["storage"],
        json!({ "count": 3 }),
        "storage unchanged"
    );
    let (_, body) = server.call("counter", "x", "get", "").await;
    assert_eq!(
        body,
        json!({ "count": 3 }),
        "the handler's storage unchanged"
    );
}

async fn invalid_handler_statuses_become_502() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&faulty("f", &[], ""));
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;
    for code in [101, 600, 999] {
        let (status, body) = server
            .call("f", "x", "status", &format!("{{\"code\": {code}}}"))
            .await;
        assert_eq!(status, 502, "{code}: {body}");
        assert_eq!(body["error"]["code"], "invalid_handler_status");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&code.to_string()),
            "{body}"
        );
    }
    let (status, _) = server.call("f", "x", "status", "{\"code\": 418}").await;
    assert_eq!(status, 418, "a valid handler status passes through");
}

async fn one_connection_handler_never_stalls() {
    let dir = tempfile::tempdir().unwrap();
    let class = faulty(
        "single",
        &[("FAULT_ONE_CONNECTION", "1")],
        "storage_read_timeout = \"2s\"",
    );
    let server = Server::start(&dir.path().join("data"), Some(&test_config(&class))).await;
    for expected in 1..=40 {
        let id = format!("s{}", expected % 3);
        let (status, body) = server.call("single", &id, "increment", "").await;
        assert_eq!(status, 200, "call {expected}: {body}");
    }
    let (status, body) = server.post("/v1/objects/single/s0/hibernate", "").await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = server.call("single", "s0", "get", "").await;
    assert_eq!(body["count"], 13);
}

async fn stalled_request_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None).await;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .write_all(b"POST /v1/objects/counter/x/call/get HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let held = started.elapsed();
    assert!(
        held < std::time::Duration::from_secs(20),
        "a stalled request held its connection for {held:?}"
    );
}
