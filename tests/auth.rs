//! API authentication and request hygiene of a real `torpor --serve`: tokens, read-only
//! tokens, generated token files, refused addresses, and the checks every request passes
//! before it reaches a route.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::{Server, TOKEN, test_config};
use futures::StreamExt;
use serde_json::{Value, json};

async fn request(method: reqwest::Method, url: &str, token: Option<&str>) -> (u16, Value) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn requests_need_the_right_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = data.with_extension("toml");
    std::fs::write(&config, test_config("")).unwrap();
    let reader = "read-only-token-0123456789";
    let vars = [("TORPOR_READ_TOKEN", reader)];
    let server = Server::start_with_env(&data, Some(config), common::free_port(), &vars).await;
    let base = server.url("");
    let call = format!("{base}/v1/objects/counter/guarded/call/increment");

    let (status, body) = request(reqwest::Method::POST, &call, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing API token"),
        "{body}"
    );
    let (status, body) =
        request(reqwest::Method::POST, &call, Some("wrong-token-0123456789")).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = request(
        reqwest::Method::GET,
        &format!("{base}/v1/objects/counter/guarded"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 404, "rejected calls created nothing");

    let (status, body) = request(reqwest::Method::POST, &call, Some(reader)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("read-only"),
        "{body}"
    );
    let (status, body) = request(reqwest::Method::POST, &call, Some(TOKEN)).await;
    assert_eq!((status, body), (200, json!({ "count": 1 })));
    let (status, body) = request(
        reqwest::Method::GET,
        &format!("{base}/v1/objects/counter/guarded"),
        Some(reader),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["storage"], json!({ "count": 1 }));
    let (status, _) = request(
        reqwest::Method::DELETE,
        &format!("{base}/v1/objects/counter/guarded"),
        Some(reader),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = request(reqwest::Method::GET, &format!("{base}/v1/health"), None).await;
    assert_eq!(status, 200, "health needs no token: {body}");
}

#[tokio::test]
async fn loopback_server_generates_private_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = common::free_port();
    let mut child = Command::new(common::bin())
        .args([
            "--serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .env_remove("TORPOR_TOKEN")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let token_file = data.join("api-token");
    assert!(
        common::eventually(Duration::from_secs(20), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok())
        .await
    );
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "token file readable by others");

    let call = format!("http://127.0.0.1:{port}/v1/objects/counter/c/call/increment");
    assert_eq!(request(reqwest::Method::POST, &call, None).await.0, 401);
    assert_eq!(
        request(reqwest::Method::POST, &call, Some(&token)).await.0,
        200
    );

    // The client subcommands find the token of a server on this machine by themselves.
    let output = Command::new(common::bin())
        .args(["call", "counter", "c", "get"])
        .env("TORPOR_SERVER", format!("http://127.0.0.1:{port}"))
        .env("TORPOR_DATA_DIR", &data)
        .env_remove("TORPOR_TOKEN")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "{\"count\":1}",
        "{output:?}"
    );

    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    assert!(
        log.contains(&token_file.display().to_string()),
        "the server says where its token is: {log}"
    );
    assert!(!log.contains(&token), "the token itself is never printed");
}

#[test]
fn public_address_without_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // An address from TEST-NET-1 (RFC 5737): refused before anything is bound.
    for extra in [&[][..], &["--no-auth"][..]] {
        let output = Command::new(common::bin())
            .args(["--serve", "--listen", "192.0.2.1:7070", "--data-dir"])
            .arg(dir.path())
            .args(extra)
            .env_remove("TORPOR_TOKEN")
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("192.0.2.1:7070"), "{stderr}");
        assert!(
            stderr.contains("requires an API token")
                || stderr.contains("only allowed on a loopback"),
            "{stderr}"
        );
    }
    let output = Command::new(common::bin())
        .args(["--serve", "--listen", "127.0.0.1:7070", "--data-dir"])
        .arg(dir.path())
        .env("TORPOR_TOKEN", "short")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("use at least 16") && !stderr.contains("\"short\""),
        "{stderr}"
    );
}

/// Sends `head` (and nothing more) on a raw socket and returns the response.
fn raw(port: u16, head: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn request_checks_name_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config("[limits]\nmax_event_subscribers = 2\n");
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;
    server.call("counter", "c", "increment", "").await;

    let declared = raw(
        server.port,
        &format!(
            "POST /v1/objects/counter/c/call/increment HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 99999999999\r\n\r\n"
        ),
    );
    assert!(
        declared.starts_with("HTTP/1.1 413"),
        "a declared oversized body is refused unread: {declared}"
    );
    assert!(declared.contains("99999999999"), "{declared}");

    for (path, named) in [
        ("/v1/objects?limit=-1", "limit \\\"-1\\\""),
        ("/v1/objects?limt=5", "\\\"limt\\\""),
        ("/v1/objects/counter/c/hibernate?force=1", "force \\\"1\\\""),
        (
            "/v1/objects/counter/c/logs?bytes=lots",
            "bytes \\\"lots\\\"",
        ),
    ] {
        let method = if path.contains("hibernate") {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let response = server
            .http
            .request(method, server.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let text = response.text().await.unwrap();
        assert!(text.contains(named), "{path}: {named} not named in {text}");
    }

    let put = |body: &'static str| {
        server
            .http
            .put(server.url("/v1/objects/counter/c/idle-timeout"))
            .body(body)
            .send()
    };
    for (body, named) in [
        ("{\"idle_timeot_ms\": 4000}", "idle_timeot_ms"),
        ("{}", "missing field"),
        ("[1]", "[1]"),
    ] {
        let response = put(body).await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        assert!(response.text().await.unwrap().contains(named), "{body}");
    }
    let (_, record) = server.get("/v1/objects/counter/c").await;
    assert_eq!(
        record["idle_timeout_overridden"], false,
        "rejected bodies changed nothing"
    );
    // Sent raw: the server sends its response before reading the body, so a client still
    // writing 2 MiB would see its connection closed instead of the response.
    let oversized = raw(
        server.port,
        &format!(
            "PUT /v1/objects/counter/c/idle-timeout HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 2097152\r\n\r\n"
        ),
    );
    assert!(oversized.starts_with("HTTP/1.1 413"), "{oversized}");
    assert!(oversized.contains("2097152"), "{oversized}");

    let client = torpor::api::Client::new(&server.url(""), Some(TOKEN)).unwrap();
    let _first = client.events(None).await.unwrap();
    let _second = client.events(None).await.unwrap();
    let Err(err) = client.events(None).await else {
        panic!("a third event stream was accepted")
    };
    assert!(
        err.to_string().contains("limits.max_event_subscribers"),
        "{err}"
    );
    // An invalid position is rejected before the subscriber limit is checked.
    let (status, body) = server.get("/v1/events?since=abc").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"abc\""),
        "{body}"
    );
}

#[tokio::test]
async fn events_arrive_in_order_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None).await;
    let client = torpor::api::Client::new(&server.url(""), Some(TOKEN)).unwrap();
    let mut events = std::pin::pin!(client.events(None).await.unwrap());
    let calls = (0..80).map(|i| {
        let http = server.http.clone();
        let url = server.url(&format!("/v1/objects/counter/o{}/call/increment", i % 8));
        tokio::spawn(async move { http.post(url).send().await.unwrap().status() })
    });
    for status in futures::future::join_all(calls).await {
        assert_eq!(status.unwrap(), 200);
    }
    let mut last = 0;
    let mut calls_seen = 0;
    while calls_seen < 80 {
        let item = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let torpor::api::client::StreamItem::Event { event, .. } = item {
            assert!(event.seq > last, "event {} after {last}", event.seq);
            last = event.seq;
            if event.kind.name() == "call" {
                calls_seen += 1;
            }
        }
    }
}
