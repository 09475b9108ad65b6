//! Image classes under the container driver, against a real engine (Podman's or Docker's API
//! service). The counter survives hibernation, wakes and restarts as a container, and the
//! memory limit is enforced. Containers removed or left running behind the runtime's back are
//! handled, and objects never share a port. Each scenario skips, saying why, where no engine
//! responds.

use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::RemoveContainerOptions;
use libtest_mimic::Trial;
use serde_json::json;
use torpor::model::Status;

use crate::common::{Server, test_config};
use crate::images::{Engine, client, engine};
use crate::named_trials;
use crate::support::{call, key, next_event, ok, start};

pub fn trials() -> Vec<Trial> {
    named_trials![
        missing_engine_socket_stops_start_up,
        counter_container_survives_hibernation_and_restart,
        container_memory_limit_stops_and_reports,
        removed_container_is_recreated,
        orphaned_container_is_stopped_at_start_up,
        objects_never_share_a_port,
        warm_tier_pauses_containers,
        discarded_filesystem_and_changed_settings,
    ]
}

fn engine_or_skip(test: &str) -> Option<&'static Engine> {
    match engine() {
        Ok(engine) => Some(engine),
        Err(reason) => {
            eprintln!("skipping {test}: {reason}");
            None
        }
    }
}

/// Image classes on `engine`: `boxed` runs the demo image's counter, `faulty` this executable
/// as a faulty handler.
fn classes(engine: &Engine, extra: &str) -> String {
    format!(
        r#"
[container]
socket = "{socket}"

[classes.boxed]
image = "{demo}"
command = ["/torpor", "object-host", "counter"]

[classes.faulty]
image = "{faulty}"
command = ["/torpor"]
env = {{ FAULTY_HANDLER = "1" }}
{extra}
"#,
        socket = engine.socket,
        demo = engine.demo_image,
        faulty = engine.faulty_image,
    )
}

/// Inspects the container named `name`.
async fn container_of(docker: &Docker, name: &str) -> bollard::models::ContainerInspectResponse {
    docker.inspect_container(name, None).await.unwrap()
}

/// Returns whether a container named `name` exists.
async fn exists(docker: &Docker, name: &str) -> bool {
    match docker.inspect_container(name, None).await {
        Ok(_) => true,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => false,
        Err(err) => panic!("cannot inspect {name}: {err}"),
    }
}

/// Returns the container name of an active object's sandbox.
async fn container_name(
    runtime: &torpor::runtime::Runtime,
    object: &torpor::model::ObjectKey,
) -> String {
    let record = runtime.get(object).await.unwrap();
    record
        .sandbox
        .as_ref()
        .and_then(|s| s.container.clone())
        .unwrap_or_else(|| panic!("{object} has no container: {record:?}"))
}

fn running(info: &bollard::models::ContainerInspectResponse) -> bool {
    info.state.as_ref().and_then(|s| s.running) == Some(true)
}

fn paused(info: &bollard::models::ContainerInspectResponse) -> bool {
    info.state.as_ref().and_then(|s| s.paused) == Some(true)
}

async fn missing_engine_socket_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("no-engine.sock");
    let config = test_config(&format!(
        "[container]\nsocket = \"unix://{}\"\n[classes.boxed]\nimage = \"torpor-demo\"\n",
        socket.display()
    ));
    let config = torpor::config::Config::parse(&config, dir.path()).unwrap();
    let err = torpor::runtime::Runtime::start(torpor::runtime::RuntimeOptions {
        config,
        data_dir: dir.path().join("data"),
        host_program: crate::common::bin(),
    })
    .await
    .err()
    .expect("a runtime with image classes refuses to start without an engine");
    let message = format!("{err:#}");
    assert!(
        message.contains("image classes need a container engine"),
        "{message}"
    );
    assert!(message.contains(&socket.display().to_string()), "{message}");
    assert!(message.contains("does not exist"), "{message}");
}

async fn counter_container_survives_hibernation_and_restart() {
    let Some(engine) = engine_or_skip("counter_container_survives_hibernation_and_restart") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        Some(&test_config(&classes(engine, ""))),
    )
    .await;
    for expected in 1..=3 {
        let (status, body) = server.call("boxed", "alice", "increment", "").await;
        assert_eq!((status, body), (200, json!({ "count": expected })));
    }
    let (_, record) = server.get("/v1/objects/boxed/alice").await;
    assert_eq!(record["sandbox"]["driver"], "container", "{record}");
    let docker = client(engine);
    let sandbox = record["sandbox"]["container"].as_str().unwrap().to_owned();
    assert!(running(&container_of(&docker, &sandbox).await));

    let (status, record) = server.post("/v1/objects/boxed/alice/hibernate", "").await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["status"], "hibernated");
    let stopped = container_of(&docker, &sandbox).await;
    assert!(
        !running(&stopped),
        "hibernation stops the container and keeps it"
    );

    assert_eq!(
        server.call("boxed", "alice", "increment", "").await.1,
        json!({ "count": 4 })
    );
    let server = server.restart(libc::SIGTERM).await;
    assert_eq!(
        server.call("boxed", "alice", "increment", "").await.1,
        json!({ "count": 5 })
    );
    let (status, _) = server.call("boxed", "alice", "get", "").await;
    assert_eq!(status, 200);
    let (_, record) = server.get("/v1/objects/boxed/alice").await;
    assert_eq!(
        record["sandbox"]["container"],
        sandbox.as_str(),
        "the same container serves again"
    );

    let (status, _) = server.post("/v1/objects/boxed/alice/call/reset", "").await;
    assert_eq!(status, 200);
    let response = server
        .http
        .delete(server.url("/v1/objects/boxed/alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(
        !exists(&docker, &sandbox).await,
        "deleting the object removes its container"
    );
}

async fn container_memory_limit_stops_and_reports() {
    let Some(engine) = engine_or_skip("container_memory_limit_stops_and_reports") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), &classes(engine, "memory_mb = 48")).await;
    let hog = key("faulty", "hog");
    ok(&runtime, &hog, "increment", r#"{"by": 3}"#).await;
    ok(&runtime, &hog, "log", r#"{"line": "about to allocate"}"#).await;

    let err = call(&runtime, &hog, "allocate", r#"{"mb": 400}"#)
        .await
        .expect_err("allocating past the limit ends the container");
    assert!(
        err.to_string()
            .contains("exceeded its memory limit of 48 MiB"),
        "{err}"
    );

    let record = runtime.get(&hog).await.unwrap();
    assert!(
        record
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("memory limit"),
        "{record:?}"
    );
    let logs = runtime.logs(&hog, 10_000).await.unwrap();
    assert!(
        logs.contains("about to allocate"),
        "the container's log is the sandbox log: {logs:?}"
    );
    // The increment before the crash was checkpointed, so the next wake starts from it.
    assert_eq!(
        ok(&runtime, &hog, "increment", "").await,
        json!({ "count": 4 })
    );
    runtime.delete(&hog).await.unwrap();
    runtime.shutdown().await;
}

async fn removed_container_is_recreated() {
    let Some(engine) = engine_or_skip("removed_container_is_recreated") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), &classes(engine, "")).await;
    let docker = client(engine);
    let object = key("boxed", "gone");
    ok(&runtime, &object, "increment", "").await;
    let sandbox = container_name(&runtime, &object).await;
    let remove = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };

    // Removed while hibernated: the next call creates a new one.
    runtime.hibernate(&object, false).await.unwrap();
    let id = container_of(&docker, &sandbox).await.id.unwrap();
    docker
        .remove_container(&id, Some(remove.clone()))
        .await
        .unwrap();
    assert_eq!(
        ok(&runtime, &object, "increment", "").await,
        json!({ "count": 2 })
    );
    let recreated = container_of(&docker, &sandbox).await;
    assert_ne!(recreated.id.as_deref(), Some(id.as_str()));

    // Removed while it serves: the runtime hears of it and the next call wakes a new one.
    let (_, mut events) = runtime.subscribe();
    docker
        .remove_container(recreated.id.as_deref().unwrap(), Some(remove))
        .await
        .unwrap();
    crate::support::next_event(
        &mut events,
        &object,
        "sandbox_exited",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        runtime.get(&object).await.unwrap().status,
        Status::Hibernated
    );
    assert_eq!(
        ok(&runtime, &object, "increment", "").await,
        json!({ "count": 3 })
    );
    runtime.delete(&object).await.unwrap();
    runtime.shutdown().await;
}

async fn orphaned_container_is_stopped_at_start_up() {
    let Some(engine) = engine_or_skip("orphaned_container_is_stopped_at_start_up") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = test_config(&classes(engine, ""));
    let server = Server::start(&data, Some(&config)).await;
    server.call("boxed", "left", "increment", "").await;
    let (_, record) = server.get("/v1/objects/boxed/left").await;
    let sandbox = record["sandbox"]["container"].as_str().unwrap().to_owned();
    // A killed runtime cannot stop its containers: the engine keeps them running.
    let server = server.restart(libc::SIGKILL).await;
    let docker = client(engine);
    assert!(
        !running(&container_of(&docker, &sandbox).await),
        "the new runtime stopped the container the killed one left running"
    );
    assert!(
        server.log().contains("stopped sandboxes"),
        "{}",
        server.log()
    );
    assert_eq!(
        server.call("boxed", "left", "increment", "").await.1,
        json!({ "count": 2 })
    );
}

async fn objects_never_share_a_port() {
    let Some(engine) = engine_or_skip("objects_never_share_a_port") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let runtime = start(dir.path(), &classes(engine, "")).await;
    let keys: Vec<_> = (0..6).map(|i| key("boxed", &format!("o{i}"))).collect();
    let calls = keys.iter().enumerate().map(|(i, object)| {
        let body = format!(r#"{{"by": {}}}"#, i + 1);
        let runtime = &runtime;
        async move { ok(runtime, object, "increment", &body).await }
    });
    let counts = futures::future::join_all(calls).await;
    for (i, count) in counts.iter().enumerate() {
        assert_eq!(
            count,
            &json!({ "count": i + 1 }),
            "each object has its own state"
        );
    }

    let mut addresses = Vec::new();
    for object in &keys {
        let record = runtime.get(object).await.unwrap();
        addresses.push(record.sandbox.unwrap().address);
    }
    let mut distinct = addresses.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), keys.len(), "{addresses:?}");
    for object in &keys {
        runtime.delete(object).await.unwrap();
    }
    runtime.shutdown().await;
}

async fn warm_tier_pauses_containers() {
    let Some(engine) = engine_or_skip("warm_tier_pauses_containers") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let warm = "[classes.boxed]\nidle_timeout = \"300ms\"\nwarm_for = \"60s\"";
    let runtime = start(
        dir.path(),
        &classes(engine, "").replace("[classes.boxed]", warm),
    )
    .await;
    let docker = client(engine);
    let object = key("boxed", "warm");
    let (_, mut events) = runtime.subscribe();
    ok(&runtime, &object, "increment", "").await;
    let sandbox = container_name(&runtime, &object).await;

    let hibernated = next_event(&mut events, &object, "hibernated", Duration::from_secs(10)).await;
    assert!(
        format!("{:?}", hibernated.kind).contains("warm: true"),
        "{hibernated:?}"
    );
    assert!(runtime.get(&object).await.unwrap().warm);
    assert!(
        paused(&container_of(&docker, &sandbox).await),
        "a warm container is paused"
    );
    assert_eq!(
        ok(&runtime, &object, "increment", "").await,
        json!({ "count": 2 })
    );

    let woke = next_event(&mut events, &object, "woke", Duration::from_secs(5)).await;
    assert!(
        format!("{:?}", woke.kind).contains("warm: true"),
        "{woke:?}"
    );
    let info = container_of(&docker, &sandbox).await;
    assert!(running(&info), "a thawed container runs");
    assert!(!paused(&info), "a thawed container is no longer paused");
    runtime.delete(&object).await.unwrap();
    assert!(!exists(&docker, &sandbox).await);
    runtime.shutdown().await;
}

async fn discarded_filesystem_and_changed_settings() {
    let Some(engine) = engine_or_skip("discarded_filesystem_and_changed_settings") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let docker = client(engine);
    let object = key("boxed", "fresh");
    let discard = classes(engine, "").replace(
        "[classes.boxed]",
        "[classes.boxed]\nkeep_filesystem = false",
    );
    let runtime = start(dir.path(), &discard).await;
    ok(&runtime, &object, "increment", "").await;
    let sandbox = container_name(&runtime, &object).await;
    let first = container_of(&docker, &sandbox).await.id;
    runtime.hibernate(&object, false).await.unwrap();
    assert!(
        !exists(&docker, &sandbox).await,
        "keep_filesystem = false removes the container"
    );
    runtime.shutdown().await;
    drop(runtime);

    // A changed memory limit replaces the kept container rather than starting the old one.
    let runtime = start(dir.path(), &classes(engine, "")).await;
    assert_eq!(
        ok(&runtime, &object, "increment", "").await,
        json!({ "count": 2 })
    );
    runtime.hibernate(&object, false).await.unwrap();
    let kept = container_of(&docker, &sandbox).await;
    assert_ne!(kept.id, first);
    runtime.shutdown().await;
    drop(runtime);
    let changed = classes(engine, "").replace("[classes.boxed]", "[classes.boxed]\nmemory_mb = 96");
    let runtime = start(dir.path(), &changed).await;
    assert_eq!(
        ok(&runtime, &object, "increment", "").await,
        json!({ "count": 3 })
    );
    let replaced = container_of(&docker, &sandbox).await;
    assert_ne!(replaced.id, kept.id, "new settings, new container");
    let memory = replaced
        .host_config
        .and_then(|h| h.memory)
        .unwrap_or_default();
    assert_eq!(memory, 96 * 1024 * 1024);
    runtime.delete(&object).await.unwrap();
    runtime.shutdown().await;
}
