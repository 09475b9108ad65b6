//! Configuration and observation helpers shared by the scenarios.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::broadcast;
use torpor::model::{Event, EventKind, MethodName, ObjectKey};
use torpor::runtime::{CallRequest, Runtime, RuntimeError};

static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// A copy of this test executable that any user can run, for sandboxes that run as their own
/// unprivileged user: the build folder may sit in a folder only its owner can enter.
pub fn handler_program() -> &'static Path {
    PROGRAM.get_or_init(|| {
        let folder = program_folder();
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        let program = folder.join("faulty-handler");
        std::fs::copy(std::env::current_exe().unwrap(), &program).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        program
    })
}

/// The folder `handler_program` copies into, removed when the tests end.
pub fn program_folder() -> PathBuf {
    std::env::temp_dir().join(format!("torpor-faults-{}", std::process::id()))
}

/// A `[classes.NAME]` table running the faulty handler with extra environment and settings.
pub fn faulty(name: &str, env: &[(&str, &str)], settings: &str) -> String {
    let exe = handler_program();
    let mut vars = vec!["FAULTY_HANDLER = \"1\"".to_owned()];
    vars.extend(env.iter().map(|(k, v)| format!("{k} = \"{v}\"")));
    format!(
        "[classes.{name}]\ncommand = [\"{}\"]\nenv = {{ {} }}\n{settings}\n",
        exe.display(),
        vars.join(", ")
    )
}

pub fn key(class: &str, id: &str) -> ObjectKey {
    ObjectKey::parse(class, id).unwrap()
}

pub async fn start(dir: &Path, classes: &str) -> Runtime {
    crate::common::runtime(dir, &crate::common::test_config(classes)).await
}

/// Calls a method through the Rust API; returns the status and the JSON body.
pub async fn call(
    runtime: &Runtime,
    key: &ObjectKey,
    method: &str,
    body: &str,
) -> Result<(u16, Value), RuntimeError> {
    let request = CallRequest {
        method: MethodName::parse(method).unwrap(),
        body: Bytes::from(body.to_owned()),
        content_type: None,
    };
    let reply = runtime.call(key, request).await?;
    let value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&reply.body).into()));
    Ok((reply.status, value))
}

/// Calls a method that must succeed and returns its JSON body.
pub async fn ok(runtime: &Runtime, key: &ObjectKey, method: &str, body: &str) -> Value {
    let (status, value) = call(runtime, key, method, body)
        .await
        .unwrap_or_else(|e| panic!("{method} on {key} failed: {e}"));
    assert_eq!(status, 200, "{method} on {key}: {value}");
    value
}

/// Waits for an event of `name` about `key`; panics with what arrived if none comes in time.
pub async fn next_event(
    events: &mut broadcast::Receiver<Event>,
    key: &ObjectKey,
    name: &str,
    timeout: Duration,
) -> Event {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(timeout, async {
        loop {
            let event = events.recv().await.unwrap();
            if event.class == key.class.as_str() && event.id == key.id.as_str() {
                if event.kind.name() == name {
                    return event;
                }
                seen.push(event.kind.name());
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no {name} event for {key} within {timeout:?}; saw {seen:?}"))
}

/// Counts events of `kind` for `key` among those already received.
pub fn count_events(
    events: &mut broadcast::Receiver<Event>,
    key: &ObjectKey,
    matches: fn(&EventKind) -> bool,
) -> usize {
    let mut count = 0;
    while let Ok(event) = events.try_recv() {
        if event.class == key.class.as_str() && event.id == key.id.as_str() && matches(&event.kind)
        {
            count += 1;
        }
    }
    count
}

/// Counts the sandboxes of `class` under `data` whose faulty handler started (it writes
/// `handler.pid` into its working folder).
pub fn started_sandboxes(data: &Path, class: &str) -> usize {
    sandbox_folders(data, class)
        .filter(|folder| folder.join("work/handler.pid").exists())
        .count()
}

/// Returns the host pids of the sandboxes of `class` still running: the process driver keeps
/// a pid file in each sandbox folder until the process has exited.
pub fn running_sandboxes(data: &Path, class: &str) -> Vec<u32> {
    sandbox_folders(data, class)
        .filter_map(|folder| std::fs::read_to_string(folder.join("pid")).ok())
        .filter_map(|text| text.split_whitespace().next()?.parse().ok())
        .collect()
}

fn sandbox_folders(data: &Path, class: &str) -> impl Iterator<Item = std::path::PathBuf> {
    let prefix = format!("{class}.");
    std::fs::read_dir(data.join("sandboxes"))
        .unwrap()
        .flatten()
        .filter(move |entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| entry.path())
}

/// Returns the pids of processes whose command line is exactly `argv`.
pub fn processes_running(argv: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = argv.iter().flat_map(|arg| arg.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            (cmdline == wanted && crate::common::alive(pid)).then_some(pid)
        })
        .collect()
}
