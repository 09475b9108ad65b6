//! Learning when containers end: one subscription to the engine's events for every container
//! of this runtime, and an inspect of each container that died for its exit code and whether
//! the kernel killed it for memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::EventsOptions;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::engine::OWNER_LABEL;
use crate::sandbox::ExitInfo;

/// Running containers by name, each with the sender of its sandbox's exit.
#[derive(Clone, Default)]
pub struct Watches {
    inner: Arc<Mutex<HashMap<String, Watch>>>,
}

struct Watch {
    sender: watch::Sender<Option<ExitInfo>>,
    memory_mb: u64,
    /// Whether the kernel killed the container for memory, from its cgroup, where the
    /// engine cannot tell.
    oom: Option<JoinHandle<bool>>,
}

impl Watches {
    pub fn add(&self, container: &str, memory_mb: u64) -> watch::Receiver<Option<ExitInfo>> {
        let (sender, receiver) = watch::channel(None);
        if let Ok(mut watches) = self.inner.lock() {
            let watch = Watch {
                sender,
                memory_mb,
                oom: None,
            };
            watches.insert(container.to_owned(), watch);
        }
        receiver
    }

    /// Adds a check of the container's memory cgroup to the report of its exit.
    pub fn watch_memory(&self, container: &str, oom: JoinHandle<bool>) {
        if let Ok(mut watches) = self.inner.lock()
            && let Some(watch) = watches.get_mut(container)
        {
            watch.oom = Some(oom);
        } else {
            oom.abort();
        }
    }

    pub fn remove(&self, container: &str) {
        if let Ok(mut watches) = self.inner.lock() {
            watches.remove(container);
        }
    }

    fn names(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|watches| watches.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn watched(&self, container: &str) -> bool {
        self.inner
            .lock()
            .is_ok_and(|watches| watches.contains_key(container))
    }

    /// Checks `container` with the engine and reports its exit if it has stopped.
    pub async fn check(&self, engine: &Docker, container: &str) {
        if !self.watched(container) {
            return;
        }
        match engine.inspect_container(container, None).await {
            Ok(info) => self.report(container, &info).await,
            Err(err) if super::engine::is_not_found(&err) => {
                let detail = "the container was removed from the engine".to_owned();
                self.finish(container, detail, false).await
            }
            // The engine is unreachable: the next event or reconnection checks again.
            Err(_) => {}
        }
    }

    /// Reports the exit of `container` if `info` shows it stopped. A container that runs
    /// again after a stop is not reported: the event was about its earlier run.
    pub async fn report(&self, container: &str, info: &ContainerInspectResponse) {
        let state = info.state.clone().unwrap_or_default();
        if state.running == Some(true) {
            return;
        }
        let detail = format!("exit status {}", state.exit_code.unwrap_or(-1));
        self.finish(container, detail, state.oom_killed == Some(true))
            .await;
    }

    /// Reports the exit of `container` and stops watching it.
    async fn finish(&self, container: &str, mut detail: String, oom_killed: bool) {
        let watch = self.inner.lock().ok().and_then(|mut w| w.remove(container));
        let Some(watch) = watch else { return };
        let mut oom_killed = oom_killed;
        if let Some(oom) = watch.oom {
            // The process has ended by now, so the cgroup check is done or about to be.
            let checked = tokio::time::timeout(Duration::from_secs(1), oom).await;
            oom_killed |= matches!(checked, Ok(Ok(true)));
        }
        if oom_killed {
            detail.push_str(&format!(
                "; it exceeded its memory limit of {} MiB",
                watch.memory_mb
            ));
        }
        let _ = watch.sender.send(Some(ExitInfo { detail }));
    }
}

/// Follows the engine's container events for this runtime's containers until the driver is
/// closed. After a broken subscription it checks every watched container, so an exit during
/// the gap is still reported.
pub async fn follow(engine: Docker, owner: String, watches: Watches) {
    // Only the type is filtered on the engine: Podman 4 ignores label and event filters on
    // this route, so the rest is matched here.
    let filters = HashMap::from([("type".to_owned(), vec!["container".to_owned()])]);
    loop {
        let options = EventsOptions {
            filters: Some(filters.clone()),
            ..Default::default()
        };
        let mut events = engine.events(Some(options));
        while let Some(event) = events.next().await {
            let Ok(event) = event else { break };
            let ended = matches!(
                event.action.as_deref(),
                Some("die" | "died" | "destroy" | "remove")
            );
            let Some(attributes) = event.actor.and_then(|actor| actor.attributes) else {
                continue;
            };
            if !ended || attributes.get(OWNER_LABEL) != Some(&owner) {
                continue;
            }
            // An `oom` event comes before the `die` that follows it; the inspect at `die`
            // reports it.
            if let Some(name) = attributes.get("name") {
                watches.check(&engine, name).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        for name in watches.names() {
            watches.check(&engine, &name).await;
        }
    }
}
