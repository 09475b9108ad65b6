//! Stopping sandboxes: a handler that installs no SIGTERM handler stops at SIGTERM, a
//! handler's death by a signal is reported as such, and handler processes die with a runtime
//! killed by SIGKILL. Each runs under the isolation settings a host can have: as root with
//! namespaces and per-object users, without namespaces, and as the runtime's own user.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use libtest_mimic::Trial;
use serde_json::json;
use torpor::runtime::RuntimeError;

use crate::common::{Server, alive, eventually, test_config};
use crate::named_trials;
use crate::support::{call, faulty, key, ok, running_sandboxes, start};

pub fn trials() -> Vec<Trial> {
    named_trials![
        default_sigterm_stops_handler,
        signal_death_is_reported,
        handlers_die_with_killed_runtime,
    ]
}

/// `[sandbox]` tables for each way a sandbox can be set up, by name. Without root, the first
/// gives the same sandboxes as the last.
const ISOLATION: [(&str, &str); 3] = [
    ("default", ""),
    ("no namespaces", "[sandbox]\nnamespaces = false\n"),
    (
        "runtime user",
        "[sandbox]\nnamespaces = false\nuser = \"runtime\"\n",
    ),
];

async fn default_sigterm_stops_handler() {
    for (isolation, sandbox) in ISOLATION {
        let dir = tempfile::tempdir().unwrap();
        // A grace far above any stop, so a SIGKILL after it shows in the exit detail.
        let classes = format!(
            "{}{sandbox}",
            faulty("plain", &[("FAULT_DEFAULT_SIGTERM", "1")], "")
        );
        let config = test_config(&classes).replace("stop_grace = \"1s\"", "stop_grace = \"20s\"");
        let runtime = crate::common::runtime(dir.path(), &config).await;
        let x = key("plain", "x");
        ok(&runtime, &x, "increment", "").await;

        runtime.hibernate(&x, false).await.unwrap();
        let log = runtime.logs(&x, 64 * 1024).await.unwrap();
        assert!(
            log.contains("exited: killed by signal 15 (SIGTERM)"),
            "{isolation}: the handler did not stop at SIGTERM; log: {log}"
        );
        assert!(
            !log.contains("SIGKILL"),
            "{isolation}: the handler was killed; log: {log}"
        );
        runtime.shutdown().await;
    }
}

async fn signal_death_is_reported() {
    for (isolation, sandbox) in ISOLATION {
        let dir = tempfile::tempdir().unwrap();
        let runtime = start(dir.path(), &format!("{}{sandbox}", faulty("f", &[], ""))).await;
        let x = key("f", "x");
        ok(&runtime, &x, "increment", "").await;

        let err = call(&runtime, &x, "raise", r#"{"signal": 9}"#)
            .await
            .expect_err("a handler killed by SIGKILL cannot answer");
        assert!(
            matches!(err, RuntimeError::SandboxFailed { .. }),
            "{isolation}: {err}"
        );
        assert!(
            err.to_string().contains("killed by signal 9 (SIGKILL)"),
            "{isolation}: {err}"
        );
        assert_eq!(
            ok(&runtime, &x, "get", "").await["count"],
            json!(1),
            "{isolation}: the next call wakes it from its checkpoint"
        );
        runtime.shutdown().await;
    }
}

async fn handlers_die_with_killed_runtime() {
    for (isolation, sandbox) in ISOLATION {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = test_config(&format!("{}{sandbox}", faulty("f", &[], "")));
        let mut server = Server::start(&data, Some(&config)).await;
        let namespaces = !server.log().contains("no namespaces for sandboxes");

        let (status, body) = server.call("counter", "a", "increment", "").await;
        assert_eq!(status, 200, "{isolation}: {body}");
        // A process the handler starts itself dies with the sandbox only where a pid
        // namespace holds it; elsewhere the next runtime stops it through the sandbox's cgroup.
        let spawn = if namespaces { 1 } else { 0 };
        let (status, body) = server
            .call(
                "f",
                "b",
                "spawn",
                &format!(r#"{{"count": {spawn}, "seconds": 288}}"#),
            )
            .await;
        assert_eq!(status, 200, "{isolation}: {body}");
        assert_eq!(body["spawned"], json!(spawn), "{isolation}: {body}");

        let mut roots = running_sandboxes(&data, "counter");
        roots.extend(running_sandboxes(&data, "f"));
        assert_eq!(roots.len(), 2, "{isolation}: two sandboxes run");
        let processes = with_descendants(&roots);
        assert!(
            processes.len() >= 2 + spawn,
            "{isolation}: found only {processes:?}"
        );

        server.stop(libc::SIGKILL);
        let gone = eventually(Duration::from_secs(5), || {
            processes.iter().all(|&pid| !alive(pid))
        })
        .await;
        let left: Vec<String> = processes
            .iter()
            .filter(|&&pid| alive(pid))
            .map(|&pid| describe(pid))
            .collect();
        for &pid in &processes {
            if alive(pid) {
                // SAFETY: kill(2) on a process of a sandbox this test started.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
        // A runtime on the same data directory removes the cgroups the killed one left.
        let port = server.port;
        drop(server);
        let config_path = Some(data.with_extension("toml"));
        drop(Server::start_on(&data, config_path, port).await);

        assert!(
            gone,
            "{isolation}: sandbox processes outlived the runtime: {left:?}"
        );
    }
}

/// Returns `roots` and every process descended from them, from the parent pids in `/proc`.
fn with_descendants(roots: &[u32]) -> HashSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(parent) = parent_of(pid) {
            children.entry(parent).or_default().push(pid);
        }
    }
    let mut found: HashSet<u32> = HashSet::new();
    let mut pending: Vec<u32> = roots.to_vec();
    while let Some(pid) = pending.pop() {
        if found.insert(pid) {
            pending.extend(children.get(&pid).into_iter().flatten());
        }
    }
    found
}

/// Reads the parent pid from `/proc/PID/stat`, whose fourth field it is (after the command
/// name in brackets, which may contain spaces).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn describe(pid: u32) -> String {
    let cmdline =
        std::fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    format!("{pid} ({})", cmdline.trim())
}
