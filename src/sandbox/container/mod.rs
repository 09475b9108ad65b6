//! The container driver: each sandbox of an image class is a container, run through the Docker
//! Engine API that Docker and Podman both serve.
//!
//! A container is created once per object and started at each wake. Hibernation stops it and
//! keeps its filesystem unless the class sets `keep_filesystem = false`, and deleting the
//! object removes it. Every
//! container carries the runtime's owner label, so the next runtime on the same data directory
//! finds and stops the ones left running. The handler listens on port 9333 inside; the engine
//! publishes it on a loopback port it picks, so objects never collide.

mod engine;
mod exits;
mod oom;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StopContainerOptions,
};
use futures::StreamExt;

use super::pidfd::Pidfd;
use super::{ExitProbe, Sandbox, SandboxDriver, SandboxError, SandboxName, SandboxSpec};
use crate::config::ContainerSettings;
pub use engine::socket_address;
use exits::Watches;

/// Runs handlers as containers.
pub struct ContainerDriver {
    engine: Docker,
    /// Identifies this runtime's containers on a shared engine: a hash of the data directory.
    owner: String,
    stop_grace: Duration,
    watches: Watches,
    /// Whether each started container is removed when it stops.
    discard_on_stop: Mutex<HashMap<SandboxName, bool>>,
    events: tokio::task::JoinHandle<()>,
}

impl ContainerDriver {
    /// Connects to the engine; fails with what to do when it cannot be reached.
    pub async fn connect(
        settings: &ContainerSettings,
        data_dir: &Path,
        stop_grace: Duration,
    ) -> anyhow::Result<Self> {
        let engine = engine::connect(settings).await?;
        let scope = super::isolation::cgroup_scope(data_dir);
        let owner = scope
            .trim_start_matches("data-")
            .chars()
            .take(12)
            .collect::<String>();
        let watches = Watches::default();
        let events = tokio::spawn(exits::follow(
            engine.clone(),
            owner.clone(),
            watches.clone(),
        ));
        Ok(Self {
            engine,
            owner,
            stop_grace,
            watches,
            discard_on_stop: Mutex::new(HashMap::new()),
            events,
        })
    }

    fn container(&self, name: &SandboxName) -> String {
        engine::container_name(&self.owner, name)
    }

    fn io_error(&self, name: &SandboxName, err: &bollard::errors::Error) -> SandboxError {
        SandboxError::Io {
            name: name.to_string(),
            reason: engine::describe(err),
        }
    }

    /// Makes sure a container made from `spec`'s current settings exists and is stopped.
    /// Returns whether it was created now.
    async fn prepare(&self, spec: &SandboxSpec, container: &str) -> Result<bool, String> {
        let body = engine::create_body(spec, &self.owner);
        match self.engine.inspect_container(container, None).await {
            Ok(info) if engine::made_from(&info, &body) => {
                if info.state.as_ref().and_then(|s| s.running) == Some(true) {
                    // Left running by a stop that failed: its memory contains nothing the store
                    // lacks, and the handler must start from the storage the runtime pushes.
                    let _ = self.engine.unpause_container(container).await;
                    let options = StopContainerOptions {
                        t: Some(0),
                        signal: None,
                    };
                    self.engine
                        .stop_container(container, Some(options))
                        .await
                        .map_err(|e| engine::describe(&e))?;
                }
                return Ok(false);
            }
            Ok(_) => {
                tracing::info!(container, "class settings changed; replacing the container");
                self.remove(container).await?;
            }
            Err(err) if engine::is_not_found(&err) => {}
            Err(err) => return Err(engine::describe(&err)),
        }
        self.create(container, body).await?;
        Ok(true)
    }

    async fn create(
        &self,
        container: &str,
        body: bollard::models::ContainerCreateBody,
    ) -> Result<(), String> {
        let options = || CreateContainerOptions {
            name: Some(container.to_owned()),
            ..Default::default()
        };
        match self
            .engine
            .create_container(Some(options()), body.clone())
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if engine::is_not_found(&err) => {
                let image = body.image.clone().unwrap_or_default();
                self.pull(&image).await?;
                self.engine
                    .create_container(Some(options()), body)
                    .await
                    .map(|_| ())
                    .map_err(|e| engine::describe(&e))
            }
            Err(err) => Err(engine::describe(&err)),
        }
    }

    async fn pull(&self, image: &str) -> Result<(), String> {
        tracing::info!(image, "image not on the engine; pulling it");
        let options = CreateImageOptions {
            from_image: Some(image.to_owned()),
            ..Default::default()
        };
        let mut progress = self.engine.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            if let Err(err) = step {
                return Err(format!(
                    "image {image:?} is not on the engine and pulling it failed: {}",
                    engine::describe(&err)
                ));
            }
        }
        Ok(())
    }

    async fn remove(&self, container: &str) -> Result<(), String> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.engine.remove_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(err) if engine::is_not_found(&err) => Ok(()),
            Err(err) => Err(engine::describe(&err)),
        }
    }

    async fn inspect(&self, container: &str) -> Result<ContainerInspectResponse, String> {
        self.engine
            .inspect_container(container, None)
            .await
            .map_err(|e| engine::describe(&e))
    }

    async fn start_container(
        &self,
        spec: &SandboxSpec,
        container: &str,
    ) -> Result<Sandbox, String> {
        let created = self.prepare(spec, container).await?;
        if let Err(err) = self.engine.start_container(container, None).await {
            if created {
                return Err(engine::describe(&err));
            }
            // A kept container may no longer start: its published port taken by another
            // program, its network gone. A new one gets a fresh port.
            tracing::info!(container, error = %engine::describe(&err), "recreating a container that cannot start");
            self.remove(container).await?;
            let body = engine::create_body(spec, &self.owner);
            self.create(container, body).await?;
            self.engine
                .start_container(container, None)
                .await
                .map_err(|e| engine::describe(&e))?;
        }

        let exit = self.watches.add(container, spec.class.memory_mb);
        let info = self.inspect(container).await?;
        let pid = engine::local_pid(&info);
        let pidfd = pid.and_then(Pidfd::open).map(Arc::new);
        if let (Some(pid), Some(pidfd)) = (pid, &pidfd)
            && let Some(cgroup) = oom::MemoryCgroup::of(pid)
        {
            let check = tokio::spawn(oom::watch(Arc::clone(pidfd), cgroup));
            self.watches.watch_memory(container, check);
        }
        // Reports an exit that came before the watch was added.
        self.watches.report(container, &info).await;

        let Some(address) = engine::handler_address(&info) else {
            self.watches.remove(container);
            let _ = self.remove(container).await;
            return Err(format!(
                "the engine shows no address for port 9333 of {container}; network mode {:?} \
                 must publish ports or give the container an address",
                spec.class.container_network
            ));
        };
        if let Ok(mut discard) = self.discard_on_stop.lock() {
            discard.insert(spec.name.clone(), !spec.class.keep_filesystem);
        }
        let probe = pidfd.map(|fd| fd as Arc<dyn ExitProbe>);
        let sandbox = Sandbox::new(spec.name.clone(), address, pid, exit, probe);
        Ok(sandbox.in_container(container.to_owned()))
    }
}

impl Drop for ContainerDriver {
    fn drop(&mut self) {
        self.events.abort();
    }
}

#[async_trait]
impl SandboxDriver for ContainerDriver {
    fn kind(&self) -> &'static str {
        "container"
    }

    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    fn close(&self) {
        self.events.abort();
    }

    async fn start(&self, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        let container = self.container(&spec.name);
        self.start_container(spec, &container)
            .await
            .map_err(|reason| SandboxError::Start {
                name: spec.name.clone(),
                reason: format!("container {container}: {reason}"),
            })
    }

    async fn stop(&self, sandbox: &Sandbox) -> Result<(), SandboxError> {
        let container = self.container(&sandbox.name);
        if sandbox.exited().is_none() {
            // A paused container must run again to handle its stop signal.
            let _ = self.engine.unpause_container(&container).await;
            let options = StopContainerOptions {
                t: Some(self.stop_grace.as_secs_f64().ceil() as i32),
                signal: None,
            };
            match self.engine.stop_container(&container, Some(options)).await {
                Ok(()) => {}
                Err(err) if engine::is_not_found(&err) => {}
                // 304: it had stopped already.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 304, ..
                }) => {}
                Err(err) => return Err(self.io_error(&sandbox.name, &err)),
            }
            // The engine's event usually reports the exit at once; a check covers a missed one.
            if tokio::time::timeout(Duration::from_secs(2), sandbox.wait_exit())
                .await
                .is_err()
            {
                self.watches.check(&self.engine, &container).await;
            }
        }
        self.watches.remove(&container);
        let discard = self
            .discard_on_stop
            .lock()
            .ok()
            .and_then(|mut d| d.remove(&sandbox.name))
            .unwrap_or(false);
        if discard {
            self.remove(&container)
                .await
                .map_err(|reason| SandboxError::Io {
                    name: sandbox.name.to_string(),
                    reason,
                })?;
        }
        Ok(())
    }

    async fn freeze(&self, sandbox: &Sandbox) -> Result<(), SandboxError> {
        let container = self.container(&sandbox.name);
        self.engine
            .pause_container(&container)
            .await
            .map_err(|e| self.io_error(&sandbox.name, &e))
    }

    async fn thaw(&self, sandbox: &Sandbox) -> Result<(), SandboxError> {
        let container = self.container(&sandbox.name);
        self.engine
            .unpause_container(&container)
            .await
            .map_err(|e| self.io_error(&sandbox.name, &e))
    }

    async fn destroy(&self, name: &SandboxName) -> Result<(), SandboxError> {
        let container = self.container(name);
        self.watches.remove(&container);
        self.remove(&container)
            .await
            .map_err(|reason| SandboxError::Io {
                name: name.to_string(),
                reason,
            })
    }

    async fn logs(&self, name: &SandboxName, max_bytes: usize) -> Result<String, SandboxError> {
        let container = self.container(name);
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: "2000".into(),
            ..Default::default()
        };
        let mut stream = self.engine.logs(&container, Some(options));
        let mut text = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(output) => text.extend_from_slice(output.as_ref()),
                Err(err) if engine::is_not_found(&err) => break,
                Err(err) => return Err(self.io_error(name, &err)),
            }
        }
        let start = text.len().saturating_sub(max_bytes);
        Ok(String::from_utf8_lossy(&text[start..]).into_owned())
    }

    async fn reap_orphans(&self) -> Result<Vec<String>, SandboxError> {
        let options = ListContainersOptions {
            all: false,
            filters: Some(HashMap::from([(
                "label".to_owned(),
                vec![format!("{}={}", engine::OWNER_LABEL, self.owner)],
            )])),
            ..Default::default()
        };
        let listed = self
            .engine
            .list_containers(Some(options))
            .await
            .map_err(|err| SandboxError::Io {
                name: "containers".into(),
                reason: engine::describe(&err),
            })?;
        let mut reaped = Vec::new();
        for summary in listed {
            let Some(id) = summary.id else { continue };
            let label = summary
                .labels
                .and_then(|labels| labels.get(engine::SANDBOX_LABEL).cloned())
                .unwrap_or_else(|| id.clone());
            let _ = self.engine.unpause_container(&id).await;
            let options = StopContainerOptions {
                t: Some(self.stop_grace.as_secs_f64().ceil() as i32),
                signal: None,
            };
            match self.engine.stop_container(&id, Some(options)).await {
                Ok(()) => reaped.push(label),
                Err(err) => {
                    tracing::warn!(container = %id, error = %engine::describe(&err), "cannot stop a container an earlier runtime left running");
                }
            }
        }
        Ok(reaped)
    }
}
