//! A sandbox that attacks its host: writes outside its folder, connects out, reads the
//! runtime's environment, signals the runtime, forks without end and allocates past its
//! memory limit. Each attempt must fail or be stopped and reported, while the runtime and
//! the other objects carry on. A test whose protection this host cannot give prints why and
//! checks nothing else.

use std::time::Duration;

use libtest_mimic::Trial;
use serde_json::{Value, json};
use torpor::model::Status;
use torpor::runtime::{Runtime, RuntimeError};

use crate::common::{Server, eventually};
use crate::named_trials;
use crate::support::{call, faulty, key, ok, processes_running, start};

pub fn trials() -> Vec<Trial> {
    named_trials![
        writes_stay_inside_sandbox_folder,
        outbound_connections_are_refused,
        environment_holds_no_runtime_secrets,
        signals_cannot_reach_the_runtime,
        fork_bomb_is_contained,
        memory_hog_is_stopped_and_reported,
        sandboxes_run_as_their_own_users,
    ]
}

/// The first isolation warning mentioning any of `topics`, as the reason to skip a test.
fn missing(runtime: &Runtime, topics: &[&str]) -> Option<String> {
    runtime
        .isolation_warnings()
        .into_iter()
        .find(|w| topics.iter().any(|t| w.contains(t)))
}

fn skip(test: &str, reason: &str) {
    eprintln!("skipping {test}: this host cannot give the protection it checks ({reason})");
}

fn refused(answer: &Value) -> bool {
    answer["ok"] == json!(false)
}

async fn writes_stay_inside_sandbox_folder() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), &faulty("f", &[], "")).await;
    if let Some(reason) = missing(&runtime, &["has no Landlock", "Landlock is turned off"]) {
        return skip("writes_stay_inside_sandbox_folder", &reason);
    }
    let x = key("f", "x");
    assert_eq!(
        ok(&runtime, &x, "write", r#"{"path": "inside.txt"}"#).await,
        json!({ "ok": true })
    );

    let escape = std::env::temp_dir().join(format!("torpor-escape-{}", std::process::id()));
    let store = dir.path().join("torpor.db");
    let store_before = std::fs::read(&store).unwrap();
    for path in [
        escape.display().to_string(),
        "../escaped.txt".into(),
        store.display().to_string(),
    ] {
        let answer = ok(&runtime, &x, "write", &json!({ "path": path }).to_string()).await;
        assert!(refused(&answer), "the sandbox wrote {path}: {answer}");
    }
    assert!(!escape.exists(), "{} was created", escape.display());
    assert_eq!(
        std::fs::read(&store).unwrap(),
        store_before,
        "the store was changed from inside a sandbox"
    );
    assert_eq!(
        ok(&runtime, &x, "increment", "").await,
        json!({ "count": 1 }),
        "the object carries on"
    );
    runtime.shutdown().await;
}

async fn outbound_connections_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), &faulty("f", &[], "")).await;
    let topics = [
        "has no Landlock",
        "Landlock is turned off",
        "cannot restrict TCP",
    ];
    if let Some(reason) = missing(&runtime, &topics) {
        return skip("outbound_connections_are_refused", &reason);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let x = key("f", "x");
    let answer = ok(
        &runtime,
        &x,
        "connect",
        &json!({ "port": port }).to_string(),
    )
    .await;
    assert!(refused(&answer), "the sandbox connected out: {answer}");
    let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
    assert!(
        accepted.is_err(),
        "the listener saw a connection from the sandbox"
    );
    assert_eq!(
        ok(&runtime, &x, "increment", "").await,
        json!({ "count": 1 })
    );
    runtime.shutdown().await;
}

async fn environment_holds_no_runtime_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::common::test_config(&faulty("f", &[], ""));
    let server = Server::start(&dir.path().join("data"), Some(&config)).await;
    let (status, answer) = server.call("f", "x", "environ", "").await;
    assert_eq!(status, 200, "{answer}");
    let vars = answer["vars"].as_object().unwrap();
    let allowed = [
        "PATH",
        "HOME",
        "LANG",
        "PYTHONUNBUFFERED",
        "TORPOR_CLASS",
        "TORPOR_OBJECT_ID",
        "TORPOR_SANDBOX",
        "TORPOR_GENERATION",
        "TORPOR_LISTEN",
        "TORPOR_LISTEN_FD",
        "FAULTY_HANDLER",
    ];
    for name in vars.keys() {
        assert!(allowed.contains(&name.as_str()), "the sandbox sees {name}");
    }
    assert!(
        !answer.to_string().contains(crate::common::TOKEN),
        "the API token reached the sandbox"
    );

    let environ = format!("/proc/{}/environ", server.child.id());
    let (_, answer) = server
        .call("f", "x", "read", &json!({ "path": environ }).to_string())
        .await;
    assert!(
        refused(&answer),
        "the sandbox read the runtime's environment: {answer}"
    );
}

async fn signals_cannot_reach_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), &faulty("f", &[], "")).await;
    if let Some(reason) = missing(
        &runtime,
        &[
            "no namespaces",
            "cannot scope signals",
            "this kernel has no Landlock",
        ],
    ) {
        return skip("signals_cannot_reach_the_runtime", &reason);
    }
    let x = key("f", "x");
    let answer = ok(
        &runtime,
        &x,
        "signal",
        &json!({ "pid": std::process::id() }).to_string(),
    )
    .await;
    assert!(
        refused(&answer),
        "the sandbox signalled the runtime: {answer}"
    );
    assert_eq!(
        ok(&runtime, &x, "increment", "").await,
        json!({ "count": 1 })
    );
    runtime.shutdown().await;
}

async fn fork_bomb_is_contained() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), &faulty("f", &[], "max_processes = 12")).await;
    if let Some(reason) = missing(&runtime, &["no cgroups"]) {
        return skip("fork_bomb_is_contained", &reason);
    }
    let bomb = key("f", "bomb");
    let answer = ok(&runtime, &bomb, "spawn", r#"{"count": 500}"#).await;
    let spawned = answer["spawned"].as_u64().unwrap();
    assert!(
        spawned < 12,
        "{spawned} processes started past a limit of 12: {answer}"
    );
    assert!(
        answer["error"].is_string(),
        "the limit refused further forks: {answer}"
    );

    assert_eq!(
        ok(&runtime, &key("f", "other"), "increment", "").await,
        json!({ "count": 1 })
    );
    runtime.hibernate(&bomb, false).await.unwrap();
    let cleared = eventually(Duration::from_secs(5), || {
        processes_running(&["sleep", "289"]).is_empty()
    })
    .await;
    assert!(cleared, "the sandbox's children outlived its hibernation");
    runtime.shutdown().await;
}

async fn memory_hog_is_stopped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), &faulty("f", &[], "memory_mb = 48")).await;
    if let Some(reason) = missing(&runtime, &["no cgroups"]) {
        return skip("memory_hog_is_stopped_and_reported", &reason);
    }
    let hog = key("f", "hog");
    ok(&runtime, &hog, "increment", "{\"by\": 3}").await;
    let err = call(&runtime, &hog, "allocate", r#"{"mb": 400}"#)
        .await
        .expect_err("400 MB fit in 48 MiB");
    assert!(matches!(err, RuntimeError::SandboxFailed { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("exceeded its memory limit of 48 MiB"),
        "{err}"
    );
    let record = runtime.get(&hog).await.unwrap();
    assert_eq!(record.status, Status::Hibernated);
    assert!(
        record
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("memory limit"),
        "{record:?}"
    );

    assert_eq!(
        ok(&runtime, &key("f", "other"), "increment", "").await,
        json!({ "count": 1 })
    );
    assert_eq!(
        ok(&runtime, &hog, "increment", "").await,
        json!({ "count": 4 }),
        "woke from its checkpoint"
    );
    runtime.shutdown().await;
}

async fn sandboxes_run_as_their_own_users() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), &faulty("f", &[], "")).await;
    if let Some(reason) = missing(&runtime, &["run as the runtime's own user", "run as root"]) {
        return skip("sandboxes_run_as_their_own_users", &reason);
    }
    let first = ok(&runtime, &key("f", "one"), "environ", "").await["uid"]
        .as_u64()
        .unwrap();
    let second = ok(&runtime, &key("f", "two"), "environ", "").await["uid"]
        .as_u64()
        .unwrap();
    assert!(
        first >= 200_000 && second >= 200_000,
        "uids {first} and {second}"
    );
    assert_ne!(first, second, "two objects share a user");
    runtime.shutdown().await;
}
